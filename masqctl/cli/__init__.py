"""The ``masqctl`` command line: Typer commands, rich rendering, errors to exit codes."""
