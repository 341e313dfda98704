"""`masqctl explain SRC DST`: which rule decides a flow, and what source the destination sees."""

from __future__ import annotations

from masqctl.cli.options import Context, Kubeconfig, Namespace, Output, OutputOpt, Verbose
from masqctl.errors import NotImplementedYet


def explain(context: Context = None, kubeconfig: Kubeconfig = None, namespace: Namespace = "kube-system",
            output: OutputOpt = Output.table, verbose: Verbose = 0) -> None:
    """Say whether a flow SRC -> DST is masqueraded, by which rule, and what source the destination sees."""
    raise NotImplementedYet("`masqctl explain` is not implemented yet", input="explain")
