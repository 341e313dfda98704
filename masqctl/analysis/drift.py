"""Per node: does the live agent chain and its POSTROUTING jump match the effective config?

The comparison is the node-agent's own (``masqctl.netfilter.chaindiff``): by meaning, with each
run of RETURN rules compared as a multiset (the Go agent writes its CIDRs in random order).
What differs is then named the way an operator reads it: CIDRs missing or extra, the
link-local rule, the final MASQUERADE rule, the jump missing or duplicated, the chain absent.

Nodes with the same state form one group, so 300 identical nodes are one line. A node whose
``iptables-save`` was not captured is ``unknown`` with the reason, never "in sync".

Only what the capture proves is reported. A capture may show only part of the nat table: a
grep excerpt (``iptables-save | grep masq``), a dump cut short (no ``COMMIT`` at the end of nat),
``iptables -S`` of single chains, or no nat table at all (``iptables-save -t filter``). Then a
rule that is shown is evidence (an extra RETURN, a second jump), but a rule that is *not* shown
proves nothing (it may have been filtered out, or come after the cut): those claims are
``unknown``, with what the capture lacks (``LiveView``).
"""

from __future__ import annotations

from dataclasses import dataclass

from masqctl.analysis.dumpfacts import (CUT, FRAGMENT, NAT_BUILTINS, LiveView, chain_of_dump, dump_gap,
                                        nat_limit, no_nat_reason)
from masqctl.analysis.nodedumps import NodeDumps
from masqctl.cluster.model import ClusterSnapshot, MissingKey, NodeCapture
from masqctl.engine import FamilyRules, RuleSet
from masqctl.engine.model import LINK_LOCAL_V4, LINK_LOCAL_V6
from masqctl.netfilter.chaindiff import LiveFamily, compare_chain, is_return, key_of, line_args
from masqctl.netfilter.dump import DumpError, parse_dump

IN_SYNC, DRIFT, UNKNOWN = "in-sync", "drift", "unknown"

EMPTY = "the capture is empty (0 bytes)"

def for_family(text: str | None, family: int) -> str | None:
    """A capture text of ``iptables-save`` said of ``ip6tables-save`` (family 6)."""
    if text is None or family == 4:
        return text
    return text.replace("iptables-save", "ip6tables-save").replace("iptables -", "ip6tables -") \
        .replace("the capture", "the ip6tables-save capture").replace("table ip nat", "table ip6 nat")


def live_chain(text: str, chain: str, source: str) -> LiveView:
    """What ``iptables-save`` text shows of ``chain`` and nat POSTROUTING (``LiveView``).
    Raises ``masqctl.netfilter.dump.DumpError``."""
    return chain_of_dump(parse_dump(text, source), chain)


# --------------------------------------------------------------------------- one family's state


@dataclass(frozen=True)
class FamilyState:
    """One family (iptables / ip6tables) of one node against the rendered rules.

    Every issue listed is proven by the capture. What the capture cannot show is in
    ``chain_gap`` (MQ004: rules of the chain it may not show) and ``jump_gap`` (MQ005: the jump
    or the chain's existence), after ``capture`` (what limits the capture)."""

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
    jumps: int = 1                              # POSTROUTING jumps to the chain shown
    excerpt: bool = False                       # the capture shows only part of nat (or none of it)
    capture: str | None = None                  # what limits the capture (FRAGMENT, CUT, …)
    chain_gap: str | None = None                # what of the chain cannot be checked (MQ004)
    jump_gap: str | None = None                 # what of the jump / the chain's existence cannot be (MQ005)
    jumps_exact: bool = True                    # every POSTROUTING rule is shown: ``jumps`` is the count

    @property
    def binary(self) -> str:
        return "iptables" if self.family == 4 else "ip6tables"

    def chain_issues(self) -> list[str]:
        """What differs inside the chain (MQ004), as far as the capture proves it."""
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
        """The chain absent or the POSTROUTING jump missing/duplicated (MQ005), as far as proven."""
        out = []
        v6 = " (IPv6)" if self.family == 6 else ""
        if self.chain_absent:
            out.append(f"chain {self.chain} absent" + (f" ({self.binary})" if self.family == 6 else ""))
        if self.jumps_exact and self.jumps == 0:
            out.append(f"no POSTROUTING jump to {self.chain}{v6}")
        elif self.jumps > 1:
            out.append(f"{'' if self.jumps_exact else 'at least '}{self.jumps} POSTROUTING jumps to {self.chain}{v6}")
        return out

    def mq004_gap(self) -> str | None:
        """Why MQ004 cannot be (fully) checked on this family, None when it can."""
        return self._gap(self.chain_gap)

    def mq005_gap(self) -> str | None:
        """Why MQ005 cannot be (fully) checked on this family, None when it can."""
        return self._gap(self.jump_gap)

    def _gap(self, what: str | None) -> str | None:
        if what is None:
            return None
        return f"{self.capture}: {what}" if self.capture else what

    def describe(self) -> str:
        if self.state == UNKNOWN:
            return f"unknown, {self.reason}"
        if self.state == IN_SYNC:
            return "in sync"
        text = "; ".join(self.jump_issues() + self.chain_issues())
        if self.capture:
            gaps = [g for g in dict.fromkeys(p for g in (self.chain_gap, self.jump_gap) if g
                                             for p in g.split("; "))]
            text = f"{self.capture}: {text}" + (f" ({'; '.join(gaps)})" if gaps else "")
        return text

    def signature(self) -> tuple:
        return (self.family, self.state, self.reason, self.chain_absent, self.missing_cidrs, self.extra_cidrs,
                self.link_local, self.final_rule, self.order, self.other_missing, self.other_extra, self.jumps,
                self.capture, self.chain_gap, self.jump_gap, self.jumps_exact)

    def to_dict(self) -> dict:
        return {"family": self.family, "state": self.state, "reason": self.reason, "chain": self.chain,
                "chain_absent": self.chain_absent, "missing_cidrs": list(self.missing_cidrs),
                "extra_cidrs": list(self.extra_cidrs), "link_local": self.link_local,
                "final_rule": self.final_rule, "order": self.order, "other_missing": list(self.other_missing),
                "other_extra": list(self.other_extra), "jumps": self.jumps, "issues": self.jump_issues()
                + self.chain_issues(), "capture": self.capture,
                "not_known": [g for g in dict.fromkeys((self.mq004_gap(), self.mq005_gap())) if g]}


