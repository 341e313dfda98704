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

    def verdict(self, request: Request) -> Explanation:
        return explain(request)

    def caveat(self, mode) -> str | None:
        """What an answer in ``mode`` must say besides the verdict (None: nothing)."""
        return None

    def fix(self, mode) -> str | None:
        """Where the operator looks, or what to change, when this engine decides (None: nothing
        beyond the findings' own fixes)."""
        return None
