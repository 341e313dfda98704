"""Who masquerades pod traffic in this cluster, and on what evidence.

The answer follows the table "Which engine does the masquerading on AKS" (docs/agent-semantics.md):

| name                        | snat_by           | agent decides | pod IPs routable outside |
|-----------------------------|-------------------|---------------|--------------------------|
| kubenet                     | iptables-agent    | yes           | no                       |
| azure-cni-node-subnet       | iptables-agent    | yes           | yes                      |
| azure-cni-overlay           | iptables-agent    | yes           | no                       |
| cilium-overlay              | iptables-agent    | yes           | no                       |
| cilium-ebpf-host-routing    | cilium-bpf        | no (merger)   | no                       |
| azure-cni-pod-subnet        | swift-postrouting | no            | yes                      |
| calico (kubenet + Calico)   | cni               | no            | no                       |
| byo-cni                     | cni               | no            | depends                  |

Two kinds of evidence: the AKS network profile (``networkPlugin``, ``networkPluginMode``,
``networkDataplane``, ``networkPolicy``, ``advancedNetworking…accelerationMode``, the agent
pools' ``podSubnetId``) and what the nodes show (nat chains in their ``iptables-save``, node
labels AKS sets, the pods that run). The profile decides when present; node evidence confirms it
or is recorded as a conflict in ``notes``. Without the profile, node evidence decides when it is
specific; otherwise the answer is ``unknown`` and ``missing`` names what would decide it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from masqctl.analysis.cilium import cilium_facts
from masqctl.analysis.dumpfacts import (AGENT_CHAIN, CALICO_CHAIN, SWIFT_CHAIN, dump_signs)
from masqctl.analysis.nodedumps import NodeDumps
from masqctl.analysis.nftfacts import CALICO as CALICO_NFT, masquerading_owners
from masqctl.cluster.model import AgentPool, ClusterSnapshot, MissingKey, NetworkProfile
from masqctl.netfilter.dump import DumpError, parse_dump
from masqctl.netfilter.facts import FactError, parse_ip_addr

KUBENET = "kubenet"
NODE_SUBNET = "azure-cni-node-subnet"
OVERLAY = "azure-cni-overlay"
CILIUM_OVERLAY = "cilium-overlay"
CILIUM_EBPF = "cilium-ebpf-host-routing"
POD_SUBNET = "azure-cni-pod-subnet"
BYO_CNI = "byo-cni"
CALICO = "calico"
UNKNOWN = "unknown"

NAMES = (KUBENET, NODE_SUBNET, OVERLAY, CILIUM_OVERLAY, CILIUM_EBPF, POD_SUBNET, BYO_CNI, CALICO, UNKNOWN)

AGENT = "iptables-agent"
CILIUM_BPF = "cilium-bpf"
SWIFT = "swift-postrouting"
CNI = "cni"

# node labels AKS sets (field captures and AKS/ACN sources)
LABEL_AGENTPOOL = ("kubernetes.azure.com/agentpool", "agentpool")
LABEL_EBPF_HOST_ROUTING = "kubernetes.azure.com/ebpf-host-routing"
LABEL_EBPF_DATAPLANE = "kubernetes.azure.com/ebpf-dataplane"
LABEL_OVERLAY = "kubernetes.azure.com/azure-cni-overlay"
LABEL_PODNETWORK_TYPE = "kubernetes.azure.com/podnetwork-type"     # overlay | vnet | vnetblock
LABEL_NETWORK_SUBNET = "kubernetes.azure.com/network-subnet"
LABEL_NETWORK_NAME = "kubernetes.azure.com/network-name"
LABEL_PODNETWORK_SUBNET = "kubernetes.azure.com/podnetwork-subnet"


# what each mode means, per the table
_TABLE = {
    KUBENET: (AGENT, True, False),
    NODE_SUBNET: (AGENT, True, True),
    OVERLAY: (AGENT, True, False),
    CILIUM_OVERLAY: (AGENT, True, False),
    CILIUM_EBPF: (CILIUM_BPF, False, False),
    POD_SUBNET: (SWIFT, False, True),
    CALICO: (CNI, False, False),
    BYO_CNI: (CNI, False, None),
}

PROFILE_MISSING = ("the AKS network profile (Azure facts: --subscription/-g/--cluster live, or aks.json in "
                   "the bundle)")
CAPTURES_MISSING = "node captures (iptables-save of the nodes)"


@dataclass(frozen=True)
class MasqMode:
    """Who masquerades pod traffic. ``None`` answers mean "cannot tell"; ``missing`` says why."""

    name: str
    snat_by: str
    agent_decides: bool | None
    pod_ips_routable_outside: bool | None
    evidence: tuple[str, ...]
    missing: tuple[str, ...]
    notes: tuple[str, ...] = ()              # conflicts between profile and nodes, caveats
    decided_by: str = "none"                 # "profile" | "nodes" | "profile+nodes" | "none"
    node: str | None = None                  # the node this answer is about (None: the cluster)

    @property
    def user_config_matters(self) -> bool | None:
        """Whether the user ConfigMap azure-ip-masq-agent-config changes masquerading."""
        if self.snat_by == CILIUM_BPF and self.name == POD_SUBNET:
            return False            # Cilium reads the AKS-owned azure-dns-imds-ip-masq-agent-config only
        if self.snat_by in (AGENT, CILIUM_BPF) and self.name != POD_SUBNET:
            return True
        if self.snat_by in (SWIFT, CNI):
            return False
        return None

    @property
    def pod_cidr_is_cluster_only(self) -> bool | None:
        """Pod IPs come from a range only the cluster routes (kubenet, overlay)."""
        if self.name in (KUBENET, OVERLAY, CILIUM_OVERLAY, CILIUM_EBPF, CALICO):
            return True
        if self.name in (NODE_SUBNET, POD_SUBNET):
            return False
        return None

    def describe(self) -> str:
        if self.name == UNKNOWN and self.snat_by == "unknown":
            return "network mode unknown: " + ("; ".join(self.missing) or "no evidence")
        who = {AGENT: "the iptables agent (chain IP-MASQ-AGENT)",
               CILIUM_BPF: "Cilium's BPF masquerade (the agent's iptables rules are bypassed)",
               SWIFT: "nobody in general: SWIFT-POSTROUTING SNATs only Azure DNS and IMDS",
               CNI: "the CNI plugin", "unknown": "an engine that cannot be told from the evidence"}[self.snat_by]
        return f"{self.name}: pod traffic is masqueraded by {who}"

    def to_dict(self) -> dict:
        return {"name": self.name, "snat_by": self.snat_by, "agent_decides": self.agent_decides,
                "pod_ips_routable_outside": self.pod_ips_routable_outside,
                "user_config_matters": self.user_config_matters, "decided_by": self.decided_by,
                "node": self.node, "evidence": list(self.evidence), "missing": list(self.missing),
                "notes": list(self.notes)}


# --------------------------------------------------------------------------- node evidence

@dataclass
class NodeSigns:
    """What one node shows about the masquerading engine."""

    node: str
    chains: set = field(default_factory=set)       # nat chains present (declared or with rules)
    agent_jump: bool = False                       # POSTROUTING jumps to IP-MASQ-AGENT
    swift_rules: bool = False                      # SWIFT-POSTROUTING has rules
    calico_masq: bool = False                      # cali-nat-outgoing has a MASQUERADE rule
    calico_nft: bool = False                       # Calico's nftables table (ip calico) masquerades
    cilium_post_nat: bool | None = None            # CILIUM_POST_nat: None absent/not known, False empty, True rules
    captured: bool = False                         # the capture shows (some of) the nat table
    unreadable: str | None = None
    no_nat: str | None = None                      # the capture shows nothing of nat: why
    post_whole: bool = True                        # every nat POSTROUTING rule is shown (absence is evidence)
    limit: str | None = None                       # what limits the capture (grep excerpt, cut short, …)
    labels: dict = field(default_factory=dict)
    has_pod_cidr: bool = False
    bridge_cbr0: bool = False                      # kubenet's bridge in ip -o addr


def node_signs(snapshot: ClusterSnapshot, node: str, dumps=None) -> NodeSigns:
    """What ``node`` shows. ``dumps`` (``masqctl.analysis.nodedumps.NodeDumps``) parses each distinct
    capture once and indexes the nodes; without it the node's dump is parsed here."""
    signs = NodeSigns(node)
    n = dumps.node(node) if dumps is not None else snapshot.node(node)
    if n is not None:
        signs.labels = dict(n.labels)
        signs.has_pod_cidr = bool(n.pod_cidrs)
    cap = snapshot.captures.get(node)
    if cap is None:
        return signs
    # Calico's nftables dataplane: the same natOutgoing as cali-nat-outgoing, in `table ip calico`
    signs.calico_nft = CALICO_NFT in masquerading_owners(cap)
    if cap.ip_addr:
        signs.bridge_cbr0 = any(line.split()[1:2] == ["cbr0"] for line in cap.ip_addr.splitlines()
                                if len(line.split()) > 1)
    if not cap.holds("iptables_save"):
        return signs
    try:
        if dumps is not None:
            found = dumps.signs(node)
        else:
            found = dump_signs(parse_dump(cap.iptables_save, f"nodes/{node}/iptables-save.txt"))
    except DumpError as exc:
        signs.unreadable = "it holds no chains or rules" if exc.kind == "empty" else f"line {exc.lineno}: {exc.message}"
        return signs
    if found.no_nat is not None:
        signs.no_nat = found.no_nat       # nothing is known about nat there: not a node without a jump
        return signs
    signs.captured = True
    signs.post_whole = found.post_whole
    signs.limit = found.limit
    signs.chains = set(found.chains)
    signs.agent_jump = found.agent_jump
    signs.swift_rules = found.swift_rules
    signs.calico_masq = found.calico_masq
    signs.cilium_post_nat = found.cilium_post_nat
    return signs


