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

from masqctl.engine import FamilyRules
from masqctl.netfilter.chaindiff import Drift, LiveFamily, compare_chain, jumps_to

__all__ = ["Drift", "LiveFamily", "compare", "repair_payload", "cleanup_payload"]


def compare(fam: FamilyRules, live: LiveFamily) -> Drift:
    """The live chain and jump of one family against the intended rules (``masqctl.netfilter.chaindiff``)."""
    return compare_chain(fam.chain, [r.text for r in fam.rules], live)


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
    jumps = jumps_to(live.postrouting_lines, chain)
    if live.chain_lines is None and not jumps:
        return None
    lines = ["*nat"]
    lines.extend("-D" + j[2:] for j in jumps)
    if live.chain_lines is not None:
        lines += [f":{chain} - [0:0]", f"-X {chain}"]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
