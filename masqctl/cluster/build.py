"""``RawCluster`` (native documents) → ``ClusterSnapshot`` (the model every analysis reads).

The same function serves live gathering and bundles, so a bundle written by ``collect`` and
read back gives the same snapshot as the live cluster did.

What goes in:

* ConfigMaps: every ConfigMap read (any namespace) whose name contains ``masq``, or which has
  a data key starting with ``ip-masq``, or which an agent DaemonSet projects.
* DaemonSets: those running a masquerade agent (``masqctl.cluster.recognise``), with their
  ConfigMap mounts and projection items exactly as written.
* Agent pods: pods owned by an agent DaemonSet (owner reference) or matching its selector.
* Workload pods: every pod with an IP (so addresses and ``namespace/pod`` resolve to nodes).
* Services and EndpointSlices of every namespace (``cluster.serviceobjects``), None when they
  were not gathered (an older bundle): what needs them says so from ``missing``.
* Nodes, node captures and Azure facts as gathered. The backend of a capture that does not say
  is read from the dump's header (``masqctl.cluster.dumpheader.detect_backend``).

A missing piece is never guessed: it stays empty and ``snapshot.missing`` says why.
"""

from __future__ import annotations

from dataclasses import replace

from masqctl.cluster import azureobjects, kubeobjects, serviceobjects
from masqctl.cluster.dumpheader import detect_backend
from masqctl.cluster.model import (
    AgentDaemonSet,
    ClusterSnapshot,
    ConfigMap,
    MissingKey,
    NodeCapture,
)
from masqctl.cluster.raw import (
    AKS_FILE,
    CONFIGMAPS_FILE,
    DAEMONSETS_FILE,
    ENDPOINTSLICES_FILE,
    NODES_FILE,
    PODS_FILE,
    SERVICES_FILE,
    VNETS_DIR,
    RawCluster,
)

_KUBE = (
    ("configmaps", MissingKey.CONFIGMAPS, CONFIGMAPS_FILE, "ConfigMap"),
    ("daemonsets", MissingKey.DAEMONSETS, DAEMONSETS_FILE, "DaemonSet"),
    ("pods", MissingKey.PODS, PODS_FILE, "Pod"),
    ("nodes", MissingKey.NODES, NODES_FILE, "Node"),
)


def _origin(raw: RawCluster, key: str, default: str) -> str:
    return raw.origin.get(key) or default


def build_snapshot(raw: RawCluster) -> ClusterSnapshot:
    """Interpret ``raw``. Raises ``InputError`` (E322) naming the document and field that has
    the wrong shape; unknown extra fields are ignored."""
    ns = raw.namespace or "kube-system"
    missing = dict(raw.missing)
    docs = {}
    for attr, key, file, kind in _KUBE:
        objects = getattr(raw, attr)
        if objects is None:
            missing.setdefault(key, "not gathered")
            docs[attr] = []
            continue
        docs[attr] = kubeobjects.items(objects, _origin(raw, attr, file), kind)

    all_cms = [kubeobjects.configmap(d, ns) for d in docs["configmaps"]]
    daemonsets: list[AgentDaemonSet] = []
    for d in docs["daemonsets"]:
        ds = kubeobjects.daemonset(d, ns)
        if ds is not None:
            daemonsets.append(ds)
    projected = {(ds.namespace, src.configmap) for ds in daemonsets for m in ds.mounts for src in m.sources}
    configmaps: list[ConfigMap] = [cm for cm in all_cms
                                   if kubeobjects.relates_to_masq(cm) or (cm.namespace, cm.name) in projected]

    agent_pods = []
    workloads = []
    for d in docs["pods"]:
        owner = next((ds for ds in daemonsets if kubeobjects.owned_by(d, ds, ns)), None)
        if owner is not None:
            agent_pods.append(kubeobjects.agent_pod(d, owner, ns))
        w = kubeobjects.workload_pod(d, ns)
        if w is not None:
            workloads.append(w)
    nodes = [kubeobjects.node(d) for d in docs["nodes"]]
    services = endpointslices = None
    if raw.services is None:
        missing.setdefault(MissingKey.SERVICES, "not gathered")
    else:
        services = tuple(serviceobjects.service(d) for d in
                         kubeobjects.items(raw.services, _origin(raw, "services", SERVICES_FILE), "Service"))
    if raw.endpointslices is None:
        missing.setdefault(MissingKey.ENDPOINTSLICES, "not gathered")
    else:
        endpointslices = tuple(serviceobjects.endpointslice(d) for d in kubeobjects.items(
            raw.endpointslices, _origin(raw, "endpointslices", ENDPOINTSLICES_FILE), "EndpointSlice"))

    captures: dict[str, NodeCapture] = {}
    for name, cap in sorted(raw.captures.items()):
        if cap.backend is None and cap.iptables_save:
            backend = detect_backend(cap.iptables_save)
            if backend is not None:
                cap = replace(cap, backend=backend)
        captures[name] = cap
    if not captures:
        missing.setdefault(MissingKey.CAPTURES, "no node captures")

    azure = None
    if raw.aks is not None or raw.vnets:
        origins = {"aks": _origin(raw, "aks", AKS_FILE)}
        for stem in raw.vnets:
            origins[f"vnets/{stem}"] = _origin(raw, f"vnets/{stem}", f"{VNETS_DIR}/{stem}.json")
        azure = azureobjects.azure_facts(raw.aks, raw.vnets, origins)
    if MissingKey.AZURE not in missing:
        if azure is None:
            missing[MissingKey.AZURE] = "no Azure documents (`az aks show`, `az network vnet show`)"
        elif raw.aks is None:
            missing.setdefault(MissingKey.AZURE_CLUSTER, "no `az aks show` document")
        elif not raw.vnets:
            missing.setdefault(MissingKey.AZURE_VNETS, "no `az network vnet show` documents")

    manifest = raw.manifest if isinstance(raw.manifest, dict) else {}
    collected_at = manifest.get("collected_at") if isinstance(manifest.get("collected_at"), str) else None
    cluster_name = azure.cluster.name if azure is not None and azure.cluster is not None else None
    if cluster_name is None and isinstance(manifest.get("cluster"), str):
        cluster_name = manifest["cluster"]

    return ClusterSnapshot(
        source=raw.source,
        collected_at=collected_at,
        namespace=ns,
        cluster_name=cluster_name,
        configmaps=tuple(configmaps),
        daemonsets=tuple(daemonsets),
        pods=tuple(agent_pods),
        workloads=tuple(workloads),
        nodes=tuple(nodes),
        captures=captures,
        azure=azure,
        missing=missing,
        services=services,
        endpointslices=endpointslices,
    )
