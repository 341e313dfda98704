"""`masqctl inspect`: what decides masquerading in a cluster, what is wrong, and how to fix it."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from masqctl.cli import gathering as g
from masqctl.cli.output import Output, OutputOpt, Verbose, emit, print_wide, console as make_console

Only = Annotated[Optional[str], typer.Option(
    "--only", metavar="CODE,...", help="Report only these finding codes (e.g. MQ004,MQ005); see docs/findings.md.")]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="Print only the one-line verdict (the exit status says "
                                     "the rest).")]


@g.takes_gather_flags
def inspect(gathering: g.GatherFlags, only: Only = None, output: OutputOpt = Output.table,
            verbose: Verbose = 0, quiet: Quiet = False) -> None:
    """Gather what decides masquerading in a cluster and report findings.

    With several clusters (--bundle and --context repeated), one section per cluster, then the
    fleet: how their VNets peer, and findings across them (MQ018-MQ020).

    Exit status: 0 no error-severity finding, 1 at least one, 2 usage or input error.

    Examples:

      masqctl inspect --bundle examples/hub-spoke

      masqctl inspect --bundle examples/aks-kubenet -o wide

      masqctl inspect --context aks-prod -g rg-prod --cluster aks-prod -o json

      masqctl inspect --bundle ./bundle --only MQ004,MQ005 --nodes agentpool=system

      masqctl inspect --bundle examples/hub-spoke-fleet/spoke1 --bundle examples/hub-spoke-fleet/hub

      masqctl inspect --context spoke1 --context hub --azure spoke1=rg-spoke1/aks-spoke1 --azure hub=rg-hub/aks-hub
    """
    from masqctl.analysis.inspect import check_codes
    from masqctl.ops.inspect import inspect_clusters

    codes = check_codes(only.split(",")) if only is not None else None     # before minutes of gathering
    report = inspect_clusters(gathering.cluster_options(), only=set(codes) if codes is not None else None,
                              progress=_progress(verbose, output, quiet))
    fleet = hasattr(report, "reports")
    if output.human and quiet:
        make_console().print(_verdict_markup(report))
    elif output.human and fleet:
        render_fleet(report, verbose)
    elif output.human:
        render_human(report, verbose, wide=output == Output.wide)
    else:
        emit(report.to_dict(), output, indent=True)
    raise typer.Exit(report.exit_code)


def _progress(verbose: int, output: Output, quiet: bool = False):
    from masqctl.cli.progress import progress_callback

    return progress_callback(verbose=verbose, quiet=quiet or not output.human)


# --------------------------------------------------------------------------- human output


def _node_table(console, report) -> None:
    """``-o wide``: one row per node in scope, as ``kubectl get nodes -o wide`` lists them."""
    from rich.markup import escape
    from rich.table import Table

    state = {n.node: n for n in report.drift.nodes} if report.drift is not None else {}
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for name, kw in (("NODE", {"no_wrap": True}), ("POOL", {"no_wrap": True}), ("INTERNAL-IP", {"no_wrap": True}),
                     ("READY", {"no_wrap": True}), ("CHAIN", {"no_wrap": True}), ("BACKEND", {"no_wrap": True}),
                     ("CAPTURED", {"no_wrap": True})):
        table.add_column(name, **kw)
    for row in report.node_rows:
        drift = state.get(row.name)
        chain = drift.state if drift is not None else "unknown"
        captured = row.via or ("captured" if row.captured_at else "no capture")
        table.add_row(escape(row.name), escape(row.pool or "-"), escape(row.internal_ip or "-"),
                      {True: "True", False: "False", None: "?"}[row.ready],
                      f"[{_STATE_STYLE.get(chain, '')}]{escape(chain)}[/]", escape(row.backend or "?"),
                      escape(captured))
    print_wide(console, table)


_COMMANDS = ("kubectl ", "masqctl ", "az ", "iptables", "ip6tables")   # fix lines to copy as they are
_SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_STATE_STYLE = {"in-sync": "green", "drift": "bold red", "unknown": "yellow"}


def _verdict_markup(report) -> str:
    from rich.markup import escape

    style = "bold red" if report.exit_code else ("bold yellow" if report.counts()["warning"] else "bold green")
    return f"[{style}]{escape(report.verdict())}[/]"


def render_human(report, verbose: int = 0, console=None, wide: bool = False) -> None:
    """The report for a person; ``wide`` (``-o wide``): every network meaning of each CIDR and its
    family, one row per node (pool, address, state, capture), every node and evidence of a finding."""
    from rich.markup import escape
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    console = console or make_console()
    d = report.to_dict()
    console.print(_verdict_markup(report))
    title = f"masqctl inspect — {escape(report.cluster or report.source)}"
    if report.collected_at:
        title += f" (collected {escape(report.collected_at)})"
    console.print(f"[bold]{title}[/]")

    # agent & mode
    console.rule("[bold]Agent and mode[/]", align="left")
    view = report.agent
    if view is None and report.agent_unknown:
        console.print(f"Agent      [yellow]unknown[/]: {escape(report.agent_unknown)}")
    elif view is None:
        console.print("No masquerade agent DaemonSet found.")
    else:
        ds = view.daemonset
        args = " ".join(view.argv) or "(no args)"
        console.print(f"Agent      {escape(ds.ref)}  flavour [bold]{escape(str(ds.flavor))}[/]")
        console.print(f"Image      {escape(ds.image)}")
        console.print(f"Args       {escape(args)}" + (f"  chain {escape(view.chain)}" if view.chain != "IP-MASQ-AGENT" else ""))
        if ds.desired is not None:
            console.print(f"Pods       {ds.ready}/{ds.desired} ready")
        for other in report.agents:
            if other is not view:
                console.print(f"Also       {escape(other.daemonset.ref)} ({escape(other.daemonset.image)})")
    mode = report.mode
    console.print(f"Mode       {escape(mode.describe())}")
    if mode.agent_decides is not None:
        console.print("           the agent's chain " + ("[green]decides[/]" if mode.agent_decides else
                                                         "[yellow]does not decide[/]") + " masquerading")
    if verbose:
        for e in mode.evidence:
            console.print(f"           [dim]evidence: {escape(e)}[/]")
    for m in mode.missing[:2 if not verbose else None]:
        console.print(f"           [dim]missing: {escape(m)}[/]")

    # effective config
    console.rule("[bold]Effective config[/]", align="left")
    if view is None:
        console.print("[yellow]unknown[/]: " + escape(report.agent_unknown or "no agent DaemonSet was found")
                      + (": the ConfigMaps alone do not say which of them the agent reads" if report.agent_unknown
                         else ""))
    if view is not None:
        if view.config is None:
            console.print("[bold red]not computed[/]: " + escape(view.error.one_line() if view.error else
                                                               "; ".join(view.notes) or "unknown"))
        else:
            cfg = d["config"]
            table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
            prefix = f"ConfigMap {view.daemonset.namespace}/"
            # each source as "ConfigMap name" over "key K line N": a name is never broken mid-word
            shown = {row.cidr: [s.replace(prefix, "").replace(" key ", "\n  key ") for s in row.sources]
                     for row in report.cidrs}
            table.add_column("CIDR", no_wrap=True)
            if wide:
                table.add_column("IPv", no_wrap=True)
            table.add_column("source (ConfigMap, key, line)", no_wrap=True)
            table.add_column("on the network", overflow="fold")
            for row in report.cidrs:
                sources = shown[row.cidr]
                network = escape("\n".join(row.network if wide else row.network[:3]))
                table.add_row(*(escape(row.cidr), *((str(row.family),) if wide else ()),
                                escape("\n".join(sources)), network))
            if not report.cidrs:
                table.add_row("(none)", "", "everything non-local is masqueraded")
            console.print(table)
            ll = cfg["masqLinkLocal"]
            console.print(f"masqLinkLocal {str(ll['value']).lower()} ({escape(', '.join(ll['sources']))})"
                          + ("  — link-local (169.254.0.0/16, IMDS) is masqueraded" if ll["value"] else ""))
            if cfg["defaults_used"]:
                console.print("[yellow]No config file: the agent's default list applies.[/]")
        for f in view.files:
            state = "read" if f.read and f.present else ("absent" if not f.present else "not read")
            console.print(f"[dim]/etc/config/{escape(f.path)} ← ConfigMap {escape(f.configmap)} key "
                          f"{escape(f.key)}: {state}[/]")

    # nodes
    console.rule("[bold]Nodes[/]", align="left")
    if report.drift is None or not report.drift.groups:
        console.print("No nodes to compare." if report.drift is not None else
                      f"Not compared: the agent is unknown: {escape(report.agent_unknown)}" if report.agent_unknown else
                      "No agent: nothing to compare.")
    else:
        for group in report.drift.groups:
            style = _STATE_STYLE.get(group.state, "")
            shown = ", ".join(group.nodes[:3]) + (f" and {len(group.nodes) - 3} more" if len(group.nodes) > 3
                                                    else "")
            console.print(f"[{style}]{len(group.nodes):>4} node(s)[/] {escape(group.summary)}  [dim]{escape(shown)}[/]")
    if wide and report.node_rows:
        _node_table(console, report)
    for line in report.mismatch:
        console.print(f"[yellow]note:[/] {escape(line)}")

    # findings
    console.rule("[bold]Findings[/]", align="left")
    if not report.findings:
        console.print("[green]No findings.[/]" + (" (only " + ", ".join(report.only) + ")" if report.only else ""))
    for f in report.findings:
        console.print(f"[{_SEV_STYLE[f.severity]}]{f.severity.upper():7}[/] [bold]{f.code}[/] {escape(f.title)}")
        console.print(Padding(Text(f.detail), (0, 0, 0, 2), expand=False))
        if f.nodes:
            limit = None if wide else 5
            console.print(Padding(Text("nodes: " + ", ".join(f.nodes[:limit])
                                       + (f" and {len(f.nodes) - 5} more" if limit and len(f.nodes) > limit else ""),
                                       style="dim"), (0, 0, 0, 2), expand=False))
        for e in f.evidence[: None if verbose or wide else 3]:
            console.print(Padding(Text("evidence: " + e, style="dim"), (0, 0, 0, 2), expand=False))
        if f.fix:
            console.print("  [bold]fix:[/]")
            verbatim = set(f.configmap.splitlines())
            for line in f.fix.splitlines():
                if line in verbatim or line.startswith(_COMMANDS):
                    console.print("    " + escape(line), soft_wrap=True)     # copied as is: never wrapped
                else:
                    console.print(Padding(Text(line), (0, 0, 0, 4), expand=False))
    if report.not_checked:
        console.rule("[bold]Not checked[/]", align="left")
        for n in report.not_checked:
            nodes = f" [dim](nodes: {escape(', '.join(n.nodes[:3]))}" \
                f"{f' and {len(n.nodes) - 3} more' if len(n.nodes) > 3 else ''})[/]" if n.nodes else ""
            console.print(f"[bold]{n.code}[/] {escape(n.reason)}{nodes}")
    if report.notes and verbose:
        for note in (n for n in report.notes if n not in report.mismatch):
            console.print(f"[dim]note: {escape(note)}[/]")
    c = report.counts()
    console.print(f"\n{c['error']} error(s), {c['warning']} warning(s), {c['info']} info; "
                  f"{len(report.nodes_in_scope)} node(s); exit {report.exit_code}")


def render_fleet(report, verbose: int = 0, console=None) -> None:
    """Each cluster's section as for one cluster, then the fleet section."""
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    console = console or make_console()
    console.print(_verdict_markup(report))
    for name, r in zip(report.names, report.reports):
        console.print()
        console.rule(f"[bold]cluster {escape(name)}[/]", characters="=")
        render_human(r, verbose, console)
    console.print()
    console.rule("[bold]fleet[/]", characters="=")
    console.rule("[bold]Connections[/]", align="left")
    peered = [c for c in report.connections if c.state != "not peered" or verbose]
    for c in peered:
        style = "green" if c.connected else ("yellow" if c.connected is None else "bold red")
        console.print(f"[{style}]{escape(c.describe())}[/]")
        for n in c.notes:
            console.print(f"  [dim]{escape(n)}[/]")
    unpeered = sorted({(c.source, c.target) for c in report.connections if c.state == "not peered"}
                      - {(c.source, c.target) for c in report.connections if c.state != "not peered"})
    if unpeered and not verbose:
        console.print("[dim]not peered: " + escape(", ".join(f"{a} → {b}" for a, b in unpeered)) + "[/]")
    if not report.connections:
        console.print("No connections known.")
    console.rule("[bold]Findings across clusters[/]", align="left")
    if not report.findings:
        console.print("[green]No findings.[/]")
    for ff in report.findings:
        f = ff.finding
        console.print(f"[{_SEV_STYLE[f.severity]}]{f.severity.upper():7}[/] [bold]{f.code}[/] {escape(f.title)}"
                      f"  [dim]({escape(' → '.join(ff.clusters))})[/]")
        console.print(Padding(Text(f.detail), (0, 0, 0, 2), expand=False))
        for e in f.evidence[: None if verbose else 3]:
            console.print(Padding(Text("evidence: " + e, style="dim"), (0, 0, 0, 2), expand=False))
        if f.fix:
            console.print("  [bold]fix:[/]")
            for line in f.fix.splitlines():
                if line.startswith(_COMMANDS):
                    console.print("    " + escape(line), soft_wrap=True)
                else:
                    console.print(Padding(Text(line), (0, 0, 0, 4), expand=False))
    if report.not_checked:
        console.rule("[bold]Not checked across clusters[/]", align="left")
        for n in report.not_checked:
            console.print(f"[bold]{n.code}[/] {escape(n.reason)}")
    c = report.counts()
    console.print(f"\n{len(report.names)} clusters; {c['error']} error(s), {c['warning']} warning(s), "
                  f"{c['info']} info in all; exit {report.exit_code}")
