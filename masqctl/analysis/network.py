"""What an address or a CIDR is on the cluster's network.

Built from the snapshot: the agent pools' node and pod subnets (``vnetSubnetId``/``podSubnetId``
matched to the VNets' subnets, or the nodes' ``kubernetes.azure.com/network-subnet`` label on an
AKS-managed VNet), the VNets' address spaces, their peerings (``remoteAddressSpace`` — what is
actually routed over the peering — with state and sync level), the service and pod CIDRs, node
and pod addresses, and the fixed Azure addresses (IMDS 169.254.169.254, Azure DNS/wireserver
168.63.129.16). Anything else is a private address of an unknown network, or the internet.

``NetworkMap.reply_path`` says whether a reply can come back to the source address a
destination sees, given who masquerades (:mod:`masqctl.analysis.mode`).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from masqctl.cluster.model import ClusterSnapshot, MissingKey, Peering, VirtualNetwork

IMDS = "169.254.169.254"
WIRESERVER = "168.63.129.16"

KINDS = ("node-subnet", "pod-subnet", "vnet", "peered-vnet", "service-cidr", "pod-cidr", "node", "pod", "imds",
         "wireserver", "link-local", "loopback", "private", "internet")

# ranges that are not on the internet (RFC 1918, RFC 6598, documentation, benchmarking, class E, ULA)
PRIVATE_RANGES = (
    ("10.0.0.0/8", "RFC 1918"), ("172.16.0.0/12", "RFC 1918"), ("192.168.0.0/16", "RFC 1918"),
    ("100.64.0.0/10", "RFC 6598 shared address space"), ("192.0.0.0/24", "RFC 6890 IETF protocol assignments"),
    ("192.0.2.0/24", "RFC 5737 documentation"), ("198.51.100.0/24", "RFC 5737 documentation"),
    ("203.0.113.0/24", "RFC 5737 documentation"), ("198.18.0.0/15", "RFC 2544 benchmarking"),
    ("192.88.99.0/24", "RFC 7526 former 6to4 relay"), ("240.0.0.0/4", "reserved (former class E)"),
    ("0.0.0.0/8", "'this network'"), ("fc00::/7", "IPv6 unique local"), ("2001:db8::/32", "IPv6 documentation"),
)

# more specific places first when prefix lengths tie
_RANK = {k: i for i, k in enumerate(("imds", "wireserver", "pod", "node", "pod-subnet", "node-subnet", "pod-cidr",
                                     "service-cidr", "peered-vnet", "vnet", "loopback", "link-local", "private",
                                     "internet"))}


@dataclass(frozen=True)
class Place:
    """A network (or address) the cluster knows."""

    kind: str
    label: str                 # "node subnet aks-subnet (10.224.0.0/16)"
    cidr: str | None
    peering: Peering | None = None
    vnet: str | None = None
    title: str | None = None   # the label without the range: "node subnet aks-subnet"
    notes: tuple[str, ...] = ()
    ref: str | None = None     # the object's name: node name, namespace/pod, subnet name

    @functools.cached_property
    def network(self):       # read for every place on every lookup: parsed once
        return ipaddress.ip_network(self.cidr, strict=False) if self.cidr else None

    @property
    def short(self) -> str:
        return self.title or self.label

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "label": self.label, "cidr": self.cidr}
        if self.vnet:
            d["vnet"] = self.vnet
        if self.peering is not None:
            p = self.peering
            d["peering"] = {"name": p.name, "remote_vnet": p.remote_vnet_name, "state": p.state,
                            "sync_level": p.sync_level, "use_remote_gateways": p.use_remote_gateways,
                            "allow_gateway_transit": p.allow_gateway_transit}
        if self.notes:
            d["notes"] = list(self.notes)
        return d


@dataclass(frozen=True)
class Relation:
    relation: str      # "=" equal | "⊂" inside | "⊃" covers | "∩" overlaps
    place: Place

    def describe(self) -> str:
        if self.relation == "=":
            return f"= {self.place.short}"
        if self.relation == "⊂":
            return f"⊂ {self.place.short}"
        if self.relation == "⊃":
            return f"covers {self.place.cidr} ({self.place.short}) too"
        return f"overlaps {self.place.cidr} ({self.place.short})"

    def to_dict(self) -> dict:
        return {"relation": self.relation, "describe": self.describe(), "place": self.place.to_dict()}


def _net(text: str | None):
    if not text:
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _ip(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except (ValueError, AttributeError):
        return None


def _same_id(a: str | None, b: str | None) -> bool:
    return bool(a and b) and a.rstrip("/").lower() == b.rstrip("/").lower()


def _vnet_of_subnet_id(subnet_id: str) -> tuple[str | None, str | None]:
    """(vnet name, subnet name) of an ARM subnet id."""
    parts = subnet_id.strip("/").split("/")
    low = [p.lower() for p in parts]
    vnet = subnet = None
    if "virtualnetworks" in low:
        i = low.index("virtualnetworks")
        vnet = parts[i + 1] if i + 1 < len(parts) else None
    if "subnets" in low:
        i = low.index("subnets")
        subnet = parts[i + 1] if i + 1 < len(parts) else None
    return vnet, subnet


class NetworkMap:
    """Every network the snapshot knows, and questions about addresses and CIDRs."""

    def __init__(self, places: list[Place], missing: list[str], notes: list[str] | None = None):
        self._places = places
        self.missing: tuple[str, ...] = tuple(dict.fromkeys(missing))
        self.notes: tuple[str, ...] = tuple(dict.fromkeys(notes or []))
        self._gateway_transit = [p for p in places if p.kind == "peered-vnet" and p.peering is not None
                                 and p.peering.use_remote_gateways]

    # ---------------------------------------------------------------- queries

    @property
    def vnets_known(self) -> bool:
        """Whether any VNet or subnet of the cluster is known (an AKS cluster's Azure facts)."""
        return any(p.kind in ("vnet", "node-subnet", "pod-subnet") for p in self._places)

    def all_places(self) -> list[Place]:
        return list(self._places)

    def known(self) -> list[Place]:
        """Every known network: subnets, VNets, peered spaces, service/pod CIDRs, Azure addresses."""
        cluster_pod = [p.network for p in self._places if p.kind == "pod-cidr" and p.ref is None]
        return [p for p in self._places if p.kind not in ("node", "pod", "private", "internet")
                and not (p.kind == "pod-cidr" and p.ref is not None
                         and any(p.network.version == c.version and p.network.subnet_of(c) for c in cluster_pod))]

    def places_of_ip(self, ip: str) -> list[Place]:
        """Every place the address is in, most specific first; never empty."""
        addr = _ip(ip)
        if addr is None:
            raise ValueError(f"{ip!r} is not an IP address")
        hits = [p for p in self._places if p.network is not None and p.network.version == addr.version
                and addr in p.network]
        hits.sort(key=lambda p: (-p.network.prefixlen, _RANK.get(p.kind, 99)))
        cluster_kinds = {"node-subnet", "pod-subnet", "vnet", "peered-vnet", "service-cidr", "pod-cidr", "node",
                         "pod", "imds", "wireserver", "link-local", "loopback"}
        if not any(p.kind in cluster_kinds for p in hits):
            hits.append(self._fallback(addr))
        return hits

    def _fallback(self, addr) -> Place:
        for cidr, what in PRIVATE_RANGES:
            net = ipaddress.ip_network(cidr)
            if net.version == addr.version and addr in net:
                unknown = "not in any network this snapshot knows"
                if self.missing:
                    unknown += " (" + "; ".join(self.missing[:2]) + " missing)"
                return Place("private", f"private address ({what}, {cidr}): {unknown}", cidr,
                             title=f"a private address of an unknown network ({what})")
        if addr.is_multicast or addr.is_unspecified or addr.is_reserved:
            return Place("private", f"reserved address {addr} (not routed)", None, title="a reserved address")
        return Place("internet", f"internet address {addr}", None, title="the internet")

    def relations_of_cidr(self, cidr: str) -> list[Relation]:
        """Every known network the CIDR equals, is inside, covers or overlaps (most telling first)."""
        net = _net(cidr)
        if net is None:
            raise ValueError(f"{cidr!r} is not a CIDR")
        out: list[Relation] = []
        for p in self.known():
            other = p.network
            if other is None or other.version != net.version:
                continue
            if net == other:
                rel = "="
            elif net.subnet_of(other):
                rel = "⊂"
            elif other.subnet_of(net):
                rel = "⊃"
            elif net.overlaps(other):
                rel = "∩"
            else:
                continue
            out.append(Relation(rel, p))
        order = {"=": 0, "⊂": 1, "⊃": 2, "∩": 3}
        out.sort(key=lambda r: (order[r.relation], -r.place.network.prefixlen if r.relation != "⊃" else
                                r.place.network.prefixlen, _RANK.get(r.place.kind, 99)))
        return out

    def is_node_ip(self, ip: str) -> str | None:
        """The node name whose address ``ip`` is, or None."""
        for p in self._places:
            if p.kind == "node" and p.cidr and _ip(p.cidr.split("/")[0]) == _ip(ip):
                return p.ref
        return None

    # ---------------------------------------------------------------- replies

    def reply_path(self, source_seen: str, destination: str, mode) -> tuple[bool | None, str]:
        """Can the reply come back to ``source_seen`` (the source ``destination`` sees)?

        ``mode`` is a :class:`masqctl.analysis.mode.MasqMode`. Returns (answer, reason); None
        when the facts do not decide it, and the reason says which are missing.
        """
        src, dst = _ip(source_seen), _ip(destination)
        if src is None or dst is None:
            return None, "the source or the destination is not an address"
        s_places = self.places_of_ip(source_seen)
        d_places = self.places_of_ip(destination)
        s_kinds = {p.kind for p in s_places}
        d_kinds = {p.kind for p in d_places}
        d_top = d_places[0]
        node_of_src = next((p for p in s_places if p.kind == "node"), None)

        if src.is_loopback or dst.is_loopback:
            return True, "loopback traffic stays on the node"
        if node_of_src is not None:
            who = f"{source_seen} is the address of {node_of_src.short}"
            if "internet" in d_kinds:
                return True, (f"{who}, a VNet address: Azure's outbound path (load balancer, NAT gateway or "
                              "public IP) translates it for the internet and maps the reply back")
            if "imds" in d_kinds:
                return True, f"{who}: IMDS answers the VM's own address"
            if "peered-vnet" in d_kinds:
                peer = next(p for p in d_places if p.kind == "peered-vnet")
                ok, why = _peering_ok(peer)
                if ok is not True:
                    return ok, why
            return True, f"{who}, which " + ("the VNet routes" if self.vnets_known else "its network routes")

        pod_like = bool(s_kinds & {"pod", "pod-cidr", "pod-subnet"})
        in_node_subnet = "node-subnet" in s_kinds
        if not pod_like and not in_node_subnet:
            return None, (f"{source_seen} is neither a node address nor a known pod address ("
                          f"{s_places[0].short}): whether replies reach it is not known here")
        if not pod_like and in_node_subnet and mode.name != "azure-cni-node-subnet":
            return None, f"{source_seen} is in the node subnet but is no known node; replies depend on what it is"
        src_what = next((p.short for p in s_places if p.kind in ("pod", "pod-cidr", "pod-subnet", "node-subnet")),
                        "a pod")
        routable = mode.pod_ips_routable_outside
        mode_name = mode.name

        # inside the cluster: nodes, pods, the pod CIDR and the service range route to pods everywhere
        if d_kinds & {"node", "pod", "pod-cidr", "service-cidr"} and not d_kinds & {"imds", "wireserver"}:
            return True, f"{destination} is inside the cluster ({d_top.short}), which routes pod addresses"
        if "imds" in d_kinds:
            return False, ("IMDS (169.254.169.254) answers only the VM's own address: a request from pod IP "
                           f"{source_seen} is refused — it must be masqueraded to the node IP")
        if "wireserver" in d_kinds:
            if routable is True:
                return True, (f"168.63.129.16 (Azure DNS and wireserver) answers addresses of the VNet, and "
                              f"{source_seen} is one ({mode_name})")
            if routable is False:
                return False, (f"168.63.129.16 (Azure DNS and wireserver) answers VNet addresses only; "
                               f"{source_seen} is a cluster-only pod address ({mode_name}): the reply will not "
                               "come back")
            return None, ("168.63.129.16 answers VNet addresses; whether pod IPs are VNet addresses is unknown "
                          f"({_why_unknown(mode)})")
        if d_kinds & {"link-local"}:
            return None, "a link-local destination other than IMDS is reachable only on the node's own link"
        if "internet" in d_kinds:
            return False, (f"{source_seen} is a private address: the internet cannot route a reply to it "
                           "(unless something on the path translates it)")
        if routable is None:
            return None, f"whether pod IPs are routable outside the cluster is unknown ({_why_unknown(mode)})"
        if routable is False:
            if mode_name == "kubenet" and "node-subnet" in d_kinds:
                return True, (f"{destination} is in the node subnet, whose AKS route table (kubenet) has a route "
                              f"to each node's pod CIDR")
            return False, (f"{source_seen} is {src_what}, which is routable only inside the cluster ({mode_name}); "
                           f"{destination} ({d_top.short}) has no route to it: the reply will not come back")
        # pod IPs are VNet addresses (node subnet, pod subnet)
        if "peered-vnet" in d_kinds:
            peer = next(p for p in d_places if p.kind == "peered-vnet")
            ok, why = _peering_ok(peer)
            if ok is not True:
                return ok, why
            return True, (f"{source_seen} is a VNet address ({mode_name}) and {peer.short} routes the VNet's "
                          f"space back over the peering{'; ' + why if why else ''}")
        if d_kinds & {"node-subnet", "pod-subnet", "vnet"}:
            return True, f"{source_seen} is a VNet address ({mode_name}); {destination} is in the same VNet"
        # a private address of an unknown network (on-prem, another VNet)
        hint = ""
        if self._gateway_transit:
            names = ", ".join(sorted({p.peering.remote_vnet_name or p.peering.name for p in self._gateway_transit}))
            hint = (f"; peering(s) to {names} use the remote gateway, so on-prem prefixes may be reachable — "
                    "their routes back to the VNet are not known here")
        return None, (f"{destination} is in no network this snapshot knows: replies reach {source_seen} only if "
                      f"that network routes the VNet's space back{hint}")


def _why_unknown(mode) -> str:
    if mode.missing:
        return "missing: " + "; ".join(mode.missing[:2])
    return f"network mode {mode.name}"


def _peering_ok(place: Place) -> tuple[bool | None, str]:
    p = place.peering
    if p is None:
        return None, "peering facts missing"
    state = (p.state or "").lower()
    if state != "connected":
        return False, (f"the peering {p.name} to {p.remote_vnet_name or '?'} is {p.state or 'in an unknown state'}: "
                       "only a Connected peering routes traffic, so neither the request nor a reply gets through")
    sync = (p.sync_level or "")
    if sync and sync.lower() != "fullyinsync":
        return True, (f"peering {p.name} is {sync}: address-space changes are not synced on both sides, so a "
                      "recently added range may not route yet")
    return True, ""


# --------------------------------------------------------------------------- building the map

def _label(title: str, cidr: str | None) -> str:
    return f"{title} ({cidr})" if cidr else title


def network_map(snapshot: ClusterSnapshot) -> NetworkMap:
    places: list[Place] = []
    missing: list[str] = []
    notes: list[str] = []
    azure = snapshot.azure
    cluster = azure.cluster if azure is not None else None
    vnets: tuple[VirtualNetwork, ...] = azure.vnets if azure is not None else ()

    if azure is None or cluster is None:
        reason = snapshot.missing.get(MissingKey.AZURE_CLUSTER) or snapshot.missing.get(MissingKey.AZURE)
        missing.append("Azure facts (network profile, VNets)" + (f": {reason}" if reason else ""))
    elif not vnets:
        reason = snapshot.missing.get(MissingKey.AZURE_VNETS)
        missing.append("the VNets (address spaces, subnets, peerings)" + (f": {reason}" if reason else ""))
    for key, reason in snapshot.missing.items():
        if key.startswith(MissingKey.AZURE_VNETS + "/"):
            missing.append(f"VNet {key.split('/', 1)[1]}: {reason}")

    pools = cluster.agent_pools if cluster is not None else ()
    node_subnet_ids = {p.vnet_subnet_id.rstrip("/").lower(): p.name for p in pools if p.vnet_subnet_id}
    pod_subnet_ids = {p.pod_subnet_id.rstrip("/").lower(): p.name for p in pools if p.pod_subnet_id}
    # on an AKS-managed VNet the pools name no subnet; the nodes' labels do
    label_subnets = {(n.labels.get("kubernetes.azure.com/network-name"), n.labels.get(
        "kubernetes.azure.com/network-subnet")) for n in snapshot.nodes if n.labels.get(
        "kubernetes.azure.com/network-subnet")}
    label_pod_subnets = {n.labels.get("kubernetes.azure.com/podnetwork-subnet") for n in snapshot.nodes
                         if n.labels.get("kubernetes.azure.com/podnetwork-subnet")}
    matched_node_subnet = False

    for vnet in vnets:
        kind_of_vnet = "AKS-managed VNet" if vnet.managed else ("VNet" if vnet.managed is None else "BYO VNet")
        for prefix in vnet.address_prefixes:
            if _net(prefix) is None:
                notes.append(f"VNet {vnet.name}: address prefix {prefix!r} is not a CIDR (ignored)")
                continue
            title = f"{kind_of_vnet} {vnet.name} address space"
            places.append(Place("vnet", _label(title, prefix), prefix, vnet=vnet.name, title=title))
        for subnet in vnet.subnets:
            sid = (subnet.id or "").rstrip("/").lower()
            pool_node = node_subnet_ids.get(sid)
            pool_pod = pod_subnet_ids.get(sid)
            if pool_node is None and not node_subnet_ids and (
                    (vnet.name, subnet.name) in label_subnets or (None, subnet.name) in label_subnets
                    or (vnet.managed and not label_subnets and subnet.name == "aks-subnet")):
                pool_node = "nodes"
            if pool_pod is None and not pod_subnet_ids and subnet.name in label_pod_subnets:
                pool_pod = "nodes"
            for prefix in subnet.prefixes:
                if _net(prefix) is None:
                    notes.append(f"subnet {subnet.name}: prefix {prefix!r} is not a CIDR (ignored)")
                    continue
                if pool_node is not None:
                    matched_node_subnet = True
                    title = f"node subnet {subnet.name}"
                    kind = "node-subnet"
                    pn = [] if pool_node == "nodes" else [f"agent pool {pool_node}"]
                elif pool_pod is not None:
                    title = f"pod subnet {subnet.name}"
                    kind = "pod-subnet"
                    pn = [] if pool_pod == "nodes" else [f"agent pool {pool_pod}"]
                else:
                    title = f"subnet {subnet.name} of VNet {vnet.name}"
                    kind = "vnet"
                    pn = []
                places.append(Place(kind, _label(title, prefix), prefix, vnet=vnet.name, title=title,
                                    notes=tuple(pn), ref=subnet.name))
        for peering in vnet.peerings:
            remote = peering.remote_vnet_name or peering.name
            state = peering.state or "state unknown"
            status = state + (f", {peering.sync_level}" if peering.sync_level else "")
            pnotes = []
            routed = set(peering.remote_address_space)
            current = set(peering.remote_vnet_address_space)
            if current and routed != current:
                pnotes.append(f"the remote VNet's current space ({', '.join(sorted(current))}) differs from what the "
                              f"peering routes ({', '.join(sorted(routed)) or 'nothing'}): sync the peering")
            if peering.use_remote_gateways:
                pnotes.append("uses the remote gateway: on-premises prefixes behind it may be reachable but are not "
                              "known here")
            if peering.peer_complete_vnets is False:
                pnotes.append("subnet peering: only subnets " + (", ".join(peering.remote_subnet_names) or "?")
                              + " of the remote VNet are peered")
            prefixes = list(peering.remote_address_space)
            if not prefixes and peering.remote_vnet_address_space:
                pnotes.append("remoteAddressSpace is empty; the remote VNet's own space is shown")
                prefixes = list(peering.remote_vnet_address_space)
            if not prefixes:
                notes.append(f"peering {peering.name} of VNet {vnet.name} names no remote address space")
            for prefix in prefixes:
                if _net(prefix) is None:
                    continue
                title = f"peered VNet {remote} ({state})"
                places.append(Place("peered-vnet", f"peered VNet {remote} {prefix} ({status})", prefix,
                                    peering=peering, vnet=vnet.name, title=title, notes=tuple(pnotes)))
            if peering.use_remote_gateways:
                notes.append(f"VNet {vnet.name} uses the gateway of {remote}: on-premises prefixes may be reachable "
                             "but are unknown")
    if vnets and pools and not matched_node_subnet:
        missing.append("which subnet the nodes are in (no agent pool subnet id or node label matches a VNet subnet)")

    np = cluster.network_profile if cluster is not None else None
    if np is not None:
        for cidr in np.service_cidrs:
            if _net(cidr) is not None:
                places.append(Place("service-cidr", _label("service CIDR", cidr), cidr, title="service CIDR"))
        for cidr in np.pod_cidrs:
            if _net(cidr) is not None:
                places.append(Place("pod-cidr", _label("pod CIDR", cidr), cidr, title="pod CIDR"))
        if not np.service_cidrs:
            missing.append("the service CIDR (networkProfile.serviceCidrs is empty)")
    else:
        missing.append("the service CIDR (from the AKS network profile)")
    cluster_pod = {p.cidr for p in places if p.kind == "pod-cidr"}
    for n in snapshot.nodes:
        for cidr in n.pod_cidrs:
            if _net(cidr) is not None and cidr not in cluster_pod:
                title = f"pod CIDR of node {n.name}"
                places.append(Place("pod-cidr", _label(title, cidr), cidr, title=title, ref=n.name))
        seen = set()
        for ip in [n.internal_ip] + [a for t, a in n.addresses if t in ("InternalIP", "ExternalIP")]:
            addr = _ip(ip) if ip else None
            if addr is None or addr in seen:
                continue
            seen.add(addr)
            title = f"node {n.name}"
            places.append(Place("node", f"{title} ({addr})", f"{addr}/{addr.max_prefixlen}", title=title,
                                ref=n.name))
    if not snapshot.nodes:
        missing.append("the nodes (addresses, pod CIDRs)" + (
            f": {snapshot.missing[MissingKey.NODES]}" if MissingKey.NODES in snapshot.missing else ""))
    for pod in snapshot.workloads:
        if pod.host_network:
            continue
        for ip in pod.pod_ips:
            addr = _ip(ip)
            if addr is None:
                continue
            title = f"pod {pod.namespace}/{pod.name}" + (f" on node {pod.node}" if pod.node else "")
            places.append(Place("pod", f"{title} ({addr})", f"{addr}/{addr.max_prefixlen}", title=title,
                                ref=f"{pod.namespace}/{pod.name}"))

    places += [
        Place("imds", "Azure instance metadata service IMDS (169.254.169.254)", "169.254.169.254/32",
              title="IMDS (Azure instance metadata, answers only the VM's own address)"),
        Place("wireserver", "Azure DNS and wireserver (168.63.129.16)", "168.63.129.16/32",
              title="Azure DNS/wireserver 168.63.129.16"),
        Place("link-local", "link-local (169.254.0.0/16)", "169.254.0.0/16", title="link-local"),
        Place("link-local", "IPv6 link-local (fe80::/10)", "fe80::/10", title="IPv6 link-local"),
        Place("loopback", "loopback (127.0.0.0/8)", "127.0.0.0/8", title="loopback"),
        Place("loopback", "IPv6 loopback (::1)", "::1/128", title="IPv6 loopback"),
    ]
    return NetworkMap(places, missing, notes)
