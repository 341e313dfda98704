"""Compare a live agent chain and its POSTROUTING jump with the intended rules, by meaning.

Pure functions on rule text (stdlib only). The live state of one family is two listings: the
agent's chain (``None`` when it does not exist) and ``POSTROUTING``, as ``-A CHAIN ...`` lines
(``iptables -S`` or ``iptables-save`` print them alike). Rules are compared by meaning
(``rule_key``): iptables prints matches in its own order, so a text comparison would see drift
that is not there. Consecutive RETURN rules commute (a packet that matches any of them leaves
the chain), so each run of them is compared as a multiset: the Go agent writes its CIDRs in
random order. The node-agent uses this to decide whether to rewrite; ``inspect`` to report
drift per node.
"""

from __future__ import annotations

from dataclasses import dataclass

from masqctl.netfilter.canonical import RuleSyntaxError, is_masq_jump, rule_key
from masqctl.netfilter.tokens import TokenizeError, split_args


@dataclass(frozen=True)
class LiveFamily:
    """What the kernel holds for one family."""

    chain_lines: tuple[str, ...] | None   # ``-A CHAIN ...`` lines; None when the chain is absent
    postrouting_lines: tuple[str, ...]    # ``-A POSTROUTING ...`` lines


@dataclass(frozen=True)
class Drift:
    chain_absent: bool
    chain_equal: bool
    missing: tuple[str, ...]      # intended rules not found in the chain (their text)
    unexpected: tuple[str, ...]   # live rules of the chain that are not intended
    jumps: tuple[str, ...]        # POSTROUTING lines that are our jump, in order

    @property
    def in_sync(self) -> bool:
        return self.chain_equal and len(self.jumps) == 1

    def describe(self) -> str:
        parts = []
        if self.chain_absent:
            parts.append("chain absent")
        elif not self.chain_equal:
            detail = []
            if self.missing:
                detail.append(f"{len(self.missing)} missing")
            if self.unexpected:
                detail.append(f"{len(self.unexpected)} unexpected")
            if not detail:
                detail.append("order differs")
            parts.append("chain rules: " + ", ".join(detail))
        if not self.jumps:
            parts.append("POSTROUTING jump absent")
        elif len(self.jumps) > 1:
            parts.append(f"{len(self.jumps)} POSTROUTING jumps")
        return "; ".join(parts) or "in sync"


def key_of(args: list[str]):
    """``rule_key`` of argument words; a rule it cannot read keeps its words (never equal to ours)."""
    try:
        return rule_key(args)
    except RuleSyntaxError:
        return ("unparsed", tuple(args))


def line_args(line: str) -> list[str]:
    """The words after ``-A CHAIN``; a live line iptables itself could not split (an unterminated
    quote) is kept as plain words, so it never equals an intended rule nor counts as our jump."""
    try:
        return split_args(line)[2:]
    except TokenizeError:
        return ["<unsplittable>", *line.split()[2:]]


def is_return(key) -> bool:
    return isinstance(key, tuple) and len(key) == 3 and key[2] == ("-j", "RETURN", ())


def verdict_order(keys: list) -> list:
    """The rules in the order that matters: each run of consecutive RETURN rules as a multiset."""
    out: list = []
    run: list = []
    for key in keys:
        if is_return(key):
            run.append(key)
            continue
        if run:
            out.append(("returns", tuple(sorted(run, key=repr))))
            run = []
        out.append(key)
    if run:
        out.append(("returns", tuple(sorted(run, key=repr))))
    return out


def jumps_to(postrouting_lines, chain: str) -> tuple[str, ...]:
    """The POSTROUTING lines that are the jump to ``chain``, whatever their comment."""
    return tuple(line for line in postrouting_lines if is_masq_jump(line_args(line), chain))


def compare_chain(chain: str, intended: list[str], live: LiveFamily) -> Drift:
    """Compare the intended ``-A CHAIN ...`` lines of ``chain`` with the live state."""
    wanted = [(text, key_of(line_args(text))) for text in intended]
    jumps = jumps_to(live.postrouting_lines, chain)
    if live.chain_lines is None:
        return Drift(True, False, tuple(t for t, _ in wanted), (), jumps)
    live_keys = [(line, key_of(line_args(line))) for line in live.chain_lines]
    equal = verdict_order([k for _, k in wanted]) == verdict_order([k for _, k in live_keys])
    wanted_set = {k for _, k in wanted}
    live_set = {k for _, k in live_keys}
    missing = tuple(t for t, k in wanted if k not in live_set)
    unexpected = tuple(line for line, k in live_keys if k not in wanted_set)
    # A duplicated intended rule is drift too (equal is False), reported as "order differs".
    return Drift(False, equal, missing, unexpected, jumps)
