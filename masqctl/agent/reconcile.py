"""Compare the live nat rules with the intended ones, and build the one payload that repairs them.

Pure functions, no I/O. The live state of one family is two listings (``iptables -S``): the
agent's chain and ``POSTROUTING``. Rules are compared by meaning (``rule_key``): iptables
prints matches in its own order, so text comparison would see drift that is not there.

The repair is a single ``iptables-restore --noflush`` commit: the ``:CHAIN - [0:0]`` line
flushes the chain, the intended rules follow, the POSTROUTING jump is appended only when no
rule with its meaning exists (whatever its comment, e.g. the Go agent's quoted one), and
surplus jumps to the chain are deleted. Rules of anyone else are never named, so they are
never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from masqctl.engine import FamilyRules
from masqctl.netfilter.canonical import RuleSyntaxError, is_masq_jump, rule_key
from masqctl.netfilter.tokens import TokenizeError, split_args


@dataclass(frozen=True)
class LiveFamily:
    """What ``iptables -S`` showed for one family."""

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


def _key(args: list[str]):
    try:
        return rule_key(args)
    except RuleSyntaxError:
        return ("unparsed", tuple(args))


def _line_args(line: str) -> list[str]:
    """The words after ``-A CHAIN``; a line iptables itself could not split (an unterminated
    quote) is kept as plain words, so it never equals an intended rule nor counts as our jump."""
    try:
        return split_args(line)[2:]
    except TokenizeError:
        return ["<unsplittable>", *line.split()[2:]]


def _is_return(key) -> bool:
    return isinstance(key, tuple) and len(key) == 3 and key[2] == ("-j", "RETURN", ())


def _verdict_order(keys: list) -> list:
    """The rules in the order that matters: consecutive RETURN rules commute (a packet that
    matches any of them leaves the chain), so each run of them is compared as a multiset.
    The Go agent writes its CIDRs in random order; an agent that called that drift would
    rewrite the chain every period while both run during a migration."""
    out: list = []
    run: list = []
    for key in keys:
        if _is_return(key):
            run.append(key)
            continue
        if run:
            out.append(("returns", tuple(sorted(run, key=repr))))
            run = []
        out.append(key)
    if run:
        out.append(("returns", tuple(sorted(run, key=repr))))
    return out


def _jumps(live: LiveFamily, chain: str) -> tuple[str, ...]:
    """The POSTROUTING lines that are the jump to ``chain``, whatever their comment."""
    return tuple(line for line in live.postrouting_lines if is_masq_jump(_line_args(line), chain))


def compare(fam: FamilyRules, live: LiveFamily) -> Drift:
    intended = [(r.text, _key(r.args)) for r in fam.rules]
    jumps = _jumps(live, fam.chain)
    if live.chain_lines is None:
        return Drift(True, False, tuple(t for t, _ in intended), (), jumps)
    live_keys = [(line, _key(_line_args(line))) for line in live.chain_lines]
    equal = _verdict_order([k for _, k in intended]) == _verdict_order([k for _, k in live_keys])
    intended_set = {k for _, k in intended}
    live_set = {k for _, k in live_keys}
    missing = tuple(t for t, k in intended if k not in live_set)
    unexpected = tuple(line for line, k in live_keys if k not in intended_set)
    # A duplicated intended rule is drift too (equal is False), reported as "order differs".
    return Drift(False, equal, missing, unexpected, jumps)


def repair_payload(fam: FamilyRules, drift: Drift) -> str:
    """One commit that makes the chain and the jump exactly as intended."""
    lines = ["*nat", f":{fam.chain} - [0:0]", *(r.text for r in fam.rules)]
    if not drift.jumps:
        lines.append(fam.jump.text)
    for extra in drift.jumps[1:]:
        lines.append("-D" + extra[2:])
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def cleanup_payload(chain: str, live: LiveFamily) -> str | None:
    """One commit removing every jump to ``chain`` from POSTROUTING and the chain itself;
    None when there is nothing to remove."""
    jumps = _jumps(live, chain)
    if live.chain_lines is None and not jumps:
        return None
    lines = ["*nat"]
    lines.extend("-D" + j[2:] for j in jumps)
    if live.chain_lines is not None:
        lines += [f":{chain} - [0:0]", f"-X {chain}"]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
