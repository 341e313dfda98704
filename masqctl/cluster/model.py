"""The cluster snapshot: everything that decides masquerading, as plain data.

No clients live here. A snapshot is filled either live (``masqctl.cluster.live.kube`` and
``masqctl.cluster.live.azure``) or from a bundle directory (``masqctl.cluster.bundle``); every
analysis reads only this model, so it works the same on both.

Missing evidence is explicit: a piece that could not be gathered is ``None`` and the reason is
recorded in ``ClusterSnapshot.missing`` under a stable key (see ``MissingKey``), or in the
``errors`` of a node capture. Nothing is guessed.

Native shapes are kept where an operator would look for them: ConfigMap data is the raw text
of each key (so config lines can be cited), DaemonSet args are the container's args as
written, Azure prefixes are the strings ARM returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masqctl.cluster.services import EndpointSlice, Service

# --------------------------------------------------------------------------- Kubernetes


@dataclass(frozen=True)
class ConfigMap:
    """One ConfigMap with its raw text per key (``binaryData`` keys are listed, not decoded)."""

    namespace: str
    name: str
    data: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    resource_version: str | None = None
    binary_keys: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class KeyToPath:
    """One ``items`` entry of a ConfigMap volume source: key ``key`` lands as file ``path``."""

    key: str
    path: str
    mode: int | None = None


@dataclass(frozen=True)
class ConfigMapProjection:
    """A ConfigMap that a volume (plain ``configMap`` or one ``projected`` source) puts into a folder.

    ``items`` is ``None`` when the source lists no items: then every key becomes a file of
    the same name. ``optional`` false means the pod does not start while the ConfigMap is
    missing.
    """

    configmap: str
    items: tuple[KeyToPath, ...] | None
    optional: bool = False


@dataclass(frozen=True)
class ConfigMount:
    """A folder of the agent container filled from ConfigMaps (``/etc/config`` on AKS)."""

    volume: str
    mount_path: str
    sub_path: str | None = None
    sources: tuple[ConfigMapProjection, ...] = ()


@dataclass(frozen=True)
class AgentDaemonSet:
    """A DaemonSet that runs (or looks like it runs) a masquerade agent.

    ``kind`` is what the agent was recognised as: ``azure-ip-masq-agent`` (ip-masq-agent-v2),
    ``ip-masq-agent`` (kubernetes-sigs upstream), ``tke``, or ``unknown`` (a container whose
    image, name or volumes look like an ip-masq agent but match none of those). ``flavor`` is
    the engine flavour used to model it (``azure-v2``/``upstream``/``tke``), ``None`` when it
    cannot be modelled.
    """

    namespace: str
    name: str
    kind: str
    flavor: str | None
    container: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    mounts: tuple[ConfigMount, ...] = ()
    selector: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    host_network: bool = False
    desired: int | None = None
    ready: int | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class AgentPod:
    """One pod of an agent DaemonSet, with what an operator checks first."""

    namespace: str
    name: str
    node: str | None
    daemonset: str | None          # owning DaemonSet name, when the pod says so
    phase: str | None
    ready: bool
    restarts: int = 0
    waiting_reason: str | None = None            # e.g. CrashLoopBackOff
    last_termination_reason: str | None = None   # e.g. Error, OOMKilled
    last_termination_message: str | None = None
    last_termination_exit_code: int | None = None
    container: str | None = None
    image: str | None = None
    host_network: bool = False


@dataclass(frozen=True)
class WorkloadPod:
    """Any pod (not only agents): lets ``explain`` resolve ``namespace/pod`` and pod IPs to nodes."""

    namespace: str
    name: str
    node: str | None
    pod_ips: tuple[str, ...] = ()
    host_network: bool = False
    phase: str | None = None
    owner_kind: str | None = None     # the controlling ownerReference (else the first): ReplicaSet, DaemonSet, …
    owner_name: str | None = None

    @property
    def owner(self) -> str | None:
        """``Kind namespace/name`` of the owner, None when the pod has no ownerReferences."""
        if not self.owner_kind or not self.owner_name:
            return None
        return f"{self.owner_kind} {self.namespace}/{self.owner_name}"


@dataclass(frozen=True)
class Node:
    name: str
    internal_ip: str | None
    addresses: tuple[tuple[str, str], ...] = ()   # (type, address) as in status.addresses
    pod_cidrs: tuple[str, ...] = ()
    os: str | None = None                          # kubernetes.io/os label or nodeInfo.operatingSystem
    ready: bool | None = None
    labels: dict[str, str] = field(default_factory=dict)
    provider_id: str | None = None


@dataclass(frozen=True)
class NodeCapture:
    """What was read on one node. ``None`` fields were not captured; ``errors`` says why.

    ``errors`` maps the piece (``iptables-save``, ``ip6tables-save``, ``ip-addr``, ``conntrack``,
    or ``node`` for the whole capture) to the reason. ``conntrack`` is the node's connection
    tracking table as text (``/proc/net/nf_conntrack`` or ``conntrack -L``), read only when asked
    for (``collect --conntrack``, a bundle's ``conntrack.txt``). ``backend`` is ``nft``, ``legacy``,
    ``mixed`` (tables in both) or ``None`` when unknown. ``via`` is how it was captured:
    ``agent-pod/<name>``, ``debug-pod/<name>`` or ``bundle``.
    """

    node: str
    iptables_save: str | None = None
    ip6tables_save: str | None = None
    ip_addr: str | None = None
    conntrack: str | None = None
    backend: str | None = None
    captured_at: str | None = None    # RFC 3339 UTC
    via: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- Azure


@dataclass(frozen=True)
class NetworkProfile:
    """``ManagedCluster.network_profile``; enum values as ARM returned them (compare case-insensitively)."""

    network_plugin: str | None = None          # azure | kubenet | none
    network_plugin_mode: str | None = None     # overlay | None
    network_dataplane: str | None = None       # azure | cilium
    network_policy: str | None = None          # none | calico | azure | cilium
    network_mode: str | None = None            # transparent | bridge
    pod_cidrs: tuple[str, ...] = ()
    service_cidrs: tuple[str, ...] = ()
    dns_service_ip: str | None = None
    ip_families: tuple[str, ...] = ()
    outbound_type: str | None = None
    acceleration_mode: str | None = None       # advancedNetworking.performance.accelerationMode


@dataclass(frozen=True)
class AgentPool:
    name: str
    os_type: str | None = None
    mode: str | None = None
    count: int | None = None
    vnet_subnet_id: str | None = None
    pod_subnet_id: str | None = None
    pod_ip_allocation_mode: str | None = None


@dataclass(frozen=True)
class ManagedCluster:
    id: str | None
    name: str
    resource_group: str | None
    location: str | None = None
    node_resource_group: str | None = None
    kubernetes_version: str | None = None
    network_profile: NetworkProfile = field(default_factory=NetworkProfile)
    agent_pools: tuple[AgentPool, ...] = ()


@dataclass(frozen=True)
class Subnet:
    name: str
    id: str | None = None
    prefixes: tuple[str, ...] = ()             # union of addressPrefix and addressPrefixes
    delegations: tuple[str, ...] = ()          # service names, e.g. Microsoft.ContainerService/managedClusters


@dataclass(frozen=True)
class Peering:
    name: str
    remote_vnet_id: str | None = None
    state: str | None = None                   # Initiated | Connected | Disconnected
    sync_level: str | None = None              # FullyInSync | LocalNotInSync | RemoteNotInSync | LocalAndRemoteNotInSync
    remote_address_space: tuple[str, ...] = ()          # what is routed over the peering
    remote_vnet_address_space: tuple[str, ...] = ()     # the remote VNet's current space
    allow_forwarded_traffic: bool | None = None
    allow_gateway_transit: bool | None = None
    use_remote_gateways: bool | None = None
    peer_complete_vnets: bool | None = None
    local_subnet_names: tuple[str, ...] = ()
    remote_subnet_names: tuple[str, ...] = ()

    @property
    def remote_vnet_name(self) -> str | None:
        if not self.remote_vnet_id:
            return None
        return self.remote_vnet_id.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class VirtualNetwork:
    id: str | None
    name: str
    resource_group: str | None = None
    address_prefixes: tuple[str, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    peerings: tuple[Peering, ...] = ()
    managed: bool | None = None    # True: AKS-managed (found in the node resource group); False: BYO


@dataclass(frozen=True)
class AzureFacts:
    """What ARM says about the cluster and its networks. ``cluster`` None: see ``missing``."""

    subscription: str | None = None
    cluster: ManagedCluster | None = None
    vnets: tuple[VirtualNetwork, ...] = ()


# --------------------------------------------------------------------------- the snapshot


class MissingKey:
    """Stable keys of ``ClusterSnapshot.missing`` (an analysis names these when it cannot decide)."""

    CONFIGMAPS = "configmaps"
    DAEMONSETS = "daemonsets"
    PODS = "pods"
    NODES = "nodes"
    AZURE = "azure"                 # no Azure facts at all (no flags, no credentials, --no-azure)
    AZURE_CLUSTER = "azure.cluster"
    AZURE_VNETS = "azure.vnets"
    CAPTURES = "captures"           # no node captures at all
    SERVICES = "services"           # Services not gathered (old bundle, no permission)
    ENDPOINTSLICES = "endpointslices"


@dataclass(frozen=True)
class ClusterSnapshot:
    """One cluster's masquerade-relevant state at one time.

    ``configmaps`` holds the ConfigMaps that relate to a masquerade agent (by name, by data
    key, or because an agent DaemonSet projects them), from every namespace that was read.
    ``captures`` is keyed by node name. ``missing`` maps a ``MissingKey`` (or a finer key,
    such as ``azure.vnets/<name>``) to the reason it is absent. ``services`` and
    ``endpointslices`` (``cluster.services``) are None when they were not gathered (an older
    bundle, a missing permission; the reason under ``MissingKey.SERVICES``/``ENDPOINTSLICES``).
    """

    source: str                                   # "bundle <dir>" or "context <name>"
    collected_at: str | None = None               # RFC 3339 UTC
    namespace: str = "kube-system"
    cluster_name: str | None = None
    configmaps: tuple[ConfigMap, ...] = ()
    daemonsets: tuple[AgentDaemonSet, ...] = ()
    pods: tuple[AgentPod, ...] = ()          # agent pods only
    workloads: tuple[WorkloadPod, ...] = ()
    nodes: tuple[Node, ...] = ()
    captures: dict[str, NodeCapture] = field(default_factory=dict)
    azure: AzureFacts | None = None
    missing: dict[str, str] = field(default_factory=dict)
    services: tuple[Service, ...] | None = None
    endpointslices: tuple[EndpointSlice, ...] | None = None

    def configmap(self, name: str, namespace: str | None = None) -> ConfigMap | None:
        ns = namespace or self.namespace
        for cm in self.configmaps:
            if cm.name == name and cm.namespace == ns:
                return cm
        return None

    def node(self, name: str) -> Node | None:
        for n in self.nodes:
            if n.name == name:
                return n
        return None

    def unlisted_captures(self) -> tuple[str, ...]:
        """Nodes with a capture that the Node objects do not list (a node renamed or deleted since,
        or a bundle put together by hand); empty when no Node objects were read. Each is still a
        node of the snapshot: its capture is evidence, only its labels and addresses are unknown."""
        if not self.nodes:
            return ()
        listed = {n.name for n in self.nodes}
        return tuple(sorted(n for n in self.captures if n not in listed))

    def uncaptured_nodes(self) -> tuple[str, ...]:
        """Listed Linux nodes without any capture, when at least one node was captured."""
        if not self.captures:
            return ()
        return tuple(sorted(n.name for n in self.nodes if n.name not in self.captures
                            and (n.os or "linux").lower() == "linux"))

    def pods_on(self, node: str) -> list[AgentPod]:
        return [p for p in self.pods if p.node == node]
