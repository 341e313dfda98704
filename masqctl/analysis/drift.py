"""Per node: does the live agent chain and its POSTROUTING jump match the effective config?

The comparison is the node-agent's own (``masqctl.netfilter.chaindiff``): by meaning, with each
run of RETURN rules compared as a multiset (the Go agent writes its CIDRs in random order).
What differs is then named the way an operator reads it: CIDRs missing or extra, the
link-local rule, the final MASQUERADE rule, the jump missing or duplicated, the chain absent.

Nodes with the same state form one group, so 300 identical nodes are one line. A node whose
``iptables-save`` was not captured is ``unknown`` with the reason, never "in sync".
"""

from __future__ import annotations

from dataclasses import dataclass

from masqctl.analysis.nodedumps import NodeDumps
from masqctl.cluster.model import ClusterSnapshot, MissingKey, NodeCapture
from masqctl.engine import FamilyRules, RuleSet
from masqctl.engine.model import LINK_LOCAL_V4, LINK_LOCAL_V6
from masqctl.netfilter.chaindiff import (LiveFamily, compare_chain, is_return, jumps_to, key_of,
                                        line_args)

IN_SYNC, DRIFT, UNKNOWN = "in-sync", "drift", "unknown"


@dataclass(frozen=True)
class FamilyState:
    """One family (iptables / ip6tables) of one node against the rendered rules."""

    family: int
    state: str                                  # in-sync | drift | unknown
    reason: str | None = None                   # unknown: why
    chain: str = "IP-MASQ-AGENT"
    chain_absent: bool = False
    missing_cidrs: tuple[str, ...] = ()
    extra_cidrs: tuple[str, ...] = ()
    link_local: str | None = None               # "missing" | "unexpected"
    final_rule: str | None = None               # what is wrong with the final MASQUERADE rule
    order: str | None = None                    # same rules, other order or duplicated
    other_missing: tuple[str, ...] = ()         # intended rules of other kinds not found (text)
    other_extra: tuple[str, ...] = ()           # live rules of other kinds (text)
    jumps: int = 1
    excerpt: bool = False                       # the capture was a grep excerpt

    @property
    def binary(self) -> str:
        return "iptables" if self.family == 4 else "ip6tables"

    def chain_issues(self) -> list[str]:
        """What differs inside the chain (MQ004)."""
        out = []
        if self.chain_absent:
            return out
        fam = "" if self.family == 4 else " (IPv6)"
        if self.missing_cidrs:
            out.append(f"missing RETURN for {', '.join(self.missing_cidrs)}{fam}")
        if self.extra_cidrs:
            out.append(f"extra RETURN for {', '.join(self.extra_cidrs)}{fam}")
        ll = LINK_LOCAL_V4 if self.family == 4 else LINK_LOCAL_V6
        if self.link_local == "missing":
            out.append(f"link-local RETURN {ll} missing (the config says do not masquerade link-local)")
        elif self.link_local == "unexpected":
            out.append(f"link-local RETURN {ll} present although the config masquerades link-local")
        if self.final_rule:
            out.append(self.final_rule)
        if self.order:
            out.append(self.order)
        out += [f"missing rule: {t}" for t in self.other_missing]
        out += [f"unexpected rule: {t}" for t in self.other_extra]
        return out

    def jump_issues(self) -> list[str]:
        """The chain absent or the POSTROUTING jump missing/duplicated (MQ005)."""
        out = []
        if self.chain_absent:
            out.append(f"chain {self.chain} absent" + (" ({})".format(self.binary) if self.family == 6 else "")
                       + (" (or not in the grep excerpt)" if self.excerpt else ""))
        if self.jumps == 0:
            out.append(f"no POSTROUTING jump to {self.chain}" + (" (IPv6)" if self.family == 6 else ""))
        elif self.jumps > 1:
            out.append(f"{self.jumps} POSTROUTING jumps to {self.chain}" + (" (IPv6)" if self.family == 6 else ""))
        return out

    def describe(self) -> str:
        if self.state == UNKNOWN:
            return f"unknown, {self.reason}"
        if self.state == IN_SYNC:
            return "in sync"
        return "; ".join(self.jump_issues() + self.chain_issues())

    def signature(self) -> tuple:
        return (self.family, self.state, self.reason, self.chain_absent, self.missing_cidrs, self.extra_cidrs,
                self.link_local, self.final_rule, self.order, self.other_missing, self.other_extra, self.jumps)

    def to_dict(self) -> dict:
        return {"family": self.family, "state": self.state, "reason": self.reason, "chain": self.chain,
                "chain_absent": self.chain_absent, "missing_cidrs": list(self.missing_cidrs),
                "extra_cidrs": list(self.extra_cidrs), "link_local": self.link_local,
                "final_rule": self.final_rule, "order": self.order, "other_missing": list(self.other_missing),
                "other_extra": list(self.other_extra), "jumps": self.jumps, "issues": self.jump_issues()
                + self.chain_issues()}