def unknown_state(family: int, reason: str, chain: str = "IP-MASQ-AGENT") -> FamilyState:
    """A family nothing can be said about (no capture, unreadable, no nat table): MQ004 and MQ005
    are both unknown for ``reason``."""
    return FamilyState(family, UNKNOWN, reason, chain, excerpt=False, chain_gap=reason, jump_gap=reason)


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


def family_state(fam: FamilyRules, view: LiveView) -> FamilyState:
    """Classify how the live chain and POSTROUTING differ from the rendered family, claiming only
    what ``view`` proves: a rule shown is evidence; a rule not shown is evidence only when the
    capture shows the whole chain (``chain_whole``, ``post_whole``)."""
    if view.no_nat is not None:
        return unknown_state(fam.family, for_family(view.no_nat, fam.family), fam.chain)
    capture = for_family(view.capture, fam.family)
    hidden = view.hidden
    live = LiveFamily(view.chain_lines, view.postrouting)
    drift = compare_chain(fam.chain, [r.text for r in fam.rules], live)
    by_text = {r.text: r for r in fam.rules}
    ll = LINK_LOCAL_V4 if fam.family == 4 else LINK_LOCAL_V6
    missing_cidrs, extra_cidrs, other_missing, other_extra = [], [], [], []
    link_local = final_rule = order = None
    shown = view.chain_lines is not None
    if shown:
        if view.chain_whole:          # a rule not shown is missing only when the whole chain is shown
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
        if view.chain_whole and not drift.chain_equal and not (drift.missing or drift.unexpected):
            keys = [key_of(line_args(t)) for t in view.chain_lines]
            masq_at = [i for i, k in enumerate(keys) if _is_masquerade(k)]
            if len(keys) != len(fam.rules):
                order = f"the chain holds {len(keys)} rules where {len(fam.rules)} are expected (duplicated rules)"
            elif masq_at and masq_at[-1] != len(keys) - 1:
                order = "rules after the final MASQUERADE (they never match)"
            else:
                order = "rules in an order that changes the verdict"
    chain_absent = not shown and view.chain_whole
    jumps = len(drift.jumps)
    chain_gap = jump_gap = None
    gaps = []                       # what cannot be checked, each once
    if not shown and not view.chain_whole:
        chain_gap = jump_gap = f"chain {fam.chain} is not shown, so whether it exists is not known (it may be {hidden})"
        gaps.append(chain_gap)
    elif shown and not view.chain_whole:
        chain_gap = f"rules of {fam.chain} {hidden} are not known"
        gaps.append(chain_gap)
    if not view.post_whole and jumps <= 1:
        what = (f"no POSTROUTING jump to {fam.chain} is shown (it may be {hidden})" if jumps == 0 else
                f"further POSTROUTING jumps to {fam.chain} {hidden} are not known")
        jump_gap = f"{jump_gap}; {what}" if jump_gap else what
        gaps.append(what)
    state = FamilyState(
        fam.family, DRIFT, None, fam.chain, chain_absent, tuple(missing_cidrs), tuple(extra_cidrs), link_local,
        final_rule, order, tuple(other_missing), tuple(other_extra), jumps, view.excerpt,
        capture if (chain_gap or jump_gap) else None, chain_gap, jump_gap, view.post_whole)
    if state.jump_issues() or state.chain_issues():
        return state
    if gaps:
        if shown and chain_gap:
            n = len(view.chain_lines)
            rules = f"{n} rule{'s' if n != 1 else ''}"
            agrees = "agrees" if n == 1 else "agree"
            if view.last_cut and n:
                gaps[0] += (f" (the {rules} before the capture's last line {agrees} with the effective config; "
                            "the last line may be cut mid-way)")
            elif view.last_cut:
                gaps[0] += " (its only rule shown is the capture's last line, which may be cut mid-way)"
            else:
                gaps[0] += (f" (the {rules} shown {agrees} with the effective config)" if n
                            else " (none of its rules is shown)")
        return FamilyState(fam.family, UNKNOWN, f"{capture}: " + "; ".join(gaps), fam.chain, jumps=jumps,
                           excerpt=view.excerpt, capture=capture, chain_gap=chain_gap, jump_gap=jump_gap,
                           jumps_exact=view.post_whole)
    return FamilyState(fam.family, IN_SYNC, None, fam.chain, jumps=jumps, excerpt=view.excerpt)


