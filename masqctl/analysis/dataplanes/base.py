"""The interface every dataplane implements (see the package docstring)."""

from __future__ import annotations

from masqctl.analysis.explain import Explanation, Request, explain


class Dataplane:
    """One engine that can masquerade pod traffic on a node.

    ``snat_by`` is its key (``MasqMode.snat_by``). ``exact``: masqctl models this engine, so
    ``verdict`` is the engine's own decision. The default ``verdict`` walks the node's netfilter
    rules as the kernel does (``analysis.explain``): exact for the iptables agent, and for the
    others the part of the path that is in iptables, which their ``caveat`` qualifies.
    """

    snat_by: str = ""
    exact: bool = False
    note: str | None = None           # the caveat where this engine, not the agent, decides ({mode}: its name)
    remedy: str | None = None         # the fix text of MQ015 in that case

    def verdict(self, request: Request) -> Explanation:
        return explain(request)

    def caveat(self, mode) -> str | None:
        """What an answer in ``mode`` must say besides the verdict (None: nothing). By default
        ``note``, where the mode says the agent does not decide."""
        if self.note is None or mode.agent_decides is not False:
            return None
        return self.note.format(mode=mode.name)

    def fix(self, mode) -> str | None:
        """Where the operator looks, or what to change, when this engine decides (None: nothing
        beyond the findings' own fixes)."""
        return self.remedy
