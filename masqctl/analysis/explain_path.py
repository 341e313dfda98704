"""Explain a flow end to end, across the clusters of one run: egress, network, ingress, endpoint.

``explain_path(clusters, ClusterRequest)`` takes ``(name, snapshot)`` pairs. SRC resolves as in
``explain_cluster`` in whichever cluster holds it; DST may be a pod IP or ``namespace/pod`` of
any cluster, a Service (``namespace/service[:port]``, the port by number or name, or a DNS name
``svc.ns[.svc[.cluster.local]][:port]``), its load-balancer ingress IP, a node IP with a node
port, or an address outside every cluster. The walk:

1. **egress**: the source node's rules, exactly as ``explain_snapshot`` (a Service of the
   source's own cluster is its cluster IP, which the source node's kube-proxy DNATs);
2. **network**: from the source VNet to the destination, through which peering (state,
   gateway transit), and whether the source the network carries is routable back to it;
3. **ingress**: the destination cluster's nodes that receive it (a load balancer: all nodes for
   ``externalTrafficPolicy: Cluster``, those with a ready local endpoint for ``Local``; a node
   port: its node; a pod IP: the pod's node), each evaluated by ``analysis.ingress``;
4. **endpoint**: the pod that receives it and the source it sees.

Where nodes or endpoints differ, each is listed; where evidence is missing the answer is None
with the reason.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from masqctl.analysis.explain import parse_endpoint
from masqctl.analysis.explain_cluster import ClusterExplanation, ClusterRequest, explain_snapshot, resolve_source
from masqctl.analysis.ingress import IngressDumps, IngressHop, ingress_on_node
from masqctl.analysis.mode import detect_mode
from masqctl.analysis.network import network_map
from masqctl.errors import InputError, UsageError

_DNS_TAIL = ("svc",)     # svc.ns.svc[.<cluster domain>]


@dataclass
class Hop:
    stage: str                       # egress | network | ingress | endpoint
    cluster: str
    node: str | None
    src: str | None
    dst: str
    masqueraded: bool | None
    deciding_rule: dict | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"stage": self.stage, "cluster": self.cluster, "node": self.node, "src": self.src, "dst": self.dst,
                "masqueraded": self.masqueraded, "deciding_rule": self.deciding_rule, "notes": list(self.notes)}


@dataclass
class Seen:
    ip: str | None
    cluster: str | None
    endpoint: str | None
    why: str
    candidates: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"ip": self.ip, "cluster": self.cluster, "endpoint": self.endpoint, "why": self.why,
                "candidates": [dict(c) for c in self.candidates]}


@dataclass
class Target:
    """DST as resolved over the clusters."""

    kind: str                        # pod | service | lb | node-port | node | address
    cluster: str | None              # the cluster that owns it (None: outside every cluster)
    ip: str                          # the address the source sends to
    port: int | None
    how: str
    service: object | None = None    # cluster.services.Service
    service_port: object | None = None
    pod: object | None = None
    node: str | None = None
    notes: list[str] = field(default_factory=list)   # how DST was read (a node name: its InternalIP)

    @property
    def dst(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip and self.port is not None else self.ip
        return f"{host}:{self.port}" if self.port is not None else host


@dataclass
class PathExplanation:
    egress: ClusterExplanation
    source_cluster: str
    target: Target
    path: list[Hop]
    seen: Seen
    ingress: list[IngressHop] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return self.egress.summary

    def to_dict(self) -> dict:
        doc = self.egress.to_dict()
        doc["cluster"] = self.source_cluster
        doc["destination"] = {"kind": self.target.kind, "cluster": self.target.cluster, "dst": self.target.dst,
                              "resolved": self.target.how}
        doc["path"] = [h.to_dict() for h in self.path]
        doc["seen_by_destination"] = self.seen.to_dict()
        return doc


# --------------------------------------------------------------------------- resolving DST

def _index(snapshot):
    from masqctl.cluster.services import ServiceIndex
    return ServiceIndex.of(snapshot)


def _services(snapshot):
    return getattr(snapshot, "services", None)


def _no_services(name: str, snapshot) -> str | None:
    if _services(snapshot) is not None:
        return None
    why = snapshot.missing.get("services")
    return f"cluster {name} has no Services ({why or 'services.yaml is not in the bundle'})"


def _split_port(text: str) -> tuple[str, str | None]:
    host, sep, port = text.rpartition(":")
    if sep and host and "/" not in port and "]" not in port:
        return host, port
    return text, None


def _service_name(text: str) -> tuple[str, str, str | None] | None:
    """(namespace, name, port) of ``namespace/service[:port]`` or a DNS name; None: neither."""
    host, port = _split_port(text.strip())
    port = port or None
    if "/" in host:
        ns, _, name = host.partition("/")
        return (ns, name, port) if ns and name and "/" not in name else None
    parts = host.rstrip(".").split(".")
    if len(parts) < 2 or any(not p for p in parts):
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if len(parts) > 2 and parts[2] not in _DNS_TAIL:
        return None
    return parts[1], parts[0], port


def _pick_port(service, spec: str | None, proto: str | None, name: str, dport: int | None):
    """The ServicePort of ``spec`` (a number or a name; None: the only one, or ``dport``)."""
    ports = service.ports
    listing = ", ".join(f"{p.name + '=' if p.name else ''}{p.port}/{p.protocol}" for p in ports) or "none"
    want = (proto or "").upper() or None
    if spec is None and dport is not None:
        spec = str(dport)
    if spec is None:
        cands = [p for p in ports if want is None or p.protocol == want]
        if len(cands) == 1:
            return cands[0]
        raise UsageError(f"Service {service.ref} has {len(ports)} ports ({listing}): say which one",
                         input="DST", code="E247", hint=f"give {service.ref}:PORT (a number or a port name)")
    if spec.isdigit():
        cands = [p for p in service.ports_numbered(int(spec)) if want is None or p.protocol == want]
        if len(cands) > 1:
            cands = [p for p in cands if p.protocol == "TCP"] or cands   # kube-dns:53 without --proto: TCP first
    else:
        cands = [p for p in ports if p.name == spec]
    if not cands:
        raise UsageError(f"Service {service.ref} has no port {spec}{' (' + want + ')' if want else ''} (ports: "
                         f"{listing})", input=name, code="E247", hint="a Service port is given by number or by name")
    return cands[0]


def _service_target(clusters, text: str, creq: ClusterRequest, src_cluster: str, dport: int | None) -> Target | None:
    parsed = _service_name(text)
    if parsed is None:
        return None
    ns, svc_name, port_spec = parsed
    ref = f"{ns}/{svc_name}"
    found = []
    missing = []
    for name, snap in clusters:
        why = _no_services(name, snap)
        if why is not None:
            missing.append(why)
            continue
        svc = _index(snap).by_ref(ref)
        if svc is not None:
            found.append((name, snap, svc))
    if "/" in text and port_spec is None and any(
            p.namespace == ns and p.name == svc_name for _, s in clusters for p in s.workloads):
        return None          # a pod of that name: namespace/pod, as on one cluster
    if not found:
        if "/" in text and port_spec is None:
            return None      # namespace/pod reports it (E217), as on one cluster
        if missing and len(missing) == len(clusters):
            raise InputError(f"{text!r} names a Service, but " + "; ".join(missing), input="DST", code="E355",
                             hint="collect the bundle again (services.yaml = kubectl get svc -A -o yaml)")
        where = ", ".join(n for n, _ in clusters)
        raise UsageError(f"no Service {ref} in {'cluster' if len(clusters) == 1 else 'clusters'} {where}"
                         + (f" ({'; '.join(missing)})" if missing else ""), input="DST", code="E246",
                         hint=f"kubectl get svc -n {ns}")
    if len(found) > 1:
        local = [f for f in found if f[0] == src_cluster]
        if not local:
            raise UsageError(f"Service {ref} is in several clusters ({', '.join(f[0] for f in found)})", input="DST",
                             code="E249", hint="give its load-balancer IP (or NODE_IP:NODEPORT) instead")
        found = local
    name, snap, svc = found[0]
    sp = _pick_port(svc, port_spec, creq.proto, "DST", dport)
    how = f"Service {ref} port {sp.name + ' ' if sp.name else ''}{sp.port}/{sp.protocol} in cluster {name}"
    if name == src_cluster:
        if not svc.cluster_ips:
            raise UsageError(f"Service {ref} is headless ({svc.type}): it has no cluster IP to send to", input="DST",
                             code="E246", hint="give a pod of the Service (namespace/pod) instead")
        return Target("service", name, svc.cluster_ips[0], sp.port, how + f": its cluster IP {svc.cluster_ips[0]}",
                      svc, sp)
    if svc.lb_ingress_ips:
        ip = svc.lb_ingress_ips[0]
        return Target("lb", name, ip, sp.port, how + f": its load-balancer ingress IP {ip}", svc, sp)
    raise UsageError(f"{how} has no load-balancer ingress IP, and its cluster IP is reachable only inside {name}",
                     input="DST", code="E249", hint="give a node IP with its node port (NODE_IP:NODEPORT) instead")


def resolve_target(clusters, text: str, creq: ClusterRequest, src_cluster: str, family: int) -> Target:
    """DST over every cluster (see the module docstring)."""
    from masqctl.analysis.explain_cluster import _looks_like_pod, resolve_pod

    dport = creq.dport
    svc = _service_target(clusters, text, creq, src_cluster, dport)
    if svc is not None:
        return svc
    if _looks_like_pod(text):
        ns, _, pod = text.strip().partition("/")
        owners = [(n, s) for n, s in clusters if any(p.namespace == ns and p.name == pod for p in s.workloads)]
        if len(owners) > 1:
            owners = [o for o in owners if o[0] == src_cluster] or owners
        if len(owners) > 1:
            raise UsageError(f"pod {text} is in several clusters ({', '.join(n for n, _ in owners)})", input="DST",
                             code="E249", hint="give its IP instead")
        name, snap = owners[0] if owners else clusters[0]
        ep = resolve_pod(snap, text, "DST", family)
        return Target("pod", name, ep.ip, None, f"{ep.how} in cluster {name}", pod=ep.pod, node=ep.node)
    from masqctl.analysis.explain_cluster import node_by_name

    named = None
    for _, snap in clusters:         # a node name: its InternalIP (and the port given with it)
        ep = node_by_name(snap, text, "DST", family)
        if ep is not None:
            text = (f"[{ep.ip}]" if ":" in ep.ip else ep.ip) + (f":{ep.port}" if ep.port is not None else "")
            named = f"node {ep.node} resolved to its InternalIP {ep.ip}"
            break
    target = _address_target(clusters, text, creq, src_cluster)
    if named is not None:
        target.notes.append(named)
    return target


def _address_target(clusters, text: str, creq: ClusterRequest, src_cluster: str) -> Target:
    """DST given as an address (``IP[:PORT]``) over every cluster."""
    from masqctl.analysis.explain_cluster import parse_destination

    addr, port = parse_destination(text)
    ip = str(addr)
    hits: list[Target] = []
    for name, snap in clusters:
        idx = _index(snap) if _services(snap) is not None else None
        if idx is not None:
            for s in idx.by_lb_ip(ip) + idx.by_external_ip(ip):
                if port is None or s.ports_numbered(port):
                    sp = _pick_port(s, str(port) if port else None, creq.proto, "DST", None)
                    kind = "lb" if ip in s.lb_ingress_ips else "external-ip"
                    hits.append(Target(kind, name, ip, sp.port, f"{'load-balancer ingress' if kind == 'lb' else 'external'}"
                                       f" IP of Service {s.ref} port {sp.port}/{sp.protocol} in cluster {name}", s, sp))
                    break
        node = next((n for n in snap.nodes if ip in ({n.internal_ip} | {a for _, a in n.addresses})), None)
        if node is not None:
            np_hit = None
            if idx is not None and port is not None:
                np_hit = idx.by_node_port(port, (creq.proto or "tcp").upper())
            if np_hit is not None:
                hits.append(Target("node-port", name, ip, port, f"node port {port} of Service {np_hit[0].ref} on node "
                                   f"{node.name} in cluster {name}", np_hit[0], np_hit[1], node=node.name))
            else:
                hits.append(Target("node", name, ip, port, f"node {node.name} in cluster {name}", node=node.name))
            continue
        pods = [p for p in snap.workloads if not p.host_network and ip in p.pod_ips
                and (p.phase or "").lower() not in ("succeeded", "failed")]
        if pods:
            hits.append(Target("pod", name, ip, port, f"pod {pods[0].namespace}/{pods[0].name} on node {pods[0].node} "
                               f"in cluster {name}", pod=pods[0], node=pods[0].node))
            continue
        if name == src_cluster and idx is not None and idx.by_cluster_ip(ip) is not None:
            s = idx.by_cluster_ip(ip)
            hits.append(Target("service", name, ip, port, f"cluster IP of Service {s.ref} in cluster {name}", s))
    if len(hits) > 1:
        own = [h for h in hits if h.cluster == src_cluster]
        if len(own) == 1:
            hits = own
        else:
            raise UsageError(f"{ip} is in several clusters ({', '.join(h.how for h in hits)})", input="DST",
                             code="E249", hint="the clusters' address spaces overlap: explain one cluster at a time")
    if hits:
        return hits[0]
    return Target("address", None, ip, port, "")


def resolve_source_cluster(clusters, creq: ClusterRequest, family: int | None):
    """(name, snapshot, Endpoint) of the cluster that holds SRC."""
    found, errors = [], []
    for name, snap in clusters:
        try:
            found.append((name, snap, resolve_source(snap, creq.src, family, creq.node)))
        except UsageError as exc:
            errors.append((name, exc))
    if not found:
        if len(clusters) == 1:
            raise errors[0][1]
        raise UsageError(f"SRC {creq.src} is in none of the clusters: " + "; ".join(
            f"{n}: {e.message}" for n, e in errors), input="SRC", code="E245",
            hint="give SRC as namespace/pod, or a pod or node IP of one of the clusters")
    if len(found) > 1:
        sure = [f for f in found if f[2].pod is not None or f[2].kind == "host"]
        found = sure if len(sure) == 1 else found
    if len(found) > 1:
        raise UsageError(f"SRC {creq.src} is in several clusters ({', '.join(f[0] for f in found)})", input="SRC",
                         code="E245", hint="their address spaces overlap: explain with one source cluster's bundle")
    return found[0]


# --------------------------------------------------------------------------- the walk

def explain_path(clusters, creq: ClusterRequest, dumps: IngressDumps | None = None) -> PathExplanation:
    """The path of ``creq`` over ``clusters``; ``dumps`` holds the parsed captures of the receiving
    nodes (one per call when not given; pass one to share them between explains of one fleet)."""
    clusters = [(c.name, c.snapshot) if hasattr(c, "snapshot") else tuple(c) for c in clusters]
    fam = None
    for text in (creq.dst, creq.src):
        try:
            fam = parse_endpoint(text, "DST").__getitem__(0).version
            break
        except UsageError:
            continue
    src_name, src_snap, source = resolve_source_cluster(clusters, creq, fam)
    fam = ipaddress.ip_address(source.ip).version
    target = resolve_target(clusters, creq.dst, creq, src_name, fam)
    sub = replace(creq, dst=target.dst, dport=None if target.port is not None else creq.dport)
    if target.service_port is not None and creq.proto is None:
        sub = replace(sub, proto=target.service_port.protocol.lower())
    egress = explain_snapshot(src_snap, sub)
    ev = egress.base.evaluation
    seen_out = ev.source_ip_seen
    egress_hop = Hop("egress", src_name, egress.node, source.ip, target.dst, ev.masqueraded,
                     egress.base._rule_dict(ev.primary.deciding) if ev.agreed else None,
                     [*target.notes, egress.base.summary.split(" — ")[0]])
    path = [egress_hop]
    snaps = dict(clusters)
    # the same cluster, or outside every cluster: today's answer
    if target.cluster is None or target.cluster == src_name:
        if target.cluster is None:
            path.append(_network_hop(src_name, src_snap, None, None, egress, target, seen_out))
            why = egress.base.summary if seen_out is not None else "undecided: " + egress.base.summary
            return PathExplanation(egress, src_name, target, path, Seen(seen_out, None, None, why))
        candidates = []
        reasons = []
        for o in ev.outcomes:
            if o.kind in ("dropped",):
                continue
            if target.kind in ("service", "lb", "external-ip") and o.dnat is None:
                why = (f"no rule on node {egress.node} DNATs {target.dst} ({target.how}): kube-proxy's rules for it "
                       "are not in the capture (kube-proxy in IPVS mode or an eBPF dataplane?), so no endpoint is "
                       "known")
                reasons.append(why)
                cand = {"node": egress.node, "ip": None, "endpoint": None}
                if cand not in candidates:
                    candidates.append(cand)
                continue
            pod = _pod_of(src_snap, o.destination)
            endpoint = f"{pod.namespace}/{pod.name}" if pod is not None else None
            cand = {"node": egress.node, "ip": o.source_ip_seen, "endpoint": endpoint}
            if cand in candidates:
                continue
            candidates.append(cand)
            path.append(Hop("endpoint", src_name, pod.node if pod is not None else None, o.source_ip_seen,
                            _with_port(o.destination, o.dport), False, None,
                            [f"{endpoint or o.destination} receives it from {o.source_ip_seen or 'an undecided source'}"]))
        eps = {c["endpoint"] for c in candidates}
        endpoint = next(iter(eps)) if len(eps) == 1 else None
        if reasons:
            return PathExplanation(egress, src_name, target, path,
                                   Seen(None, src_name, None, "undecided: " + "; ".join(dict.fromkeys(reasons)),
                                        candidates))
        return PathExplanation(egress, src_name, target, path,
                               Seen(seen_out, src_name, endpoint, egress.base.summary, candidates))
    dst_snap = snaps[target.cluster]
    net = _network_hop(src_name, src_snap, target.cluster, dst_snap, egress, target, seen_out)
    path.append(net)
    nodes, node_why = _receiving_nodes(target, dst_snap)
    ingress: list[IngressHop] = []
    candidates: list[dict] = []
    reasons: list[str] = []
    blocked = _blocked(src_snap, target)
    if seen_out is None:
        reasons.append(f"the source leaving {src_name} is not decided ({egress.base.summary})")
    elif blocked is not None:
        reasons.append(blocked)
    elif nodes is None:
        reasons.append(node_why)
    else:
        dumps = dumps if dumps is not None else IngressDumps()   # captures alike: one parse
        pod_of = _pod_finder(dst_snap)
        for node in nodes:
            hop = ingress_on_node(dst_snap, node, seen_out, target.dst, sub.proto, dumps)
            ingress.append(hop)
            path.append(Hop("ingress", target.cluster, node, seen_out, target.dst, hop.masqueraded,
                            hop.deciding_rule, [node_why, hop.why] + hop.notes[:4]))
            if not hop.candidates:
                candidates.append({"node": node, "ip": None, "endpoint": None})
                reasons.append(hop.why)
                continue
            for c in hop.candidates:
                if c.kind == "dropped":
                    continue
                pod = pod_of(c.endpoint_ip) if c.endpoint_ip else None
                endpoint = f"{pod.namespace}/{pod.name}" if pod is not None else None
                if c.dnat is None and pod is None and target.kind != "node":
                    reasons.append(f"on node {node} no rule DNATs {target.dst} and no pod has {c.endpoint_ip}")
                    candidates.append({"node": node, "ip": None, "endpoint": None})
                    continue
                cand = {"node": node, "ip": c.seen_ip, "endpoint": endpoint}
                if cand not in candidates:
                    candidates.append(cand)
                path.append(Hop("endpoint", target.cluster, pod.node if pod is not None else None, c.seen_ip,
                                c.endpoint or target.dst, False, None,
                                [f"{endpoint or c.endpoint} receives it from {c.seen_ip or 'an undecided source'}"
                                 + (f" (via node {node})" if len(nodes) > 1 else "")]))
    ips = {c["ip"] for c in candidates}
    eps = {c["endpoint"] for c in candidates}
    ip = next(iter(ips)) if len(ips) == 1 and None not in ips and not reasons else None
    endpoint = next(iter(eps)) if len(eps) == 1 else None
    why = _why(target, ingress, candidates, ip, reasons, node_why)
    seen = Seen(ip, target.cluster, endpoint, why, candidates)
    return PathExplanation(egress, src_name, target, path, seen, ingress)


def _with_port(ip: str, port: int | None) -> str:
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _pod_of(snapshot, ip: str):
    return _pod_finder(snapshot)(ip)


def _pod_finder(snapshot):
    """``ip -> pod`` over the snapshot's live pods (one pass over them, however many lookups):
    the first pod not on the host network with that IP, else the first one."""
    by_ip: dict[str, list] = {}
    for p in snapshot.workloads:
        if (p.phase or "").lower() in ("succeeded", "failed"):
            continue
        for ip in dict.fromkeys(p.pod_ips):
            by_ip.setdefault(ip, []).append(p)

    def find(ip: str):
        live = by_ip.get(ip) or []
        return next((p for p in live if not p.host_network), live[0] if live else None)
    return find


def _why(target: Target, ingress: list[IngressHop], candidates: list[dict], ip, reasons: list[str], node_why: str) -> str:
    if reasons and ip is None and not ingress:
        return "; ".join(dict.fromkeys(reasons))
    policy = ""
    if target.service is not None and target.kind in ("lb", "node-port", "external-ip"):
        etp = target.service.external_traffic_policy or "Cluster (not written: the API server's default)"
        policy = f"{target.service.ref} has externalTrafficPolicy {etp}: "
    if ip is not None:
        hops = [h for h in ingress if h.masqueraded]
        if hops:
            return policy + f"the receiving node masquerades it to {ip} ({hops[0].why})"
        return policy + f"no node on the way rewrites the source: {ip} arrives ({ingress[0].why if ingress else ''})"
    if reasons:
        return policy + "undecided: " + "; ".join(dict.fromkeys(reasons))
    distinct = sorted({c["ip"] for c in candidates if c["ip"]})
    dropped = [h for h in ingress if h.candidates and all(c.kind == "dropped" for c in h.candidates)]
    if not distinct and dropped:
        return policy + "nothing arrives: " + "; ".join(f"on node {h.node}: {h.why}" for h in dropped[:3])
    if not distinct:
        return policy + "no candidate endpoint"
    listed = ", ".join(f"{c['ip']} via {c['node']}" + (f" to {c['endpoint']}" if c.get('endpoint') else "")
                       for c in candidates[:8])
    if len(ingress) > 1 and all(h.masqueraded for h in ingress):
        return policy + f"each receiving node masquerades it to its own address, so the source is the node the " \
                        f"load balancer picks ({node_why}): {listed}"
    return policy + f"the source differs by the node or endpoint ({node_why}): {listed}"


def _receiving_nodes(target: Target, snapshot) -> tuple[list[str] | None, str]:
    """The nodes of the destination cluster that receive the packet, and why those."""
    if target.kind in ("node-port", "node"):
        return [target.node], f"{target.ip} is node {target.node}"
    if target.kind == "pod":
        return ([target.node], f"{target.ip} is a pod on node {target.node}") if target.node else (
            None, f"the node of pod {target.ip} is not known")
    svc = target.service
    linux = [n.name for n in snapshot.nodes if (n.os or "linux").lower() == "linux" and n.ready is not False]
    if not linux:
        linux = sorted(snapshot.captures)
    if not linux:
        return None, "the destination cluster's nodes are not known (no nodes.yaml, no captures)"
    if svc is None or svc.external_traffic_policy != "Local":
        return linux, (f"the load balancer sends to every node (externalTrafficPolicy "
                       f"{(svc.external_traffic_policy if svc is not None else None) or 'Cluster'}: every node passes "
                       "its health probe)")
    if getattr(snapshot, "endpointslices", None) is None:
        why = snapshot.missing.get("endpointslices") or "endpointslices.yaml is not in the bundle"
        return None, (f"{svc.ref} is externalTrafficPolicy Local: only nodes with a ready local endpoint receive it, "
                      f"and the EndpointSlices are not known ({why})")
    local = []
    for ep in _index(snapshot).endpoints_of(svc):
        if ep.ready is not False and ep.node_name and ep.node_name not in local:
            local.append(ep.node_name)
    if not local:
        return [], f"{svc.ref} is externalTrafficPolicy Local and has no ready endpoint: no node passes the probe"
    return local, (f"externalTrafficPolicy Local: only the nodes with a ready endpoint of {svc.ref} pass the load "
                   f"balancer's health probe ({', '.join(local)})")


def _blocked(src_snap, target: Target) -> str | None:
    """Why nothing reaches ``target`` from the source's VNet (a peering that is not Connected), or None."""
    peer = next((p for p in network_map(src_snap).places_of_ip(target.ip) if p.kind == "peered-vnet"), None)
    if peer is None or peer.peering is None or not peer.peering.state:
        return None
    if peer.peering.state.lower() == "connected":
        return None
    return (f"the peering {peer.peering.name} to {peer.peering.remote_vnet_name or '?'} is {peer.peering.state}: "
            "only a Connected peering carries traffic, so nothing arrives")


