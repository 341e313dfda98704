"""What a node's nftables ruleset shows (whose tables, which nat chains masquerade), and what
hints at native nftables tables on a node whose capture has only ``iptables-save``.

Recognised owners, by table (as the chain signatures of ``dumpfacts`` recognise iptables chains):
``table ip kube-proxy`` / ``ip6 kube-proxy`` (kube-proxy ``--proxy-mode=nftables``),
``table inet kindnet-ipmasq`` (kindnet's masquerade, kubernetes-sigs/kindnet ``pkg/masq``),
``table ip calico`` / ``ip6 calico`` (Calico's nftables dataplane), iptables-nft's own
``ip nat`` (the iptables rules). Pure: reads a snapshot's capture texts only.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from masqctl.netfilter.nft import NftChain, NftError, NftTable, Ruleset
from masqctl.netfilter.nftread import parse_ruleset

KUBE_PROXY = "kube-proxy (--proxy-mode=nftables)"
KINDNET = "kindnet's nftables masquerade"
CALICO = "Calico (nftables dataplane)"
IPTABLES_NFT = "iptables-nft (the iptables rules)"


def owner_named(family: str, name: str) -> str | None:
    """Who writes the native table ``family name``, when its name says so (iptables-nft's are told by
    their chains: ``owner_of``)."""
    if name == "kube-proxy" and family in ("ip", "ip6"):
        return KUBE_PROXY
    if name == "kindnet-ipmasq" and family == "inet":
        return KINDNET
    if name == "calico" and family in ("ip", "ip6", "inet"):
        return CALICO
    return None


def owner_of(t: NftTable) -> str | None:
    """Who writes table ``t``, when its name says so."""
    owner = owner_named(t.family, t.name)
    if owner is not None:
        return owner
    if t.name in ("nat", "filter", "mangle", "raw", "security") and t.family in ("ip", "ip6") and any(
            c.name.isupper() for c in t.chains.values()):
        return IPTABLES_NFT
    return None


@dataclass
class NftFacts:
    """One node's ruleset: ``tables`` (label, owner or None), the native nat chains at
    prerouting/output/postrouting, those of them that can masquerade or SNAT, or why it cannot be read."""

    node: str
    label: str
    tables: list[tuple[str, str | None]] = field(default_factory=list)
    nat_chains: list[str] = field(default_factory=list)
    masquerading: list[str] = field(default_factory=list)
    unreadable: str | None = None
    code: str | None = None

    @property
    def native(self) -> list[tuple[str, str | None]]:
        return [(t, o) for t, o in self.tables if o != IPTABLES_NFT]


def ruleset_text(capture) -> tuple[str | None, str | None]:
    """(text, bundle path) of a capture's ruleset, JSON preferred."""
    if capture is None:
        return None, None
    if capture.nft_ruleset:
        return capture.nft_ruleset, f"nodes/{capture.node}/nft-ruleset.json"
    if capture.nft_ruleset_text:
        return capture.nft_ruleset_text, f"nodes/{capture.node}/nft-ruleset.txt"
    return None, None


def nft_facts(capture) -> NftFacts | None:
    """The facts of a capture's ruleset; None when the capture has none."""
    text, label = ruleset_text(capture)
    if text is None:
        return _unread(capture)
    facts = NftFacts(capture.node, label)
    try:
        rs = parse_ruleset(text, label)
    except NftError as exc:
        from masqctl.analysis.explain_nft import ruleset_error
        err = ruleset_error(exc, label)
        facts.unreadable, facts.code = err.message, err.code
        return facts
    _fill(facts, rs)
    return facts


def _unread(capture) -> NftFacts | None:
    """A ruleset file that is there but says nothing (empty, binary, unreadable, or ``nft`` failed
    on the node) is a ruleset that cannot be read, not a node without one."""
    if capture is None:
        return None
    why = (capture.errors or {}).get("nft")
    for attr, name in (("nft_ruleset", "nft-ruleset.json"), ("nft_ruleset_text", "nft-ruleset.txt")):
        if why is None and getattr(capture, attr, None) == "":
            facts = NftFacts(capture.node, f"nodes/{capture.node}/{name}")
            facts.unreadable, facts.code = "the file is empty (no ruleset)", "E344"
            return facts
    if why is None:
        return None
    facts = NftFacts(capture.node, f"node {capture.node}")
    m = re.search(r"\((E\d{3})\)$", why)
    facts.unreadable, facts.code = (why[:m.start()].rstrip(), m.group(1)) if m else (why, "not captured")
    return facts


def masquerading_owners(capture) -> frozenset[str]:
    """The owners (``owner_of``) of the tables whose postrouting nat chains can masquerade or SNAT on
    this capture's ruleset; empty without a readable ruleset. Cached by text: mode detection asks
    once per node."""
    text, label = ruleset_text(capture)
    return frozenset() if text is None else _masquerading_owners(text, label)


