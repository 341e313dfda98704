"""How the clusters of a fleet connect, and what each does to traffic toward another.

Pure, over the snapshots (and the inspect reports) of several clusters:

* ``own_vnets(snapshot)``: the VNets a cluster's nodes are in (the agent pools' subnets; else the
  AKS-managed VNet; else every VNet of the snapshot);
* ``connections(members)``: for every ordered pair of clusters and each pair of their VNets, the
  peering from the one to the other as the first cluster's Azure facts show it (state, sync,
  what it routes), ``not peered``, or ``None`` when that cluster's VNets are not known;
* ``toward(report, address)``: whether a cluster's pods keep their IP toward an address, as its
  effective non-masquerade list and network mode say (``None`` with the reason when unknown);
* ``entrances(snapshot)``: the addresses by which a cluster's Services are reached from outside
  it (internal load-balancer IPs, external IPs, node ports), with the traffic policy.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from masqctl.cluster.model import ClusterSnapshot, MissingKey, Peering, VirtualNetwork
from masqctl.cluster.services import Service, ServicePort


@dataclass(frozen=True)
class Member:
    """One cluster of the fleet: its name, snapshot and inspect report (``InspectReport``)."""

    name: str
    snapshot: ClusterSnapshot
    report: object


def _id(value: str | None) -> str | None:
    return value.rstrip("/").lower() if value else None


def _same_vnet(a: VirtualNetwork, b: VirtualNetwork) -> bool:
    if a.id and b.id:
        return _id(a.id) == _id(b.id)
    return a.name.lower() == b.name.lower() and (a.resource_group or "").lower() == (b.resource_group or "").lower()


def _peers(p: Peering, vnet: VirtualNetwork) -> bool:
    if p.remote_vnet_id and vnet.id:
        return _id(p.remote_vnet_id) == _id(vnet.id)
    return bool(p.remote_vnet_name) and p.remote_vnet_name.lower() == vnet.name.lower()


def own_vnets(snapshot: ClusterSnapshot) -> tuple[VirtualNetwork, ...]:
    """The VNets the cluster's nodes are in. A bundle may hold other VNets (a peered hub's) too."""
    azure = snapshot.azure
    if azure is None or not azure.vnets:
        return ()
    subnets = set()
    if azure.cluster is not None:
        subnets = {_id(p.vnet_subnet_id) for p in azure.cluster.agent_pools if p.vnet_subnet_id}
        subnets |= {_id(p.pod_subnet_id) for p in azure.cluster.agent_pools if p.pod_subnet_id}
    mine = tuple(v for v in azure.vnets if any(_id(s.id) in subnets for s in v.subnets if s.id))
    if mine:
        return mine
    managed = tuple(v for v in azure.vnets if v.managed)
    return managed or azure.vnets


def _nets(prefixes) -> list:
    out = []
    for p in prefixes:
        try:
            out.append(ipaddress.ip_network(p, strict=False))
        except ValueError:
            continue
    return out


def in_prefixes(address: str, prefixes) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in _nets(prefixes))


def overlapping(a, b) -> list[str]:
    """The prefixes of ``a`` that overlap one of ``b``."""
    nb = _nets(b)
    return [str(n) for n in _nets(a) if any(n.version == m.version and n.overlaps(m) for m in nb)]


# --------------------------------------------------------------------------- connections


@dataclass(frozen=True)
class Connection:
    """One direction between two clusters' VNets. ``state`` is the peering's ``peeringState``,
    ``"not peered"`` when the first VNet has no peering to the second, ``"same VNet"`` when both
    clusters are in one VNet, or None when the first cluster's VNets are unknown (``notes``)."""

    source: str                 # the cluster whose VNet holds the peering
    target: str
    source_vnet: str | None
    target_vnet: str | None
    state: str | None
    peering: Peering | None = None
    notes: tuple[str, ...] = ()

    @property
    def connected(self) -> bool | None:
        if self.state is None:
            return None
        return self.state.lower() in ("connected", "same vnet")

    def routes(self, address: str) -> bool | None:
        """The peering carries traffic to ``address`` (its remote address space covers it)."""
        if self.state is None:
            return None
        if self.state == "same VNet":
            return True
        if self.peering is None:
            return False
        space = self.peering.remote_address_space or self.peering.remote_vnet_address_space
        return in_prefixes(address, space)

    def describe(self) -> str:
        src = f"{self.source} ({self.source_vnet})" if self.source_vnet else self.source
        dst = f"{self.target} ({self.target_vnet})" if self.target_vnet else self.target
        if self.state is None:
            return f"{src} → {dst}: unknown" + (f" ({'; '.join(self.notes)})" if self.notes else "")
        if self.peering is None:
            return f"{src} → {dst}: {self.state}"
        p = self.peering
        extra = [x for x in (p.sync_level,) if x]
        if p.allow_gateway_transit:
            extra.append("gateway transit")
        if p.use_remote_gateways:
            extra.append("uses remote gateways")
        return f"{src} → {dst}: peering {p.name} {self.state}" + (f" ({', '.join(extra)})" if extra else "")

    def to_dict(self) -> dict:
        p = self.peering
        return {"from": self.source, "to": self.target, "from_vnet": self.source_vnet, "to_vnet": self.target_vnet,
                "state": self.state, "connected": self.connected,
                "peering": None if p is None else {
                    "name": p.name, "state": p.state, "sync_level": p.sync_level,
                    "remote_address_space": list(p.remote_address_space),
                    "allow_forwarded_traffic": p.allow_forwarded_traffic,
                    "allow_gateway_transit": p.allow_gateway_transit, "use_remote_gateways": p.use_remote_gateways},
                "describe": self.describe(), "notes": list(self.notes)}


