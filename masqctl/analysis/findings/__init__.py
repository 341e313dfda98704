"""Findings: stable codes MQ001–MQ017 and MQ021–MQ024, each with the evidence it rests on and a
concrete fix.

One module per responsibility: ``config`` (what the agent's files say: MQ001, MQ002, MQ010–MQ014),
``nodes`` (what the nodes run: MQ003–MQ006, MQ017), ``routing`` (what the list means on the
network: MQ007–MQ009), ``engine`` (who masquerades at all: MQ015, MQ016), ``cilium`` (Cilium's BPF
masquerade and pod-subnet mode: MQ021–MQ024). Each check returns
findings, and says in ``not_checked`` what it could not decide and why; nothing is skipped
silently. Codes never change meaning (docs/findings.md). ``masqctl.analysis.inspect.run_checks`` runs
them all (the checks import this package, so it does not import them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masqctl.analysis.agentconfig import AgentConfigView
from masqctl.analysis.drift import DriftReport
from masqctl.cluster.model import ClusterSnapshot

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)
_RANK = {ERROR: 0, WARNING: 1, INFO: 2}

# code -> short title (docs/findings.md has one section per code)
CATALOGUE = {
    "MQ001": "user config the agent never mounts",
    "MQ002": "the agent refuses its configuration",
    "MQ003": "agent not running, not ready or restarting",
    "MQ004": "node drift: live chain differs from the effective config",
    "MQ005": "POSTROUTING jump missing or duplicated, or chain absent",
    "MQ006": "another rule or masquerade chain decides besides the agent's chain",
    "MQ007": "network ranges not covered by the non-masquerade list",
    "MQ008": "peered-VNet traffic is masqueraded although pod IPs are routable there",
    "MQ009": "a non-masquerade CIDR covers destinations that cannot route back to pod IPs",
    "MQ010": "keys the agent ignores",
    "MQ011": "redundant CIDRs",
    "MQ012": "a setting that cannot take effect",
    "MQ013": "a config file at or near the CIDR limit",
    "MQ014": "IPv6 and the agent's --enable-ipv6 do not match",
    "MQ015": "the iptables agent does not decide masquerading in this mode",
    "MQ016": "the user ConfigMap blocks migration to CNI overlay",
    "MQ017": "iptables backends mixed (legacy tables beside nft)",
    "MQ021": "the user ConfigMap has no effect in pod-subnet mode",
    "MQ022": "Cilium's BPF masquerade does not use the ip-masq-agent config",
    "MQ023": "Cilium reads the config differently from the iptables agent",
    "MQ024": "node drift: Cilium's loaded ip-masq-agent map differs from the effective config",
}
CODES = tuple(CATALOGUE)


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    title: str
    detail: str
    evidence: tuple[str, ...] = ()
    fix: str = ""
    nodes: tuple[str, ...] = ()
    command: str = ""          # the masqctl command that makes the change the fix describes ("" if none)
    configmap: str = ""        # the user ConfigMap manifest the fix proposes ("" if none)

    def to_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "title": self.title, "detail": self.detail,
                "evidence": list(self.evidence), "fix": self.fix,
                "remedy": {"command": self.command or None, "configmap": self.configmap or None},
                "nodes": list(self.nodes)}


@dataclass(frozen=True)
class NotChecked:
    """A finding that could not be decided, and why (missing evidence)."""

    code: str
    reason: str
    nodes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"code": self.code, "reason": self.reason, "nodes": list(self.nodes)}


@dataclass
class Context:
    """Everything the checks read. ``view`` is the primary agent (None: no agent modelled)."""

    snapshot: ClusterSnapshot
    views: list[AgentConfigView]
    view: AgentConfigView | None
    mode: object            # masqctl.analysis.mode.MasqMode
    net: object             # masqctl.analysis.network.NetworkMap
    drift: DriftReport | None
    nodes: list[str]        # the Linux nodes in scope
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[NotChecked] = field(default_factory=list)
    dumps: object = None    # masqctl.analysis.nodedumps.NodeDumps: each distinct capture parsed once

    def add(self, code: str, severity: str, detail: str, *, evidence=(), fix: str = "", nodes=(),
            title: str | None = None, command: str = "", configmap: str = "") -> None:
        self.findings.append(Finding(code, severity, title or CATALOGUE[code], detail, tuple(evidence), fix,
                                     tuple(nodes), command, configmap))

    def skip(self, code: str, reason: str, nodes=()) -> None:
        self.not_checked.append(NotChecked(code, reason, tuple(nodes)))


def ordered(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then by code."""
    return sorted(findings, key=lambda f: (_RANK[f.severity], f.code))


def shown_nodes(nodes, limit: int = 5) -> str:
    nodes = list(nodes)
    text = ", ".join(nodes[:limit])
    if len(nodes) > limit:
        text += f" and {len(nodes) - limit} more"
    return text


__all__ = ["Finding", "NotChecked", "Context", "CATALOGUE", "CODES", "ERROR", "WARNING", "INFO", "SEVERITIES",
           "ordered", "shown_nodes"]
