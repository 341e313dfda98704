"""The output flags every command shares (-o/--output, -v), in the kubectl style, the one writer of
-o json/yaml, and the one maker of rich consoles."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer


class Output(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


OutputOpt = Annotated[Output, typer.Option("-o", "--output", help="Output format.")]
Verbose = Annotated[int, typer.Option("-v", "--verbose", count=True, help="More detail on stderr (repeatable).")]


def emit(doc: dict, output: Output, *, indent: bool | None = None) -> None:
    """Write ``doc`` to stdout as JSON or YAML (``output`` table: nothing to do here).

    JSON is indented on a terminal and compact (the C encoder, fast on 10k-step traces) for pipes
    and files; ``indent`` True indents it always. YAML keeps key order and does not fold long lines.
    """
    if output == Output.json:
        import json

        pretty = sys.stdout.isatty() if indent is None else indent
        sys.stdout.write(json.dumps(doc, indent=2 if pretty else None, ensure_ascii=False) + "\n")
    elif output == Output.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000))


def console(*, stderr: bool = False, soft_wrap: bool = False, file=None, force_terminal: bool | None = None):
    """A rich console for human output. Markup is ours; nothing else in the text is interpreted:
    no highlighting of numbers and addresses, and no ``:name:`` emoji codes (an iptables comment
    such as ``":ok:"`` is printed as written)."""
    from rich.console import Console

    return Console(stderr=stderr, file=file, force_terminal=force_terminal, highlight=False, emoji=False,
                   soft_wrap=soft_wrap)
