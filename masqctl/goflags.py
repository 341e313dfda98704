"""Command-line flags parsed the way Go's ``flag`` package parses them.

A leaf module (no imports beyond ``masqctl.errors``): the node-agent parses its own command
line with it (it must start from the same DaemonSet arguments as the Go agents, so ``-v=2``,
``--v=2``, ``--resync-interval 60``, ``--enable-ipv6``, ``--enable-ipv6=false`` and klog's
logging flags are all accepted; booleans take a value only with ``=``), and ``inspect`` reads
the Go agents' flags from a DaemonSet's container arguments with it.
"""

from __future__ import annotations

from masqctl.errors import UsageError

# klog/glog flags the Go agents accept (name -> kind); a drop-in must start with them. The agents
# parse with Go's ``flag`` package, so component-base's pflag-only flags (``--version``,
# ``--log-flush-frequency``) are not among them: the Go agents exit 2 on those.
KLOG_FLAGS = {
    "logtostderr": "bool", "alsologtostderr": "bool", "add_dir_header": "bool", "skip_headers": "bool",
    "skip_log_headers": "bool", "one_output": "bool", "stderrthreshold": "str", "log_dir": "str",
    "log_file": "str", "log_file_max_size": "str", "log_backtrace_at": "str", "vmodule": "str",
}

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


class Flag:
    # Plain classes, not dataclasses: the long-running agent must not pay for importing
    # dataclasses (and inspect, which it pulls in).
    def __init__(self, name: str, kind: str, default: object, help: str, dest: str = "",
                 negated_by: str | None = None):
        self.name = name
        self.kind = kind              # "bool" | "int" | "str"
        self.default = default
        self.help = help
        self.dest = dest or name.replace("-", "_")
        self.negated_by = negated_by  # e.g. "no-random-fully"


class FlagSet:
    def __init__(self, program: str, summary: str, examples: tuple[str, ...] = ()):
        self.program = program
        self.summary = summary
        self.examples = examples       # command lines the short usage shows first
        self.flags: list[Flag] = []
        self.ignored: dict[str, str] = {}  # accepted for compatibility: name -> kind

    def add(self, name: str, kind: str, default: object, help: str, *, negated_by: str | None = None) -> None:
        self.flags.append(Flag(name, kind, default, help, name.replace("-", "_"), negated_by))

    def parse(self, argv: list[str], *, stop_at_positional: bool = False) -> dict[str, object]:
        """The flag values; ``stop_at_positional``: like Go's ``flag.Parse``, stop at the first
        word that is not a flag (the rest is left to the program) instead of refusing it."""
        by_name = {f.name: f for f in self.flags}
        negations = {f.negated_by: f for f in self.flags if f.negated_by}
        values = {f.dest: f.default for f in self.flags}
        values["help"] = False
        values["help_all"] = False
        i = 0
        while i < len(argv):
            arg = argv[i]
            i += 1
            if arg == "--":
                break
            if not arg.startswith("-") or arg == "-":
                if stop_at_positional:
                    i -= 1
                    break
                raise UsageError(f"unexpected argument {arg!r}", input=arg, code="E204",
                                 hint=f"run {self.program} --help")
            name, has_value, value = arg.lstrip("-").partition("=")
            if name in ("h", "help", "help-all"):
                values["help"] = True
                values["help_all"] = values["help_all"] or name == "help-all"
                continue
            if name in negations and not has_value:
                values[negations[name].dest] = False
                continue
            if name in self.ignored:
                if self.ignored[name] != "bool" and not has_value:
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: -{name}", input=arg, code="E204")
                    i += 1
                continue
            flag = by_name.get(name)
            if flag is None:
                raise UsageError(f"flag provided but not defined: -{name}", input=arg, code="E204",
                                 hint=f"run {self.program} --help")
            if flag.kind == "bool":
                if not has_value:
                    values[flag.dest] = True
                elif value in _TRUE:
                    values[flag.dest] = True
                elif value in _FALSE:
                    values[flag.dest] = False
                else:
                    raise UsageError(f"invalid boolean value {value!r} for -{name}", input=arg, code="E204")
                continue
            if not has_value:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}", input=arg, code="E204")
                value = argv[i]
                i += 1
            values[flag.dest] = self._convert(flag, value, arg)
        if i < len(argv) and not stop_at_positional:
            raise UsageError(f"unexpected argument {argv[i]!r}", input=argv[i], code="E204")
        return values

    @staticmethod
    def _convert(flag: Flag, value: str, arg: str) -> object:
        try:
            if flag.kind == "int":
                return int(value, 0)
        except ValueError:
            raise UsageError(f"invalid value {value!r} for flag -{flag.name}: parse error", input=arg,
                             code="E204") from None
        return value

    def usage(self, width: int = 80) -> str:
        """Every flag described, one after the other as Go's ``flag`` lists them (``--help-all``)."""
        import textwrap  # only a question pays for it

        lines = [f"Usage: {self.program} [flags]", ""] + textwrap.wrap(self.summary, width, break_on_hyphens=False)
        lines += ["", "Flags:"]
        for f in self.flags:
            kind = "" if f.kind == "bool" else f" {f.kind}"
            extra = f" (or --{f.negated_by})" if f.negated_by else ""
            default = f" (default {f.default})" if f.default not in (None, False, "") else ""
            lines.append(f"  --{f.name}{kind}{extra}")
            lines += textwrap.wrap(f"{f.help}{default}", width, initial_indent=" " * 8, subsequent_indent=" " * 8,
                                   break_on_hyphens=False)
        lines += ["  -h, --help", "        this screen: the examples and the flags' names",
                  "  --help-all", "        every flag described (this listing)"]
        if self.ignored:
            lines.append("")
            lines += textwrap.wrap("Accepted and ignored for compatibility with the Go agents: "
                                   + ", ".join(f"--{n}" for n in sorted(self.ignored)), width)
        return "\n".join(lines) + "\n"

    def short_usage(self, width: int = 80) -> str:
        """One screen (``--help``, ``-h``): the usage line, what the program does, the examples,
        and the flags by name; ``--help-all`` describes them."""
        import textwrap  # only a question pays for it

        lines = [f"Usage: {self.program} [flags]", ""] + textwrap.wrap(self.summary, width, break_on_hyphens=False)
        if self.examples:
            lines += ["", "Examples:"]
            for example in self.examples:
                lines += textwrap.wrap(example, width - 2, initial_indent="  ", subsequent_indent="      ",
                                       break_on_hyphens=False, break_long_words=False)
            lines = [line + " \\" if line.startswith("  ") and nxt.startswith("      ") else line
                     for line, nxt in zip(lines, lines[1:] + [""])]
        metavar = {"int": "N", "str": "TEXT"}
        names = [f"--{f.name}" + (f"\0{metavar[f.kind]}" if f.kind in metavar else "")
                 + (f"|--{f.negated_by}" if f.negated_by else "") for f in self.flags]
        if self.ignored:
            names.append(f"+{len(self.ignored)}\0klog\0flags\0(ignored)")
        lines += ["", "Flags:"] + [row.replace("\0", " ") for row in
                                   textwrap.wrap("  ".join(names), width - 2, initial_indent="  ", subsequent_indent="  ",
                                                 break_on_hyphens=False, break_long_words=False)]
        lines += ["", f"`{self.program} --help-all` describes every option."]
        return "\n".join(lines) + "\n"