def _label(labels: dict, key: str) -> str | None:
    value = labels.get(key)
    return value.lower() if isinstance(value, str) else None


def node_pool(snapshot: ClusterSnapshot, node: str) -> str | None:
    n = snapshot.node(node)
    if n is None:
        return None
    for key in LABEL_AGENTPOOL:
        if n.labels.get(key):
            return n.labels[key]
    return None


# --------------------------------------------------------------------------- detection

def _low(value: str | None) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _from_profile(np: NetworkProfile, pools: tuple[AgentPool, ...], where: str, scope: str) \
        -> tuple[str, list[str], list[str], list[str]]:
    """(name, evidence, notes, missing) from the network profile."""
    ev: list[str] = []
    notes: list[str] = []
    missing: list[str] = []
    plugin, mode = _low(np.network_plugin), _low(np.network_plugin_mode)
    dataplane, policy = _low(np.network_dataplane), _low(np.network_policy)
    accel = _low(np.acceleration_mode)
    if plugin is None:
        return UNKNOWN, ev, notes, [f"{where} networkProfile.networkPlugin"]
    ev.append(f"{where} networkProfile.networkPlugin={np.network_plugin}")
    if plugin == "kubenet":
        if policy == "calico":
            ev.append(f"{where} networkProfile.networkPolicy={np.network_policy}")
            return CALICO, ev, notes, missing
        return KUBENET, ev, notes, missing
    if plugin == "none":
        if mode:
            ev.append(f"{where} networkProfile.networkPluginMode={np.network_plugin_mode}")
        return BYO_CNI, ev, notes, missing
    if plugin != "azure":
        notes.append(f"network plugin {np.network_plugin!r} is not one masqctl knows")
        return UNKNOWN, ev, notes, missing
    if mode:
        ev.append(f"{where} networkProfile.networkPluginMode={np.network_plugin_mode}")
    if dataplane:
        ev.append(f"{where} networkProfile.networkDataplane={np.network_dataplane}")
    with_pod_subnet = [p for p in pools if p.pod_subnet_id]
    without = [p for p in pools if not p.pod_subnet_id]
    if with_pod_subnet and mode != "overlay":
        names = ", ".join(p.name for p in with_pod_subnet)
        ev.append(f"{where} agent pool(s) {names} podSubnetId set")
        if without:
            notes.append(f"agent pools differ: {names} use a pod subnet, "
                         f"{', '.join(p.name for p in without)} do not — {scope}")
            if scope == "cluster":
                return UNKNOWN, ev, notes, missing
        if dataplane == "cilium" and accel == "bpfveth":
            ev.append(f"{where} networkProfile.advancedNetworking.performance.accelerationMode={np.acceleration_mode}")
            notes.append("Cilium eBPF host routing with a pod subnet: Cilium's BPF masquerade SNATs only Azure DNS "
                         "and IMDS, from the AKS-owned azure-dns-imds-ip-masq-agent-config (the user ConfigMap is "
                         "not read)")
        return POD_SUBNET, ev, notes, missing
    if mode == "overlay":
        if dataplane == "cilium":
            if accel == "bpfveth":
                ev.append(f"{where} networkProfile.advancedNetworking.performance.accelerationMode="
                          f"{np.acceleration_mode}")
                return CILIUM_EBPF, ev, notes, missing
            ev.append(f"{where} accelerationMode={np.acceleration_mode or 'not set'} (no eBPF host routing)")
            return CILIUM_OVERLAY, ev, notes, missing
        return OVERLAY, ev, notes, missing
    if mode is not None:
        notes.append(f"network plugin mode {np.network_plugin_mode!r} is not one masqctl knows")
        return UNKNOWN, ev, notes, missing
    if pools and not with_pod_subnet:
        ev.append(f"{where} no agent pool has podSubnetId")
    elif not pools:
        missing.append(f"{where} agentPoolProfiles (a pod subnet would change the answer)")
    if dataplane == "cilium":
        notes.append("Cilium with node subnet: who masquerades is not verified from public sources (Cilium may "
                     "use its own ip-masq config)")
        return NODE_SUBNET, ev, notes, missing
    if policy == "calico":
        ev.append(f"{where} networkProfile.networkPolicy={np.network_policy}")
        notes.append("Calico network policy with Azure CNI: Calico's natOutgoing (cali-nat-outgoing) may "
                     "masquerade before the agent; a node capture shows whether it does")
    return NODE_SUBNET, ev, notes, missing


