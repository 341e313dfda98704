"""``who`` on a cluster or a bundle: gather the snapshot (with the connection-tracking tables), then answer."""

from __future__ import annotations

from typing import Callable

from masqctl.analysis.who import WhoRequest, WhoResult, who_on_snapshot
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions
from masqctl.errors import UsageError


def who_on_cluster(options: GatherOptions, request: WhoRequest,
                   log: Callable[[str], None] | None = None) -> WhoResult:
    """A bundle is read as a whole (its ``nodes/<node>/conntrack.txt`` files are the tables).
    Live clusters are not read yet: the tables come from a bundle made with ``collect --conntrack``."""
    if options.bundle is None:
        raise UsageError("who reads the connection-tracking tables of a bundle or a file; reading them from a live "
                         "cluster is not supported yet", input="--context", code="E262",
                         hint="kubectl -n kube-system exec AGENT_POD -- cat /proc/net/nf_conntrack > ct.txt, then "
                              "masqctl who OBSERVED --conntrack ct.txt (or a bundle with nodes/<node>/conntrack.txt)")
    if log is not None:
        log(f"who: reading {options.bundle}")
    return who_on_snapshot(gather(options), request)
