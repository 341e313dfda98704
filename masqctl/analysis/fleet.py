"""``inspect`` of several clusters: one report per cluster, then how they connect and the
cross-cluster findings (MQ018–MQ020).

Pure: reads the snapshots (and the per-cluster ``InspectReport``s). ``FleetReport.to_dict()`` is
the JSON/YAML document of a run with several clusters (docs/inspect.md); a run with one cluster
keeps the single cluster's document.
"""

from __future__ import annotations

from dataclasses import dataclass

from masqctl.analysis.findings import ERROR, INFO, WARNING, NotChecked
from masqctl.analysis.findings import fleet as fleet_checks
from masqctl.analysis.findings.fleet import FleetFinding
from masqctl.analysis.fleetnet import Connection, Member
from masqctl.analysis.inspect import SCHEMA_VERSION, InspectReport, inspect
from masqctl.cluster.model import ClusterSnapshot
from masqctl.cluster.options import NodeSelection

_RANK = {ERROR: 0, WARNING: 1, INFO: 2}


@dataclass(frozen=True)
class FleetReport:
    names: tuple[str, ...]
    reports: tuple[InspectReport, ...]
    connections: tuple[Connection, ...]
    findings: tuple[FleetFinding, ...]
    not_checked: tuple[NotChecked, ...]
    only: tuple[str, ...] | None = None

    @property
    def exit_code(self) -> int:
        """1 when any cluster's report, or the fleet, has an error-severity finding."""
        if any(r.exit_code for r in self.reports):
            return 1
        return 1 if any(f.severity == ERROR for f in self.findings) else 0

    def counts(self) -> dict:
        out = {s: sum(1 for f in self.findings if f.severity == s) for s in (ERROR, WARNING, INFO)}
        for r in self.reports:
            for k, v in r.counts().items():
                out[k] += v
        return out

    def verdict(self) -> str:
        problems = [f for f in self.findings if f.severity in (ERROR, WARNING)]
        parts = []
        for name, r in zip(self.names, self.reports):
            n = sum(1 for f in r.findings if f.severity in (ERROR, WARNING))
            if n:
                parts.append(f"{name} {n}")
        head = f"{len(self.names)} clusters: "
        if not problems and not parts:
            return head + "no problems found"
        line = head
        if problems:
            first = problems[0]
            line += (f"{len(problems)} fleet problem{'s' if len(problems) > 1 else ''}: {first.finding.title} "
                     f"({first.code}, {' → '.join(first.clusters)})")
        else:
            line += "no fleet problems"
        if parts:
            line += "; per cluster: " + ", ".join(parts)
        return line

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "clusters": [{**r.to_dict(), "name": name} for name, r in zip(self.names, self.reports)],
            "fleet": {
                "clusters": list(self.names),
                "connections": [c.to_dict() for c in self.connections],
                "findings": [f.to_dict() for f in self.findings],
                "not_checked": [n.to_dict() for n in self.not_checked],
                "summary": {**self.counts(), "exit_code": self.exit_code, "verdict": self.verdict()},
            },
        }


def inspect_fleet(clusters: list[tuple[str, ClusterSnapshot]], *, only: set[str] | None = None,
                  nodes: NodeSelection | None = None,
                  reports: list[InspectReport] | None = None) -> FleetReport:
    """Each cluster's report (``inspect``, or ``reports`` when already made), then the fleet."""
    if reports is None:
        reports = [inspect(snap, only=only, nodes=nodes) for _name, snap in clusters]
    members = [Member(name, snap, report) for (name, snap), report in zip(clusters, reports)]
    ctx = fleet_checks.run(members)
    findings = sorted(ctx.findings, key=lambda f: (_RANK[f.severity], f.code, f.clusters))
    not_checked = ctx.not_checked
    if only is not None:
        findings = [f for f in findings if f.code in only]
        not_checked = [n for n in not_checked if n.code in only]
    return FleetReport(tuple(n for n, _s in clusters), tuple(reports), tuple(ctx.connections), tuple(findings),
                       tuple(sorted(not_checked, key=lambda n: n.code)),
                       tuple(sorted(only)) if only is not None else None)


__all__ = ["FleetReport", "inspect_fleet"]
