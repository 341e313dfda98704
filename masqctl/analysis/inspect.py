"""``inspect``: everything that decides masquerading in one cluster snapshot, what is wrong, and the fix.

Pure: reads a ``ClusterSnapshot`` only. The report holds the agent and mode, the effective config
with provenance and network meaning per CIDR, per-node status groups, findings most severe first,
and what could not be checked (with the reason). ``InspectReport.to_dict()`` is the JSON/YAML
document (docs/inspect.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masqctl.analysis.agentconfig import AgentConfigView, agent_configs
from masqctl.analysis.drift import DriftReport, drift_report
from masqctl.analysis.findings import (CATALOGUE, CODES, ERROR, INFO, WARNING, Context, Finding, NotChecked,
                                       agent_unknown, config, engine, nftables, nodes, ordered, routing)
from masqctl.analysis.findings import cilium as cilium_findings
from masqctl.analysis.mode import detect_mode
from masqctl.analysis.network import network_map
from masqctl.analysis.nodedumps import AGENT_CHAIN, NodeDumps
from masqctl.cluster.model import ClusterSnapshot, MissingKey
from masqctl.cluster.options import NodeSelection
from masqctl.cluster.selection import choose_in_snapshot
from masqctl.errors import UsageError

SCHEMA_VERSION = 1
_FLEET_ONLY = (MissingKey.SERVICES, MissingKey.ENDPOINTSLICES)


@dataclass(frozen=True)
class CidrRow:
    cidr: str
    family: int
    sources: tuple[str, ...]
    network: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"cidr": self.cidr, "family": self.family, "sources": list(self.sources),
                "network": list(self.network)}


@dataclass(frozen=True)
class NodeRow:
    """One node in scope as ``inspect -o wide`` lists it: what the snapshot says about it."""

    name: str
    pool: str | None
    internal_ip: str | None
    ready: bool | None
    backend: str | None           # nft | legacy | mixed | None (unknown)
    via: str | None               # how it was captured (agent-pod/NAME, debug-pod/NAME, bundle)
    captured_at: str | None


def node_rows(snapshot: ClusterSnapshot, scope) -> tuple[NodeRow, ...]:
    from masqctl.cluster.selection import POOL_LABELS

    rows = []
    for name in scope:
        node = snapshot.node(name)
        cap = snapshot.captures.get(name)
        labels = node.labels if node is not None else {}
        pool = next((labels[k] for k in POOL_LABELS if labels.get(k)), None)
        rows.append(NodeRow(name, pool, node.internal_ip if node is not None else None,
                            node.ready if node is not None else None, cap.backend if cap is not None else None,
                            cap.via if cap is not None else None, cap.captured_at if cap is not None else None))
    return tuple(rows)


@dataclass(frozen=True)
class InspectReport:
    source: str
    cluster: str | None
    collected_at: str | None
    agent: AgentConfigView | None
    agents: tuple[AgentConfigView, ...]
    mode: object                      # MasqMode
    cidrs: tuple[CidrRow, ...]
    drift: DriftReport | None
    findings: tuple[Finding, ...]
    not_checked: tuple[NotChecked, ...]
    nodes_in_scope: tuple[str, ...]
    notes: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    network_missing: tuple[str, ...] = field(default=())
    unlisted_captures: tuple[str, ...] = ()     # captured nodes the Node objects do not list
    uncaptured_nodes: tuple[str, ...] = ()      # listed Linux nodes without a capture (beside those)
    mismatch: tuple[str, ...] = ()              # what the two lists mean, one sentence each
    agent_unknown: str | None = None            # why the agent cannot be told (DaemonSets not gathered)
    node_rows: tuple["NodeRow", ...] = ()       # the nodes in scope, one row each (inspect -o wide)

    @property
    def exit_code(self) -> int:
        """1 when an error-severity finding exists (a CI gate), else 0."""
        return 1 if any(f.severity == ERROR for f in self.findings) else 0

    def counts(self) -> dict:
        return {s: sum(1 for f in self.findings if f.severity == s) for s in (ERROR, WARNING, INFO)}

    def verdict(self) -> str:
        """The answer in one line, first: how many problems (errors and warnings), the most severe
        one with the command that fixes it where there is one, and what could not be decided."""
        problems = [f for f in ordered(list(self.findings)) if f.severity in (ERROR, WARNING)]
        undecided = len(self.not_checked)
        tail = f"; {undecided} check(s) could not be decided" if undecided else ""
        nodes = len(self.nodes_in_scope)
        if not problems:
            unknown = f", but the agent is unknown: {self.agent_unknown}" if self.agent_unknown else ""
            return f"no problems found ({nodes} node(s) in scope){unknown}{tail}"
        first = problems[0]
        line = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}: {first.title} ({first.code})"
        if first.command:
            line += f" → {first.command}"
        if len(problems) > 1:
            line += f"; also {', '.join(dict.fromkeys(f.code for f in problems[1:]))}"
        return line + tail

    def to_dict(self) -> dict:
        view = self.agent
        cfg = view.config if view is not None else None
        config = None
        if view is not None:
            config = {
                "computed": cfg is not None,
                "error": view.to_dict()["error"],
                "nonMasqueradeCIDRs": [r.to_dict() for r in self.cidrs],
                "masqLinkLocal": _setting(view, cfg.masq_link_local) if cfg else None,
                "masqLinkLocalIPv6": _setting(view, cfg.masq_link_local_ipv6) if cfg else None,
                "defaults_used": cfg.defaults_used if cfg else None,
                "warnings": [f"{w.code} {view.where(w.file, w.line)}: {w.message}" for w in cfg.warnings] if cfg else [],
            }
        return {
            "schema": SCHEMA_VERSION,
            "source": self.source,
            "cluster": self.cluster,
            "collected_at": self.collected_at,
            "agent": view.to_dict() if view is not None else None,
            "agent_unknown": self.agent_unknown,
            "other_agents": [v.to_dict() for v in self.agents if v is not view],
            "mode": self.mode.to_dict(),
            "config": config,
            "nodes": self.drift.to_dict() if self.drift is not None else None,
            "findings": [f.to_dict() for f in self.findings],
            "not_checked": [n.to_dict() for n in self.not_checked],
            "summary": {**self.counts(), "nodes": len(self.nodes_in_scope), "exit_code": self.exit_code,
                        "verdict": self.verdict()},
            "only": list(self.only) if self.only is not None else None,
            "notes": list(self.notes),
            "node_names": {"captured_not_listed": list(self.unlisted_captures),
                           "listed_not_captured": list(self.uncaptured_nodes) if self.unlisted_captures else [],
                           "notes": list(self.mismatch)},
        }


def _setting(view: AgentConfigView, s) -> dict:
    return {"value": s.value, "sources": [view.source_of(o) for o in s.origins]}


def check_codes(codes) -> tuple[str, ...]:
    """Validate finding codes (``--only``); unknown ones are a usage error naming them."""
    out = []
    for c in codes:
        code = c.strip().upper()
        if not code:
            continue
        if code not in CATALOGUE:
            raise UsageError(f"unknown finding code {c.strip()!r}; known codes are {CODES[0]}–{CODES[-1]}",
                             input="--only", code="E240", hint="see docs/findings.md")
        out.append(code)
    if not out:
        raise UsageError("no finding code given", input="--only", code="E240", hint="e.g. --only MQ004,MQ005")
    return tuple(dict.fromkeys(out))


# --------------------------------------------------------------------------- node scope


def nodes_in_scope(snapshot: ClusterSnapshot, selection: NodeSelection | None) -> tuple[list[str], list[str]]:
    """The Linux nodes the report is about, and notes (Windows nodes, a selector that matches none).

    ``--nodes`` means here what it means to live gathering (``masqctl.cluster.selection.choose``):
    an unknown node name is E619, a selector is evaluated with the API server's rules on the
    nodes' labels, a sample is the same deterministic spread over the node pools."""
    notes: list[str] = []
    if snapshot.nodes:
        others = [n.name for n in snapshot.nodes if (n.os or "linux").lower() != "linux"]
        if others:
            kind = "Windows" if all((n.os or "").lower() == "windows" for n in snapshot.nodes
                                    if (n.os or "linux").lower() != "linux") else "non-Linux"
            notes.append(f"{len(others)} {kind} node(s) run no masquerade agent and are left out "
                         f"({', '.join(others[:3])}{' …' if len(others) > 3 else ''})")
    elif MissingKey.NODES in snapshot.missing:
        notes.append(f"nodes were not gathered ({snapshot.missing[MissingKey.NODES]}); the nodes are those "
                     "with a capture or an agent pod")
    chosen = choose_in_snapshot(snapshot, selection)
    notes.extend(chosen.notes)
    return list(chosen.names), notes


