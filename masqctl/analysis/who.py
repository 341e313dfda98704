"""``who``: from the source address a destination logged back to the pod that opened the connection.

A node that masquerades a connection keeps both of its tuples in the connection-tracking
table: the original (pod IP, pod port → destination) and the reply (destination → node IP,
translated port). The entries whose **reply** goes to the observed address (and port) are the
connections this node translated to that address; their original source is the pod.

Pure: entries (``masqctl.netfilter.conntrack``), the question, and optionally a
``ClusterSnapshot`` (pods, nodes) in; a ``WhoResult`` out. Nothing is guessed: an address
no pod has is reported as such, a table that is not there is said to be missing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from masqctl.errors import UsageError
from masqctl.netfilter.conntrack import Entry, Found, Question, search_table
from masqctl.netfilter.values import split_endpoint

if TYPE_CHECKING:      # the snapshot model is loaded only where a snapshot is given (lean offline --conntrack)
    from masqctl.cluster.model import ClusterSnapshot, WorkloadPod

PROTOS = ("tcp", "udp", "sctp", "icmp")

# Linux defaults (net.netfilter.nf_conntrack_*_timeout_*), for the notes on absent entries.
TIMEOUT_NOTE = ("connection tracking forgets connections: a closed TCP connection stays about 2 minutes "
                "(TIME_WAIT, 120 s), an established one up to 5 days (432000 s), UDP 30 s (120 s once both "
                "sides have sent); read the table soon after the request")


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int | None = None

    def text(self) -> str:
        if self.port is None:
            return self.ip
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"

    def to_dict(self) -> dict:
        return {"ip": self.ip, "port": self.port}


def parse_address(text: str, name: str) -> Endpoint:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address (E260 naming ``name``)."""
    try:
        host, port_text = split_endpoint(text)
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"{text!r} is not an IP address (IP, IP:PORT or [IPv6]:PORT)", input=name,
                         code="E260", hint="give the address (and port) the destination logged") from None
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not port_text.isascii() or not 1 <= int(port_text) <= 65535:
            raise UsageError(f"port {port_text!r} of {text!r} is not 1-65535", input=name, code="E260")
        port = int(port_text)
    if addr.is_unspecified or addr.is_multicast:
        raise UsageError(f"{addr} is {'unspecified' if addr.is_unspecified else 'multicast'}: no connection has it "
                         "as a source or destination", input=name, code="E260")
    return Endpoint(str(addr), port)


@dataclass(frozen=True)
class WhoRequest:
    observed: Endpoint
    to: Endpoint | None = None
    proto: str | None = None           # tcp | udp | sctp | icmp; None: any

    def __post_init__(self) -> None:
        if self.proto is not None and self.proto not in PROTOS:
            raise UsageError(f"unknown protocol {self.proto!r}; use tcp, udp, sctp or icmp", input="--proto",
                             code="E261")
        if self.to is not None and (":" in self.to.ip) != (":" in self.observed.ip):
            raise UsageError(f"OBSERVED {self.observed.ip} and --to {self.to.ip} are of different IP families; a "
                             "connection has one", input="--to", code="E261")


def _proto_matches(entry_proto: str, wanted: str | None) -> bool:
    if wanted is None:
        return True
    return entry_proto == wanted or (wanted == "icmp" and entry_proto == "icmpv6")


def find(entries: list[Entry], req: WhoRequest) -> list[Entry]:
    """The entries whose reply goes to OBSERVED (and its port), to DST (and its port) when given:
    DST is the original destination, or the reply's source when the node also rewrote the
    destination (DNAT)."""
    ip, port = req.observed.ip, req.observed.port
    out = []
    to = req.to
    for e in entries:
        if e.reply_dst != ip or (port is not None and e.reply_dport != port):
            continue
        if not _proto_matches(e.proto, req.proto):
            continue
        if to is not None:
            orig = e.orig_dst == to.ip and (to.port is None or e.orig_dport == to.port)
            reply = e.reply_src == to.ip and (to.port is None or e.reply_sport == to.port)
            if not (orig or reply):
                continue
        out.append(e)
    out.sort(key=lambda e: (e.proto, e.orig_src, e.orig_sport or 0, e.orig_dst, e.orig_dport or 0))
    return out


