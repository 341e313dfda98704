"""`masqctl who OBSERVED[:PORT]`: which pod opened the connection a destination logged from OBSERVED."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from masqctl.cli import gathering as g
from masqctl.cli.output import Output, OutputOpt, Verbose, emit
from masqctl.errors import EXIT_FAILED, EXIT_OK, UsageError


@g.takes_gather_flags
def who(
    observed: Annotated[str, typer.Argument(
        metavar="OBSERVED[:PORT]", help="The source address the destination logged (a node IP, or a pod IP when "
        "the connection was not masqueraded), with the source port it logged when it has one: IP:PORT, "
        "[IPv6]:PORT.", show_default=False)],
    to: Annotated[Optional[str], typer.Option(
        "--to", metavar="DST[:PORT]", help="Only connections to this destination (the address the destination "
        "was called on).", rich_help_panel="Connection")] = None,
    proto: Annotated[Optional[str], typer.Option(
        "--proto", help="tcp, udp, sctp or icmp (default: any).", rich_help_panel="Connection")] = None,
    conntrack: Annotated[Optional[str], typer.Option(
        "--conntrack", metavar="FILE", help="Offline: one node's table (cat /proc/net/nf_conntrack, or "
        "conntrack -L [-o extended]); - for stdin.", rich_help_panel="Connection")] = None,
    gathering: g.GatherFlags = g.GatherFlags(),
    output: OutputOpt = Output.table, verbose: Verbose = 0,
) -> None:
    """Name the pod behind a source address a destination logged, from the node's connection-tracking table.

    The node that masqueraded a connection still holds its original tuple (pod IP and port) next to
    the translated reply (node IP and port). Exit status: 0 connections found, 1 none, 2 input errors.

    On a live cluster the node that owns OBSERVED is found first, then its table is read through the
    agent pod (host network), or a debug pod with --debug-pod.

    Examples:

      masqctl who 10.40.0.4:51234 --to 10.42.1.10:443 --bundle ./bundle

      masqctl who 10.40.0.4:51234 --to 10.42.1.10:443 --context aks-spoke1

      kubectl -n kube-system exec AGENT_POD -- cat /proc/net/nf_conntrack > ct.txt; masqctl who 10.40.0.4:51234 --conntrack ct.txt -o json
    """
    from masqctl.analysis.who import WhoRequest, parse_address, read_conntrack_file, who_in_table

    req = WhoRequest(observed=parse_address(observed, "OBSERVED"),
                     to=parse_address(to, "--to") if to is not None else None,
                     proto=proto.lower() if proto else None)
    if conntrack is not None and gathering.on_cluster:
        raise UsageError("--conntrack reads one node's table without a cluster; with --bundle the node's "
                         "nodes/<node>/conntrack.txt is used", input="--conntrack", code="E262",
                         hint="drop one of the two")
    if conntrack is not None:
        text = read_conntrack_file(conntrack)
        result = who_in_table(text, "stdin" if conntrack == "-" else conntrack, req)
    elif gathering.on_cluster:
        from masqctl.ops.who import who_on_cluster

        if gathering.no_capture and gathering.bundle is None:
            raise UsageError("a live cluster's tables are read by exec into the node, which --no-capture turns off",
                             input="--no-capture", code="E262", hint="drop --no-capture, or give --bundle")
        result = who_on_cluster(gathering.options(), req, _log if verbose else None)
    else:
        raise UsageError("no table to search: give --bundle DIR (with nodes/<node>/conntrack.txt), "
                         "--conntrack FILE, or a cluster (--context/--kubeconfig)", input="OBSERVED", code="E262",
                         hint="masqctl collect --conntrack -o DIR makes a bundle with the tables")
    if output != Output.table:
        emit(result.to_dict(), output)
    else:
        render_human(result, verbose)
    raise typer.Exit(EXIT_OK if result.matches else EXIT_FAILED)


def _log(text: str) -> None:
    print(text, file=sys.stderr)


def render_human(result, verbose: int = 0) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    style = "bold green" if result.exact else "bold" if result.matches else "bold yellow"
    console.print(escape(result.answer), style=style)
    where = []
    if result.node:
        where.append(f"node {result.node}")
    if result.table and result.searched:
        where.append(f"{result.table} ({result.entries} entries)")
    if where:
        console.print(f"[dim]searched:[/] {escape(' · '.join(where))}")
    if result.matches:
        console.print()
        for m in result.matches:
            e = m.entry
            src = _hostport(e.orig_src, e.orig_sport)
            dst = _hostport(e.orig_dst, e.orig_dport)
            seen = _hostport(e.reply_dst, e.reply_dport)
            flags = " ".join(f for f, on in (("[ASSURED]", e.assured), ("[UNREPLIED]", e.unreplied)) if on)
            state = " ".join(x for x in (e.state or "", f"{e.timeout} s left" if e.timeout is not None else "",
                                         flags) if x)
            console.print(f"  [bold]{escape(e.proto)}[/] {escape(src)} → {escape(dst)}  "
                          f"[dim]seen as[/] {escape(seen)}"
                          + (f" [dim](source port translated from {e.orig_sport})[/]"
                             if e.reply_dport != e.orig_sport else "")
                          + (f"  [dim]{escape(state)}[/]" if state else ""))
            pod = (f"pod {m.pod.namespace}/{m.pod.name} on node {m.pod.node}"
                   + (f", {m.pod.owner}" if m.pod.owner else "")) if m.pod is not None else m.why
            console.print(f"      {escape(pod)}")
    if result.candidates and not result.exact:
        console.print()
        console.print(f"[bold]candidates[/] ({len(result.candidates)}):")
        limit = len(result.candidates) if verbose else 20
        for p in result.candidates[:limit]:
            extra = ", host network" if p.host_network else ""
            console.print(f"  {escape(p.namespace)}/{escape(p.name)}  [dim]{escape(', '.join(p.pod_ips))}"
                          f"{escape(', ' + p.owner if p.owner else '')}{extra}[/]")
        if len(result.candidates) > limit:
            console.print(f"  [dim]… {len(result.candidates) - limit} more (-v lists all; -o json too)[/]")
    if result.notes:
        console.print()
    for note in result.notes:
        console.print(f"[dim]note:[/] {escape(note)}")


def _hostport(ip: str, port: int | None) -> str:
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