def capture_reason(snapshot: ClusterSnapshot, node: str, capture: NodeCapture | None, piece: str) -> str:
    """Why a node's ``piece`` (iptables-save / ip6tables-save) is not there."""
    if capture is not None:
        for k in (piece, "node"):
            if capture.errors.get(k):
                return capture.errors[k]
        return f"{piece} was not captured on this node"
    return snapshot.missing.get(f"{MissingKey.CAPTURES}/{node}") or snapshot.missing.get(MissingKey.CAPTURES) \
        or "this node was not captured"


def capture_gap(snapshot: ClusterSnapshot, node: str, capture: NodeCapture | None, piece: str) -> str:
    """Why a node's ``piece`` gives nothing to read: ``no capture: <reason>``, or ``EMPTY`` when
    the capture exists but holds 0 bytes (a different fact: something was captured, and was empty)."""
    text = None
    if capture is not None:
        text = capture.iptables_save if piece == "iptables-save" else capture.ip6tables_save
    if text == "" and not capture.errors.get(piece) and not capture.errors.get("node"):
        return for_family(EMPTY, 4 if piece == "iptables-save" else 6)
    return "no capture: " + capture_reason(snapshot, node, capture, piece)


def unreadable_reason(node: str, piece: str, exc) -> str:
    """Why a capture that does not parse (``DumpError``) says nothing."""
    if getattr(exc, "kind", None) == "empty":
        return for_family("the capture holds no chains or rules", 4 if piece == "iptables-save" else 6)
    return f"capture unreadable: nodes/{node}/{piece}.txt line {exc.lineno}: {exc.message}"


def node_drift(snapshot: ClusterSnapshot, node: str, rules: RuleSet | None, no_rules: str | None = None,
               dumps: NodeDumps | None = None, _memo: dict | None = None) -> NodeDrift:
    """One node's state against ``rules`` (None: the rules cannot be known, ``no_rules`` says why).

    ``dumps`` (``masqctl.analysis.nodedumps.NodeDumps``) parses each distinct capture once; without
    it the node's dump is parsed here."""
    capture = snapshot.captures.get(node)
    fams = rules.families() if rules is not None else []
    out = []
    if rules is None:
        return NodeDrift(node, (unknown_state(4, no_rules or "the effective config is not known"),))
    for fam in fams:
        piece = "iptables-save" if fam.family == 4 else "ip6tables-save"
        attr = "iptables_save" if fam.family == 4 else "ip6tables_save"
        if capture is None or not capture.holds(attr):
            out.append(unknown_state(fam.family, capture_gap(snapshot, node, capture, piece), fam.chain))
            continue
        try:
            if dumps is not None:
                view = dumps.live_chain(node, fam.family, fam.chain)
            else:
                view = live_chain(getattr(capture, attr), fam.chain, f"nodes/{node}/{piece}.txt")
        except DumpError as exc:
            out.append(unknown_state(fam.family, unreadable_reason(node, piece, exc), fam.chain))
            continue
        if _memo is None:
            out.append(family_state(fam, view))
            continue
        # family_state is a pure function of these: nodes with the same chain share one comparison
        key = (fam.family, fam.chain, view)
        state = _memo.get(key)
        if state is None:
            state = _memo[key] = family_state(fam, view)
        out.append(state)
    return NodeDrift(node, tuple(out))


def drift_report(snapshot: ClusterSnapshot, nodes: list[str], rules: RuleSet | None, chain: str,
                 no_rules: str | None = None, dumps: NodeDumps | None = None) -> DriftReport:
    """Every node in ``nodes`` against ``rules``, grouped. With ``dumps`` sharing (the default of
    inspect), each distinct capture is parsed once and each distinct chain compared once."""
    memo = {} if dumps is not None and dumps.share else None
    per_node = [node_drift(snapshot, n, rules, no_rules, dumps, memo) for n in nodes]
    return DriftReport(chain, tuple(per_node), group_nodes(per_node))


__all__ = ["FamilyState", "NodeDrift", "NodeGroup", "DriftReport", "LiveView", "family_state", "node_drift",
           "drift_report", "group_nodes", "live_chain", "chain_of_dump", "capture_reason", "capture_gap",
           "unreadable_reason", "unknown_state", "no_nat_reason", "nat_limit", "dump_gap", "for_family",
           "FRAGMENT", "CUT", "EMPTY", "NAT_BUILTINS", "IN_SYNC", "DRIFT", "UNKNOWN"]
