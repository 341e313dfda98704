"""The node captures of one snapshot, each distinct capture parsed once, for all of inspect's readers.

Four readers look at every node's ``iptables-save``: the mode's node evidence
(``mode.node_signs``), the drift check (``drift.live_chain``), MQ006 (``findings.nodes.shadowing``)
and MQ017 (iptables-legacy tables). Each used to parse the dump itself: four parses of a
20k-line kube-proxy dump per node. ``NodeDumps`` is passed to them instead (a value, never a
global): it parses a capture once, keeps only the few facts the readers need (never the parsed
dump), and shares them between nodes whose nat tables are the same.

Sharing is exact, never a guess. A fleet's dumps differ from node to node in the chain counters,
the timestamps, node addresses in other tables, and kube-proxy's per-node chains. The facts the
readers use come from the nat table only, so the key is the nat table's text (``*nat`` …
``COMMIT``) with the counters of its chain declarations set to ``[0:0]`` (the parser ignores
them), hashed with SHA-256. The rest of the dump is still parsed on every node, with a
placeholder nat table in the nat table's place, so that an unreadable line anywhere is reported
exactly as before, and ``# Warning: iptables-legacy tables present`` is seen wherever it is.
Anything unusual (no or two nat tables, rules outside any table, a nat table that does not parse
on its own) falls back to parsing the node's whole dump, as the readers did before.

``NodeDumps(snapshot, share=False)`` is the reference: every reader parses the dump itself, the
way it did before sharing existed. Tests compare the two reports.
"""

from __future__ import annotations

import gc
import hashlib
import re
from dataclasses import dataclass, field, replace

from masqctl.analysis.dumpfacts import AGENT_CHAIN, chain_of_dump, dump_gap, dump_signs, nat_limit, shadowing_of_dump
from masqctl.cluster.model import ClusterSnapshot, Node, WorkloadPod
from masqctl.netfilter.dump import Dump, DumpError, parse_dump

_PLACEHOLDER_NAT = "*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
_NAT_HEADER = "*nat\n"
_COMMIT = "\nCOMMIT\n"
_COUNTER = re.compile(r"\[\d+:\d+\]")
_NAT_BUILTINS = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")


@dataclass(frozen=True)
class DumpFacts:
    """What inspect's readers take from one ``iptables-save`` (IPv4 or IPv6).

    ``error`` is ``(lineno, message, kind)`` when the dump does not parse. ``chains`` maps each
    agent chain name asked for to what the dump shows of it (``chain_of_dump``: a ``LiveView``);
    ``shadowing`` to MQ006's descriptions (``shadowing_of_dump``); ``signs`` is the mode's node
    evidence (``dump_signs``). ``limit`` is what keeps the dump from showing the whole nat table
    (``nat_limit``), ``gap`` what keeps it from being a whole ``iptables-save`` (``dump_gap``);
    each is a pure function of the parsed dump in ``masqctl.analysis.dumpfacts``.
    """

    error: tuple[int | None, str, str] | None = None
    fragment: bool = False
    legacy: bool = False
    chains: dict = field(default_factory=dict)
    shadowing: dict = field(default_factory=dict)
    signs: object = None
    limit: str | None = None
    gap: str | None = None
    incompatible: tuple[str, ...] = ()      # tables iptables-nft-save says it cannot print


def _source(node: str, family: int) -> str:
    return f"nodes/{node}/{'iptables' if family == 4 else 'ip6tables'}-save.txt"


def nat_section(text: str) -> tuple[int, int] | None:
    """(start, end) of the ``*nat`` … ``COMMIT`` section of ``text``, each at a line start; None
    when it is not plainly there. (A second nat table, anywhere, is caught by the parses.)"""
    if text.startswith(_NAT_HEADER):
        start = 0
    else:
        k = text.find("\n" + _NAT_HEADER)
        if k < 0:
            return None
        start = k + 1
    end = text.find(_COMMIT, start)
    if end < 0:
        return None
    return start, end + len(_COMMIT)


