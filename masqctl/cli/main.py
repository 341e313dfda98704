"""Console entry points: ``masqctl`` and ``kubectl-masq`` (the kubectl plugin: ``kubectl masq …``).

``masqctl node-agent ...`` is handed to the lean agent entry point before typer or rich are
imported, so the daemon started through ``masqctl`` stays as small as ``python -m masqctl.agent``.
"""

from __future__ import annotations

import gc
import os
import sys

# the console scripts: `masqctl`, and `kubectl-masq`, which kubectl runs for `kubectl masq …`
SCRIPTS = {"masqctl": "masqctl", "kubectl-masq": "kubectl masq"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["node-agent"]:
        from masqctl.agent.main import main as agent_main

        return _exit(agent_main(argv[1:]))
    # Start-up (typer, rich, the command's modules, converting its options) makes some hundred
    # thousand objects and no garbage cycles: the cyclic collector is paused until the command
    # line is parsed (``masqctl.cli.app``'s root callback resumes it), and in any case on return.
    collecting = gc.isenabled()
    gc.disable()
    try:
        from masqctl.cli.app import run

        return _exit(run(argv, prog_name=prog_name(), resume_collector=collecting))
    finally:
        if collecting:
            gc.enable()


def prog_name() -> str:
    """How the user called us: ``kubectl masq`` when kubectl ran the plugin, else ``masqctl``."""
    return SCRIPTS.get(_script(), "masqctl")


def _script() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""


def _exit(code: int) -> int:
    if __name__ == "__main__" or _script() in SCRIPTS:
        _end(code)
    return code


def _end(code: int) -> None:
    """End the process with ``code``, as a normal exit does, without tearing the interpreter down.

    Once the command is done and no other thread is left, the exit handlers are run and the
    streams flushed, then the process ends (``os._exit``) instead of freeing every module and
    object one by one: 10 ms after any command, about 20 ms after an answer on a big table, for
    memory the system takes back at once. With other threads alive it exits normally (Python joins
    them first)."""
    import threading

    if threading.active_count() > 1:
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()      # what a normal exit runs (logging's shutdown, finalizers, coverage)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):          # a closed pipe (`| head`), a closed stream
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
