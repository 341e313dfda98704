"""Every command's --help fits one screen and starts with two real examples.

The screen is 80×24, the terminal the issue's checks use (tmux at 80×24): a help page longer than
24 lines scrolls its usage line away, as kubectl keeps its own help short by leaving the shared
flags to another page. The two examples run as written on the shipped examples (in a folder where
`examples/` is the repository's), and `--help-all` is the full reference."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from masqctl.cli.app import COMMANDS
from masqctl.cli.helpscreen import ROOT_EXAMPLES, SCREEN, WIDTH, _paragraphs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def registry() -> list[tuple[str, ...]]:
    """Every command and subcommand the app registers (each as its words after ``masqctl``), as
    the shell's completion sees them: all of them registered for real."""
    import typer.main

    from masqctl.cli.app import COMPLETE_VAR, app, register_commands

    app.registered_commands.clear()
    register_commands([], environ={COMPLETE_VAR: "1"})
    group = typer.main.get_group(app)

    def walk(group, path):
        ctx = group.context_class(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            yield (*path, name)
            if hasattr(command, "list_commands"):
                yield from walk(command, (*path, name))

    return list(walk(group, ()))


PATHS = registry()


def masqctl(*args: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, check=False, env={**os.environ, "COLUMNS": str(WIDTH)})


def shown_examples(help_text: str) -> list[str]:
    """The example command lines a help screen shows, each joined from its ``\\`` continuations."""
    lines = help_text.splitlines()
    examples, joined = [], ""
    for line in lines[lines.index("Examples:") + 1:]:
        if not line.strip():
            break
        joined += line.strip().removesuffix("\\").rstrip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            examples.append(joined)
            joined = ""
    return examples


def test_the_registry_has_every_command():
    names = {p[0] for p in PATHS}
    assert set(COMMANDS) | {"node-agent", "completion"} <= names, names


@pytest.mark.parametrize("path", PATHS + [()], ids=lambda p: " ".join(p) or "masqctl")
def test_help_fits_one_screen_and_starts_with_two_examples(path):
    for ask in ("--help", "-h"):
        r = masqctl(*path, ask)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert len(lines) <= SCREEN, f"{len(lines)} lines:\n{r.stdout}"
        assert max(len(line) for line in lines) <= WIDTH, r.stdout
        assert lines[0].startswith("Usage: masqctl")
        at = lines.index("Examples:")
        assert at <= 6 and lines[at + 1].startswith("  masqctl ")
        assert len(shown_examples(r.stdout)) == 2, r.stdout
        assert r.stdout.rstrip().endswith("--help-all` describes every option.")


@pytest.mark.parametrize("path", PATHS + [()], ids=lambda p: " ".join(p) or "masqctl")
def test_the_two_examples_run_from_the_repository_root(path, tmp_path):
    examples = shown_examples(masqctl(*path, "--help").stdout)
    assert len(examples) == 2, examples
    if not path:
        assert tuple(examples) == ROOT_EXAMPLES
    elif path[0] in COMMANDS:     # the help shows the docstring's examples
        module, _ = COMMANDS[path[0]]
        assert examples == _paragraphs(getattr(importlib.import_module(module), path[0]).__doc__)[1]
    # the repository's root as a folder of links to its entries: an example's paths resolve as
    # there, and what an example writes (collect's bundle) lands in the test's own folder
    root = tmp_path / "root"
    root.mkdir()
    for entry in os.listdir(ROOT):
        if not entry.startswith("."):
            os.symlink(os.path.join(ROOT, entry), root / entry)
    for example in examples:
        # a shell function for `masqctl`, and a HOME of the test's own (completion writes under it)
        script = f'masqctl() {{ "{sys.executable}" -m masqctl.cli.main "$@"; }}; {example}'
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd=root,
                           env={**os.environ, "PYTHONPATH": ROOT, "HOME": str(tmp_path)}, check=False)
        assert r.returncode == 0, (example, r.stdout[-2000:], r.stderr[-2000:])
        assert r.stdout or "> " in example, example


def test_node_agent_help_all_is_the_full_flag_listing():
    from masqctl.agent.flags import flag_set

    short, full = masqctl("node-agent", "--help").stdout, masqctl("node-agent", "--help-all").stdout
    assert masqctl("node-agent", "-help-all").stdout == full != short
    assert masqctl("node-agent", "-h").stdout == masqctl("node-agent", "-help").stdout == short
    fs = flag_set()
    for flag in fs.flags:
        assert f"--{flag.name}" in short.replace("|", " ").split() or f"--{flag.name} " in short, flag.name
        assert f"  --{flag.name}" in full and flag.help.split()[0] in full, flag.name
    assert f"+{len(fs.ignored)} klog flags" in short
    assert all(f"--{name}" in full for name in fs.ignored)
    assert max(len(line) for line in full.splitlines()) <= WIDTH


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_named_and_help_all_describes_it(name):
    import typer.main

    from masqctl.cli.app import app, run  # noqa: F401 - registers the commands
    from masqctl.cli.helpscreen import FOLDED_PANELS

    short = masqctl(name, "--help").stdout
    full = masqctl(name, "--help-all").stdout
    module, _ = COMMANDS[name]
    command = typer.main.get_command_from_info(
        typer.models.CommandInfo(name=name, callback=getattr(importlib.import_module(module), name)),
        pretty_exceptions_short=True, rich_markup_mode=None)
    for p in command.params:
        if p.param_type_name != "option" or "--help" in p.opts:
            continue
        panel = getattr(p, "rich_help_panel", None)
        longest = max(p.opts, key=len)
        assert longest in full, (name, longest)
        if panel in FOLDED_PANELS:     # counted as one "+N <panel>" entry, described by --help-all
            n = sum(getattr(q, "rich_help_panel", None) == panel for q in command.params)
            assert f"+{n} {panel}" in short, (name, panel)
        elif panel not in ("Cluster", "Azure") or longest in ("--bundle", "--context", "--node", "--add"):
            assert any(o in short.replace("\n", " ").split() or f"{o} " in short for o in p.opts), (name, p.opts)
    assert "+" in short and "more" in short or name == "collect"
