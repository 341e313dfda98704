"""Explain one flow on a cluster or a bundle: gather what the question needs, then explain it."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from masqctl.analysis.explain import parse_endpoint
from masqctl.analysis.explain_cluster import explain_snapshot, resolve_source
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions, NodeSelection
from masqctl.errors import UsageError


def explain_on_cluster(options: GatherOptions, request, log: Callable[[str], None] | None = None):
    """The ``ClusterExplanation`` of ``request`` (an ``analysis.explain_cluster.ClusterRequest``).

    A bundle is read as a whole. Live, the source's node is not known before the pods are
    listed: a first pass reads the Kubernetes objects without node captures or Azure, resolves
    SRC to its node, and a second pass gathers everything with the captures limited to that
    node. ``--node`` or ``--nodes`` skip the first pass. ``log`` hears what each pass does.
    """

    return explain_snapshot(snapshot_for(options, request, log), request)


def snapshot_for(options: GatherOptions, request, log: Callable[[str], None] | None = None):
    """The snapshot ``request`` is explained on (see ``explain_on_cluster``)."""
    say = log or (lambda text: None)
    if options.bundle is not None:
        return gather(options)
    if request.node is not None:
        options = replace(options, nodes=NodeSelection(names=(request.node,)))
    elif options.nodes.all and options.capture:
        say("explain: listing pods to find the source's node")
        first = gather(replace(options, capture=False, azure=False))
        family = None
        try:
            family = parse_endpoint(request.dst, "DST")[0].version if "/" not in request.dst else None
        except UsageError:
            pass
        source = resolve_source(first, request.src, family, None)
        if source.node is not None:
            options = replace(options, nodes=NodeSelection(names=(source.node,)))
    say(f"explain: gathering (nodes: {', '.join(options.nodes.names) or 'as selected'})")
    return gather(options)


def explain_path_on(clusters, request):
    """The ``PathExplanation`` of ``request`` over ``clusters`` (``(name, snapshot)`` pairs or
    values with ``.name`` and ``.snapshot``): egress, network, ingress and endpoint."""
    from masqctl.analysis.explain_path import explain_path

    return explain_path(clusters, request)
