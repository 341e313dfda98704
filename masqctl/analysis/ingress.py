"""A packet arriving at a node from outside, through that node's captured rules.

The egress question (``analysis.explain``) asks what the source node does with a packet a pod
sends. This asks the other end: a packet that arrives on the destination node's NIC
(``--in-interface`` = that NIC), with the source it carries after the sender's SNAT, to a
load-balancer frontend, a node port, a cluster IP or a pod IP. The same evaluator walks nat
PREROUTING (kube-proxy's ``KUBE-SERVICES`` → ``KUBE-EXT-…``/``KUBE-SVL-…``/``KUBE-SVC-…`` →
``KUBE-SEP-…`` DNAT, ``KUBE-MARK-MASQ``), routes on the new destination and walks nat
POSTROUTING (``KUBE-POSTROUTING`` masquerades a marked packet to the node's address). A
``statistic --mode random`` split is one candidate endpoint per branch.

``walk_ingress`` takes the rules and facts as values; ``ingress_on_node`` takes them from a
snapshot's capture of the node. Without a capture the hop is undecided (``seen_ip`` None) with
the reason, never a guess.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from masqctl.analysis.explain import Explanation, Request, explain
from masqctl.netfilter.evaluate import Outcome, Step


@dataclass
class IngressCandidate:
    """One way the packet can go on the node: an endpoint and the source it then sees."""

    endpoint: str | None            # "IP:PORT" after DNAT (the original destination without DNAT)
    endpoint_ip: str | None
    masqueraded: bool | None        # SNATed at this node's POSTROUTING
    seen_ip: str | None             # the source the endpoint sees
    kind: str                       # the outcome: masquerade | snat | accept | local | dropped | unknown
    deciding: Step | None
    dnat: Step | None
    marks: list[Step] = field(default_factory=list)
    probability: float | None = None
    conditions: list[str] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> dict:
        return {"endpoint": self.endpoint, "masqueraded": self.masqueraded, "ip": self.seen_ip, "outcome": self.kind,
                "probability": self.probability, "conditions": list(self.conditions), "reason": self.reason,
                "dnat": _step_ref(self.dnat), "deciding": _step_ref(self.deciding)}


@dataclass
class IngressHop:
    """The ingress hop on one node: every candidate, and what they agree on (None: they differ
    or one is undecided; ``why`` says which)."""

    node: str | None
    src: str
    dst: str                        # "IP[:PORT]" as it arrives
    in_interface: str | None
    candidates: list[IngressCandidate]
    masqueraded: bool | None
    seen_ip: str | None
    why: str
    notes: list[str]
    deciding_rule: dict | None
    explanation: Explanation | None = None   # the walk (None: no rules to walk)

    @property
    def endpoints(self) -> list[str]:
        return list(dict.fromkeys(c.endpoint for c in self.candidates if c.endpoint))

    def to_dict(self) -> dict:
        return {"node": self.node, "src": self.src, "dst": self.dst, "in_interface": self.in_interface,
                "masqueraded": self.masqueraded, "seen_ip": self.seen_ip, "why": self.why,
                "deciding_rule": self.deciding_rule, "candidates": [c.to_dict() for c in self.candidates],
                "notes": list(self.notes)}


def _step_ref(step: Step | None) -> dict | None:
    if step is None:
        return None
    return {"chain": step.chain, "index": step.index, "text": step.text, "line": step.lineno, "hook": step.hook}


def _endpoint(o: Outcome) -> str:
    host = f"[{o.destination}]" if ":" in o.destination else o.destination
    return f"{host}:{o.dport}" if o.dport is not None else o.destination


def _candidate(o: Outcome) -> IngressCandidate:
    seen = o.source_ip_seen
    masq = o.masqueraded
    if o.kind in ("unknown", "dropped"):
        seen, masq = None, (None if o.kind == "unknown" else masq)
    return IngressCandidate(_endpoint(o), o.destination, masq, seen, o.kind, o.deciding, o.dnat, list(o.marks),
                            None if o.probability is None or o.probability != o.probability
                            else round(o.probability, 6), list(o.conditions), o.reason)


def _rule_ref(step: Step | None) -> str:
    if step is None:
        return "no rule"
    return f"{step.chain} rule {step.index}" if step.index is not None else f"the {step.chain} policy"


def _describe(c: IngressCandidate, src: str) -> str:
    """One candidate as a clause: where it goes and the source it sees."""
    to = f"DNAT by {_rule_ref(c.dnat)} to {c.endpoint}" if c.dnat is not None else f"to {c.endpoint} (no DNAT)"
    if c.kind == "unknown":
        return f"{to}: undecided ({c.reason})"
    if c.kind == "dropped":
        return f"{to}: dropped by {_rule_ref(c.deciding)}"
    if c.masqueraded:
        mark = ""
        if c.marks:
            mark = f" (the mark set by {_rule_ref(c.marks[0])})"
        return f"{to}, masqueraded to {c.seen_ip or 'the address of the egress interface (unknown)'} by " \
               f"{_rule_ref(c.deciding)}{mark}"
    if c.kind == "local":
        return f"{to}, delivered to the node itself: the source {src} is kept"
    return f"{to}, not masqueraded: the source {c.seen_ip} is kept"


def summarize_candidates(candidates: list[IngressCandidate], src: str) -> tuple[bool | None, str | None, str]:
    """(masqueraded, seen ip, why) over every candidate: a value only where all agree and none is
    undecided."""
    if not candidates:
        return None, None, "nothing was evaluated"
    undecided = [c for c in candidates if c.kind == "unknown" or (c.seen_ip is None and c.kind != "dropped")]
    live = [c for c in candidates if c.kind != "dropped"]
    if undecided:
        return None, None, "; ".join(dict.fromkeys(_describe(c, src) for c in undecided[:3]))
    if not live:
        return False, None, "dropped on every path: " + _describe(candidates[0], src)
    masq = {c.masqueraded for c in live}
    seen = {c.seen_ip for c in live}
    parts = list(dict.fromkeys(_describe(c, src) for c in live))
    if len(masq) == 1 and len(seen) == 1:
        head = parts[0] if len(parts) == 1 else f"every one of {len(live)} paths agrees: " + "; ".join(parts[:4])
        return live[0].masqueraded, live[0].seen_ip, head
    return (None if len(masq) > 1 else live[0].masqueraded), None, (
        f"the paths differ ({len(live)} endpoints or branches): " + "; ".join(parts[:6]))


def walk_ingress(*, node: str | None, src: str, dst: str, proto: str | None, dump_text: str | None,
                 dump_label: str, node_ip: str | None, local_addresses: list[str] | None = None,
                 ip_addr_text: str | None = None, ip_addr_label: str | None = None,
                 in_interface: str | None = None, missing: str | None = None) -> IngressHop:
    """The ingress hop of ``src`` → ``dst`` (``IP[:PORT]``) arriving on ``in_interface`` of a node
    whose nat rules are ``dump_text``. ``missing`` (with no text) says why there are no rules."""
    notes: list[str] = []
    if not dump_text:
        why = missing or f"no iptables-save capture of node {node}"
        return IngressHop(node, src, dst, in_interface, [], None, None,
                          f"{why}: what the node's kube-proxy rules do with the packet is not known", [why], None)
    req = Request(src=src, dst=dst, proto=proto, iptables=dump_label, iptables_text=dump_text,
                  iptables_label=dump_label, local_addresses=list(local_addresses or []), node_ip=node_ip,
                  ip_addr_text=ip_addr_text, ip_addr_label=ip_addr_label, in_interface=in_interface)
    ex = explain(req)
    if in_interface is None:
        notes.append("the node's NIC is not known (no ip-addr.txt address holds the node IP): rules matching "
                     "--in-interface were evaluated both ways")
    candidates = [_candidate(o) for o in ex.evaluation.outcomes]
    masq, seen, why = summarize_candidates(candidates, src)
    if ex.evaluation.truncated:
        masq, seen, why = None, None, "too many branches to enumerate: " + why
    deciding = None
    if seen is not None and len({(c.deciding.chain, c.deciding.index) if c.deciding else None
                                 for c in candidates}) == 1:
        deciding = ex._rule_dict(candidates[0].deciding)
    dnats = list(dict.fromkeys(f"DNAT by {_rule_ref(c.dnat)} to {c.endpoint}" if c.dnat is not None else ""
                               for c in candidates))
    notes += [d for d in dnats if d][:4]
    marks = list(dict.fromkeys(f"{m.action} by {_rule_ref(m)}" for c in candidates for m in c.marks))
    notes += [f"mark: {m}" for m in marks[:3]]
    notes += [n for n in ex.notes if not n.startswith(("DNAT by ", "no node addresses given"))][:6]
    return IngressHop(node, src, dst, in_interface, candidates, masq, seen, why, notes, deciding, ex)


# --------------------------------------------------------------------------- on a snapshot

def nic_of(ip_addr_text: str | None, node_ip: str | None) -> str | None:
    """The interface that holds ``node_ip`` in ``ip -o addr`` output (None: not known)."""
    if not ip_addr_text or not node_ip:
        return None
    from masqctl.netfilter.facts import FactError, parse_ip_addr
    try:
        addrs = parse_ip_addr(ip_addr_text)
        want = ipaddress.ip_address(node_ip)
    except (FactError, ValueError):
        return None
    return next((a.interface for a in addrs if a.ip == want and a.interface), None)


def ingress_on_node(snapshot, node_name: str, src: str, dst: str, proto: str | None) -> IngressHop:
    """The ingress hop on node ``node_name`` of ``snapshot`` (a ``ClusterSnapshot``), from its
    capture (``iptables-save`` or ``ip6tables-save`` by the family of ``dst``) and addresses."""
    from masqctl.analysis.explain import parse_endpoint
    from masqctl.analysis.explain_cluster import rest_on_capture
    from masqctl.cluster.model import MissingKey

    fam = parse_endpoint(dst, "DST")[0].version
    node = snapshot.node(node_name)
    capture = snapshot.captures.get(node_name)
    piece = "iptables-save" if fam == 4 else "ip6tables-save"
    text = None
    missing = None
    if capture is not None:
        text = capture.iptables_save if fam == 4 else capture.ip6tables_save
        if not text:
            why = capture.errors.get(piece) or capture.errors.get("node")
            missing = f"no {piece} capture of node {node_name}" + (f" ({why})" if why else "")
    else:
        why = snapshot.missing.get(MissingKey.CAPTURES)
        missing = f"no capture of node {node_name}" + (f" ({why})" if why else "")
    node_ip = None
    locals_: list[str] = []
    if node is not None:
        for t, a in ((("InternalIP", node.internal_ip),) if node.internal_ip else ()) + tuple(node.addresses):
            try:
                if t == "InternalIP" and ipaddress.ip_address(a).version == fam:
                    node_ip = node_ip or a
                    if a not in locals_:
                        locals_.append(a)
            except ValueError:
                continue
    ip_addr = capture.ip_addr if capture is not None else None
    label = f"node {node_name}'s {piece} ({capture.via or 'capture'})" if capture is not None else node_name
    hop = walk_ingress(node=node_name, src=src, dst=dst, proto=proto, dump_text=text, dump_label=label,
                       node_ip=node_ip, local_addresses=locals_, ip_addr_text=ip_addr,
                       ip_addr_label=f"nodes/{node_name}/ip-addr.txt" if ip_addr else None,
                       in_interface=nic_of(ip_addr, node_ip), missing=missing)
    if hop.explanation is not None:
        before = hop.explanation.evaluation
        rest_on_capture(hop.explanation, label)
        if hop.explanation.evaluation is not before:
            hop.candidates = [_candidate(o) for o in hop.explanation.evaluation.outcomes]
            hop.masqueraded, hop.seen_ip, hop.why = summarize_candidates(hop.candidates, src)
            hop.deciding_rule = None
    return hop


__all__ = ["IngressCandidate", "IngressHop", "walk_ingress", "ingress_on_node", "nic_of", "summarize_candidates"]