def _network_hop(src_name: str, src_snap, dst_name: str | None, dst_snap, egress: ClusterExplanation, target: Target,
                 seen_out: str | None) -> Hop:
    """From the source cluster's VNet to the destination: which peering, and does the source
    the network carries route back."""
    notes: list[str] = []
    nmap = network_map(src_snap)
    places = nmap.places_of_ip(target.ip)
    top = places[0]
    peer = next((p for p in places if p.kind == "peered-vnet"), None)
    if peer is not None and peer.peering is not None:
        p = peer.peering
        notes.append(f"{src_name} → {dst_name or target.ip}: VNet {peer.vnet} to {p.remote_vnet_name or '?'} over "
                     f"peering {p.name} ({p.state or 'state unknown'}"
                     + (f", {p.sync_level}" if p.sync_level else "")
                     + (", uses the remote gateway" if p.use_remote_gateways else "")
                     + (", allows gateway transit" if p.allow_gateway_transit else "") + ")")
    else:
        notes.append(f"{target.ip} is {top.short}" + (f" ({'; '.join(nmap.missing[:2])} missing)"
                                                       if nmap.missing else ""))
    if seen_out is not None:
        if dst_snap is not None:
            back = network_map(dst_snap).places_of_ip(seen_out)
            bpeer = next((p for p in back if p.kind == "peered-vnet"), None)
            if bpeer is not None and bpeer.peering is not None:
                notes.append(f"the way back: {dst_name}'s VNet {bpeer.vnet} routes {seen_out} over peering "
                             f"{bpeer.peering.name} ({bpeer.peering.state or 'state unknown'})")
            elif any(p.kind in ("node", "pod", "node-subnet", "pod-subnet", "vnet") for p in back):
                notes.append(f"{seen_out} is {back[0].short} in {dst_name}'s own VNet")
            else:
                notes.append(f"{dst_name} knows no route back to {seen_out} ({back[0].short})")
        mode = egress.mode
        if seen_out == egress.source.ip and egress.source.kind == "pod" and mode.pod_ips_routable_outside is False:
            notes.append(f"{seen_out} is a pod IP of {src_name} ({mode.name}): routable only inside that cluster, "
                         "so the reply will not come back")
        if egress.reply is not None:
            ok, why = egress.reply
            notes.append({True: "the reply comes back: ", False: "the reply will not come back: ",
                          None: "whether the reply comes back is unknown: "}[ok] + why)
    return Hop("network", src_name, None, seen_out, target.dst, False if seen_out is not None else None, None, notes)


__all__ = ["Hop", "PathExplanation", "Seen", "Target", "explain_path", "resolve_target"]