def _from_nodes(signs: list[NodeSigns], snapshot: ClusterSnapshot, dumps=None) \
        -> tuple[str, list[str], list[str], list[str]]:
    """(name, evidence, notes, missing) from node captures, labels and pods alone."""
    ev: list[str] = []
    notes: list[str] = []
    missing: list[str] = []

    def nodes_with(pred) -> list[str]:
        return [s.node for s in signs if pred(s)]

    def cite(names: list[str], what: str) -> str:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return f"node{'s' if len(names) > 1 else ''} {shown} {what}"

    ebpf = nodes_with(lambda s: _label(s.labels, LABEL_EBPF_HOST_ROUTING) == "true")
    swift = nodes_with(lambda s: s.swift_rules)
    vnet_pods = nodes_with(lambda s: _label(s.labels, LABEL_PODNETWORK_TYPE) in ("vnet", "vnetblock"))
    calico = nodes_with(lambda s: s.calico_masq)
    calico_nft = nodes_with(lambda s: s.calico_nft and not s.calico_masq)
    agent = nodes_with(lambda s: s.agent_jump)
    overlay = nodes_with(lambda s: _label(s.labels, LABEL_OVERLAY) == "true"
                         or _label(s.labels, LABEL_PODNETWORK_TYPE) == "overlay")
    cilium_nodes = nodes_with(lambda s: _label(s.labels, LABEL_EBPF_DATAPLANE) == "cilium")
    cilium_pods = [p for p in snapshot.workloads if p.namespace == "kube-system" and p.name.startswith("cilium-")
                   and not p.name.startswith("cilium-operator")]
    cbr0 = nodes_with(lambda s: s.bridge_cbr0)
    with_cidr = nodes_with(lambda s: s.has_pod_cidr)

    if swift or vnet_pods:
        if swift:
            ev.append(cite(swift, f"{'have' if len(swift) > 1 else 'has'} chain {SWIFT_CHAIN} (CNS pod-subnet SNAT)"))
        if vnet_pods:
            ev.append(cite(vnet_pods, f"labelled {LABEL_PODNETWORK_TYPE}=vnet/vnetblock"))
        return POD_SUBNET, ev, notes, missing
    if ebpf:
        ev.append(cite(ebpf, f"labelled {LABEL_EBPF_HOST_ROUTING}=true"))
        return CILIUM_EBPF, ev, notes, missing
    if calico or calico_nft:
        if calico:
            ev.append(cite(calico, f"{'have' if len(calico) > 1 else 'has'} {CALICO_CHAIN} with a MASQUERADE rule"))
        if calico_nft:
            ev.append(cite(calico_nft, f"{'have' if len(calico_nft) > 1 else 'has'} Calico's nftables table ip "
                           "calico with a masquerade at postrouting (nft-ruleset)"))
        if agent:
            ev.append(cite(agent, f"also jump{'' if len(agent) > 1 else 's'} to {AGENT_CHAIN} from POSTROUTING"))
            notes.append("both Calico's natOutgoing and the agent's chain are in nat POSTROUTING: the first to "
                         "match decides (explain walks them in order)")
        return CALICO, ev, notes, missing
    if not agent:
        whole = [s for s in signs if s.captured and s.post_whole]
        partial = [s for s in signs if s.captured and not s.post_whole]
        if whole:
            ev.append("no captured node jumps to IP-MASQ-AGENT, SWIFT-POSTROUTING or cali-nat-outgoing"
                      + (" (of those whose nat POSTROUTING is shown whole)" if partial else ""))
        notes += _partial_notes(partial, "no jump to IP-MASQ-AGENT, SWIFT-POSTROUTING or cali-nat-outgoing is "
                                "shown, which does not prove there is none")
        if whole or partial:
            missing.append(PROFILE_MISSING)
        return UNKNOWN, ev, notes, missing
    ev.append(cite(agent, f"jump{'' if len(agent) > 1 else 's'} to {AGENT_CHAIN} from nat POSTROUTING"))
    if overlay:
        ev.append(cite(overlay, f"labelled {LABEL_OVERLAY}=true / {LABEL_PODNETWORK_TYPE}=overlay"))
        if cilium_nodes or cilium_pods:
            ev.append(cite(cilium_nodes, f"labelled {LABEL_EBPF_DATAPLANE}=cilium") if cilium_nodes
                      else f"Cilium pods run ({cilium_pods[0].name}…)")
            ev.append(f"no node is labelled {LABEL_EBPF_HOST_ROUTING}=true")
            return CILIUM_OVERLAY, ev, notes, missing
        return OVERLAY, ev, notes, missing
    if cbr0:
        ev.append(cite(cbr0, ("have" if len(cbr0) > 1 else "has") + " kubenet's bridge cbr0"))
        return KUBENET, ev, notes, missing
    if with_cidr:
        ev.append(cite(with_cidr, ("have" if len(with_cidr) > 1 else "has")
                       + " spec.podCIDR (a cluster-only pod range: kubenet or overlay)"))
        missing.append(PROFILE_MISSING + " to tell kubenet from overlay")
        return UNKNOWN, ev, notes, missing
    inside = _pods_in_node_subnet(snapshot, signs, dumps)
    if inside:
        ev.append(inside)
        return NODE_SUBNET, ev, notes, missing
    missing.append(PROFILE_MISSING + " (or the nodes' ip -o addr, to see whether pod IPs are in the node subnet)")
    return UNKNOWN, ev, notes, missing


