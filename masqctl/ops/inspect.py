"""Inspect a cluster or a bundle: gather, then the findings report."""

from __future__ import annotations

from dataclasses import replace

from masqctl.analysis.inspect import inspect
from masqctl.cluster.gather import gather
from masqctl.cluster.model import ClusterSnapshot, MissingKey
from masqctl.cluster.options import GatherOptions, Progress


def without_azure(snapshot: ClusterSnapshot) -> ClusterSnapshot:
    """The snapshot with its Azure documents set aside: a bundle's Azure documents are read
    whatever the flags; ``--no-azure`` means do not use them."""
    if snapshot.azure is None:
        return snapshot
    return replace(snapshot, azure=None, missing={**snapshot.missing, MissingKey.AZURE: "not used (--no-azure)"})


def inspect_cluster(options: GatherOptions, *, only: set[str] | None = None, progress: Progress | None = None):
    """The inspect ``Report`` of what ``options`` gathers (``options.azure`` False: Azure unused,
    on a bundle too)."""

    snapshot = gather(options, progress)
    if not options.azure:
        snapshot = without_azure(snapshot)
    return inspect(snapshot, only=only, nodes=options.nodes)


def inspect_clusters(options_list: list[GatherOptions], *, only: set[str] | None = None,
                     progress: Progress | None = None):
    """One cluster: its ``InspectReport`` (today's document). Several: a ``FleetReport`` (each
    cluster's report, how they connect, MQ018–MQ020); E405 for two clusters of one name."""
    if len(options_list) == 1:
        return inspect_cluster(options_list[0], only=only, progress=progress)
    from masqctl.analysis.fleet import inspect_fleet
    from masqctl.ops.fleet import gather_clusters

    def prepare(snapshot: ClusterSnapshot, options: GatherOptions) -> ClusterSnapshot:
        return snapshot if options.azure else without_azure(snapshot)

    clusters = gather_clusters(options_list, progress, prepare=prepare)
    reports = [inspect(c.snapshot, only=only, nodes=c.options.nodes) for c in clusters]
    return inspect_fleet([(c.name, c.snapshot) for c in clusters], only=only, reports=reports)
