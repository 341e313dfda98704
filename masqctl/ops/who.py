"""``who`` on a cluster or a bundle: gather the snapshot (with the connection-tracking tables), then answer."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from masqctl.analysis.who import WhoRequest, WhoResult, node_of_observed, who_on_snapshot
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions, NodeSelection


def who_on_cluster(options: GatherOptions, request: WhoRequest,
                   log: Callable[[str], None] | None = None) -> WhoResult:
    """A bundle is read as a whole (its ``nodes/<node>/conntrack.txt`` files are the tables).

    Live, the node is not known before the nodes and pods are listed: a first pass reads them
    (no exec, no Azure) and finds the node that owns OBSERVED; a second pass reads that node's
    table through the agent pod (or, with ``--debug-pod``, a debug pod), the same exec that
    reads ``iptables-save``. ``--nodes`` skips the first pass. When no node owns OBSERVED, the
    selected nodes (all by default) are read. Azure is never needed."""
    say = log or (lambda text: None)
    if options.bundle is not None:
        say(f"who: reading {options.bundle}")
        return who_on_snapshot(gather(options), request)
    options = replace(options, azure=False, conntrack=True)
    if options.nodes.all and options.capture:
        say("who: listing nodes and pods to find the node of " + request.observed.ip)
        first = gather(replace(options, capture=False))
        node, how = node_of_observed(first, request.observed.ip)
        if node is not None:
            say(f"who: {request.observed.ip} is {how}: reading node {node}'s table")
            options = replace(options, nodes=NodeSelection(names=(node,)))
    return who_on_snapshot(gather(options), request)
