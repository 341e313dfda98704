"""Gather a snapshot: from a bundle, or live from Kubernetes (and Azure when asked and possible).

Heavy clients are imported only on the live path, inside the gatherers.
"""

from __future__ import annotations

from masqctl.cluster.model import ClusterSnapshot, MissingKey
from masqctl.cluster.options import GatherOptions, Progress
from masqctl.cluster.raw import RawCluster


def gather_raw(options: GatherOptions, progress: Progress | None = None) -> RawCluster:
    """The native documents, from ``options.bundle`` or live."""
    if options.bundle is not None:
        from masqctl.cluster.bundle import read_bundle

        return read_bundle(options.bundle)
    if options.azure:
        from masqctl.cluster.live.azure import check_azure_options

        check_azure_options(options)  # contradictory Azure flags fail before anything is read
    from masqctl.cluster.live.kube import gather_kube

    raw = gather_kube(options, progress)
    if not options.azure:
        raw.missing[MissingKey.AZURE] = "not gathered (--no-azure)"
    else:
        from masqctl.cluster.live.azure import gather_azure

        gather_azure(options, raw)
    return raw


def gather(options: GatherOptions, progress: Progress | None = None) -> ClusterSnapshot:
    """A snapshot, built from ``gather_raw``."""
    from masqctl.cluster.build import build_snapshot

    snapshot = build_snapshot(gather_raw(options, progress))
    if options.bundle is not None and not options.nodes.all:
        # --nodes means the same on a bundle as live: unknown names (E619) and selectors on a
        # bundle without nodes are refused for every command, not only inspect
        from masqctl.cluster.selection import choose_in_snapshot

        choose_in_snapshot(snapshot, options.nodes)
    return snapshot