@dataclass(frozen=True)
class NodeDrift:
    node: str
    families: tuple[FamilyState, ...]

    @property
    def state(self) -> str:
        states = {f.state for f in self.families}
        if DRIFT in states:
            return DRIFT
        if UNKNOWN in states or not states:
            return UNKNOWN
        return IN_SYNC

    def describe(self) -> str:
        if self.state == IN_SYNC:
            return "in sync"
        if all(f.state == UNKNOWN for f in self.families) and len({f.reason for f in self.families}) == 1:
            return self.families[0].describe()
        parts = []
        for f in self.families:
            text = f.describe()
            parts.append(text if len(self.families) == 1 else f"{f.binary}: {text}")
        return "; ".join(parts)

    def signature(self) -> tuple:
        return tuple(f.signature() for f in self.families)


@dataclass(frozen=True)
class NodeGroup:
    """Nodes in the same state."""

    state: str
    summary: str
    nodes: tuple[str, ...]
    families: tuple[FamilyState, ...]

    def to_dict(self) -> dict:
        return {"state": self.state, "summary": self.summary, "count": len(self.nodes), "nodes": list(self.nodes),
                "families": [f.to_dict() for f in self.families]}


@dataclass(frozen=True)
class DriftReport:
    chain: str
    nodes: tuple[NodeDrift, ...]
    groups: tuple[NodeGroup, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"chain": self.chain, "groups": [g.to_dict() for g in self.groups], "notes": list(self.notes)}


def group_nodes(nodes: list[NodeDrift]) -> tuple[NodeGroup, ...]:
    """Nodes with identical state together; drift first, then unknown, then in sync; big groups first."""
    groups: dict[tuple, list[NodeDrift]] = {}
    for n in nodes:
        groups.setdefault(n.signature(), []).append(n)
    order = {DRIFT: 0, UNKNOWN: 1, IN_SYNC: 2}
    out = [NodeGroup(ns[0].state, ns[0].describe(), tuple(sorted(n.node for n in ns)), ns[0].families)
           for ns in groups.values()]
    out.sort(key=lambda g: (order[g.state], -len(g.nodes), g.nodes[0]))
    return tuple(out)


# --------------------------------------------------------------------------- one family


def _cidr_of(key) -> str | None:
    """The destination of a plain ``-d CIDR -j RETURN`` rule key, else None."""
    if not is_return(key):
        return None
    dsts = [v for neg, opt, v in key.basic if opt == "-d" and not neg]
    others = [b for b in key.basic if b[1] != "-d"]
    if len(dsts) != 1 or others or any(m[1] != "comment" for m in key.matches):
        return None
    return dsts[0]


def _is_masquerade(key) -> bool:
    return isinstance(key, tuple) and len(key) == 3 and key[2][:2] == ("-j", "MASQUERADE")


def family_state(fam: FamilyRules, chain_lines: tuple[str, ...] | None, postrouting: tuple[str, ...],
                 excerpt: bool = False) -> FamilyState:
    """Classify how the live chain and POSTROUTING differ from the rendered family."""
    live = LiveFamily(chain_lines, postrouting)
    drift = compare_chain(fam.chain, [r.text for r in fam.rules], live)
    by_text = {r.text: r for r in fam.rules}
    ll = LINK_LOCAL_V4 if fam.family == 4 else LINK_LOCAL_V6
    missing_cidrs, extra_cidrs, other_missing, other_extra = [], [], [], []
    link_local = final_rule = order = None
    if not drift.chain_absent:
        for text in drift.missing:
            rule = by_text[text]
            if rule.kind == "return" and rule.cidr is not None:
                missing_cidrs.append(rule.cidr.cidr)
            elif rule.kind == "link-local":
                link_local = "missing"
            elif rule.kind == "masquerade":
                final_rule = "final MASQUERADE rule missing"
            else:
                other_missing.append(text)
        live_masq = []
        for line in drift.unexpected:
            key = key_of(line_args(line))
            cidr = _cidr_of(key)
            if cidr == ll:
                link_local = "unexpected" if link_local is None else link_local
            elif cidr is not None:
                extra_cidrs.append(cidr)
            elif _is_masquerade(key):
                live_masq.append(line)
            else:
                other_extra.append(line)
        if live_masq:
            if final_rule:
                final_rule = f"final rule differs: live `{live_masq[0]}`"
                other_extra += live_masq[1:]
            else:
                other_extra += live_masq
        if not drift.chain_equal and not (drift.missing or drift.unexpected):
            keys = [key_of(line_args(t)) for t in chain_lines]
            masq_at = [i for i, k in enumerate(keys) if _is_masquerade(k)]
            if len(keys) != len(fam.rules):
                order = f"the chain holds {len(keys)} rules where {len(fam.rules)} are expected (duplicated rules)"
            elif masq_at and masq_at[-1] != len(keys) - 1:
                order = "rules after the final MASQUERADE (they never match)"
            else:
                order = "rules in an order that changes the verdict"
    in_sync = drift.in_sync
    return FamilyState(
        fam.family, IN_SYNC if in_sync else DRIFT, None, fam.chain, drift.chain_absent,
        tuple(missing_cidrs), tuple(extra_cidrs), link_local, final_rule, order, tuple(other_missing),
        tuple(other_extra), len(drift.jumps), excerpt)


