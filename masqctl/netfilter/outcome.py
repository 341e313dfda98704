"""Turn where a path stopped into an :class:`Outcome`.

A hook ends in a *verdict*, a tuple whose first item is its kind and whose second is the
deciding :class:`Step` (or None):

* ``("policy", step)``: the end of the built-in chain (or a RETURN to it), policy ACCEPT;
* ``("accept", step)``, ``("dropped", step)``, ``("masquerade", step)``;
* ``("snat", step, to_source)``;
* ``("dnat", step, (address, port or None))``, ``("redirect", step, to_ports)``: only from the
  first hook;
* ``("unknown", step, why)``.
"""

from __future__ import annotations

from masqctl.netfilter.facts import IPAddress
from masqctl.netfilter.values import to_source_address
from masqctl.netfilter.walk import Outcome, PathState, Step

_MASQUERADED = {"masquerade": True, "snat": True, "accept": False, "local": False, "untracked": False,
                "dropped": False}


def outcome_of(p: PathState, verdict: tuple) -> Outcome:
    """The outcome of a path whose last hook ended in ``verdict`` (not ``dnat``/``redirect``)."""
    kind = verdict[0]
    step = verdict[1] if len(verdict) > 1 else None
    if kind == "policy":
        deciding = p.last_return[1] if p.last_return and p.last_return[0] == "return" else step
        reason = ("RETURN to the built-in chain: its policy ACCEPT applies (no SNAT)"
                  if deciding is not step else "no rule masqueraded it: the policy ACCEPT applies (no SNAT)")
        return finish(p, "accept", None, deciding, reason)
    if kind == "accept":
        return finish(p, "accept", None, step, "ACCEPT ends the nat table with no SNAT")
    if kind == "masquerade":
        return finish(p, "masquerade", p.masq_src, step, "MASQUERADE")
    if kind == "snat":
        to = verdict[2]
        return finish(p, "snat", to_source_address(to), step, f"SNAT to {to}")
    if kind == "dropped":
        return finish(p, "dropped", None, step, "dropped")
    reason = verdict[2] if len(verdict) > 2 else "unknown"
    return finish(p, "unknown", None, step, reason)


def finish(p: PathState, kind: str, new_src: IPAddress | None, deciding: Step | None, reason: str) -> Outcome:
    """The outcome of path ``p`` ending as ``kind``; ``new_src``: the source after SNAT."""
    masq = _MASQUERADED.get(kind)
    if kind in ("masquerade", "snat"):
        seen = str(new_src) if new_src is not None else None
    elif kind in ("accept", "local", "untracked"):
        seen = str(p.src)
    else:
        seen = None
    return Outcome(kind, masq, seen, str(p.dst), p.dport, deciding, p.trace, p.conditions,
                   p.prob if p.random else None, reason, p.dnat, p.marks, p.egress, p.random, p.assumed)
