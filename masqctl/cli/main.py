"""Console entry point.

``masqctl node-agent ...`` is handed to the lean agent entry point before typer or rich are
imported, so the daemon started through ``masqctl`` stays as small as ``python -m masqctl.agent``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["node-agent"]:
        from masqctl.agent.main import main as agent_main

        return _exit(agent_main(argv[1:]))
    from masqctl.cli.app import run

    return _exit(run(argv))


def _exit(code: int) -> int:
    if __name__ == "__main__" or sys.argv and sys.argv[0].endswith("masqctl"):
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
