"""Gather a snapshot: from a bundle, or live from Kubernetes (and Azure when asked and possible).

The live gatherers (``cluster.live``) are imported inside ``gather_raw``, on the live path only:
a bundle run never loads the Kubernetes and Azure machinery.
"""

from __future__ import annotations

from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle
from masqctl.cluster.model import ClusterSnapshot, MissingKey
from masqctl.cluster.options import GatherOptions, Progress
from masqctl.cluster.raw import RawCluster
from masqctl.cluster.selection import choose_in_snapshot


def gather_raw(options: GatherOptions, progress: Progress | None = None) -> RawCluster:
    """The native documents, from ``options.bundle`` or live."""
    if options.bundle is not None:
        return read_bundle(options.bundle)
    # the live path: its modules load here, not when a bundle is read
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
    snapshot = build_snapshot(gather_raw(options, progress))
    if options.bundle is not None and not options.nodes.all:
        # --nodes means the same on a bundle as live: unknown names (E619) and selectors on a
        # bundle without nodes are refused for every command, not only inspect
        choose_in_snapshot(snapshot, options.nodes)
    return snapshot