def _partial_notes(signs: list[NodeSigns], what: str) -> list[str]:
    """One note per kind of partial capture: which nodes, what limits their captures, ``what``."""
    by: dict[str, list[str]] = {}
    for s in signs:
        by.setdefault(s.limit or "the capture does not show all of nat POSTROUTING", []).append(s.node)
    return [f"node{'s' if len(ns) > 1 else ''} {_shown(ns)}: {limit}: {what}" for limit, ns in by.items()]


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _pods_in_node_subnet(snapshot: ClusterSnapshot, signs: list[NodeSigns], dumps=None) -> str | None:
    """Evidence that pod IPs are addresses of the node's own subnet (Azure CNI node subnet)."""
    index = dumps if dumps is not None else NodeDumps(snapshot, share=False)   # no scan of every pod per node
    for s in signs:
        cap = snapshot.captures.get(s.node)
        n = index.node(s.node)
        if cap is None or not cap.ip_addr or n is None or not n.internal_ip:
            continue
        try:
            addrs = parse_ip_addr(cap.ip_addr)
        except FactError:
            continue
        try:
            node_ip = ipaddress.ip_address(n.internal_ip)
        except ValueError:
            continue
        nets = [a.network for a in addrs if a.ip == node_ip and a.network is not None]
        if not nets:
            continue
        pods = [p for p in index.workloads_on(s.node) if not p.host_network and p.pod_ips]
        inside = [p for p in pods if any(ipaddress.ip_address(ip) in nets[0] for ip in p.pod_ips
                                         if _is_ip(ip) and ipaddress.ip_address(ip).version == nets[0].version)]
        if pods and len(inside) == len(pods):
            return (f"the pod IPs on node {s.node} ({len(pods)} pods) are in its own subnet {nets[0]} "
                    "(pods get VNet addresses: node subnet)")
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _confirm(name: str, signs: list[NodeSigns], snapshot: ClusterSnapshot) -> tuple[list[str], list[str]]:
    """Node evidence that confirms the profile's answer, and conflicts with it."""
    ev: list[str] = []
    notes: list[str] = []
    captured = [s for s in signs if s.captured]
    snat_by = _TABLE.get(name, ("unknown",))[0]
    if snat_by == AGENT and captured:
        with_jump = [s.node for s in captured if s.agent_jump]
        without = [s.node for s in captured if not s.agent_jump and s.post_whole]
        unshown = [s for s in captured if not s.agent_jump and not s.post_whole]
        if with_jump:
            ev.append(f"{len(with_jump)} of {len(captured)} captured node(s) jump to {AGENT_CHAIN} from POSTROUTING")
        if without:
            notes.append(f"node(s) {', '.join(without[:5])} have no POSTROUTING jump to {AGENT_CHAIN}: the agent's "
                         "rules are not in force there")
        notes += _partial_notes(unshown, f"no POSTROUTING jump to {AGENT_CHAIN} is shown, which does not prove "
                                "there is none")
    if name == POD_SUBNET and captured:
        swift = [s.node for s in captured if s.swift_rules]
        if swift:
            ev.append(f"node(s) {', '.join(swift[:3])} have chain {SWIFT_CHAIN}")
    if name == CILIUM_EBPF:
        labelled = [s.node for s in signs if _label(s.labels, LABEL_EBPF_HOST_ROUTING) == "true"]
        if labelled:
            ev.append(f"node(s) {', '.join(labelled[:3])} labelled {LABEL_EBPF_HOST_ROUTING}=true")
    for s in signs:
        if name not in (CILIUM_EBPF,) and _label(s.labels, LABEL_EBPF_HOST_ROUTING) == "true":
            notes.append(f"conflict: node {s.node} is labelled {LABEL_EBPF_HOST_ROUTING}=true, which the profile "
                         f"({name}) does not say")
            break
    for s in captured:
        if name != POD_SUBNET and s.swift_rules:
            notes.append(f"conflict: node {s.node} has chain {SWIFT_CHAIN} (pod subnet), which the profile ({name}) "
                         "does not say")
            break
    for s in captured:
        if name not in (CALICO,) and s.calico_masq:
            notes.append(f"node {s.node} has Calico's {CALICO_CHAIN} with a MASQUERADE rule: Calico may masquerade "
                         "before the agent (explain walks POSTROUTING in order)")
            break
    for s in signs:
        if name not in (CALICO,) and s.calico_nft:
            notes.append(f"node {s.node} has Calico's nftables table ip calico with a masquerade at postrouting: "
                         "Calico may masquerade before the agent (explain walks the nat chains in priority order)")
            break
    return ev, notes