def chain_of_dump(dump, chain: str) -> tuple[tuple[str, ...] | None, tuple[str, ...], bool]:
    """(chain lines or None, POSTROUTING lines, excerpt) from a parsed dump."""
    nat = dump.table("nat")
    if nat is None:
        return None, (), dump.fragment
    post = tuple(t for _, t in nat.lines_of.get("POSTROUTING", []))
    lines = nat.lines_of.get(chain)
    if lines is None and chain not in nat.declared:
        return None, post, dump.fragment
    return tuple(t for _, t in (lines or [])), post, dump.fragment


def live_chain(text: str, chain: str, source: str) -> tuple[tuple[str, ...] | None, tuple[str, ...], bool]:
    """(chain lines or None, POSTROUTING lines, excerpt) from ``iptables-save`` text.
    Raises ``masqctl.netfilter.dump.DumpError``."""
    from masqctl.netfilter.dump import parse_dump

    return chain_of_dump(parse_dump(text, source), chain)


def capture_reason(snapshot: ClusterSnapshot, node: str, capture: NodeCapture | None, piece: str) -> str:
    """Why a node's ``piece`` (iptables-save / ip6tables-save) is not there."""
    if capture is not None:
        for k in (piece, "node"):
            if capture.errors.get(k):
                return capture.errors[k]
        return f"{piece} was not captured on this node"
    return snapshot.missing.get(f"{MissingKey.CAPTURES}/{node}") or snapshot.missing.get(MissingKey.CAPTURES) \
        or "this node was not captured"


def node_drift(snapshot: ClusterSnapshot, node: str, rules: RuleSet | None, no_rules: str | None = None,
               dumps: NodeDumps | None = None, _memo: dict | None = None) -> NodeDrift:
    """One node's state against ``rules`` (None: the rules cannot be known, ``no_rules`` says why).

    ``dumps`` (``masqctl.analysis.nodedumps.NodeDumps``) parses each distinct capture once; without
    it the node's dump is parsed here."""
    from masqctl.netfilter.dump import DumpError

    capture = snapshot.captures.get(node)
    fams = rules.families() if rules is not None else []
    out = []
    if rules is None:
        return NodeDrift(node, (FamilyState(4, UNKNOWN, no_rules or "the effective config is not known"),))
    for fam in fams:
        piece = "iptables-save" if fam.family == 4 else "ip6tables-save"
        text = None if capture is None else (capture.iptables_save if fam.family == 4 else capture.ip6tables_save)
        if not text:
            out.append(FamilyState(fam.family, UNKNOWN, "no capture: " + capture_reason(snapshot, node, capture, piece),
                                   fam.chain))
            continue
        try:
            if dumps is not None:
                chain_lines, post, excerpt = dumps.live_chain(node, fam.family, fam.chain)
            else:
                chain_lines, post, excerpt = live_chain(text, fam.chain, f"nodes/{node}/{piece}.txt")
        except DumpError as exc:
            out.append(FamilyState(fam.family, UNKNOWN, f"capture unreadable: nodes/{node}/{piece}.txt line "
                                   f"{exc.lineno}: {exc.message}", fam.chain))
            continue
        if _memo is None:
            out.append(family_state(fam, chain_lines, post, excerpt))
            continue
        # family_state is a pure function of these: nodes with the same chain share one comparison
        key = (fam.family, fam.chain, chain_lines, post, excerpt)
        state = _memo.get(key)
        if state is None:
            state = _memo[key] = family_state(fam, chain_lines, post, excerpt)
        out.append(state)
    return NodeDrift(node, tuple(out))


def drift_report(snapshot: ClusterSnapshot, nodes: list[str], rules: RuleSet | None, chain: str,
                 no_rules: str | None = None, dumps: NodeDumps | None = None) -> DriftReport:
    """Every node in ``nodes`` against ``rules``, grouped. With ``dumps`` sharing (the default of
    inspect), each distinct capture is parsed once and each distinct chain compared once."""
    memo = {} if dumps is not None and dumps.share else None
    per_node = [node_drift(snapshot, n, rules, no_rules, dumps, memo) for n in nodes]
    return DriftReport(chain, tuple(per_node), group_nodes(per_node))


__all__ = ["FamilyState", "NodeDrift", "NodeGroup", "DriftReport", "family_state", "node_drift", "drift_report",
           "group_nodes", "live_chain", "chain_of_dump", "capture_reason", "IN_SYNC", "DRIFT", "UNKNOWN"]
