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