def detect_mode(snapshot: ClusterSnapshot, node: str | None = None, dumps=None) -> MasqMode:
    """Who masquerades pod traffic: for the cluster, or for one ``node`` (its agent pool and capture).

    ``dumps`` (``masqctl.analysis.nodedumps.NodeDumps``): the captures parsed once per distinct
    capture, shared with the other readers (inspect passes it)."""
    azure = snapshot.azure
    cluster = azure.cluster if azure is not None else None
    where = "aks.json" if snapshot.source.startswith("bundle") else "ARM"
    node_names = [node] if node is not None else sorted({n.name for n in snapshot.nodes} | set(snapshot.captures))
    signs = [node_signs(snapshot, n, dumps) for n in node_names]
    unreadable = [f"node {s.node}'s iptables-save could not be read ({s.unreadable})" for s in signs if s.unreadable]
    no_nat: dict[str, list[str]] = {}
    for s in signs:
        if s.no_nat:
            no_nat.setdefault(s.no_nat, []).append(s.node)
    unreadable += [f"node{'s' if len(ns) > 1 else ''} {_shown(ns)}: {why} (no node evidence there)"
                   for why, ns in no_nat.items()]

    evidence: list[str] = []
    notes: list[str] = list(unreadable)
    missing: list[str] = []
    name = UNKNOWN
    decided_by = "none"
    if cluster is not None:
        pools = cluster.agent_pools
        scope = "cluster"
        if node is not None:
            pool = node_pool(snapshot, node)
            if pool is not None and any(p.name == pool for p in pools):
                pools = tuple(p for p in pools if p.name == pool)
                scope = f"node {node} is in pool {pool}"
            else:
                scope = f"node {node}'s agent pool is not known"
        name, ev, nt, ms = _from_profile(cluster.network_profile, pools, where, scope)
        evidence += ev
        notes += nt
        missing += ms
        if name != UNKNOWN:
            decided_by = "profile"
            cev, cnotes = _confirm(name, signs, snapshot)
            if cev:
                evidence += cev
                decided_by = "profile+nodes"
            notes += cnotes
            # Cilium overlay whose profile does not show acceleration but whose nodes say eBPF host routing
            if name == CILIUM_OVERLAY and any(_label(s.labels, LABEL_EBPF_HOST_ROUTING) == "true" for s in signs):
                name = CILIUM_EBPF
                notes = [n for n in notes if LABEL_EBPF_HOST_ROUTING not in n]
                notes.append(f"the profile shows no eBPF acceleration mode but nodes are labelled "
                             f"{LABEL_EBPF_HOST_ROUTING}=true: taken as eBPF host routing")
    else:
        reason = snapshot.missing.get(MissingKey.AZURE_CLUSTER) or snapshot.missing.get(MissingKey.AZURE)
        missing.append(PROFILE_MISSING + (f" — {reason}" if reason else ""))
    if name == UNKNOWN and (cluster is None or decided_by == "none"):
        nname, ev, nt, ms = _from_nodes(signs, snapshot, dumps)
        evidence += ev
        notes += nt
        if nname != UNKNOWN:
            name = nname
            decided_by = "nodes"
            missing = [m for m in missing if not m.startswith(PROFILE_MISSING)] + [
                m for m in ms if m not in missing]
            if cluster is None:
                notes.append("decided from node evidence alone; the AKS network profile would confirm it")
        else:
            missing += [m for m in ms if m not in missing]
            if not any(s.captured for s in signs):
                cap_reason = snapshot.missing.get(MissingKey.CAPTURES)
                if node is not None and node not in snapshot.captures:
                    missing.append(f"a capture of node {node} (iptables-save)")
                elif any(c.nft_ruleset or c.nft_ruleset_text for c in snapshot.captures.values()):
                    missing.append("iptables-save of the nodes (only their nftables rulesets were captured)")
                else:
                    missing.append(CAPTURES_MISSING + (f" — {cap_reason}" if cap_reason else ""))
    snat_by, agent_decides, routable = _TABLE.get(name, ("unknown", None, None))
    if name == UNKNOWN:
        # node evidence may still say who masquerades, even if the network mode stays open
        if any(s.agent_jump for s in signs) and not any(s.swift_rules or s.calico_masq or s.calico_nft for s in signs) and not any(
                _label(s.labels, LABEL_EBPF_HOST_ROUTING) == "true" for s in signs):
            snat_by, agent_decides = AGENT, True
        if any(s.has_pod_cidr for s in signs) and snat_by == AGENT:
            routable = False
    elif name == NODE_SUBNET:
        if any("Cilium with node subnet" in n for n in notes):
            snat_by, agent_decides = "unknown", None
        elif cluster is not None and _low(cluster.network_profile.network_policy) == "calico" \
                and not any(s.captured for s in signs):
            agent_decides = None
            missing.append(CAPTURES_MISSING + " (to see whether Calico's cali-nat-outgoing masquerades)")
        elif any(s.calico_masq or s.calico_nft for s in signs):
            agent_decides = None
    elif name == POD_SUBNET and (any(s.agent_jump for s in signs) or snapshot.daemonsets):
        live = [s.node for s in signs if s.agent_jump]
        if live:
            # a user-deployed agent (pod subnets that must hide pod IPs): its chain is in force
            snat_by, agent_decides = AGENT, True
            evidence.append(f"node(s) {', '.join(live[:3])}{' and more' if len(live) > 3 else ''} jump to "
                            f"{AGENT_CHAIN} from POSTROUTING: an ip-masq agent masquerades pod traffic here, "
                            f"beside the DNS/IMDS SNAT of {SWIFT_CHAIN}")
        elif not any(s.captured for s in signs):
            notes.append("an ip-masq agent DaemonSet exists in a pod-subnet cluster: a node capture would show "
                         "whether its chain is in force (then it masquerades pod traffic)")
    elif name == BYO_CNI:
        if snapshot.daemonsets or any(s.agent_jump for s in signs):
            agent_decides = None
            notes.append("an ip-masq agent runs beside a BYO CNI: it may masquerade, and so may the CNI")
    elif name == CALICO and any(s.agent_jump for s in signs):
        agent_decides = None
    name, snat_by, agent_decides, routable = _cilium(snapshot, name, snat_by, agent_decides, routable,
                                                     evidence, notes)
    return MasqMode(name=name, snat_by=snat_by, agent_decides=agent_decides, pod_ips_routable_outside=routable,
                    evidence=tuple(dict.fromkeys(evidence)), missing=tuple(dict.fromkeys(missing)),
                    notes=tuple(dict.fromkeys(notes)), decided_by=decided_by, node=node)


