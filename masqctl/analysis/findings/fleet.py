"""Findings across clusters: MQ018, MQ019, MQ020 (docs/findings.md).

They read several clusters at once: what a caller cluster's agent does toward another cluster
(its effective non-masquerade list and network mode, ``fleetnet.toward``), what the destination
cluster's Services do to traffic arriving from outside (``externalTrafficPolicy``), and whether the
VNets route back (``fleetnet.connections``). Each finding names its clusters; what cannot be
decided (Services or VNets not gathered, the mode unknown) is recorded as not checked.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from masqctl.analysis.findings import CATALOGUE, ERROR, WARNING, Finding, NotChecked
from masqctl.analysis.fleetnet import (Connection, Entrance, Member, connections, entrances, overlapping, own_vnets,
                                       toward, toward_prefix)
from masqctl.cluster.model import MissingKey

CODES = ("MQ018", "MQ019", "MQ020")


@dataclass(frozen=True)
class FleetFinding:
    """A finding (the same shape as a cluster's) and the clusters it is about."""

    finding: Finding
    clusters: tuple[str, ...]

    @property
    def code(self) -> str:
        return self.finding.code

    @property
    def severity(self) -> str:
        return self.finding.severity

    def to_dict(self) -> dict:
        return {**self.finding.to_dict(), "clusters": list(self.clusters)}


@dataclass
class FleetContext:
    members: list[Member]
    connections: list[Connection]
    findings: list[FleetFinding] = field(default_factory=list)
    not_checked: list[NotChecked] = field(default_factory=list)

    def add(self, code: str, severity: str, clusters, detail: str, *, evidence=(), fix: str = "",
            command: str = "") -> None:
        self.findings.append(FleetFinding(Finding(code, severity, CATALOGUE[code], detail, tuple(evidence), fix,
                                                  command=command), tuple(clusters)))

    def skip(self, code: str, reason: str) -> None:
        if not any(n.code == code and n.reason == reason for n in self.not_checked):
            self.not_checked.append(NotChecked(code, reason))

    def between(self, a: str, b: str) -> list[Connection]:
        return [c for c in self.connections if c.source == a and c.target == b]


def _prefixes(member: Member) -> list[str]:
    return [p for v in own_vnets(member.snapshot) for p in v.address_prefixes]


def _ref_flags(member: Member) -> str:
    """How the caller's own commands are pointed at that cluster."""
    source = member.snapshot.source or ""
    if source.startswith("bundle "):
        return f"--bundle {source[len('bundle '):]}"
    if source.startswith("context "):
        return f"--context {source[len('context '):]}"
    return ""


def check(ctx: FleetContext) -> None:
    for dest in ctx.members:
        for caller in ctx.members:
            if caller is not dest:
                services(ctx, caller, dest)
                routing_back(ctx, caller, dest)


# --------------------------------------------------------------------------- MQ018, MQ019


def services(ctx: FleetContext, caller: Member, dest: Member) -> None:
    snap = dest.snapshot
    if snap.services is None:
        reason = snap.missing.get(MissingKey.SERVICES, "not gathered")
        for code in ("MQ018", "MQ019"):
            ctx.skip(code, f"{dest.name}: its Services are not known ({reason}), so what it does to traffic "
                     "arriving from other clusters is not known")
        return
    prefixes = _prefixes(dest)
    if not prefixes:
        for code in ("MQ018", "MQ019"):
            ctx.skip(code, f"{dest.name}: its VNets are not known, so which of its Services other clusters reach "
                     "over a peering is not known")
        return
    reached: dict[str, list[tuple[Entrance, Connection]]] = {}
    unknown_path = []
    for e in entrances(snap, prefixes):
        conns = [c for c in ctx.between(caller.name, dest.name) if c.connected and c.routes(e.address)]
        if not conns:
            if any(c.state is None for c in ctx.between(caller.name, dest.name)):
                unknown_path.append(e)
            continue
        reached.setdefault(e.service.ref, []).append((e, conns[0]))
    if unknown_path:
        for code in ("MQ018", "MQ019"):
            ctx.skip(code, f"whether {caller.name} reaches the Services of {dest.name} over a peering is not known "
                     f"({caller.name}'s VNets are not known)")
    for ref, items in sorted(reached.items()):
        svc = items[0][0].service
        policy = svc.external_traffic_policy
        judged = [(e, c, toward(caller.report, e.address)) for e, c in items]
        unknown = [t for _e, _c, t in judged if t.keeps_pod_ip is None]
        if unknown:
            for code in ("MQ018", "MQ019"):
                ctx.skip(code, f"{caller.name}: whether its pods keep their IP toward {dest.name} is not known "
                         f"({unknown[0].why})")
            continue
        if policy not in ("Cluster", "Local"):
            for code in ("MQ018", "MQ019"):
                ctx.skip(code, f"{dest.name}: Service {ref} writes no externalTrafficPolicy (the API server writes "
                         "Cluster or Local on these types), so what it does to the source is not known")
            continue
        kept = [(e, c, t) for e, c, t in judged if t.keeps_pod_ip]
        masq = [(e, c, t) for e, c, t in judged if not t.keeps_pod_ip]
        if policy == "Cluster" and kept:
            _mq018(ctx, caller, dest, svc, kept)
        if policy == "Local" and masq:
            _mq019(ctx, caller, dest, svc, masq)


def _addresses(items) -> str:
    return ", ".join(dict.fromkeys(f"{e.address}:{e.dst_port}" for e, _c, _t in items))


def _mq018(ctx: FleetContext, caller: Member, dest: Member, svc, items) -> None:
    e0, c0, t0 = items[0]
    node_ips = [n.internal_ip for n in dest.snapshot.nodes if n.internal_ip][:3]
    detail = (f"{caller.name} keeps pod IPs toward {dest.name}'s Service {svc.ref} ({_addresses(items)}): "
              f"{t0.why}. But {svc.ref} is externalTrafficPolicy Cluster, so kube-proxy on the {dest.name} node that "
              "receives the connection marks it for masquerade and SNATs it to that node's IP: "
              f"{svc.ref}'s pods see {dest.name} node IPs"
              + (f" ({', '.join(node_ips)}{' …' if len(dest.snapshot.nodes) > 3 else ''})" if node_ips else "")
              + f", not {caller.name}'s pod IPs. Keeping pod IPs in {caller.name} does not show them there.")
    evidence = [e.describe() for e, _c, _t in items] + list(t0.evidence) + [c0.describe()]
    fix = (f"Make the Service keep client addresses (on {dest.name}):\n"
           f"kubectl -n {svc.namespace} patch service {svc.name} -p '{{\"spec\":{{\"externalTrafficPolicy\":\"Local\"}}}}'\n"
           "With Local, the load balancer's health probe (healthCheckNodePort) passes only on nodes with a ready "
           "endpoint of the Service, so traffic goes only to those nodes (spread the endpoints, e.g. a DaemonSet or "
           "enough replicas with anti-affinity), and a NodePort answers only on them. "
           "Or let the proxy in front of the pods pass the client address on (a forwarded header such as "
           "X-Forwarded-For, or the PROXY protocol) and log that.")
    ctx.add("MQ018", WARNING, (caller.name, dest.name), detail, evidence=evidence, fix=fix)


def _mq019(ctx: FleetContext, caller: Member, dest: Member, svc, items) -> None:
    e0, c0, t0 = items[0]
    routable = t0.routable
    detail = (f"{dest.name}'s Service {svc.ref} ({_addresses(items)}) is externalTrafficPolicy Local: it keeps "
              f"the client address. But {caller.name} masquerades its pods' traffic to it ({t0.why}), so {svc.ref} "
              f"logs {caller.name}'s node IPs, and which pod made a request is lost.")
    evidence = [e.describe() for e, _c, _t in items] + list(t0.evidence) + [c0.describe()]
    flags = _ref_flags(caller)
    meantime = (f"Meanwhile, to name the pod behind a node address {svc.ref} logged: masqctl who NODE_IP:PORT "
                f"--to {e0.address}:{e0.dst_port} {flags}".rstrip()
                + " (reads the node's connection-tracking table; collect --conntrack).")
    if routable:
        fix = (f"Keep pod IPs in {caller.name} toward {dest.name}: masqctl apply --goal preserve-source-ip {flags}"
               .rstrip() + f" plans the user ConfigMap (pod IPs are VNet addresses in {caller.name}'s mode, so "
               f"{dest.name} can reply to them; NSGs and firewalls on the way must allow them).\n" + meantime)
        command = f"masqctl apply --goal preserve-source-ip {flags}".rstrip()
    else:
        fix = (f"In {caller.name}'s network mode pod IPs are not routable outside it, so it must masquerade "
               f"(keeping them would break the connections, MQ009).\n" + meantime)
        command = ""
    ctx.add("MQ019", WARNING, (caller.name, dest.name), detail, evidence=evidence, fix=fix, command=command)


# --------------------------------------------------------------------------- MQ020


def _within(prefix: str, space) -> bool:
    try:
        net = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False
    for s in space:
        try:
            other = ipaddress.ip_network(s, strict=False)
        except ValueError:
            continue
        if other.version == net.version and net.subnet_of(other):
            return True
    return False


def routing_back(ctx: FleetContext, caller: Member, dest: Member) -> None:
    there = ctx.between(caller.name, dest.name)
    back = ctx.between(dest.name, caller.name)
    peered = [c for c in there + back if c.peering is not None or c.state == "same VNet"]
    if not peered:
        return        # not connected over a peering at all (nor said to be)
    if any(c.state == "same VNet" for c in there):
        return
    dest_prefixes = _prefixes(dest)
    caller_prefixes = _prefixes(caller)
    if not dest_prefixes or not caller_prefixes:
        who = dest.name if not dest_prefixes else caller.name
        ctx.skip("MQ020", f"{who}: its VNets are not known, so whether {dest.name} routes back to {caller.name}'s "
                 "pod IPs is not known")
        return
    kept = [(p, toward_prefix(caller.report, p)) for p in dest_prefixes]
    unknown = [t for _p, t in kept if t.keeps_pod_ip is None]
    if unknown:
        ctx.skip("MQ020", f"{caller.name}: whether its pods keep their IP toward {dest.name} is not known "
                 f"({unknown[0].why})")
        return
    kept = [(p, t) for p, t in kept if t.keeps_pod_ip]
    if not kept or kept[0][1].routable is not True:
        return        # masqueraded toward dest, or pod IPs not routable at all (MQ009 in the caller's report)
    problems: list[str] = []
    evidence = [f"{caller.name} keeps pod IPs toward {p}: {t.why}" for p, t in kept]
    for c in there:
        if c.state is not None and not c.connected and c.peering is not None:
            problems.append(f"{caller.name}'s peering {c.peering.name} to {dest.name} is {c.state}")
    if any(c.state is None for c in back):
        ctx.skip("MQ020", f"{dest.name}: its VNets are not known, so whether it routes back to {caller.name} is "
                 "not known")
        return
    for c in back:
        evidence.append(c.describe())
    back_ok = [c for c in back if c.connected]
    if not back_ok:
        states = ", ".join(dict.fromkeys(c.state or "unknown" for c in back)) or "no peering"
        problems.append(f"{dest.name} has no Connected peering back to {caller.name} ({states})")
    else:
        space = [s for c in back_ok for s in (c.peering.remote_address_space or c.peering.remote_vnet_address_space)]
        missing = [p for p in caller_prefixes if not _within(p, space)]
        if missing:
            problems.append(f"{dest.name}'s peering {back_ok[0].peering.name} does not route {', '.join(missing)} "
                            f"of {caller.name} (its remote address space: {', '.join(space) or 'none'}; sync the "
                            "peering)")
    for other in ctx.members:
        if other is caller or other is dest:
            continue
        if not any(c.connected for c in ctx.between(dest.name, other.name)):
            continue
        clash = overlapping(caller_prefixes, _prefixes(other))
        if clash:
            problems.append(f"{caller.name} and {other.name} use overlapping address space ({', '.join(clash)}), "
                            f"both peered with {dest.name}: it cannot tell their pod IPs apart, so replies go to "
                            "one of them")
    if not problems:
        return
    detail = (f"{caller.name} keeps pod IPs toward {dest.name} ({', '.join(p for p, _t in kept)}), but "
              + "; ".join(problems) + f": replies to {caller.name}'s pod IPs do not come back, and connections fail.")
    fix = ("Make both directions of the peering Connected and in sync (az network vnet peering list -g RG "
           "--vnet-name VNET -o table on each side; az network vnet peering sync), give the spokes address spaces "
           f"that do not overlap, or masquerade toward {dest.name} again (remove its ranges from {caller.name}'s "
           "user ConfigMap).")
    ctx.add("MQ020", ERROR, (caller.name, dest.name), detail, evidence=evidence, fix=fix)


def run(members: list[Member]) -> FleetContext:
    ctx = FleetContext(members, connections(members))
    check(ctx)
    return ctx


__all__ = ["CODES", "FleetContext", "FleetFinding", "check", "run"]