def _azure_reason(snapshot: ClusterSnapshot) -> str:
    for key in (MissingKey.AZURE_VNETS, MissingKey.AZURE_CLUSTER, MissingKey.AZURE):
        if key in snapshot.missing:
            return f"its VNets are not known ({snapshot.missing[key]})"
    return "its VNets are not known"


def connections(members: list[Member]) -> list[Connection]:
    """Every direction between every two clusters (each pair of their VNets)."""
    out: list[Connection] = []
    vnets = {m.name: own_vnets(m.snapshot) for m in members}
    for a in members:
        for b in members:
            if a is b:
                continue
            if not vnets[a.name]:
                out.append(Connection(a.name, b.name, None, None, None, notes=(f"{a.name}: {_azure_reason(a.snapshot)}",)))
                continue
            if not vnets[b.name]:
                # the peering is still visible from a's side, matched by the remote VNet's id alone
                for va in vnets[a.name]:
                    for p in va.peerings:
                        out.append(Connection(a.name, b.name, va.name, p.remote_vnet_name, None, p, notes=(
                            f"{b.name}: {_azure_reason(b.snapshot)}, so whether peering {p.name} leads to it "
                            "is not known",)))
                if not any(va.peerings for va in vnets[a.name]):
                    out.append(Connection(a.name, b.name, None, None, None,
                                          notes=(f"{b.name}: {_azure_reason(b.snapshot)}",)))
                continue
            for va in vnets[a.name]:
                for vb in vnets[b.name]:
                    if _same_vnet(va, vb):
                        out.append(Connection(a.name, b.name, va.name, vb.name, "same VNet"))
                        continue
                    p = next((p for p in va.peerings if _peers(p, vb)), None)
                    if p is None:
                        out.append(Connection(a.name, b.name, va.name, vb.name, "not peered"))
                    else:
                        out.append(Connection(a.name, b.name, va.name, vb.name, p.state or "state unknown", p))
    return out


# --------------------------------------------------------------------------- what a caller does


@dataclass(frozen=True)
class Toward:
    """What a cluster's pods do toward an address: ``keeps_pod_ip`` (None: unknown, ``why``),
    ``routable`` (pod IPs are VNet addresses others can reply to), and the deciding CIDR."""

    keeps_pod_ip: bool | None
    routable: bool | None
    why: str
    cidr: str | None = None
    source: str | None = None        # where the CIDR comes from (ConfigMap, key, line)
    evidence: tuple[str, ...] = field(default=())


