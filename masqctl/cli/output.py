"""The output flags every command shares (-o/--output, -v), in the kubectl style, the one writer of
-o json/yaml, and the one maker of rich consoles."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer


class Output(str, Enum):
    table = "table"
    wide = "wide"         # the table with more columns, as kubectl's -o wide (a command without one: table)
    json = "json"
    yaml = "yaml"

    @property
    def human(self) -> bool:
        """Text for a person (table or wide), not a document."""
        return self in (Output.table, Output.wide)


OutputOpt = Annotated[Output, typer.Option("-o", "--output", help="Output format (wide: more columns).")]
Verbose = Annotated[int, typer.Option("-v", "--verbose", count=True, help="More detail on stderr (repeatable).")]


_emitted = {"documents": 0}


def reset() -> None:
    """A new command run: no document written yet."""
    _emitted["documents"] = 0


def emitted() -> bool:
    """A document was written to stdout already (an error after it adds none: stdout holds one)."""
    return _emitted["documents"] > 0


def emit(doc: dict, output: Output, *, indent: bool | None = None) -> None:
    """Write ``doc`` to stdout as JSON or YAML (``output`` table: nothing to do here).

    JSON is indented on a terminal and compact (the C encoder, fast on 10k-step traces) for pipes
    and files; ``indent`` True indents it always. YAML keeps key order and does not fold long lines.
    """
    if not output.human:
        _emitted["documents"] += 1
    if output == Output.json:
        import json

        pretty = sys.stdout.isatty() if indent is None else indent
        sys.stdout.write(json.dumps(doc, indent=2 if pretty else None, ensure_ascii=False) + "\n")
    elif output == Output.yaml:
        sys.stdout.write(_yaml_text(doc))


# YAML 1.1 line breaks besides \n and \r: with allow_unicode PyYAML writes them raw inside quotes,
# where a reader folds them to a space; a double-quoted scalar escapes them
_UNICODE_BREAKS = ("\x85", "\u2028", "\u2029")


def _yaml_text(doc: dict) -> str:
    """YAML in key order, long lines unfolded, and text of several lines as a literal block (a
    ConfigMap's config reads as the file it is; the emitter falls back to quoting where a block
    cannot hold the text exactly)."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def text(dumper, value: str):
        if any(c in value for c in _UNICODE_BREAKS):
            style = '"'       # written raw, the emitter's own choice of style would read back as other text
        else:
            style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, text)
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


def console(*, stderr: bool = False, soft_wrap: bool = False, file=None, force_terminal: bool | None = None):
    """A rich console for human output. Markup is ours; nothing else in the text is interpreted:
    no highlighting of numbers and addresses, and no ``:name:`` emoji codes (an iptables comment
    such as ``":ok:"`` is printed as written)."""
    from rich.console import Console

    return Console(stderr=stderr, file=file, force_terminal=force_terminal, highlight=False, emoji=False,
                   soft_wrap=soft_wrap)


def print_wide(console, renderable) -> None:
    """Print a ``-o wide`` table as kubectl does: rows are never wrapped or cut; a table wider than
    the terminal is printed at its own width (the terminal wraps it)."""
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options.update(width=10_000), renderable).maximum
    if natural <= console.width:
        console.print(renderable)
        return
    wider = globals()["console"](file=console.file)
    wider.width = natural
    wider.print(renderable)
