"""The Typer application: commands, shared options, and the one place errors become exit codes."""

from __future__ import annotations

import gc
import os
import sys

import typer

from masqctl import __version__
from masqctl.cli.output import console as make_console
from masqctl.errors import EXIT_FAILED, EXIT_USAGE, ConfigError, MasqctlError, UsageError

from masqctl.cli.helpscreen import CompactGroup  # noqa: E402 - the root's one-screen --help

app = typer.Typer(
    name="masqctl",
    cls=CompactGroup,
    help="Troubleshoot and fix IP masquerading (SNAT of pod traffic) on Kubernetes nodes, AKS first.",
    no_args_is_help=True,
    add_completion=True,        # --install-completion / --show-completion; `masqctl completion SHELL` prints it
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _version(value: bool) -> None:
    if value:
        typer.echo(f"masqctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of unexpected errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """--debug is read by run() wherever it stands (``normalize``); it is declared here for --help.

    It runs once the command line is parsed, before the command: the start-up is over, and the
    cyclic collector ``masqctl.cli.main`` paused for it resumes here."""
    if _STARTUP["resume_collector"]:
        _STARTUP["resume_collector"] = False
        gc.enable()


_STARTUP = {"resume_collector": False}    # set by run(): the collector was paused for start-up only


# Each command lives in its own module, imported only when that command runs: `masqctl explain`
# never loads inspect's, apply's or collect's modules (nor has typer convert their signatures).
# The order here is the order of `masqctl --help`, and each line is the first line of the command's
# docstring (tests/cli/test_lazy_commands.py holds the two equal).
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("masqctl.cli.inspect", "Gather what decides masquerading in a cluster and report findings."),
    "explain": ("masqctl.cli.explain", ("Say whether a flow SRC -> DST is masqueraded, by which rule, and what "
                                        "source the destination sees.")),
    "apply": ("masqctl.cli.apply", "Recommend or write the user ConfigMap azure-ip-masq-agent-config, safely."),
    "collect": ("masqctl.cli.collect", ("Write a bundle folder for offline analysis (inspect --bundle, explain "
                                        "--bundle).")),
    "who": ("masqctl.cli.who", ("Name the pod behind a source address a destination logged, from the node's "
                                "connection-tracking table.")),
}


def _command_name(argv: list[str]) -> str | None:
    """The subcommand ``argv`` runs: its first word that is not an option (the root options take no
    values), or None."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg
        if arg == "--":
            return None
    return None


def _register(name: str) -> None:
    import importlib

    from masqctl.cli.helpscreen import CompactCommand

    module, _ = COMMANDS[name]
    app.command(name, cls=CompactCommand)(getattr(importlib.import_module(module), name))


def _listed(name: str, summary: str) -> None:
    """A command in ``masqctl --help``'s list without importing its module."""
    def listed() -> None:  # pragma: no cover - replaced by the real command before it can run
        raise AssertionError(name)

    listed.__doc__ = summary
    app.command(name)(listed)


COMPLETE_VAR = "_MASQCTL_COMPLETE"    # set by the shell's completion script when it asks for words


def register_commands(argv: list[str], environ=None) -> None:
    """Register the command ``argv`` runs, and nothing else: the root's ``--help`` (and an unknown
    command's error) gets every command, the others only as names in the list; the shell asking for
    completions gets every command for real (it may complete any command's options)."""
    environ = os.environ if environ is None else environ
    chosen = _command_name(argv)
    completing = COMPLETE_VAR in environ
    alone = not completing and chosen in (*COMMANDS, "node-agent", "completion")
    for name, (_, summary) in COMMANDS.items():
        if name == chosen or completing:
            _register(name)
        elif not alone:
            _listed(name, summary)
    if not alone or chosen == "node-agent":
        _register_node_agent()
    if not alone or chosen == "completion":
        _register_completion()


SHELLS = ("bash", "zsh", "fish")


def _register_completion() -> None:
    from masqctl.cli.helpscreen import CompactCommand

    @app.command("completion", cls=CompactCommand)
    def completion(shell: str = typer.Argument(..., metavar="bash|zsh|fish", help="The shell.")) -> None:
        """Print the shell completion script for bash, zsh or fish.

        Examples:

          masqctl completion bash > ~/.masqctl-completion.bash

          masqctl completion zsh
        """
        if shell not in SHELLS:
            raise UsageError(f"unknown shell {shell!r}; use one of {', '.join(SHELLS)}", input="completion",
                             code="E229")
        from typer._completion_shared import get_completion_script

        typer.echo(get_completion_script(prog_name="masqctl", complete_var=COMPLETE_VAR, shell=shell))


def _register_node_agent() -> None:
    @app.command("node-agent", add_help_option=False,
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def node_agent(ctx: typer.Context) -> None:
        """Run the rule engine on a host (a drop-in for ip-masq-agent-v2)."""
        from masqctl.agent.main import main as agent_main

        raise typer.Exit(agent_main(list(ctx.args)))


def report_error(error: MasqctlError) -> None:
    from rich.markup import escape

    # what the error quotes is the user's text (`[fd00::1]:`, a path with brackets): printed as is,
    # never read as rich markup
    console = make_console(stderr=True, soft_wrap=True)
    console.print(f"[bold red]error[/] {error.code} " + (f"[bold]{escape(error.input)}[/]: " if error.input else "")
                  + escape(error.message), markup=True)
    if error.hint:
        console.print(f"[dim]hint:[/] {escape(error.hint)}")


def error_document(code: str, message: str, input: str | None = None, hint: str | None = None) -> dict:
    """What stdout carries instead of the result when a command run with ``-o json``/``-o yaml``
    fails: one document a script can test (``.error.code``), besides the line on stderr."""
    return {"error": {"code": code, "message": message, "input": input, "hint": hint}}


def output_format(argv: list[str]) -> str | None:
    """The ``-o``/``--output`` value ``argv`` asks for (the last one wins, as with click), or None."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg in ("-o", "--output") and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--output="):
            found = arg.split("=", 1)[1]
        elif arg.startswith("-o") and len(arg) > 2 and not arg.startswith("--"):
            found = arg[2:].removeprefix("=")
    return found


def normalize(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` as the commands parse it, and whether ``--debug`` was given.

    ``--debug`` is taken wherever it stands (before or after the command); ``-v N``,
    ``-vN``, ``--verbose N`` and ``--verbose=N`` (N a digit) mean ``-v`` N times, as ``-vv`` does."""
    out: list[str] = []
    debug = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        if arg == "--debug":
            debug = True
        elif arg in ("-v", "--verbose") and i + 1 < len(argv) and _digit(argv[i + 1]):
            out.extend(["-v"] * int(argv[i + 1]))
            i += 1
        elif arg.startswith(("-v", "--verbose=")) and _digit(arg.removeprefix("--verbose=").removeprefix("-v")
                                                             .removeprefix("=")):
            out.extend(["-v"] * int(arg.removeprefix("--verbose=").removeprefix("-v").removeprefix("=")))
        else:
            out.append(arg)
        i += 1
    return out, debug


def _digit(text: str) -> bool:
    return len(text) == 1 and text.isdigit()


def _fail(error: MasqctlError, structured: str | None) -> int:
    report_error(error)
    _write_error_document(error_document(error.code, error.message, error.input, error.hint), structured)
    # an agent config given as input (--config-dir, --from-file) is an input error of this command;
    # only the node-agent itself exits as the agent does (masqctl.agent.main)
    return EXIT_USAGE if isinstance(error, ConfigError) else error.exit_code


def _write_error_document(doc: dict, structured: str | None) -> None:
    """The error as stdout's one document, unless the command wrote its own already (apply's plan
    before a refusal: the plan says what was refused)."""
    from masqctl.cli.output import Output, emit, emitted

    if structured in ("json", "yaml") and not emitted():
        emit(doc, Output(structured))


def run(argv: list[str], prog_name: str = "masqctl", resume_collector: bool = False) -> int:
    """Run the app; return the exit status. Errors never show a traceback unless --debug, and then
    only unexpected ones. With ``-o json``/``-o yaml`` an error is also one document on stdout.
    ``resume_collector``: the caller paused the cyclic collector for start-up; the command resumes it."""
    from masqctl.cli import output

    output.reset()
    argv, debug = normalize(list(argv))
    from masqctl.cli import helpscreen

    helpscreen.FULL["on"] = "--help-all" in argv[:argv.index("--")] if "--" in argv else "--help-all" in argv
    if _command_name(argv) != "node-agent":      # the node-agent answers --help-all itself
        argv = ["--help" if a == "--help-all" and helpscreen.FULL["on"] else a for a in argv]
    structured = output_format(argv)
    app.registered_commands.clear()
    register_commands(argv)
    _STARTUP["resume_collector"] = resume_collector
    try:
        result = app(args=argv, prog_name=prog_name, standalone_mode=False)
    except MasqctlError as error:
        return _fail(error, structured)
    except (typer.Exit, typer.Abort) as exc:
        if isinstance(exc, typer.Abort):
            print("aborted", file=sys.stderr)
            return EXIT_FAILED
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        # typer's click exceptions (vendored in recent typer, click itself in older ones):
        # usage errors carry exit code 2 and know how to show themselves.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            if exc.exit_code != EXIT_USAGE:
                exc.show()
                return EXIT_FAILED
            # a command line the parser refused, said as masqctl says every error
            message = exc.format_message() if callable(getattr(exc, "format_message", None)) else str(exc)
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else prog_name
            hint = f"`{where} -h` shows the usage"
            report_error(UsageError(message, input=where, hint=hint, code="E200"))
            _write_error_document(error_document("E200", message, where, hint), structured)
            return EXIT_USAGE
        if debug:
            import traceback

            traceback.print_exc()
        message = f"unexpected internal error: {exc.__class__.__name__}: {exc}"
        print(f"error: E999 {message} (run with --debug for the traceback)", file=sys.stderr)
        _write_error_document(error_document("E999", message, hint="run with --debug for the traceback"), structured)
        return EXIT_FAILED
    return result if isinstance(result, int) else 0
