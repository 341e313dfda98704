"""The native documents a snapshot is built from, before any interpretation.

Live gathering and bundles meet here: the Kubernetes gatherer returns the API objects as the
JSON the API server sends (the shape ``kubectl get -o yaml`` prints), the Azure gatherer returns
``az aks show`` / ``az network vnet show`` shaped JSON, and a bundle directory holds exactly
these documents in files. ``masqctl.cluster.build.build_snapshot`` turns a ``RawCluster`` into a
``ClusterSnapshot``; ``masqctl.cluster.bundle`` reads and writes it. So ``collect`` → load gives
the same snapshot as gathering live.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masqctl.cluster.model import NodeCapture

# Bundle file names (design.md, "Bundle directory").
CONFIGMAPS_FILE = "configmaps.yaml"
DAEMONSETS_FILE = "daemonsets.yaml"
PODS_FILE = "pods.yaml"
NODES_FILE = "nodes.yaml"
SERVICES_FILE = "services.yaml"                # kubectl get svc -A -o yaml (optional)
ENDPOINTSLICES_FILE = "endpointslices.yaml"    # kubectl get endpointslices -A -o yaml (optional)
AKS_FILE = "aks.json"
VNETS_DIR = "vnets"
NODES_DIR = "nodes"
IPTABLES_FILE = "iptables-save.txt"
IP6TABLES_FILE = "ip6tables-save.txt"
IP_ADDR_FILE = "ip-addr.txt"
CONNTRACK_FILE = "conntrack.txt"   # optional: /proc/net/nf_conntrack or conntrack -L
MANIFEST_FILE = "manifest.json"


@dataclass
class RawCluster:
    """Native documents of one cluster. ``None`` lists were not gathered (reason in ``missing``).

    ``origin`` names each document for error messages: a bundle uses file names
    (``configmaps.yaml``), live gathering the API (``the Kubernetes API (context aks-1)``).
    """

    configmaps: list[dict] | None = None       # ConfigMap objects (kube-system, plus others of interest)
    daemonsets: list[dict] | None = None       # DaemonSet objects
    pods: list[dict] | None = None             # Pod objects
    nodes: list[dict] | None = None            # Node objects
    services: list[dict] | None = None         # Service objects (all namespaces)
    endpointslices: list[dict] | None = None   # discovery.k8s.io/v1 EndpointSlice objects (all namespaces)
    aks: dict | None = None                    # `az aks show` JSON
    vnets: dict[str, dict] = field(default_factory=dict)   # file stem → `az network vnet show` JSON
    captures: dict[str, NodeCapture] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)    # document kind → where it came from
    source: str = ""                           # "bundle DIR" | "context NAME"
    namespace: str = "kube-system"