def nat_key(text: str, start: int, end: int) -> bytes:
    """SHA-256 of the nat section ``text[start:end]``, with the counters of the built-in chains'
    declarations at its top (``:POSTROUTING ACCEPT [812:48720]``) set to ``[0:0]``.

    The parser reads only the first two words of a declaration, so two sections with the same key
    parse to the same table. Only lines that are exactly ``:CHAIN POLICY [p:b]`` are touched."""
    pos = start + len(_NAT_HEADER)
    head = [_NAT_HEADER]
    for _ in range(len(_NAT_BUILTINS)):      # iptables-save prints the built-in chains first
        if not text.startswith(":", pos):
            break
        nl = text.find("\n", pos, end)
        if nl < 0:
            break
        line = text[pos:nl]
        words = line.split()
        if len(words) != 3 or line != " ".join(words) or words[0][1:] not in _NAT_BUILTINS \
                or not _COUNTER.fullmatch(words[2]):
            break
        head.append(f"{words[0]} {words[1]} [0:0]\n")
        pos = nl + 1
    h = hashlib.sha256("".join(head).encode())
    h.update(text[pos:end].encode("utf-8", "surrogatepass"))
    return h.digest()


class NodeDumps:
    """The captures of ``snapshot``, parsed once per distinct capture (``share``) or per reader.

    ``chains``: the agent chain names whose lines and shadowing are worked out on the one parse
    (others are still answered, by parsing again). The node and workload indexes spare the
    readers a scan of every node or pod per node.
    """

    def __init__(self, snapshot: ClusterSnapshot, chains=(AGENT_CHAIN,), share: bool = True):
        self.snapshot = snapshot
        self.chains = tuple(dict.fromkeys(chains))
        self.share = share
        self._facts: dict[tuple[str, int], DumpFacts | None] = {}
        self._by_key: dict[bytes, DumpFacts] = {}
        self._chain_sets: dict[frozenset, frozenset] = {}
        self._nodes: dict[str, Node] | None = None
        self._pods: dict[str | None, list[WorkloadPod]] | None = None
        self.parses = 0           # dumps (or parts) parsed: for tests and the benchmark
        self.shared = 0           # captures answered from another node's parse

    # ------------------------------------------------------------------ indexes

    def node(self, name: str) -> Node | None:
        """``snapshot.node(name)`` through an index (the first node of that name, as there)."""
        if self._nodes is None:
            self._nodes = {}
            for n in self.snapshot.nodes:
                self._nodes.setdefault(n.name, n)
        return self._nodes.get(name)

    def workloads_on(self, node: str) -> list[WorkloadPod]:
        """The snapshot's workload pods on ``node``, in snapshot order."""
        if self._pods is None:
            self._pods = {}
            for p in self.snapshot.workloads:
                self._pods.setdefault(p.node, []).append(p)
        return self._pods.get(node, [])

    # ------------------------------------------------------------------ readers

    def text(self, node: str, family: int = 4) -> str | None:
        cap = self.snapshot.captures.get(node)
        if cap is None:
            return None
        return cap.iptables_save if family == 4 else cap.ip6tables_save

    def live_chain(self, node: str, family: int, chain: str):
        """``dumpfacts.chain_of_dump`` of the node's dump (a ``LiveView``). Raises ``DumpError``."""
        if not self.share:
            return chain_of_dump(parse_dump(self.text(node, family), _source(node, family)), chain)
        facts = self._get(node, family)       # the capture's text is read only when its facts are not known
        if chain in facts.chains:
            return facts.chains[chain]
        return chain_of_dump(self._parse(self.text(node, family), _source(node, family)), chain)

    def shadowing(self, node: str, chain: str) -> tuple[list[str], str | None]:
        """``dumpfacts.shadowing_of_dump`` of the node's IPv4 dump. Raises ``DumpError``."""
        if not self.share:
            return shadowing_of_dump(parse_dump(self.text(node, 4), _source(node, 4)), chain)
        facts = self._get(node, 4)
        if chain in facts.shadowing:
            return list(facts.shadowing[chain]), facts.limit
        return shadowing_of_dump(self._parse(self.text(node, 4), _source(node, 4)), chain)

    def dump_gap(self, node: str) -> str | None:
        """``dumpfacts.dump_gap`` of the node's IPv4 dump. Raises ``DumpError``."""
        if not self.share:
            return dump_gap(self._parse(self.text(node, 4), _source(node, 4)))
        return self._get(node, 4).gap

    def signs(self, node: str):
        """``dumpfacts.dump_signs`` of the node's IPv4 dump. Raises ``DumpError``."""
        if not self.share:
            return dump_signs(self._parse(self.text(node, 4), _source(node, 4)))
        return self._get(node, 4).signs

    def has_dump(self, node: str, family: int = 4) -> bool:
        """Whether the node's capture holds that dump (its file is not read again once its facts are known)."""
        return (node, family) in self._facts or bool(self.text(node, family))

    def incompatible_tables(self, node: str) -> tuple[str, ...]:
        """The tables the node's IPv4 dump says iptables cannot print (rules written with nft).
        Raises ``DumpError``."""
        if not self.share:
            return tuple(self._parse(self.text(node, 4), _source(node, 4)).incompatible_tables)
        return self._get(node, 4).incompatible

    def legacy_tables(self, node: str) -> bool:
        """Whether the node's IPv4 dump says iptables-legacy tables are present. Raises ``DumpError``."""
        if not self.share:
            return self._parse(self.text(node, 4), _source(node, 4)).legacy_tables_present
        return self._get(node, 4).legacy

    # ------------------------------------------------------------------ the one parse

    def _parse(self, text: str, source: str) -> Dump:
        self.parses += 1
        # A parse makes tens of thousands of short-lived tuples and lists and no reference cycles;
        # the cyclic collector would walk the whole snapshot (every capture, every pod) again and
        # again meanwhile (half the time of a 500-node inspect). It is off for the parse only.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return parse_dump(text, source)
        finally:
            if enabled:
                gc.enable()

    def _get(self, node: str, family: int) -> DumpFacts:
        key = (node, family)
        if key not in self._facts:
            self._facts[key] = self._compute(self.text(node, family), _source(node, family))
        facts = self._facts[key]
        if facts.error is not None:
            lineno, message, kind = facts.error
            raise DumpError(message, lineno, kind=kind)
        return facts

    def _extract(self, dump: Dump) -> DumpFacts:
        # the order matters: reading a chain's rules adds empty entries for built-in chains, so the
        # readers that tell an absent chain from an empty one go first (each parsed its own dump before)
        agent = {c: chain_of_dump(dump, c) for c in self.chains}
        limit, gap = nat_limit(dump), dump_gap(dump)
        signs = dump_signs(dump)
        # nodes name the same chains: keep one set of names, not one per node
        chains = self._chain_sets.setdefault(signs.chains, signs.chains)
        if chains is not signs.chains:
            signs = replace(signs, chains=chains)
        shadow = {c: tuple(shadowing_of_dump(dump, c)[0]) for c in self.chains}
        return DumpFacts(None, dump.fragment, dump.legacy_tables_present, agent, shadow, signs, limit, gap,
                         tuple(dump.incompatible_tables))

    def _whole(self, text: str, source: str) -> DumpFacts:
        try:
            dump = self._parse(text, source)
        except DumpError as exc:
            return DumpFacts(error=(exc.lineno, exc.message, exc.kind))
        return self._extract(dump)

    def _compute(self, text: str, source: str) -> DumpFacts:
        span = nat_section(text)
        if span is None:
            return self._whole(text, source)
        start, end = span
        # the rest of the dump, with an empty nat table in the nat table's place: every line but
        # the nat table's is read in the same parser state as in the whole dump
        try:
            rest = self._parse(text[:start] + _PLACEHOLDER_NAT + text[end:], source)
        except DumpError:
            return self._whole(text, source)      # the whole parse names the line exactly
        nat = rest.table("nat")
        if (nat is None or rest.fragment or rest.list_format or rest.repeated_tables or nat.lines_of
                or nat.declared != {"POSTROUTING": "ACCEPT"}):
            return self._whole(text, source)      # something else adds to the nat table
        key = nat_key(text, start, end)
        facts = self._by_key.get(key)
        if facts is None:
            try:
                alone = self._parse(text[start:end], source)
            except DumpError:
                return self._whole(text, source)
            if set(alone.tables) != {"nat"} or alone.fragment or alone.list_format or alone.repeated_tables:
                return self._whole(text, source)
            facts = self._by_key[key] = self._extract(alone)
        else:
            self.shared += 1
        if rest.legacy_tables_present and not facts.legacy:
            facts = replace(facts, legacy=True)
        gap = dump_gap(rest)        # the rest of the dump may be cut short after a whole nat table
        if gap != facts.gap:
            facts = replace(facts, gap=gap)
        if rest.incompatible_tables:
            facts = replace(facts, incompatible=tuple(rest.incompatible_tables) + facts.incompatible)
        return facts


__all__ = ["NodeDumps", "DumpFacts", "nat_section", "nat_key"]
