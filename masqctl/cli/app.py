"""The Typer application: commands, shared options, and the one place errors become exit codes."""

from __future__ import annotations

import sys
import traceback

import typer

from masqctl import __version__
from masqctl.errors import EXIT_FAILED, EXIT_USAGE, MasqctlError

app = typer.Typer(
    name="masqctl",
    help="Troubleshoot and fix IP masquerading (SNAT of pod traffic) on Kubernetes nodes, AKS first.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}


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
    _state["debug"] = debug


# Each command lives in its own module; registration order is the order of `masqctl --help`.
from masqctl.cli.inspect import inspect  # noqa: E402
from masqctl.cli.explain import explain  # noqa: E402
from masqctl.cli.apply import apply  # noqa: E402
from masqctl.cli.collect import collect  # noqa: E402
from masqctl.cli.who import who  # noqa: E402

app.command("inspect")(inspect)
app.command("explain")(explain)
app.command("apply")(apply)
app.command("collect")(collect)
app.command("who")(who)


@app.command("node-agent", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def node_agent(ctx: typer.Context) -> None:
    """Run the agent's rule engine on a host (drop-in for ip-masq-agent-v2). See `masqctl node-agent --help`."""
    from masqctl.agent.main import main as agent_main

    raise typer.Exit(agent_main(list(ctx.args)))


def report_error(error: MasqctlError) -> None:
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"[bold red]error[/] {error.code} " + (f"[bold]{error.input}[/]: " if error.input else "")
                  + error.message, markup=True)
    if error.hint:
        console.print(f"[dim]hint:[/] {error.hint}")


def run(argv: list[str]) -> int:
    """Run the app; return the exit status. Errors never show a traceback unless --debug."""
    debug = "--debug" in argv
    try:
        result = app(args=argv, prog_name="masqctl", standalone_mode=False)
    except MasqctlError as error:
        if debug:
            traceback.print_exc()
        report_error(error)
        return error.exit_code
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
            exc.show()
            return EXIT_USAGE if exc.exit_code == EXIT_USAGE else EXIT_FAILED
        if debug:
            traceback.print_exc()
        print(f"error: E999 unexpected internal error: {exc.__class__.__name__}: {exc} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILED
    return result if isinstance(result, int) else 0