@dataclass(frozen=True)
class Match:
    entry: Entry
    pod: WorkloadPod | None
    why: str                  # who the original source is, in words

    def to_dict(self) -> dict:
        e = self.entry
        return {"proto": e.proto, "orig_src": e.orig_src, "orig_sport": e.orig_sport, "orig_dst": e.orig_dst,
                "orig_dport": e.orig_dport, "reply_dst": e.reply_dst, "reply_dport": e.reply_dport,
                "state": e.state, "timeout": e.timeout, "assured": e.assured,
                "pod": f"{self.pod.namespace}/{self.pod.name}" if self.pod is not None else None,
                "owner": self.pod.owner if self.pod is not None else None}


def _candidate(pod: WorkloadPod) -> dict:
    return {"pod": f"{pod.namespace}/{pod.name}", "owner": pod.owner, "node": pod.node, "ips": list(pod.pod_ips),
            "host_network": pod.host_network}


@dataclass
class WhoResult:
    request: WhoRequest
    node: str | None
    matches: list[Match] = field(default_factory=list)
    candidates: list[WorkloadPod] = field(default_factory=list)
    exact: bool = False
    notes: list[str] = field(default_factory=list)
    answer: str = ""                      # the one-line answer, first in the human output
    table: str | None = None              # where the entries were read (file name)
    entries: int = 0                      # entries read
    searched: bool = False                # a table was there and searched
    captured_at: str | None = None

    def to_dict(self) -> dict:
        return {"observed": self.request.observed.to_dict(), "node": self.node,
                "to": self.request.to.to_dict() if self.request.to is not None else None,
                "matches": [m.to_dict() for m in self.matches],
                "candidates": [_candidate(p) for p in self.candidates],
                "exact": self.exact, "notes": list(self.notes)}


# --------------------------------------------------------------------------- the snapshot's side