@functools.lru_cache(maxsize=32)
def _masquerading_owners(text: str, label: str) -> frozenset[str]:
    try:
        rs = parse_ruleset(text, label)
    except NftError:
        return frozenset()
    return frozenset(owner_of(t) or f"table {t.family} {t.name}" for t in rs.tables for c in t.chains.values()
                     if c.type == "nat" and c.hook == "postrouting" and owner_of(t) != IPTABLES_NFT
                     and _reaches_snat(t, c))


def _fill(facts: NftFacts, rs: Ruleset) -> None:
    for t in rs.tables:
        owner = owner_of(t)
        facts.tables.append((f"{t.family} {t.name}", owner))
        if owner == IPTABLES_NFT:
            continue
        for c in t.chains.values():
            if c.type == "nat" and c.hook in ("prerouting", "output", "postrouting"):
                label = f"table {t.family} {t.name} chain {c.name} ({c.hook}, priority {c.prio})"
                facts.nat_chains.append(label)
                if c.hook == "postrouting" and _reaches_snat(t, c):
                    facts.masquerading.append(label)


def _reaches_snat(t: NftTable, base: NftChain) -> bool:
    """Whether a masquerade or snat statement is reachable from ``base`` (jumps, gotos, verdict maps)."""
    from masqctl.netfilter.nfteval import _targets

    seen, todo = set(), [base.name]
    while todo:
        name = todo.pop()
        if name in seen or name not in t.chains:
            continue
        seen.add(name)
        for r in t.chains[name].rules:
            if any(isinstance(e, dict) and ("masquerade" in e or "snat" in e) for e in r.exprs):
                return True
            todo.extend(_targets(r.exprs, t))
    return False


def native_hints(snapshot, node: str, chains=None, whole: bool = False, pods=None,
                 incompatible=None) -> list[str]:
    """Why native nftables tables may decide on ``node`` although its capture has no ruleset
    (empty: nothing hints at them). ``chains``: the nat chains its ``iptables-save`` shows;
    ``whole``: that dump shows the whole nat table (so a chain it lacks is absent); ``pods``: the
    workload pods on the node (``NodeDumps.workloads_on``, indexed once for a check of every
    node; picked from the snapshot when not given); ``incompatible``: the tables its parsed
    ``iptables-save`` says iptables cannot print (``Dump.incompatible_tables``; read from the
    text when not given, as for a dump that does not parse)."""
    capture = snapshot.captures.get(node)
    if capture is None or ruleset_text(capture)[0] is not None:
        return []
    hints = []
    if incompatible is None:
        text = capture.iptables_save or ""
        incompatible = _INCOMPATIBLE.findall(text) if _INCOMPATIBLE_WORDS in text else ()
    bad = sorted(set(incompatible) - {"?"})
    if bad:
        hints.append(f"its iptables-save says table(s) {', '.join(bad)} are incompatible (rules written with nft "
                     "that iptables cannot print)")
    if pods is None:
        pods = [p for p in snapshot.workloads if p.node == node]
    pods = [p.name for p in pods if p.namespace == "kube-system"]
    if chains is not None and whole:
        kp = next((p for p in pods if p.startswith("kube-proxy-")), None)
        if kp and "KUBE-SERVICES" not in chains:
            hints.append(f"kube-proxy runs there ({kp}) but its iptables-save has no KUBE-SERVICES chain: kube-proxy "
                         "probably runs --proxy-mode=nftables (table ip kube-proxy)")
        kn = next((p for p in pods if p.startswith("kindnet-")), None)
        if kn and "KIND-MASQ-AGENT" not in chains:
            hints.append(f"kindnet runs there ({kn}) without the iptables chain KIND-MASQ-AGENT: its masquerade is "
                         "probably the nftables table inet kindnet-ipmasq")
        cal = next((p for p in pods if p.startswith("calico-node-")), None)
        if cal and not any(c.startswith("cali-") for c in chains):
            hints.append(f"calico-node runs there ({cal}) without cali- chains in iptables: Calico probably runs its "
                         "nftables (or eBPF) dataplane")
    if hints and capture.absent.get("nft"):
        hints.append("nft was not captured: " + capture.absent["nft"].split(":", 1)[0])
    return hints


_INCOMPATIBLE_WORDS = "is incompatible, use 'nft' tool"      # the line's words: the pattern runs only where they are
_INCOMPATIBLE = re.compile(r"(?m)^#.*?[Tt]able `?'?([A-Za-z0-9_-]+)'? " + re.escape(_INCOMPATIBLE_WORDS))


__all__ = ["NftFacts", "nft_facts", "native_hints", "masquerading_owners", "owner_of", "owner_named", "ruleset_text", "KUBE_PROXY", "KINDNET", "CALICO",
           "IPTABLES_NFT"]
