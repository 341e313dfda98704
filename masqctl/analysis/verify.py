"""Verify a written change on the nodes: poll until every agent pod's node shows the planned chain.

Pure apart from the injected ``observe`` (a function that gathers a fresh snapshot of the agent
pods and the captures of the given nodes) and the injected clock and sleep, so the loop is the
same against a live cluster and in tests. Each node is compared with ``masqctl.analysis.drift``
(the node-agent's semantic chain comparison) against the planned rules; a node is done once it is
in sync. Agent pods that restarted since the write, or are crash-looping, stop the wait early: the
agent is refusing something, and waiting longer does not help.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from masqctl.analysis.drift import IN_SYNC, node_drift
from masqctl.cluster.model import AgentPod, ClusterSnapshot
from masqctl.engine import RuleSet

DEFAULT_TIMEOUT = 300.0
DEFAULT_INTERVAL = 10.0

Observe = Callable[[list[str] | None], ClusterSnapshot]   # nodes to capture (None: all) → snapshot
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Crash:
    pod: str
    node: str | None
    why: str

    def describe(self) -> str:
        return f"{self.pod}" + (f" on {self.node}" if self.node else "") + f": {self.why}"


@dataclass
class VerifyResult:
    nodes: list[str]                                   # the nodes with an agent pod
    converged: dict[str, int] = field(default_factory=dict)     # node → poll it converged on
    pending: dict[str, str] = field(default_factory=dict)       # node → what it still shows
    crashes: list[Crash] = field(default_factory=list)
    polls: int = 0
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.pending and not self.crashes and bool(self.nodes)

    def summary(self) -> str:
        if self.ok:
            return f"all {len(self.nodes)} node(s) run the new chain (after {self.polls} poll(s))"
        parts = []
        if self.crashes:
            parts.append(f"{len(self.crashes)} agent pod(s) crashing")
        if self.pending:
            parts.append(f"{len(self.pending)} of {len(self.nodes)} node(s) did not converge"
                         + (" before the timeout" if self.timed_out else ""))
        if not self.nodes:
            parts.append("no agent pod is on any node")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "summary": self.summary(), "nodes": len(self.nodes), "polls": self.polls,
                "timed_out": self.timed_out,
                "converged": [{"node": n, "poll": p} for n, p in sorted(self.converged.items())],
                "not_converged": [{"node": n, "state": s} for n, s in sorted(self.pending.items())],
                "crashing": [{"pod": c.pod, "node": c.node, "why": c.why} for c in self.crashes],
                "notes": list(self.notes)}


def crashes(baseline: dict[str, AgentPod], pods: list[AgentPod]) -> list[Crash]:
    """Agent pods that got worse since ``baseline`` (pod name → pod before the write)."""
    out = []
    for p in pods:
        before = baseline.get(p.name)
        if p.waiting_reason == "CrashLoopBackOff" and (before is None or before.waiting_reason != "CrashLoopBackOff"
                                                      or p.restarts > before.restarts):
            why = "CrashLoopBackOff"
        elif before is not None and p.restarts > before.restarts:
            why = f"restarted {p.restarts - before.restarts} time(s) since the write"
        elif before is None and p.restarts > 0:
            why = f"new pod restarted {p.restarts} time(s)"
        else:
            continue
        last = ", ".join(x for x in (p.last_termination_reason,
                                     f"exit code {p.last_termination_exit_code}"
                                     if p.last_termination_exit_code is not None else None,
                                     (p.last_termination_message or "").strip()[:200] or None) if x)
        out.append(Crash(p.name, p.node, why + (f" (last: {last})" if last else "")))
    return out


def verify_rollout(rules: RuleSet, daemonset: str, observe: Observe, *, baseline: list[AgentPod],
                   timeout: float = DEFAULT_TIMEOUT, interval: float = DEFAULT_INTERVAL,
                   clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                   progress: Progress | None = None) -> VerifyResult:
    """Poll until every node with a pod of ``daemonset`` runs ``rules``, a pod crashes, or ``timeout``."""
    deadline = clock() + timeout
    base = {p.name: p for p in baseline}
    snapshot = observe(None)
    pods = [p for p in snapshot.pods if p.daemonset == daemonset]
    nodes = sorted({p.node for p in pods if p.node})
    result = VerifyResult(nodes)
    if not nodes:
        result.notes.append(f"no pod of DaemonSet {daemonset} is scheduled on a node: nothing to verify")
        return result
    pending = list(nodes)
    while True:
        result.polls += 1
        for node in list(pending):
            state = node_drift(snapshot, node, rules)
            if state.state == IN_SYNC:
                result.converged[node] = result.polls
                result.pending.pop(node, None)
                pending.remove(node)
            else:
                result.pending[node] = state.describe()
        result.crashes = crashes(base, pods)
        if progress is not None:
            progress("nodes running the new chain", len(nodes) - len(pending), len(nodes))
        if not pending or result.crashes:
            break
        remaining = deadline - clock()
        if remaining <= 0:
            result.timed_out = True
            break
        sleep(min(interval, remaining))
        snapshot = observe(list(pending))
        pods = [p for p in snapshot.pods if p.daemonset == daemonset]
        # a node whose agent pod went away (scaled down, node deleted) is no longer waited for
        present = {p.node for p in pods if p.node}
        for node in list(pending):
            if node not in present and pods:
                pending.remove(node)
                result.pending.pop(node, None)
                result.notes.append(f"node {node} no longer has an agent pod: not verified")
    return result