def _cilium(snapshot: ClusterSnapshot, name: str, snat_by: str, agent_decides, routable, evidence: list,
            notes: list):
    """What ``cilium-config`` and the cilium DaemonSet say: Cilium's BPF masquerade on (it decides,
    the agent's iptables rules are bypassed) or off (AKS Cilium without eBPF host routing sets
    ``enable-ipv4-masquerade: "false"``: the iptables agent decides, as on any overlay)."""
    cf = cilium_facts(snapshot)
    if not cf.present:
        if name == CILIUM_OVERLAY:
            notes.append("Azure CNI powered by Cilium without eBPF host routing: AKS's cilium-config sets "
                         "enable-ipv4-masquerade \"false\", so Cilium's own masquerade is off and the iptables agent "
                         "decides, as on any overlay (cilium-config is not in the snapshot to confirm it)")
        return name, snat_by, agent_decides, routable
    ev = cf.evidence()
    notes += [n for n in cf.notes if n not in notes]
    on = cf.bpf_decides
    if on is True:
        evidence += ev
        notes[:] = [n for n in notes if "Cilium with node subnet" not in n]
        if name == POD_SUBNET or cf.source == "dns-imds":
            notes.append("Cilium's BPF masquerade with a pod subnet: it masquerades only Azure DNS and IMDS, from the "
                         "AKS-owned azure-dns-imds-ip-masq-agent-config; the user ConfigMap is not read")
            return POD_SUBNET, CILIUM_BPF, False, True
        if name in (CILIUM_OVERLAY, CILIUM_EBPF, UNKNOWN, OVERLAY):
            return CILIUM_EBPF, CILIUM_BPF, False, False
        if name == NODE_SUBNET:
            return name, CILIUM_BPF, False, routable
        notes.append(f"cilium-config turns Cilium's BPF masquerade on, which mode {name} does not say")
        return name, snat_by, None, routable
    if on is False and name in (CILIUM_EBPF, CILIUM_OVERLAY, NODE_SUBNET, UNKNOWN):
        evidence += ev
        notes[:] = [n for n in notes if "Cilium with node subnet" not in n]
        notes.append(f"{cf.config_ref}: Cilium's own masquerade is off (enable-ipv4-masquerade or "
                     "enable-bpf-masquerade false): the iptables agent decides")
        if name == CILIUM_EBPF:
            notes.append("conflict: eBPF host routing is indicated, but cilium-config has Cilium's masquerade off; "
                         "taken as the iptables agent (cilium-config is what cilium-agent runs)")
            name = CILIUM_OVERLAY
        return name, AGENT if name != UNKNOWN or snat_by == AGENT else snat_by, True if name != UNKNOWN else \
            agent_decides, routable
    return name, snat_by, agent_decides, routable