# --------------------------------------------------------------------------- inspect


def node_name_mismatch(snapshot: ClusterSnapshot) -> list[str]:
    """Sentences on captures of nodes the Node objects do not list (each still analysed as a
    node), and on listed nodes without a capture beside them (a renamed node shows as both)."""
    unlisted = snapshot.unlisted_captures()
    if not unlisted:
        return []
    bundle = snapshot.source.startswith("bundle")
    listing = "nodes.yaml" if bundle else "the Node objects"
    out = [f"{'nodes/' if bundle else 'the capture of '}{n}: a capture of a node {listing} does not list; "
           "it is analysed as a node, without labels, pool or addresses" for n in unlisted]
    absent = snapshot.uncaptured_nodes()
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        fix = (f"if a capture is of a node renamed since, name its folder nodes/<name> as {listing} does"
               if bundle else "a node may have been renamed or replaced while it was captured")
        out.append(f"{listing} lists {shown} without a capture, while {len(unlisted)} capture(s) are of "
                   f"unlisted nodes: {fix}")
    return out


def run_checks(ctx: Context) -> None:
    """Every finding check on ``ctx``: the agent's files, the nodes, the network, the engine."""
    for module in (config, nodes, routing, engine, cilium_findings, nftables):
        module.check(ctx)


def inspect(snapshot: ClusterSnapshot, *, only: set[str] | None = None,
            nodes: NodeSelection | None = None, share_parses: bool = True) -> InspectReport:
    """The full report for one snapshot.

    ``share_parses``: each distinct node capture is parsed once and its facts shared by every
    check (``masqctl.analysis.nodedumps``); False makes every check parse the dumps itself (the
    reference the shared report must equal, and slower on many nodes)."""
    only_codes = check_codes(sorted(only)) if only is not None else None
    views = agent_configs(snapshot)
    view = views[0] if views else None
    dumps = NodeDumps(snapshot, (view.chain if view is not None else AGENT_CHAIN, AGENT_CHAIN), share=share_parses)
    mode = detect_mode(snapshot, dumps=dumps)
    net = network_map(snapshot)
    scope, notes = nodes_in_scope(snapshot, nodes)
    drift = None
    if view is not None:
        rules = view.rules()
        no_rules = None
        if rules is None:
            if view.error is not None:
                no_rules = f"the agent refuses its config ({view.error.code}, MQ002): no rules to compare"
            elif view.options is None:
                no_rules = "the agent is not one masqctl models"
            elif view.options.flavor in ("cilium", "azure-cilium"):
                no_rules = ("Cilium loads a BPF map, not iptables rules: the map a node loaded is compared by "
                            "MQ024 (nodes/<node>/cilium-ipmasq.txt)")
            else:
                no_rules = "the effective config is not known: " + "; ".join(view.notes)
        drift = drift_report(snapshot, scope, rules, view.chain, no_rules, dumps)
    ctx = Context(snapshot, views, view, mode, net, drift, scope, dumps=dumps)
    run_checks(ctx)
    findings = ordered(ctx.findings)
    not_checked = ctx.not_checked
    if only_codes is not None:
        findings = [f for f in findings if f.code in only_codes]
        not_checked = [n for n in not_checked if n.code in only_codes]
    mismatch = node_name_mismatch(snapshot)
    notes.extend(mismatch)
    for key, reason in sorted(snapshot.missing.items()):
        if key in _FLEET_ONLY:
            continue        # no check of one cluster reads them; the fleet section says what it lacks
        notes.append(f"missing {key}: {reason}")
    rows = []
    if view is not None and view.config is not None:
        for entry in view.config.non_masquerade_cidrs:
            try:
                rel = [r.describe() for r in net.relations_of_cidr(entry.cidr)]
            except ValueError:
                rel = []
            if not rel:
                rel = ["no network this snapshot knows" + (" (Azure facts missing)" if net.missing else "")]
            rows.append(CidrRow(entry.cidr, entry.family, tuple(view.source_of(o) for o in entry.origins),
                                tuple(rel)))
    return InspectReport(snapshot.source, snapshot.cluster_name, snapshot.collected_at, view, tuple(views), mode,
                         tuple(rows), drift, tuple(findings), tuple(_merge_skips(not_checked)), tuple(scope),
                         tuple(dict.fromkeys(notes)), only_codes, tuple(net.missing),
                         snapshot.unlisted_captures(), snapshot.uncaptured_nodes(), tuple(mismatch),
                         agent_unknown(snapshot) if view is None else None, node_rows(snapshot, scope))


def _merge_skips(items: list[NotChecked]) -> list[NotChecked]:
    """One entry per (code, reason), nodes united."""
    merged: dict[tuple, list[str]] = {}
    for n in items:
        merged.setdefault((n.code, n.reason), []).extend(n.nodes)
    out = [NotChecked(code, reason, tuple(sorted(set(nodes)))) for (code, reason), nodes in merged.items()]
    return sorted(out, key=lambda n: n.code)


__all__ = ["inspect", "InspectReport", "CidrRow", "check_codes", "nodes_in_scope", "node_name_mismatch",
           "SCHEMA_VERSION"]
