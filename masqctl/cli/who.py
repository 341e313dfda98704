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
    watch: Annotated[Optional[float], typer.Option(
        "--watch", metavar="SECONDS", help="Keep reading the table every SECONDS (live, or --conntrack FILE; "
        "stdin or a pipe, e.g. conntrack -E, is followed as it comes) and print each new match as it appears, "
        "until Ctrl-C or --for. With -o json: one JSON document per line per match.",
        rich_help_panel="Connection", show_default=False)] = None,
    for_: Annotated[Optional[float], typer.Option(
        "--for", metavar="SECONDS", help="With --watch: stop after SECONDS.", rich_help_panel="Connection",
        show_default=False)] = None,
    gathering: g.GatherFlags = g.GatherFlags(),
    output: OutputOpt = Output.table, verbose: Verbose = 0,
) -> None:
    """Name the pod behind a source address a destination logged, from the node's connection-tracking table.

    The node that masqueraded a connection still holds its original tuple (pod IP and port) next to
    the translated reply (node IP and port). Exit status: 0 connections found, 1 none, 2 input errors.

    On a live cluster the node that owns OBSERVED is found first, then its table is read through the
    agent pod (host network), or a debug pod with --debug-pod.

    Examples:

      masqctl who 10.40.0.4:51234 --to 10.42.1.10:443 --bundle examples/hub-spoke

      masqctl who 10.40.0.4:51234 --conntrack examples/hub-spoke/nodes/aks-system-20931744-vmss000000/conntrack.txt

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
    if watch is not None or for_ is not None:
        _watch(req, conntrack, gathering, watch, for_, output, verbose)
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
    if not output.human:
        emit({"schema": WHO_SCHEMA, **result.to_dict()}, output)
    else:
        render_human(result, verbose)
    raise typer.Exit(EXIT_OK if result.matches else EXIT_FAILED)


WHO_SCHEMA = 1   # the version of who's -o json document, as inspect, explain and apply carry theirs


def _log(text: str) -> None:
    print(text, file=sys.stderr)


_LONGEST = 7 * 24 * 3600     # the longest --watch interval or --for bound, in seconds


def _watch(req, conntrack: str | None, gathering, interval: float | None, until: float | None, output: Output,
           verbose: int) -> None:
    """``--watch``: each new match as it appears; exit 0 when any was seen, 1 when none (Ctrl-C
    or the --for bound ends it; a followed stream ends with its writer)."""
    import math

    if interval is None:
        raise UsageError("--for bounds a --watch; give --watch SECONDS too", input="--for", code="E364")
    for flag, value in (("--watch", interval), ("--for", until)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{flag} {value:g} is not a positive number of seconds", input=flag, code="E364")
        if value is not None and value > _LONGEST:
            # beyond what the clock and sleep take (an OverflowError, not an answer)
            raise UsageError(f"{flag} {value:g}: at most {_LONGEST} seconds (7 days)", input=flag, code="E364")
    if interval < 0.1:
        raise UsageError(f"--watch {interval:g}: read the table at most ten times a second", input="--watch",
                         code="E364", hint="--watch 1 reads it every second")
    if gathering.bundle is not None:
        raise UsageError("a bundle does not change: --watch reads a live cluster or a --conntrack FILE again and "
                         "again", input="--watch", code="E363", hint="drop --watch, or watch the cluster itself")
    from masqctl.ops import who as ops

    seen = [0]

    def on_new(result, match, at: str) -> None:
        seen[0] += 1
        if output == Output.json:
            import json

            from masqctl.analysis.who import watch_line

            sys.stdout.write(json.dumps(watch_line(result, match, at), ensure_ascii=False) + "\n")
        elif output == Output.yaml:
            from masqctl.analysis.who import watch_line
            from masqctl.cli.output import _yaml_text

            sys.stdout.write("---\n" + _yaml_text(watch_line(result, match, at)))
        else:
            from rich.markup import escape

            _console().print(f"[dim]{at}[/]  " + _match_text(match) + f"  {escape(_who_sent(match))}")
        sys.stdout.flush()

    where = f"--conntrack {conntrack}" if conntrack is not None else "the node's table"
    _log(f"who: watching {where} for replies to {req.observed.text()}"
         + (f" every {interval:g} s" if conntrack not in ("-",) else "")
         + (f" for {until:g} s" if until else "") + " (Ctrl-C stops)")
    try:
        if conntrack is not None:
            ops.watch_file(conntrack, req, interval=interval, until=until, on_new=on_new)
        elif gathering.on_cluster:
            if gathering.no_capture:
                raise UsageError("a live cluster's tables are read by exec into the node, which --no-capture turns "
                                 "off", input="--no-capture", code="E262", hint="drop --no-capture")
            ops.watch_on_cluster(gathering.options(), req, interval=interval, until=until, on_new=on_new,
                                 log=_log)
        else:
            raise UsageError("no table to watch: give --conntrack FILE or a cluster (--context/--kubeconfig)",
                             input="--watch", code="E262")
    except KeyboardInterrupt:
        pass
    _log(f"who: {seen[0]} connection{'s' if seen[0] != 1 else ''} to {req.observed.text()} seen")
    raise typer.Exit(EXIT_OK if seen[0] else EXIT_FAILED)


_CONSOLE: list = []


def _new_console():
    """Lines wrap at words on a terminal (indented lines keep their indent); piped, each line is
    written whole, for grep."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=not sys.stdout.isatty())