def _ip(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _live(pod: WorkloadPod) -> bool:
    return (pod.phase or "").lower() not in ("succeeded", "failed")


class _Pods:
    """Pod IP → pods, node address → node, from a snapshot."""

    def __init__(self, snapshot: ClusterSnapshot | None):
        self.snapshot = snapshot
        self.by_ip: dict[str, list[WorkloadPod]] = {}
        self.node_of_addr: dict[str, str] = {}
        if snapshot is None:
            return
        for p in snapshot.workloads:
            if p.host_network:
                continue
            for ip in p.pod_ips:
                a = _ip(ip)
                if a is not None:
                    self.by_ip.setdefault(str(a), []).append(p)
        for n in snapshot.nodes:
            for addr in {n.internal_ip, *(a for _, a in n.addresses)}:
                a = _ip(addr) if addr else None
                if a is not None:
                    self.node_of_addr.setdefault(str(a), n.name)
        from masqctl.netfilter.facts import FactError, parse_ip_addr

        for name, cap in sorted(snapshot.captures.items()):
            if not cap.ip_addr:
                continue
            try:
                for address in parse_ip_addr(cap.ip_addr):
                    if not address.ip.is_loopback and not address.ip.is_link_local:
                        self.node_of_addr.setdefault(str(address.ip), name)
            except FactError:
                continue     # inspect reports a bad ip-addr.txt; here it only adds addresses

    def pod_of(self, ip: str) -> tuple[WorkloadPod | None, str]:
        if ip in self.node_of_addr:
            node = self.node_of_addr[ip]
            return None, (f"an address of node {node}: the node itself or one of its host-network pods opened "
                          "it")
        pods = self.by_ip.get(ip, [])
        live = [p for p in pods if _live(p)] or pods
        if len(live) == 1:
            p = live[0]
            return p, f"pod {p.namespace}/{p.name} on node {p.node}"
        if len(live) > 1:
            names = ", ".join(f"{p.namespace}/{p.name}" for p in live[:5])
            return None, f"the address of several pods in the snapshot ({names}); which one is not known"
        if self.snapshot is None:
            return None, "pod not known: no cluster snapshot (give --bundle to name it)"
        from masqctl.cluster.model import MissingKey     # only with a snapshot (lean offline --conntrack)

        if MissingKey.PODS in self.snapshot.missing:
            return None, f"pod not known: pods were not read ({self.snapshot.missing[MissingKey.PODS]})"
        return None, ("no pod in the snapshot has this address (it may have ended since; the snapshot lists the "
                      "pods of the moment it was taken)")


def node_of_observed(snapshot: ClusterSnapshot, ip: str) -> tuple[str | None, str]:
    """The node whose table holds OBSERVED's connections, and how that was decided."""
    pods = _Pods(snapshot)
    if ip in pods.node_of_addr:
        return pods.node_of_addr[ip], "an address of the node (masqueraded connections)"
    live = [p for p in pods.by_ip.get(ip, []) if _live(p)]
    if len(live) == 1 and live[0].node:
        p = live[0]
        return p.node, f"the pod IP of {p.namespace}/{p.name} (connections that were not masqueraded)"
    a = ipaddress.ip_address(ip)
    for n in snapshot.nodes:
        for cidr in n.pod_cidrs:
            try:
                if a in ipaddress.ip_network(cidr, strict=False):
                    return n.name, f"in node {n.name}'s pod CIDR {cidr}"
            except ValueError:
                continue
    return None, ""


# --------------------------------------------------------------------------- the answer


def question(req: WhoRequest) -> Question:
    """What to look for in a table: the reply to OBSERVED (and its port), involving DST."""
    return Question(req.observed.ip, req.observed.port, req.to.ip if req.to is not None else None)


def who(entries: list[Entry] | None, req: WhoRequest, *, snapshot: ClusterSnapshot | None = None,
        node: str | None = None, table: str | None = None, table_missing: str | None = None,
        captured_at: str | None = None, duplicates: int = 0, listed: int | None = None) -> WhoResult:
    """Answer from one node's entries (``entries`` None: the table is missing, ``table_missing``
    says why). ``entries`` may be the table's entries or only those ``search_table`` found for
    ``question(req)``; ``listed`` is then how many the table lists."""
    result = WhoResult(request=req, node=node, table=table, captured_at=captured_at)
    pods = _Pods(snapshot)
    obs = req.observed
    if entries is None:
        result.notes.append(f"no connection-tracking table for node {node}: {table_missing or 'not captured'}; "
                            "the connections cannot be looked up")
        result.notes.append("collect one with masqctl collect --conntrack, or by hand (docs/bundles.md)")
        _no_match_context(result, pods, snapshot, node)
        result.answer = f"unknown: no connection-tracking table of node {node} to look {obs.text()} up in"
        return result
    result.entries = len(entries) if listed is None else listed
    result.searched = True
    found = find(entries, req)
    result.matches = [Match(e, *pods.pod_of(e.orig_src)) for e in found]
    if duplicates:
        result.notes.append(f"{duplicates} of the entries found were listed twice (overlapping outputs) and are "
                            "counted once")
    if captured_at:
        result.notes.append(f"the table was read at {captured_at}; connections that ended before are no longer in it")
    what = f"{obs.text()}" + (f" → {req.to.text()}" if req.to is not None else "")
    if not found:
        result.notes.append(f"no entry in {table or 'the table'} ({result.entries} entries) has a reply to {what}"
                            + (f" over {req.proto}" if req.proto else ""))
        result.notes.append(TIMEOUT_NOTE)
        _no_match_context(result, pods, snapshot, node)
        result.answer = f"no connection to {what} in the table of {'node ' + node if node else table or 'the table'}"
        return result
    senders: list[WorkloadPod] = []
    for m in result.matches:
        if m.pod is not None and m.pod not in senders:
            senders.append(m.pod)
    result.exact = obs.port is not None and len(found) == 1
    result.candidates = senders
    translated = [m for m in result.matches if m.entry.masqueraded]
    if result.exact:
        m = result.matches[0]
        e = m.entry
        origin = Endpoint(e.orig_src, e.orig_sport).text()
        result.answer = f"{what} was opened from {origin}: {_sender(m)}"
        result.notes.append("exact: the port was given and one connection matches")
    else:
        why = ("no source port was given" if obs.port is None
               else f"{len(found)} connections have a reply to that address and port")
        result.answer = (f"{len(found)} connection{'s' if len(found) != 1 else ''} to {what}: "
                         + (", ".join(f"{p.namespace}/{p.name}" for p in senders) if senders else "no known pod")
                         + " (candidates)")
        result.notes.append(f"candidates, not exact: {why}"
                            + ("; give the source port the destination logged (OBSERVED:PORT)" if obs.port is None
                               else ""))
    unknown = [m for m in result.matches if m.pod is None]
    for ip, text in dict.fromkeys((m.entry.orig_src, m.why) for m in unknown):
        result.notes.append(f"{ip}: {text}")
    if translated:
        result.notes.append(_preserve_pointer(req))
    return result


def _sender(m: Match) -> str:
    if m.pod is not None:
        owner = f", {m.pod.owner}" if m.pod.owner else ""
        return f"pod {m.pod.namespace}/{m.pod.name} (node {m.pod.node}{owner})"
    return m.why


def _preserve_pointer(req: WhoRequest) -> str:
    dst = f" to {req.to.ip}" if req.to is not None else ""
    return (f"while pod traffic{dst} is masqueraded, the destination logs node addresses; when pod IPs are routable "
            "there, masqctl apply --goal preserve-source-ip makes it log the pod instead (check with masqctl "
            "explain POD DST)")


def _no_match_context(result: WhoResult, pods: _Pods, snapshot: ClusterSnapshot | None, node: str | None) -> None:
    """Candidates (the pods on the node) and, when OBSERVED is a node's address (or unknown:
    offline), the pointer to the lasting fix."""
    if snapshot is not None and node is not None:
        on_node = [p for p in snapshot.workloads if p.node == node and _live(p)]
        on_node.sort(key=lambda p: (p.host_network, p.namespace, p.name))
        result.candidates = on_node
        if on_node:
            when = f" at {snapshot.collected_at}" if snapshot.collected_at else ""
            result.notes.append(f"candidates: the {len(on_node)} pods running on node {node}{when} (host-network pods "
                                "send with the node's address too)")
    if snapshot is None or result.request.observed.ip in pods.node_of_addr:
        result.notes.append(_preserve_pointer(result.request))


def read_conntrack_file(path: str) -> str | bytes:
    """The content of ``--conntrack FILE`` (``-``: stdin): E310 missing, unreadable, a folder or a
    device, or over 256 MiB; E311 binary or not UTF-8. ASCII (every real table) stays bytes:
    ``search_table`` reads them without decoding the whole table."""
    from masqctl.textinput import Codes, decode, read_bytes

    codes = Codes(open="E310", binary="E311", size="E310")
    hint = "give the text of /proc/net/nf_conntrack or conntrack -L"
    data = read_bytes(path, what="conntrack table", codes=codes, binary_hint=hint)
    if data.isascii():
        return data
    return decode("stdin" if path == "-" else path, data, what="conntrack table", codes=codes, binary_hint=hint)


def who_in_table(text: str | bytes, label: str, req: WhoRequest) -> WhoResult:
    """Offline: one node's table as text (``--conntrack FILE``)."""
    found = search_table(text, label, question(req))
    return who(found.entries, req, table=label, duplicates=found.duplicates, listed=found.listed)


def who_on_snapshot(snapshot: ClusterSnapshot, req: WhoRequest) -> WhoResult:
    """On a snapshot: find OBSERVED's node, read its table, answer. When OBSERVED is no node or pod
    address of the snapshot, every captured table is searched."""
    node, how = node_of_observed(snapshot, req.observed.ip)
    q = question(req)

    def table_of(name: str) -> Found | None:
        cap = snapshot.captures.get(name)
        if cap is None or cap.conntrack is None:
            return None
        return search_table(cap.conntrack, f"nodes/{name}/conntrack.txt", q)

    if node is not None:
        cap = snapshot.captures.get(node)
        t = table_of(node)
        label = f"nodes/{node}/conntrack.txt"
        if t is None:
            reason = None
            if cap is not None:
                reason = cap.errors.get("conntrack") or cap.errors.get("node")
            reason = reason or ("the capture has no conntrack table (collect --conntrack gathers it)" if cap else
                                "the node was not captured")
            result = who(None, req, snapshot=snapshot, node=node, table=label, table_missing=reason)
        else:
            result = who(t.entries, req, snapshot=snapshot, node=node, table=label,
                         captured_at=cap.captured_at if cap else None, duplicates=t.duplicates, listed=t.listed)
        result.notes.insert(0, f"{req.observed.ip} is {how}: node {node}'s table was searched")
        if cap is not None and cap.via and cap.via != "bundle" and cap.conntrack is not None:
            result.notes.insert(1, f"the table was read live through {cap.via} (in the node's network namespace)")
        return result
    searched = [n for n in sorted(snapshot.captures) if snapshot.captures[n].conntrack is not None]
    hits: dict[str, WhoResult] = {}
    for name in searched:
        t = table_of(name)
        r = who(t.entries, req, snapshot=snapshot, node=name, table=f"nodes/{name}/conntrack.txt",
                captured_at=snapshot.captures[name].captured_at, duplicates=t.duplicates, listed=t.listed)
        if r.matches:
            hits[name] = r
    head = f"{req.observed.ip} is no node address or pod IP of the snapshot"
    if len(hits) == 1:
        (name, result), = hits.items()
        result.notes.insert(0, f"{head}; of the {len(searched)} captured tables only node {name}'s has its "
                               "connections")
        return result
    result = WhoResult(request=req, node=None)
    if hits:
        for name, r in sorted(hits.items()):
            result.matches.extend(r.matches)
            for p in r.candidates:
                if p not in result.candidates:
                    result.candidates.append(p)
        result.notes.append(f"{head}; the tables of nodes {', '.join(sorted(hits))} all have connections to it")
        result.answer = (f"{len(result.matches)} connections to {req.observed.text()} on {len(hits)} nodes "
                         "(candidates)")
        return result
    if searched:
        result.notes.append(f"{head}; none of the {len(searched)} captured tables ({', '.join(searched)}) has a "
                            "connection to it")
        result.notes.append(TIMEOUT_NOTE)
    else:
        result.notes.append(f"{head}, and the snapshot has no connection-tracking table (collect --conntrack)")
    result.answer = f"no node of the snapshot is known to have sent {req.observed.text()}"
    return result


# --------------------------------------------------------------------------- --watch


def match_key(e: Entry) -> tuple:
    """One connection, however often it is listed or read: protocol, zone, ICMP id, both tuples."""
    return (e.proto, e.zone, e.icmp_id) + tuple(e[4:12])


class Watch:
    """``--watch``: the matches of successive readings (of a table, or of an event stream), each
    connection reported once, in the order they were first seen."""

    def __init__(self) -> None:
        self.seen: set[tuple] = set()
        self.count = 0

    def fresh(self, matches: list[Match]) -> list[Match]:
        out = []
        for m in matches:
            key = match_key(m.entry)
            if key not in self.seen:
                self.seen.add(key)
                out.append(m)
        self.count += len(out)
        return out


def watch_line(result: WhoResult, match: Match, seen_at: str) -> dict:
    """One line of ``--watch -o json`` (JSON Lines): a new match, where and when it was seen."""
    return {"observed": result.request.observed.to_dict(), "node": result.node,
            "to": result.request.to.to_dict() if result.request.to is not None else None,
            "seen_at": seen_at, "match": match.to_dict()}


__all__ = ["Endpoint", "Match", "PROTOS", "Watch", "match_key", "watch_line", "WhoRequest", "WhoResult", "find", "node_of_observed", "parse_address",
           "question", "read_conntrack_file", "who", "who_in_table", "who_on_snapshot"]
