"""Who masquerades cannot be told from the evidence: the walk of the node's rules is all there is,
and whether the reply comes back may stay open."""

from __future__ import annotations

from masqctl.analysis.dataplanes.base import Dataplane


class Unknown(Dataplane):
    snat_by = "unknown"
    exact = False

    def caveat(self, mode) -> str | None:
        if mode.name != "unknown" or mode.agent_decides is not None:
            return None
        return ("network mode unknown (" + "; ".join(list(mode.missing[:2]) or ["no evidence"]) + "): whether the "
                "reply comes back may stay open")
