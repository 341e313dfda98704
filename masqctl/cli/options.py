"""Options shared by the commands, in the kubectl/az style."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer


class Output(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


Context = Annotated[Optional[str], typer.Option("--context", help="kubeconfig context to use.")]
Kubeconfig = Annotated[Optional[str], typer.Option("--kubeconfig", help="Path to the kubeconfig file.")]
Namespace = Annotated[str, typer.Option("-n", "--namespace", help="Namespace of the agent and its ConfigMaps.")]
OutputOpt = Annotated[Output, typer.Option("-o", "--output", help="Output format.")]
Verbose = Annotated[int, typer.Option("-v", "--verbose", count=True, help="More detail on stderr (repeatable).")]