def _print(console, text: str = "", style: str | None = None) -> None:
    """One line (rich markup); its leading blanks indent every line it wraps into."""
    from rich.padding import Padding
    from rich.text import Text

    body = text.lstrip(" ")
    indent = len(text) - len(body)
    rendered = Text.from_markup(body, style=style or "")
    console.print(Padding(rendered, (0, 0, 0, indent), expand=False) if indent and not console.soft_wrap
                  else Text(" " * indent) + rendered)


def _console():
    if not _CONSOLE:
        from rich.console import Console

        _CONSOLE.append(_new_console())
    return _CONSOLE[0]


def _match_text(m) -> str:
    """One match on one line (rich markup): protocol, original tuple, what the destination saw, state."""
    from rich.markup import escape

    e = m.entry
    flags = " ".join(f for f, on in (("[ASSURED]", e.assured), ("[UNREPLIED]", e.unreplied)) if on)
    state = " ".join(x for x in (e.state or "", f"{e.timeout} s left" if e.timeout is not None else "", flags) if x)
    return (f"[bold]{escape(e.proto)}[/] {escape(_hostport(e.orig_src, e.orig_sport))} → "
            f"{escape(_hostport(e.orig_dst, e.orig_dport))}  [dim]seen as[/] {escape(_hostport(e.reply_dst, e.reply_dport))}"
            + (" [dim](source port translated from {})[/]".format(e.orig_sport) if e.reply_dport != e.orig_sport else "")
            + (f"  [dim]{escape(state)}[/]" if state else ""))


def _who_sent(m) -> str:
    if m.pod is not None:
        return f"pod {m.pod.namespace}/{m.pod.name} on node {m.pod.node}" + (f", {m.pod.owner}" if m.pod.owner else "")
    return m.why


def render_human(result, verbose: int = 0) -> None:
    from rich.markup import escape

    console = _new_console()
    style = "bold green" if result.exact else "bold" if result.matches else "bold yellow"
    _print(console, escape(result.answer), style=style)
    where = []
    if result.node:
        where.append(f"node {result.node}")
    if result.table and result.searched:
        where.append(f"{result.table} ({result.entries} entries)")
    if where:
        _print(console, f"[dim]searched:[/] {escape(' · '.join(where))}")
    if result.matches:
        console.print()
        for m in result.matches:
            _print(console, "  " + _match_text(m))
            _print(console, f"      {escape(_who_sent(m))}")
    if result.candidates and not result.exact:
        console.print()
        _print(console, f"[bold]candidates[/] ({len(result.candidates)}):")
        limit = len(result.candidates) if verbose else 20
        for p in result.candidates[:limit]:
            extra = ", host network" if p.host_network else ""
            _print(console, f"  {escape(p.namespace)}/{escape(p.name)}  [dim]{escape(', '.join(p.pod_ips))}"
                            f"{escape(', ' + p.owner if p.owner else '')}{extra}[/]")
        if len(result.candidates) > limit:
            _print(console, f"  [dim]… {len(result.candidates) - limit} more (-v lists all; -o json too)[/]")
    if result.notes:
        console.print()
    for note in result.notes:
        _print(console, f"[dim]note:[/] {escape(note)}")


def _hostport(ip: str, port: int | None) -> str:
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