def toward(report, address: str) -> Toward:
    """From the cluster's effective config and mode (as ``inspect`` computed them)."""
    view = getattr(report, "agent", None)
    mode = getattr(report, "mode", None)
    if mode is None or mode.agent_decides is None or mode.pod_ips_routable_outside is None:
        why = "; ".join(getattr(mode, "missing", ())[:1]) or "the network mode is unknown"
        return Toward(None, None, f"who masquerades is not known ({why})")
    if not mode.agent_decides:
        return Toward(None, mode.pod_ips_routable_outside,
                      f"in {mode.name} mode the agent's chain does not decide masquerading (MQ015)")
    if view is None or view.config is None:
        return Toward(None, mode.pod_ips_routable_outside, "the agent's effective config is not known")
    ip = ipaddress.ip_address(address)
    for entry in view.config.non_masquerade_cidrs:
        net = ipaddress.ip_network(entry.cidr, strict=False)
        if net.version == ip.version and ip in net:
            src = view.source_of(entry.origins[0]) if entry.origins else None
            return Toward(True, mode.pod_ips_routable_outside,
                          f"{entry.cidr} ({src}) is in the non-masquerade list", entry.cidr, src,
                          (f"{entry.cidr} from {src}", f"mode {mode.name}"))
    return Toward(False, mode.pod_ips_routable_outside,
                  f"no CIDR of the non-masquerade list covers {address}: masqueraded to the node IP",
                  evidence=(f"effective nonMasqueradeCIDRs: {', '.join(view.config.cidrs()) or '(none)'}",
                            f"mode {mode.name}"))


# --------------------------------------------------------------------------- Services reached from outside


@dataclass(frozen=True)
class Entrance:
    """An address (and port) by which a Service is reached from outside its cluster."""

    service: Service
    port: ServicePort
    address: str                 # load-balancer IP, external IP, or a node IP (NodePort)
    dst_port: int
    kind: str                    # "loadbalancer IP" | "external IP" | "node port"

    def describe(self) -> str:
        policy = self.service.external_traffic_policy or "policy not written"
        where = f"{self.address}:{self.dst_port}"
        return f"Service {self.service.ref} ({self.service.type}, externalTrafficPolicy {policy}) at {where} ({self.kind})"


def entrances(snapshot: ClusterSnapshot, prefixes) -> list[Entrance]:
    """Entrances whose address is inside ``prefixes`` (the cluster's VNet space: what a peered
    network reaches). A NodePort Service's entrance is the first Linux node's address."""
    out: list[Entrance] = []
    node_ip = next((n.internal_ip for n in snapshot.nodes if n.internal_ip
                    and (n.os or "linux").lower() == "linux"), None)
    for svc in snapshot.services or ():
        if svc.type not in ("LoadBalancer", "NodePort"):
            continue
        for port in svc.ports:
            if svc.type == "LoadBalancer":
                for ip in svc.lb_ingress_ips:
                    if in_prefixes(ip, prefixes):
                        out.append(Entrance(svc, port, ip, port.port, "loadbalancer IP"))
            for ip in svc.external_ips:
                if in_prefixes(ip, prefixes):
                    out.append(Entrance(svc, port, ip, port.port, "external IP"))
            if svc.type == "NodePort" and port.node_port is not None and node_ip and in_prefixes(node_ip, prefixes):
                out.append(Entrance(svc, port, node_ip, port.node_port, "node port"))
    return out




def toward_prefix(report, prefix: str) -> Toward:
    """Like ``toward`` for a whole range: keeps pod IPs toward (part of) ``prefix`` when a CIDR of
    the non-masquerade list overlaps it."""
    net = ipaddress.ip_network(prefix, strict=False)
    first = toward(report, str(net.network_address))
    if first.keeps_pod_ip is None:
        return first
    view = report.agent
    for entry in view.config.non_masquerade_cidrs:
        cidr = ipaddress.ip_network(entry.cidr, strict=False)
        if cidr.version == net.version and cidr.overlaps(net):
            src = view.source_of(entry.origins[0]) if entry.origins else None
            return Toward(True, first.routable, f"{entry.cidr} ({src}) covers {'' if net.subnet_of(cidr) else 'part of '}"
                          f"{prefix}", entry.cidr, src, (f"{entry.cidr} from {src}",))
    return Toward(False, first.routable, f"no CIDR of the non-masquerade list overlaps {prefix}")


__all__ = ["Connection", "Entrance", "Member", "Toward", "connections", "entrances", "in_prefixes", "overlapping",
           "own_vnets", "toward", "toward_prefix"]
