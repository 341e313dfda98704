"""Explain a flow on a cluster snapshot: the pod's node, its capture, and what only the snapshot knows.

``explain_snapshot(snapshot, ClusterRequest)`` resolves SRC (a pod IP, ``namespace/pod``, or a
node address) to its node, evaluates that node's captured ``iptables-save`` with the node's
addresses (InternalIP as MASQUERADE's source, ``ip -o addr`` for the local addresses) through
the same evaluator as ``explain --iptables``, and adds:

* provenance of the deciding CIDR: the ConfigMap, key and line that put it in the agent's
  effective config (:mod:`masqctl.analysis.agentconfig`);
* what the destination is on the network (:mod:`masqctl.analysis.network`);
* whether the reply can come back to the source the destination sees (``reply_path``), given
  who masquerades in this mode (:mod:`masqctl.analysis.mode`);
* IMDS (169.254.169.254) and Azure DNS/wireserver (168.63.129.16) special cases.

Without a capture of the node, the rules rendered from the agent's effective config are
evaluated instead — a what-if, labelled as such.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

from masqctl.analysis.dataplanes import dataplane_of
from masqctl.analysis.agentconfig import primary_agent
from masqctl.analysis.cilium import bpf_context
from masqctl.analysis.dumpfacts import nat_limit, walk_gap
from masqctl.analysis.findings import agent_unknown
from masqctl.analysis.explain import Explanation, Request, parse_endpoint, summarize
from masqctl.analysis.mode import MasqMode, detect_mode
from masqctl.analysis.nftfacts import nft_facts
from masqctl.analysis.network import IMDS, WIRESERVER, NetworkMap, Place, network_map
from masqctl.cluster.model import ClusterSnapshot, MissingKey, Node, WorkloadPod
from masqctl.errors import UsageError

# chain name prefixes of the other systems that write nat rules on AKS nodes
_OWNERS = (("KUBE-", "kube-proxy"), ("cali-", "Calico"), ("SWIFT-", "Azure CNS (pod subnet)"),
           ("CILIUM_", "Cilium"), ("AZURE-", "Azure CNI"))


@dataclass
class ClusterRequest:
    """One question about a flow on a cluster, as plain values."""

    src: str                               # pod IP[:PORT], namespace/pod, or a node address
    dst: str                               # IP[:PORT], [IPv6]:PORT, or namespace/pod
    proto: str | None = None
    dport: int | None = None
    sport: int | None = None
    node: str | None = None                # the node to evaluate on (default: the source pod's node)
    from_host: bool = False
    local_addresses: list[str] = field(default_factory=list)   # added to the node's own
    node_ip: str | None = None             # overrides the node's InternalIP as MASQUERADE's source
    out_interface: str | None = None
    in_interface: str | None = None
    ipset: str | None = None
    bridged: bool | None = None
    # a planned change (``explain --add CIDR`` / ``--with-change FILE``): an ``analysis.plan.ApplyRequest``;
    # the node's rules are evaluated with the agent's chain as the planned config renders it
    change: object | None = None
    change_target: tuple[str, str] | None = None    # (namespace, name) a ConfigMap manifest given names


@dataclass
class Endpoint:
    """SRC or DST as resolved on the snapshot."""

    ip: str
    port: int | None
    kind: str                              # "pod" | "host" (a node address / hostNetwork pod) | "address"
    node: str | None = None
    pod: WorkloadPod | None = None
    how: str = ""                          # how it was resolved, for the output

    def to_dict(self) -> dict:
        return {"ip": self.ip, "port": self.port, "kind": self.kind, "node": self.node,
                "pod": f"{self.pod.namespace}/{self.pod.name}" if self.pod else None, "resolved": self.how}


@dataclass
class ClusterExplanation:
    base: Explanation
    source: Endpoint
    node: str
    mode: MasqMode
    what_if: bool
    rules_from: str
    destination: str                       # the destination the places describe (post-DNAT when known)
    destination_places: list[Place]
    reply: tuple[bool | None, str] | None
    provenance: dict | None
    notes: list[str]
    snapshot_source: str
    change: dict | None = None             # the planned change evaluated (``--add``/``--with-change``)
    verdict: str | None = None             # the dataplane's own sentence, before provenance, destination, reply

    @property
    def summary(self) -> str:
        return self.base.summary

    def to_dict(self) -> dict:
        doc = self.base.to_dict()
        comes_back, reason = self.reply if self.reply is not None else (None, "no source address to reply to")
        doc.update({
            "node": self.node,
            "source": self.source.to_dict(),
            "what_if": self.what_if,
            "rules_from": self.rules_from,
            "mode": self.mode.to_dict(),
            "destination_places": [p.to_dict() for p in self.destination_places],
            "destination_checked": self.destination,
            "reply": {"comes_back": comes_back, "to": self.base.evaluation.source_ip_seen, "reason": reason},
            "provenance": self.provenance,
            "snapshot": self.snapshot_source,
            "change": self.change,
        })
        return doc


# --------------------------------------------------------------------------- resolving SRC and DST

def _looks_like_pod(text: str) -> bool:
    t = text.strip()
    return "/" in t and not t.startswith("[") and _ip_or_none(t.split("/", 1)[0]) is None


def _ip_or_none(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _pick_ip(ips: tuple[str, ...], family: int | None) -> str | None:
    valid = [ip for ip in ips if _ip_or_none(ip) is not None]
    if family is not None:
        valid = [ip for ip in valid if ipaddress.ip_address(ip).version == family]
    else:
        valid.sort(key=lambda ip: ipaddress.ip_address(ip).version)   # IPv4 first
    return valid[0] if valid else None


def _pods_hint(snapshot: ClusterSnapshot) -> str:
    if MissingKey.PODS in snapshot.missing:
        return f"pods were not read: {snapshot.missing[MissingKey.PODS]}"
    return f"{len(snapshot.workloads)} pods were read from {snapshot.source}"


def resolve_pod(snapshot: ClusterSnapshot, text: str, name: str, family: int | None) -> Endpoint:
    ns, _, pod_name = text.strip().partition("/")
    if not ns or not pod_name or "/" in pod_name:
        raise UsageError(f"{text!r} is not namespace/pod", input=name, code="E217")
    pod = next((p for p in snapshot.workloads if p.namespace == ns and p.name == pod_name), None)
    if pod is None:
        raise UsageError(f"pod {ns}/{pod_name} is not in the snapshot ({_pods_hint(snapshot)})", input=name,
                         code="E217", hint="check the name with kubectl get pod -n " + ns)
    if pod.node is None:
        raise UsageError(f"pod {ns}/{pod_name} is not scheduled to a node (phase {pod.phase or 'unknown'})",
                         input=name, code="E218")
    ip = _pick_ip(pod.pod_ips, family)
    if ip is None:
        fam = f"IPv{family} address" if family else "IP address"
        raise UsageError(f"pod {ns}/{pod_name} has no {fam} (phase {pod.phase or 'unknown'}, IPs: "
                         f"{', '.join(pod.pod_ips) or 'none'})", input=name, code="E218")
    if pod.host_network:
        return Endpoint(ip, None, "host", pod.node, pod, f"hostNetwork pod {ns}/{pod_name} on node {pod.node}: "
                        "its traffic comes from the node itself")
    return Endpoint(ip, None, "pod", pod.node, pod, f"pod {ns}/{pod_name} on node {pod.node}")


def _node_of_ip(snapshot: ClusterSnapshot, ip) -> Node | None:
    for n in snapshot.nodes:
        addrs = {n.internal_ip} | {a for _, a in n.addresses}
        if any(_ip_or_none(a) == ip for a in addrs if a):
            return n
    return None


def node_by_name(snapshot: ClusterSnapshot, text: str, name: str, family: int | None) -> Endpoint | None:
    """``NODE`` or ``NODE:PORT``: a node of ``nodes.yaml`` (the Node objects) by name, as its
    InternalIP (of ``family`` when given); None when no node has that name."""
    t = text.strip()
    host, port = t, None
    if ":" in t and t.rsplit(":", 1)[1].isdigit() and snapshot.node(t) is None:
        host, port_text = t.rsplit(":", 1)
        port = int(port_text)
    node = snapshot.node(host) if host and _ip_or_none(host) is None else None
    if node is None:
        return None
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"{text!r}: port {port} is outside 1-65535", input=name, code="E210")
    ips = [ip for t_, ip in node.addresses if t_ == "InternalIP"] or ([node.internal_ip] if node.internal_ip else [])
    ip = _pick_ip(tuple(ips), family)
    if ip is None:
        fam = f"IPv{family} " if family else ""
        raise UsageError(f"node {host} has no {fam}InternalIP in the snapshot (addresses: "
                         f"{', '.join(a for _, a in node.addresses) or 'none'})", input=name, code="E718",
                         hint="give the node's address instead")
    if (node.os or "linux").lower() != "linux" and name == "SRC":
        raise UsageError(f"node {host} runs {node.os}, where no ip-masq agent runs; masqctl models Linux nodes",
                         input=name, code="E222")
    return Endpoint(ip, port, "host" if name == "SRC" else "address", node.name, None,
                    f"node {node.name} (InternalIP {ip})" + (": traffic from the node itself" if name == "SRC" else ""))


def _named(snapshot: ClusterSnapshot, text: str) -> bool:
    """SRC/DST names something (``namespace/pod`` or a node) rather than an address."""
    t = text.strip()
    host = t.rsplit(":", 1)[0] if ":" in t and t.rsplit(":", 1)[1].isdigit() and snapshot.node(t) is None else t
    return _looks_like_pod(t) or (_ip_or_none(host) is None and snapshot.node(host) is not None)


def resolve_source(snapshot: ClusterSnapshot, text: str, family: int | None, node: str | None) -> Endpoint:
    """SRC: ``namespace/pod``, a pod IP (its pod and node), a node address or a node's name (from
    the host)."""
    if _looks_like_pod(text):
        return resolve_pod(snapshot, text, "SRC", family)
    by_name = node_by_name(snapshot, text, "SRC", family)
    if by_name is not None:
        return by_name
    addr, port = parse_endpoint(text, "SRC")
    running = [p for p in snapshot.workloads if not p.host_network and any(_ip_or_none(i) == addr
                                                                           for i in p.pod_ips)]
    live = [p for p in running if (p.phase or "").lower() not in ("succeeded", "failed")] or running
    if len(live) > 1:
        names = ", ".join(f"{p.namespace}/{p.name}" for p in live[:5])
        raise UsageError(f"{addr} is the address of several pods ({names})", input="SRC", code="E220",
                         hint="give SRC as namespace/pod")
    n = _node_of_ip(snapshot, addr)
    if live:
        pod = live[0]
        return Endpoint(str(addr), port, "pod", pod.node, pod,
                        f"pod IP of {pod.namespace}/{pod.name} on node {pod.node}")
    if n is not None:
        return Endpoint(str(addr), port, "host", n.name, None, f"an address of node {n.name}: traffic from the "
                        "node itself (hostNetwork pods, kubelet)")
    if node is not None:
        return Endpoint(str(addr), port, "address", node, None, f"no pod has {addr}; evaluated on node {node} (--node)")
    for n in snapshot.nodes:   # kubenet/overlay: the node whose pod CIDR holds the address
        for cidr in n.pod_cidrs:
            try:
                if addr in ipaddress.ip_network(cidr, strict=False):
                    return Endpoint(str(addr), port, "pod", n.name, None,
                                    f"no pod in the snapshot has {addr}; it is in node {n.name}'s pod CIDR {cidr}")
            except ValueError:
                continue
    raise UsageError(f"{addr} is no pod, node or node pod CIDR address in the snapshot ({_pods_hint(snapshot)}), "
                     "so its node is unknown", input="SRC", code="E219",
                     hint="give SRC as namespace/pod, or name the node with --node")


def resolve_destination(snapshot: ClusterSnapshot, text: str, family: int | None) -> Endpoint:
    if _looks_like_pod(text):
        ep = resolve_pod(snapshot, text, "DST", family)
        return ep
    by_name = node_by_name(snapshot, text, "DST", family)
    if by_name is not None:
        return by_name
    addr, port = parse_destination(text)
    return Endpoint(str(addr), port, "address", None, None, "")


def parse_destination(text: str):
    """DST as an address, once no name of the snapshot matched it: the error says which names
    would have (E210)."""
    try:
        return parse_endpoint(text, "DST")
    except UsageError as exc:
        if exc.code != "E210" or "is not an IP address" not in exc.message:
            raise
        raise UsageError(f"{text!r} is not an IP address, nor a node, pod or Service of the snapshot", input="DST",
                         code="E210", hint="give IP[:PORT], a node name, NAMESPACE/POD, NAMESPACE/SERVICE[:PORT] or a "
                                           "Service's DNS name (SERVICE.NAMESPACE[.svc[.cluster.local]])") from None


# --------------------------------------------------------------------------- provenance

_NFT_HOOK = re.compile(r": table (\S+) (\S+) chain ")


def _owner(chain: str) -> str | None:
    for prefix, who in _OWNERS:
        if chain.startswith(prefix):
            return who
    return None


def _dest_cidr(text: str) -> tuple[str | None, bool]:
    from masqctl.netfilter.dump import parse_rule

    rule = parse_rule("", 0, 0, text)
    for m in rule.matches:
        if m.module == "-d":
            return m.value, m.negated
    return None, False


def _provenance(ex: Explanation, view, node: str, what_if: bool, unknown: str | None = None) -> dict | None:
    """Where the deciding rule comes from, as the operator finds it. ``unknown``: why the agent
    cannot be told (its DaemonSet was not gathered)."""
    ev = ex.evaluation
    if not ev.agreed:
        return None
    step = ev.primary.deciding
    if step is None or step.index is None:    # the walk ended at a built-in chain's policy
        where = f" of nat {step.chain}" if step is not None else ""
        return {"kind": "policy", "chain": step.chain if step is not None else None, "sources": [],
                "text": f"no nat rule applies (the policy ACCEPT{where} keeps the source)"}
    prov = ex.provenance.get((step.chain, step.index))
    agent_chain = view.chain if view is not None else "IP-MASQ-AGENT"
    if prov is not None and (prov.cidr or prov.kind == "link-local"):   # what-if: the rendered rule's line
        sources = [prov.describe()] if (prov.source or prov.file) else []
        if prov.kind == "link-local":
            text = f"the link-local RETURN exists because masqLinkLocal is false ({prov.describe()})"
        elif prov.cidr:
            text = f"CIDR {prov.cidr} comes from {prov.describe()}"
        else:
            text = f"the agent's {prov.kind} rule"
        return {"kind": prov.kind, "chain": step.chain, "cidr": prov.cidr, "sources": sources, "text": text}
    if step.chain != agent_chain or _NFT_HOOK.search(step.hook or ""):
        table = _NFT_HOOK.search(step.hook or "")
        if table is not None:      # a chain of a native nftables table: its table names the owner
            from masqctl.analysis.nftfacts import owner_named   # nftables facts only here
            who = owner_named(table.group(1), table.group(2))
            where = f" of table {table.group(1)} {table.group(2)}"
        else:
            who, where = _owner(step.chain), ""
        return {"kind": "other", "chain": step.chain, "cidr": None, "sources": [],
                "text": f"rule {step.index} of chain {step.chain}{where}" + (f", written by {who}" if who else "")
                + ", not by the masquerade agent"}
    cfg = view.config if view is not None else None
    if step.action.endswith("MASQUERADE") or "MASQUERADE" in step.action:
        listed = ", ".join(cfg.cidrs(ev.packet.dst.version)) if cfg is not None else None
        if cfg is None and unknown:
            text = (f"the catch-all MASQUERADE of node {node}'s {step.chain}: {ev.primary.destination} matches none "
                    f"of its RETURN rules; the agent is unknown ({unknown}), so its effective config is not known")
        else:
            text = (f"the agent's catch-all MASQUERADE: {ev.primary.destination} is in none of the effective "
                    f"non-masquerade CIDRs" + (f" ({listed})" if listed else ""))
        return {"kind": "masquerade", "chain": step.chain, "cidr": None, "sources": [], "text": text}
    cidr, negated = _dest_cidr(step.text)
    if cidr is None or negated:
        return {"kind": "rule", "chain": step.chain, "cidr": None, "sources": [], "text": f"{step.chain} rule "
                f"{step.index}"}
    net = ipaddress.ip_network(cidr, strict=False)
    if view is None:
        return {"kind": "cidr", "chain": step.chain, "cidr": cidr, "sources": [],
                "text": f"CIDR {cidr} is in node {node}'s chain; " + (
                    f"where from is not known: the agent is unknown ({unknown})" if unknown else
                    "no agent DaemonSet in the snapshot says where from")}
    if cfg is None:
        why = view.error.one_line() if view.error is not None else "the agent's config cannot be computed"
        return {"kind": "cidr", "chain": step.chain, "cidr": cidr, "sources": [],
                "text": f"CIDR {cidr} is in node {node}'s chain, but the effective config is unknown ({why})"}
    if str(net) == "169.254.0.0/16" or str(net) == "fe80::/10":
        setting = cfg.masq_link_local if net.version == 4 else cfg.masq_link_local_ipv6
        if setting.value is False:
            sources = [view.source_of(o) for o in setting.origins]
            return {"kind": "link-local", "chain": step.chain, "cidr": cidr, "sources": sources,
                    "text": "the link-local RETURN exists because masqLinkLocal is false"
                    + (f" ({sources[0]})" if sources else " (the default)")}
    for entry in cfg.non_masquerade_cidrs:
        try:
            same = ipaddress.ip_network(entry.cidr, strict=False) == net
        except ValueError:
            same = False
        if same:
            sources = [view.source_of(o) for o in entry.origins]
            text = f"CIDR {cidr} comes from {sources[0]}" if sources else f"CIDR {cidr} is in the effective config"
            if len(sources) > 1:
                text += " (also " + "; ".join(sources[1:]) + ")"
            return {"kind": "cidr", "chain": step.chain, "cidr": cidr, "sources": sources, "text": text}
    return {"kind": "drift", "chain": step.chain, "cidr": cidr, "sources": [],
            "text": f"CIDR {cidr} is in node {node}'s chain but not in the effective config: the node runs rules "
                    "its ConfigMaps no longer say (drift — see masqctl inspect)"}


# --------------------------------------------------------------------------- the explanation

def _node_facts(snapshot: ClusterSnapshot, node: Node | None, capture, creq: ClusterRequest) -> dict:
    locals_ = list(creq.local_addresses)
    node_ip = creq.node_ip
    if node is not None:
        if node_ip is None and node.internal_ip and _ip_or_none(node.internal_ip) is not None:
            node_ip = node.internal_ip
        for t, a in node.addresses:
            if t == "InternalIP" and _ip_or_none(a) is not None and a not in locals_:
                locals_.append(a)
    facts = {"local_addresses": locals_, "node_ip": node_ip}
    if capture is not None and capture.ip_addr:
        facts["ip_addr_text"] = capture.ip_addr
        facts["ip_addr_label"] = f"nodes/{capture.node}/ip-addr.txt"
    return facts


def rest_on_capture(ex: Explanation, label: str) -> None:
    """Null the verdict of every path of ``ex`` that rests on rules its capture does not show.

    The completeness ``inspect`` reports for a capture (``dumpfacts``: cut short, a grep fragment,
    single chains of ``iptables -S``) decides here too: a path that ends at a rule the capture
    shows whole keeps its verdict; one that reached the end of a chain whose end is not shown
    (``dumpfacts.walk_gap``) becomes unknown with that reason, never "no rule applies"."""
    dump = ex.dump
    if dump is None or nat_limit(dump) is None:
        return
    outcomes = []
    gaps: list[str] = []
    for o in ex.evaluation.outcomes:
        why = walk_gap(dump, o.trace) if o.kind != "unknown" else None
        if why is not None:
            gaps.append(why)
            o = replace(o, kind="unknown", masqueraded=None, source_ip_seen=None, reason=f"{label}: {why}")
        outcomes.append(o)
    if not gaps:
        if any(o.kind == "unknown" for o in outcomes) and ex.evaluation.masqueraded is None:
            # the evaluator itself stopped at the capture's end (a cut it sees): say what inspect says
            ex.notes.append(f"{label} is incomplete ({nat_limit(dump)}), so the verdict is not known (inspect "
                            "reports the same capture as incomplete) — capture the whole `iptables-save` of the node")
        return
    ex.evaluation = replace(ex.evaluation, outcomes=outcomes)
    ex.notes.append(f"{label} is incomplete, so the verdict is not known (inspect reports the same capture as "
                    "incomplete) — capture the whole `iptables-save` of the node")
    ex.summary = summarize(ex)


def explain_snapshot(snapshot: ClusterSnapshot, creq: ClusterRequest) -> ClusterExplanation:
    """Explain ``creq`` on ``snapshot`` (see the module docstring)."""
    # families: an address decides; names take the other side's family, IPv4 first
    fam = None
    for text in (creq.dst, creq.src):
        if not _named(snapshot, text):
            fam = parse_endpoint(text, "DST" if text is creq.dst else "SRC")[0].version
            break
    if creq.node is not None and snapshot.node(creq.node) is None and creq.node not in snapshot.captures:
        raise UsageError(f"node {creq.node!r} is not in the snapshot ({len(snapshot.nodes)} nodes read)",
                         input="--node", code="E221")
    source = resolve_source(snapshot, creq.src, fam, creq.node)
    fam = ipaddress.ip_address(source.ip).version
    dest = resolve_destination(snapshot, creq.dst, fam)
    node_name = creq.node or source.node
    if node_name is None:
        raise UsageError(f"the node of {creq.src} is unknown", input="SRC", code="E219",
                         hint="name the node with --node")
    node = snapshot.node(node_name)
    if node is not None and (node.os or "").lower() == "windows":
        raise UsageError(f"{source.how} — node {node_name} runs Windows, where no ip-masq agent runs "
                         "(the CNI's OutBoundNAT exception list decides); masqctl models Linux nodes",
                         input="SRC", code="E222")
    from_host = creq.from_host or source.kind == "host"
    view = primary_agent(snapshot) if snapshot.daemonsets else None
    change = None
    if creq.change is not None:
        view, change = _planned_view(snapshot, creq)
    mode = detect_mode(snapshot, node_name)
    nmap = network_map(snapshot)
    notes: list[str] = []
    if node_name in snapshot.unlisted_captures():
        listing = "nodes.yaml" if snapshot.source.startswith("bundle") else "the Node objects"
        notes.append(f"node {node_name} has a capture but {listing} does not list it (renamed or deleted since?): "
                     "its capture is used; its labels, pool and addresses are not known")

    capture = snapshot.captures.get(node_name)
    dump_text = None
    if capture is not None:
        dump_text = capture.iptables_save if fam == 4 else capture.ip6tables_save
    piece = "iptables-save" if fam == 4 else "ip6tables-save"
    dst_text = f"[{dest.ip}]" if fam == 6 and dest.port is not None else dest.ip
    if dest.port is not None:
        dst_text += f":{dest.port}"
    src_text = source.ip if source.port is None else (f"[{source.ip}]:{source.port}" if fam == 6
                                                      else f"{source.ip}:{source.port}")
    req = Request(src=src_text, dst=dst_text, proto=creq.proto, dport=creq.dport, sport=creq.sport,
                  from_host=from_host, out_interface=creq.out_interface, in_interface=creq.in_interface,
                  ipset=creq.ipset, bridged=creq.bridged, **_node_facts(snapshot, node, capture, creq))
    what_if = False
    if dump_text:
        req.iptables = f"nodes/{node_name}/{piece}.txt"
        req.iptables_text = dump_text
        req.iptables_label = f"node {node_name}'s {piece} ({capture.via or 'capture'})"
        rules_from = f"the {piece} captured on node {node_name}" + (
            f" at {capture.captured_at}" if capture.captured_at else "")
        if change is not None:
            if view.config is None or view.options is None:
                raise UsageError("the planned config cannot be computed: " + "; ".join(view.notes),
                                 input=change["request"], code="E717")
            req.config = view.config
            req.agent_options = view.options
            req.config_label = f"the planned config of {view.daemonset.ref}"
            req.source_of = view.source_of
            rules_from += f", its {view.chain} chain as the planned config renders it ({change['request']})"
    else:
        why = None
        if capture is not None:
            why = capture.errors.get(piece) or capture.errors.get("node")
        elif MissingKey.CAPTURES in snapshot.missing:
            why = snapshot.missing[MissingKey.CAPTURES]
        no_capture = f"no {piece} capture of node {node_name}" + (f" ({why})" if why else "")
        nft_alone = view is None and capture is not None and bool(capture.nft_ruleset or capture.nft_ruleset_text)
        if nft_alone:
            # a node whose masquerading lives in native nftables tables (kube-proxy nftables mode, kindnet):
            # its ruleset is what it runs; iptables-nft's own tables are in it too, iptables-legacy's are not
            rules_from = f"the nftables ruleset captured on node {node_name}"
            notes.append(f"{no_capture}: the node's nftables ruleset is evaluated alone (it lists iptables-nft's "
                         "tables too, whose xt rules it cannot show; rules of iptables-legacy are not in it)")
        elif view is None:
            unread = nft_facts(capture) if capture is not None else None
            nft_why = (f"; its nftables ruleset cannot be read ({unread.label}: {unread.unreadable}, {unread.code})"
                       if unread is not None and unread.unreadable is not None else "")
            raise UsageError(f"{no_capture}{nft_why}, and no masquerade agent DaemonSet in the snapshot: there are no "
                             "rules to evaluate", input=f"node {node_name}", code="E223",
                             hint="capture the node (masqctl collect, or iptables-save on the node) and use "
                             "--iptables FILE")
        if not nft_alone:
            if view.config is None or view.options is None:
                why_cfg = (view.error.one_line() if view.error is not None
                           else "; ".join(view.notes) or "unknown flavour")
                raise UsageError(f"{no_capture}, and the agent's effective config cannot be computed ({why_cfg}): "
                                 "nothing to evaluate", input=f"node {node_name}", code="E224",
                                 hint="inspect shows why; capture the node to see the rules it really runs")
            if fam == 6 and not view.options.enable_ipv6:
                raise UsageError(f"{no_capture}, and the agent runs without --enable-ipv6: it writes no IPv6 rules to "
                                 "evaluate", input="SRC", code="E225")
            what_if = True
            req.config = view.config
            req.agent_options = view.options
            req.config_label = f"the effective config of {view.daemonset.ref}"
            req.source_of = view.source_of
            rules_from = f"what-if: the rules {view.daemonset.ref} would write for its " + (
                f"planned config ({change['request']})" if change is not None else "effective config")
            notes.append(f"WHAT-IF: {no_capture}; evaluated the rules rendered from {view.daemonset.ref}'s effective "
                         "config instead — not what the node runs (stale or missing rules, kube-proxy and CNI rules "
                         "are not included)")
    if mode.snat_by == "cilium-bpf" and fam == 4:
        req.cilium = bpf_context(snapshot, node_name, source.ip, source.kind, source.node, dest.ip)
    nft_text = (capture.nft_ruleset or capture.nft_ruleset_text) if capture is not None else None
    if nft_text:        # native nftables tables: walked with the iptables rules, in hook/priority order
        form = "json" if capture.nft_ruleset else "txt"
        req.nft, req.nft_text = f"nodes/{node_name}/nft-ruleset.{form}", nft_text
        req.nft_label = f"node {node_name}'s nft ruleset ({capture.via or 'capture'})"
        if dump_text or what_if:
            rules_from += f", with the nftables ruleset captured on node {node_name}"
    dataplane = dataplane_of(mode)
    base = dataplane.verdict(req)
    if what_if:   # the WHAT-IF note says it, and --iptables is no option on a cluster
        base.notes = [n for n in base.notes if not n.startswith("what-if: rules rendered from ")]
    if dump_text:
        rest_on_capture(base, f"node {node_name}'s {piece}")
    if not nft_text and base.dump is not None:
        from masqctl.analysis.nftfacts import native_hints   # nftables facts only here
        nat = base.dump.table("nat")
        hints = native_hints(snapshot, node_name, set(nat.names()) if nat is not None else None,
                             nat is not None and not base.dump.fragment and not base.dump.uncommitted,
                             incompatible=base.dump.incompatible_tables)
        if hints:
            notes.append("the verdict may be incomplete (MQ025): native nftables tables may decide on this node and "
                         "the capture has no nftables ruleset — " + "; ".join(hints))
    ev = base.evaluation
    unknown = agent_unknown(snapshot) if view is None else None
    prov = _provenance(base, view, node_name, what_if, unknown)

    # what the destination is (after DNAT, when the paths agree on it)
    checked = dest.ip
    if ev.agreed and ev.primary.destination and ev.primary.destination != dest.ip:
        checked = ev.primary.destination
    places = nmap.places_of_ip(checked)
    reply = None
    if ev.source_ip_seen is not None:
        reply = nmap.reply_path(ev.source_ip_seen, checked, mode)

    # what an answer in this mode must say (the dataplane that decides here)
    caveat = dataplane.caveat(mode)
    if caveat:
        notes.append(caveat)
    if dest.ip == IMDS or checked == IMDS:
        notes.append("169.254.169.254 is Azure IMDS: it answers only the VM's own address, so a pod must reach it "
                     "masqueraded to the node IP (AKS's reconciled config sets masqLinkLocal: true for that)")
    if dest.ip == WIRESERVER or checked == WIRESERVER:
        notes.append("168.63.129.16 is Azure DNS and the wireserver: it answers addresses of the VNet; in pod-subnet "
                     "mode SWIFT-POSTROUTING SNATs DNS (port 53) to the node IP")
    if (ev.masqueraded and prov is not None and prov["kind"] == "masquerade" and mode.pod_ips_routable_outside
            and any(p.kind in ("peered-vnet", "vnet", "node-subnet", "pod-subnet") for p in places)
            and source.kind == "pod"):
        target = next(p for p in places if p.kind in ("peered-vnet", "vnet", "node-subnet", "pod-subnet"))
        aks = view is None or view.daemonset.kind == "azure-ip-masq-agent"
        where = (f"ConfigMap {snapshot.namespace}/azure-ip-masq-agent-config key ip-masq-agent"
                 if aks else f"{view.daemonset.ref}'s config")
        notes.append(f"pod IPs are routable in {target.short} ({mode.name}): to let it see the pod IP instead of the "
                     f"node IP, add {target.cidr} to nonMasqueradeCIDRs in {where}"
                     + (f" (`masqctl apply --goal preserve-source-ip --to {target.cidr}` plans it)" if aks else "")
                     + (f" (if the agent is AKS's azure-ip-masq-agent: it is unknown, {unknown})" if unknown else ""))
    if source.how:
        notes.insert(0, f"SRC {creq.src}: {source.how}")
    if dest.pod is not None or dest.how:
        notes.insert(1, f"DST {creq.dst}: {dest.how}")

    # the sentence: the evaluator's, plus provenance, the destination and the reply
    own_sentence = base.summary
    parts = [base.summary]
    if prov is not None and prov.get("sources") and not what_if:
        parts.append(prov["text"])
    elif prov is not None and prov["kind"] in ("drift", "other"):
        parts.append(prov["text"])
    parts.append(f"{checked} is {_place_phrase(places)}")
    if reply is not None:
        ok, why = reply
        verdict = {True: "the reply comes back", False: "the reply will not come back", None: "whether the reply "
                   "comes back is unknown"}[ok]
        if checked == IMDS and ok is False:
            verdict = "IMDS refuses it"
        parts.append(f"{verdict}: {why}")
    if change is not None:
        parts[0] = f"WITH THE CHANGE ({change['request']}): " + parts[0]
        notes.append(f"planned change of ConfigMap {change['configmap']} ({change['action']}): "
                     + ("; ".join(change["changes"]) or "nothing changes") + f"; the node's {view.chain} chain is "
                     "evaluated as the planned config renders it (the rest as captured); nothing is written — "
                     f"`{change['apply']}` plans and writes it")
    if what_if:
        parts[0] = "WHAT-IF (no capture of the node): " + parts[0]
    base.summary = " — ".join(parts)
    base.notes = notes + base.notes + [f"network: {m} missing" for m in nmap.missing[:3]]
    return ClusterExplanation(base, source, node_name, mode, what_if, rules_from, checked, places, reply, prov,
                              notes, snapshot.source, change, own_sentence)


def _planned_view(snapshot: ClusterSnapshot, creq: ClusterRequest):
    """The agent's config view after the planned change, and what the change is (as ``apply``
    plans it: the same validation, the same refusals)."""
    from masqctl.analysis.plan import plan_apply    # loaded only for a planned change

    plan = plan_apply(snapshot, creq.change)
    if creq.change_target is not None and creq.change_target != (plan.namespace, plan.name):
        ns, name = creq.change_target
        raise UsageError(f"the manifest is ConfigMap {ns}/{name}, but the agent reads {plan.ref}",
                         input=f"--with-change {creq.change.replacement.source}", code="E715",
                         hint="give the manifest `masqctl apply … -o yaml` prints, or the agent config text")
    change = creq.change
    given = change.replacement.source if change.replacement is not None else (
        change.from_file.name if change.from_file is not None else None)
    asked = f"--with-change {given}" if given is not None else change.describe()
    return plan.after, {"request": asked, "apply": f"masqctl apply {change.describe()}", "configmap": plan.ref,
                        "action": plan.action, "changes": list(plan.changes), "notes": list(plan.notes)}


def _place_phrase(places: list[Place]) -> str:
    first = places[0]
    if first.kind in ("pod", "node"):
        return first.short
    if first.kind == "internet":
        return "on the internet"
    if first.kind in ("private", "imds", "wireserver"):
        return first.short if first.kind == "private" else first.label
    article = "the " if first.kind in ("service-cidr", "pod-cidr", "node-subnet", "pod-subnet") else ""
    return f"in {article}{first.label}"


__all__ = ["ClusterRequest", "ClusterExplanation", "Endpoint", "explain_snapshot", "resolve_source",
           "resolve_destination", "NetworkMap"]
