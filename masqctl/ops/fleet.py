"""Several clusters in one run: gather each, and name it.

``gather_clusters(options_list)`` gathers every cluster (``GatherOptions`` each, as
``cli.gathering.GatherFlags.cluster_options`` builds them) one after the other, and returns
``NamedCluster(name, snapshot, options)`` in the order given. A cluster is named by its AKS name
(``aks.json``/``az aks show``, or ``cluster`` in a bundle's manifest), else by its kubeconfig
context, else by its bundle's folder name. Two clusters under one name are refused (E405): every
answer about a fleet names clusters, so the names must tell them apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Sequence

from masqctl.cluster.gather import gather
from masqctl.cluster.model import ClusterSnapshot
from masqctl.cluster.options import GatherOptions, Progress
from masqctl.errors import MasqctlError, UsageError

E_SAME_NAME = "E405"     # two clusters of one run have the same name


@dataclass(frozen=True)
class NamedCluster:
    name: str
    snapshot: ClusterSnapshot
    options: GatherOptions | None = None


def bundle_name(path: str) -> str:
    """A bundle's folder name: ``case-1/spoke1/`` → ``spoke1``, ``hub.tar.gz`` → ``hub``."""
    base = os.path.basename(os.path.normpath(os.fspath(path))) or os.fspath(path)
    for ext in (".tar.gz", ".tgz", ".tar"):
        if base.endswith(ext) and len(base) > len(ext):
            return base[:-len(ext)]
    return base


def cluster_name(snapshot: ClusterSnapshot, options: GatherOptions | None = None) -> str:
    """The AKS name, else the context (live), else the bundle's folder name, else the source."""
    if snapshot.cluster_name:
        return snapshot.cluster_name
    source = snapshot.source or ""
    if source.startswith("context "):
        return source[len("context "):]
    if options is not None and options.context:
        return options.context
    if options is not None and options.bundle:
        return bundle_name(options.bundle)
    if source.startswith("bundle "):
        return bundle_name(source[len("bundle "):])
    return source or "cluster"


def check_names(clusters: Sequence[NamedCluster]) -> None:
    """E405 when two clusters share a name (the same bundle twice, or two clusters named alike)."""
    seen: dict[str, NamedCluster] = {}
    for c in clusters:
        first = seen.get(c.name)
        if first is not None:
            raise UsageError(f"two clusters are named {c.name!r}: {first.snapshot.source} and {c.snapshot.source}; "
                              "every fleet answer names its clusters, so they must differ",
                              input=c.snapshot.source, code=E_SAME_NAME,
                              hint="name each cluster once (the same bundle or context given twice?); a bundle "
                                   "without aks.json is named by its folder, so rename one folder")
        seen[c.name] = c


def _name_the_bundle(exc: MasqctlError, options: GatherOptions) -> None:
    """With several bundles, a bundle file's error (``nodes.yaml line 1``) says which bundle it is
    in: ``BUNDLE: nodes.yaml line 1``, as a tarball member's error already does. Flags and inputs
    that already name the bundle are left as they are."""
    bundle = os.fspath(options.bundle) if options.bundle is not None else None
    where = exc.input
    if not bundle or not where or where.startswith("-") or bundle in where:
        return
    exc.input = f"{bundle}: {where}"


def gather_clusters(options_list: Sequence[GatherOptions], progress: Progress | None = None, *,
                    prepare: Callable[[ClusterSnapshot, GatherOptions], ClusterSnapshot] | None = None,
                    ) -> list[NamedCluster]:
    """Gather every cluster in ``options_list`` in turn and name it; E405 for two of one name.
    ``prepare(snapshot, options)`` may adjust each snapshot (``ops.inspect.without_azure``)."""
    out: list[NamedCluster] = []
    for options in options_list:
        try:
            snapshot = gather(options, progress)
        except MasqctlError as exc:
            if len(options_list) > 1:
                _name_the_bundle(exc, options)
            raise
        if prepare is not None:
            snapshot = prepare(snapshot, options)
        out.append(NamedCluster(cluster_name(snapshot, options), snapshot, options))
    check_names(out)
    return out


__all__ = ["NamedCluster", "bundle_name", "check_names", "cluster_name", "gather_clusters"]
