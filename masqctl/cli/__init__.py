"""The ``masqctl`` command line: Typer commands, rich rendering, errors to exit codes.

One module per command (``inspect``, ``explain``, ``apply``, ``collect``), each a thin layer:
parse flags into values, call the operation (``masqctl.ops``) or the pure analysis, render the
result (tables with rich, or one JSON/YAML document through ``output.emit``). ``app`` builds the
Typer app and maps every ``MasqctlError`` to its exit status in one place; ``main`` is the
console script, which hands ``masqctl node-agent …`` to ``masqctl.agent`` before Typer loads;
``gathering`` defines the gathering flags once for every command that reads a cluster;
``progress`` draws progress on stderr.

May import everything below it (ops, analysis, cluster, engine, netfilter, errors). A command
imports its machinery inside the command function, so ``masqctl --help`` and each command load
only what they run (offline commands never load the live gatherers or the cloud clients).
"""
