"""`--help` on one screen, as kubectl keeps it: the usage line, what the command does, two
examples that run on the shipped examples, and the options by group, named without their
descriptions; `--help-all` prints the full reference (every option described).

One screen is 80×24, the terminal the README's checks assume: a help longer than that scrolls its
usage line away. ``CompactCommand`` is the class of every masqctl command."""

from __future__ import annotations

import textwrap

from typer.core import TyperCommand, TyperGroup

FULL = {"on": False}        # `--help-all` asked for the full reference (set by cli.app.run)
WIDTH = 80
SCREEN = 24        # lines (tests/cli/test_help_screen.py holds every command's help to it)
SHARED_PANELS = ("Cluster", "Azure")   # the gathering options every cluster command takes (gathering.py)
FOLDED_PANELS = {"Cilium": "Rules"}    # a panel shown as one "+N Cilium" entry of another panel
SHOWN_SHARED = ("--bundle", "--context", "--kubeconfig", "--nodes", "--no-azure")
_OWN_CLUSTER = ("--node", "--add", "--with-change")     # a command's own options in the Cluster panel


def _paragraphs(doc: str) -> tuple[str, list[str]]:
    """(the summary: the docstring's first paragraph, the first two example command lines)."""
    text = textwrap.dedent(doc or "").strip()
    summary = text.split("\n\n", 1)[0]
    examples = []
    if "Examples:" in text:
        for line in text.split("Examples:", 1)[1].splitlines():
            line = line.strip()
            if line.startswith(("masqctl ", "kubectl masq ")):
                examples.append(line)
    return " ".join(summary.split()), examples[:2]


_TYPES = {"text": "TEXT", "str": "TEXT", "string": "TEXT", "integer": "N", "int": "N", "float": "N"}


def _name(param) -> str:
    """How the option is typed: its short name when it has one (``-o``, ``-n``), and its value."""
    shorts = [o for o in param.opts if not o.startswith("--")]
    name = shorts[0] if shorts else param.opts[0]
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return name
    choices = getattr(param.type, "choices", None)
    metavar = param.metavar or ("|".join(str(getattr(c, "value", c)) for c in choices) if choices else
                                _TYPES.get(param.type.name.lower(), param.type.name.upper()))
    return f"{name} {metavar}"


def _example_lines(example: str, prog: str) -> list[str]:
    """An example as the shell takes it: wrapped at words with `` \\`` continuations."""
    if prog.startswith("kubectl masq"):
        example = "kubectl masq " + example.removeprefix("masqctl ")
    if len(example) <= WIDTH - 2:
        return ["  " + example]
    words = example.split(" ")
    rows, row = [], ""
    for w in words:
        if row and len(row) + 1 + len(w) > WIDTH - 2 - 2:
            rows.append(row + " \\")
            row = "    " + w
        else:
            row = f"{row} {w}" if row else w
    rows.append(row)
    return ["  " + r for r in rows]


def compact_help(command, ctx) -> str:
    summary, examples = _paragraphs(command.help or "")
    prog = ctx.command_path
    args = " ".join(p.human_readable_name for p in command.params if p.param_type_name == "argument")
    lines = [f"Usage: {prog} {args + ' ' if args else ''}[OPTIONS]", ""]
    lines += textwrap.wrap(summary, WIDTH)
    if examples:
        lines += ["", "Examples:"] + [line for e in examples for line in _example_lines(e, prog)]
    groups: dict[str, list[str]] = {}
    folded: dict[str, int] = {}
    for p in command.params:
        if p.param_type_name != "option" or getattr(p, "hidden", False) or "--help" in p.opts:
            continue
        panel = getattr(p, "rich_help_panel", None) or "Options"
        if panel in FOLDED_PANELS:      # counted, listed by --help-all
            folded[panel] = folded.get(panel, 0) + 1
            continue
        groups.setdefault(panel, []).append(_name(p))
    for panel, count in folded.items():
        groups.setdefault(FOLDED_PANELS[panel], []).append(f"+{count}\0{panel}")
    # the gathering options every cluster command shares: the few most used, and how many more
    shared = [n for panel in SHARED_PANELS for n in groups.pop(panel, [])]
    if shared:
        own = [n for n in shared if n.split(" ")[0] in _OWN_CLUSTER]
        shown = [n for n in shared if n.split(" ")[0] in SHOWN_SHARED]
        more = len(shared) - len(own) - len(shown)
        groups["Cluster"] = own + shown + ([f"+{more} more"] if more else [])
    groups = {"Output": groups.pop("Options", []), **groups}
    groups = {k: v for k, v in groups.items() if v}
    if groups:
        lines += ["", "Options:"]
    label = max(len(g) for g in groups) + 4 if groups else 4
    for panel, names in groups.items():
        if not names:
            continue
        rows = textwrap.wrap("  ".join(n.replace(" ", "\0") for n in names), WIDTH - label,
                             break_on_hyphens=False, break_long_words=False)
        for i, row in enumerate(rows):
            head = f"  {panel}" if i == 0 else ""
            lines.append(f"{head:<{label}}{row.replace(chr(0), ' ')}")
    lines += ["", f"`{prog} --help-all` describes every option."]
    return "\n".join(lines) + "\n"


class CompactCommand(TyperCommand):
    """A Typer command whose ``--help`` is one screen (``--help-all``: typer's full help)."""

    def format_help(self, ctx, formatter) -> None:
        if FULL["on"]:
            return super().format_help(ctx, formatter)
        formatter.write(compact_help(self, ctx))


ROOT_EXAMPLES = ("masqctl inspect --bundle examples/hub-spoke",
                 "masqctl explain 10.40.0.9 10.42.1.10:443 --bundle examples/hub-spoke")


def compact_root_help(group, ctx) -> str:
    prog = ctx.command_path
    lines = [f"Usage: {prog} [OPTIONS] COMMAND [ARGS]...", ""]
    lines += textwrap.wrap(" ".join((group.help or "").split()), WIDTH)
    lines += ["", "Examples:"] + [line for e in ROOT_EXAMPLES for line in _example_lines(e, prog)]
    lines += ["", "Commands:"]
    names = group.list_commands(ctx)
    label = max(len(n) for n in names) + 4
    for name in names:
        cmd = group.get_command(ctx, name)
        summary = " ".join((cmd.help or "").split("\n\n", 1)[0].split()) if cmd is not None else ""
        rows = textwrap.wrap(summary, WIDTH - label, break_on_hyphens=False) or [""]
        lines += [f"  {name:<{label - 2}}{rows[0]}"] + [" " * label + r for r in rows[1:]]
    opts = [_name(p) for p in group.params if p.param_type_name == "option" and not getattr(p, "hidden", False)]
    lines += ["", "Options: " + "  ".join(opts)]
    lines += [f"`{prog} COMMAND --help` shows a command; `--help-all` describes every option."]
    return "\n".join(lines) + "\n"


class CompactGroup(TyperGroup):
    """The root command: its ``--help`` on one screen too (``--help-all``: typer's full help)."""

    def format_help(self, ctx, formatter) -> None:
        if FULL["on"]:
            return super().format_help(ctx, formatter)
        formatter.write(compact_root_help(self, ctx))
