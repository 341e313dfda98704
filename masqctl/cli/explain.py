"""`masqctl explain SRC DST`: which rule decides a flow, and what source the destination sees."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from masqctl.cli import gathering as g
from masqctl.cli.output import Output, OutputOpt, Verbose, emit, console as make_console
from masqctl.errors import UsageError
from masqctl.textinput import read_text

EXPLAIN_SCHEMA = 1  # the version of explain's -o json document; it changes only when a field changes meaning
COLLAPSE = 4  # runs of non-matching rules longer than this are folded in the tree (unless -v)


@g.takes_gather_flags
def explain(
    src: Annotated[str, typer.Argument(metavar="SRC", help="Source: a pod IP (optionally IP:PORT); on a cluster "
                                       "(--bundle/--context) also namespace/pod or a node address.",
                                       show_default=False)],
    dst: Annotated[str, typer.Argument(metavar="DST", help="Destination address, optionally IP:PORT or "
                                       "[IPv6]:PORT; on a cluster also namespace/pod or a Service "
                                       "(namespace/service[:port], svc.ns[:port]), in any cluster given.",
                                       show_default=False)],
    iptables: Annotated[Optional[str], typer.Option(
        "--iptables", metavar="FILE", help="iptables-save (or ip6tables-save) output of the node; - for stdin.",
        rich_help_panel="Rules")] = None,
    config_dir: Annotated[Optional[str], typer.Option(
        "--config-dir", metavar="DIR", help="What-if: evaluate the rules the agent would install for this "
        "config folder (with --iptables: in place of the dump's agent chain).", rich_help_panel="Rules")] = None,
    flavor: Annotated[str, typer.Option("--flavor", help="Agent flavour for --config-dir: azure-v2, upstream, "
                                        "tke.", rich_help_panel="Rules")] = "azure-v2",
    enable_ipv6: Annotated[bool, typer.Option("--enable-ipv6", help="What-if: the agent runs with "
                                              "--enable-ipv6.", rich_help_panel="Rules")] = False,
    nomasq_all_reserved_ranges: Annotated[bool, typer.Option(
        "--nomasq-all-reserved-ranges", help="What-if: the agent runs with this flag.",
        rich_help_panel="Rules")] = False,
    masq_chain: Annotated[str, typer.Option("--masq-chain", help="What-if: the agent's chain name.",
                                            rich_help_panel="Rules")] = "IP-MASQ-AGENT",
    to_ports: Annotated[str, typer.Option("--to-ports", help="What-if (upstream/tke): MASQUERADE port ranges.",
                                          rich_help_panel="Rules")] = "",
    local_address: Annotated[Optional[list[str]], typer.Option(
        "--local-address", metavar="IP[/LEN][@DEV]", help="An address of the node (repeatable): node IPs, "
        "bridge gateways. 127/8 is always local.", rich_help_panel="Node facts")] = None,
    ip_addr: Annotated[Optional[str], typer.Option(
        "--ip-addr", metavar="FILE", help="`ip -o addr` output of the node (addresses, devices, subnets).",
        rich_help_panel="Node facts")] = None,
    node_ip: Annotated[Optional[str], typer.Option(
        "--node-ip", metavar="IP", help="The address MASQUERADE picks on the default route.",
        rich_help_panel="Node facts")] = None,
    out_interface: Annotated[Optional[str], typer.Option(
        "--out-interface", metavar="DEV", help="Egress interface of the default route.",
        rich_help_panel="Node facts")] = None,
    in_interface: Annotated[Optional[str], typer.Option(
        "--in-interface", metavar="DEV", help="Interface the packet arrives on (the pod's host side).",
        rich_help_panel="Node facts")] = None,
    ipset: Annotated[Optional[str], typer.Option(
        "--ipset", metavar="FILE", help="`ipset save` output of the node (decides -m set).",
        rich_help_panel="Node facts")] = None,
    bridged: Annotated[Optional[bool], typer.Option(
        "--bridged/--not-bridged", help="Whether the frame is bridged with br_netfilter on (decides -m physdev).",
        rich_help_panel="Node facts", show_default=False)] = None,
    proto: Annotated[Optional[str], typer.Option("--proto", help="tcp, udp or sctp (default tcp).",
                                                 rich_help_panel="Flow")] = None,
    dport: Annotated[Optional[int], typer.Option("--dport", help="Destination port (or DST as IP:PORT).",
                                                 rich_help_panel="Flow")] = None,
    sport: Annotated[Optional[int], typer.Option("--sport", help="Source port.", rich_help_panel="Flow")] = None,
    from_host: Annotated[bool, typer.Option("--from-host", help="The packet is sent by the node itself "
                                            "(nat OUTPUT instead of PREROUTING).", rich_help_panel="Flow")] = False,
    node: Annotated[Optional[str], typer.Option(
        "--node", metavar="NAME", help="On a cluster: evaluate on this node (default: the source pod's node).",
        rich_help_panel=g.PANEL_K8S)] = None,
    gathering: g.GatherFlags = g.GatherFlags(),
    output: OutputOpt = Output.table, verbose: Verbose = 0,
) -> None:
    """Say whether a flow SRC -> DST is masqueraded, by which rule, and what source the destination sees.

    Examples:

      iptables-save > rules.txt; masqctl explain 10.224.0.30 10.240.0.5 --iptables rules.txt --node-ip 10.224.0.4 --local-address 10.224.0.4

      masqctl explain 10.224.0.30 10.0.5.9 --config-dir ./configmap-folder -o json

      masqctl explain shop/client-7d9f 10.42.1.1:443 --bundle ./bundle

      masqctl explain shop/client-7d9f 10.42.1.1:443 --context aks-spoke1 -g spoke-rg --cluster spoke1
    """
    if gathering.on_cluster:
        files = [name for name, value in (("--iptables", iptables), ("--config-dir", config_dir),
                                          ("--ip-addr", ip_addr)) if value is not None]
        if files:
            raise UsageError(f"{'/'.join(files)} evaluate files without a cluster; on a cluster (--bundle, "
                             "--context, --kubeconfig) the node's capture is used", input=files[0], code="E226",
                             hint="drop one of the two")
        from masqctl.analysis.explain_cluster import ClusterRequest
        from masqctl.ops.explain import explain_path_on, snapshot_for

        opts = gathering.options()
        creq = ClusterRequest(src=src, dst=dst, proto=proto, dport=dport, sport=sport, node=node,
                              from_host=from_host, local_addresses=list(local_address or []), node_ip=node_ip,
                              out_interface=out_interface, in_interface=in_interface, ipset=ipset, bridged=bridged)
        snapshot = snapshot_for(opts, creq, _log if verbose else None)
        result = explain_path_on([(_cluster_name(snapshot, opts), snapshot)], creq)
        if output != Output.table:
            emit({"schema": EXPLAIN_SCHEMA, **result.to_dict()}, output)
        else:
            from masqctl.cli.explain_path import render_path
            render_cluster(result.egress, verbose)
            render_path(result)
        return
    if node is not None:
        raise UsageError("--node names a node of a cluster: give --bundle DIR or --context", input="--node",
                         code="E227")
    for name, value in (("SRC", src), ("DST", dst)):
        if "/" in value and not value.strip().startswith("[") and not _is_cidr_like(value):
            raise UsageError(f"{value!r} looks like namespace/pod, which needs a cluster: give --bundle DIR or "
                             "--context", input=name, code="E227")
    from masqctl.analysis.explain import Request, explain as run_explain

    agent_options = None
    if config_dir is not None:
        from masqctl.engine import AgentOptions, check_chain_name, parse_to_ports
        from masqctl.engine.model import FLAVORS
        if flavor not in FLAVORS:
            raise UsageError(f"unknown flavour {flavor!r}; use one of {', '.join(FLAVORS)}", input="--flavor",
                             code="E201")
        agent_options = AgentOptions(flavor=flavor, enable_ipv6=enable_ipv6,
                                     nomasq_all_reserved_ranges=nomasq_all_reserved_ranges,
                                     masq_chain=check_chain_name(masq_chain),
                                     to_ports=parse_to_ports(to_ports))
    stdin_text = read_text("-", what="iptables-save", binary_hint="give the text output of the command") \
        if iptables == "-" else None
    req = Request(src=src, dst=dst, proto=proto, dport=dport, sport=sport, from_host=from_host,
                  iptables=iptables, iptables_text=stdin_text, config_dir=config_dir,
                  agent_options=agent_options, local_addresses=list(local_address or []), ip_addr=ip_addr,
                  node_ip=node_ip, out_interface=out_interface, in_interface=in_interface, ipset=ipset,
                  bridged=bridged)
    result = run_explain(req)
    if output != Output.table:
        emit({"schema": EXPLAIN_SCHEMA, **result.to_dict()}, output)
        return
    render_human(result, verbose)


def _is_cidr_like(text: str) -> bool:
    """``10.0.0.0/8``: an address with a prefix (E210 names it), not namespace/pod."""
    import ipaddress

    try:
        ipaddress.ip_address(text.split("/", 1)[0])
        return True
    except ValueError:
        return False


def _cluster_name(snapshot, opts) -> str:
    """A cluster's name: its AKS name, else its context or bundle folder name."""
    import os

    if snapshot.cluster_name:
        return snapshot.cluster_name
    if opts.bundle:
        return os.path.basename(os.path.normpath(opts.bundle)) or opts.bundle
    return opts.context or "cluster"


def _log(text: str) -> None:
    print(text, file=sys.stderr)


def render_cluster(result, verbose: int = 0) -> None:
    from rich.markup import escape

    console = make_console()
    src = result.source
    console.print(f"[bold]node[/] {escape(result.node)} · [bold]rules[/] {escape(result.rules_from)}")
    console.print(f"[bold]mode[/] {escape(result.mode.describe())}"
                  + (f" [dim](evidence: {escape('; '.join(result.mode.evidence[:2]))})[/]" if result.mode.evidence
                     else ""))
    if src.pod is not None or src.kind == "host":
        console.print(f"[bold]source[/] {escape(src.how)}")
    if result.what_if:
        console.print("[bold yellow]WHAT-IF[/]: no capture of this node — the rules below are rendered from the "
                      "agent's effective config, not read from the node")
    console.print()
    render_human(result.base, verbose)
    console.print()
    console.print(f"[bold]destination[/] {escape(result.destination)}:")
    for p in result.destination_places:
        console.print(f"  {escape(p.label)}")
        for n in p.notes:
            console.print(f"    [dim]{escape(n)}[/]")
    if result.provenance is not None:
        console.print(f"[bold]provenance[/] {escape(result.provenance['text'])}")
    if result.reply is not None:
        ok, why = result.reply
        word = {True: "[bold green]comes back[/]", False: "[bold red]will not come back[/]",
                None: "[bold yellow]unknown[/]"}[ok]
        console.print(f"[bold]reply[/] {word}: {escape(why)}")


def render_human(result, verbose: int = 0) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    console = make_console()
    ev = result.evaluation
    doc_decision = ev.masqueraded
    head = {True: "[bold red]masqueraded[/]", False: "[bold green]not masqueraded[/]",
            None: "[bold yellow]undecided[/]"}[doc_decision]
    outcomes = ev.outcomes
    for n, o in enumerate(outcomes if verbose or len(outcomes) <= 8 else outcomes[:8], start=1):
        label = f"{escape(str(ev.packet.src))} → {escape(o.destination)}"
        if len(outcomes) > 1:
            prob = "" if o.probability is None or o.probability != o.probability else f" p={o.probability:.3g}"
            label = f"branch {n}/{len(outcomes)}{prob}: " + label
            if o.conditions:
                label += " [dim](" + escape("; ".join(o.conditions)) + ")[/]"
        else:
            label += f"  {head}"
        tree = Tree(label)
        _fill(tree, o, result, verbose, escape)
        console.print(tree)
    if len(outcomes) > 8 and not verbose:
        console.print(f"[dim]… {len(outcomes) - 8} more branches (-v shows all; -o json lists them)[/]")
    console.print()
    console.print(escape(result.summary), style="bold")
    for note in result.notes:
        console.print(f"[dim]note:[/] {escape(note)}")


def _fill(tree, o, result, verbose: int, escape) -> None:
    deciding = o.deciding
    hooks: dict = {}
    stack: list = []
    pending: list = []

    def flush() -> None:
        if not pending:
            return
        node = pending[0][0]
        steps = [s for _, s in pending]
        if verbose or len(steps) <= COLLAPSE:
            for s in steps:
                node.add(f"[dim]{s.index:>4} ✗ {escape(s.text)}[/]")
        else:
            node.add(f"[dim]… rules {steps[0].index}–{steps[-1].index} did not match ({len(steps)} rules)[/]")
        pending.clear()

    for s in o.trace:
        if s.hook not in hooks:
            flush()
            if s.hook == "POSTROUTING" and hooks:
                tree.add(f"[cyan]routing[/]: {escape(o.destination)} leaves via {escape(o.egress or 'an unknown interface')}")
            hooks[s.hook] = tree.add(f"[bold cyan]{'' if s.hook.startswith(('raw ', 'nat#')) else 'nat '}{s.hook}[/]")
            stack = [(s.hook, hooks[s.hook])]
        while len(stack) > 1 and stack[-1][0] != s.chain:
            if any(c == s.chain for c, _ in stack):
                flush()
                stack.pop()
            else:
                break
        node = stack[-1][1]
        if s.result == "no-match":
            if pending and pending[0][0] is not node:
                flush()
            pending.append((node, s))
            continue
        flush()
        mark = {"match": "✓", "unknown": "?"}.get(s.result, "✗")
        index = f"{s.index:>4}" if s.index is not None else "   -"
        text = f"{index} {mark} {escape(s.text)}  [italic]→ {escape(s.action)}[/]"
        if s is deciding:
            text = f"[bold reverse]{index} {mark} {escape(s.text)}[/]  [bold]→ {escape(s.action)}[/]"
        elif s.result == "unknown":
            text = f"[yellow]{text}[/]"
        child = node.add(text)
        act = s.action.split("→ ")[-1]
        if act.startswith(("jump ", "goto ")):
            target = act.split(" ", 1)[1]
            if act.startswith("goto "):
                stack.pop() if len(stack) > 1 else None
            stack.append((target, child))
    flush()
    if o.kind == "local":
        tree.add(f"[cyan]routing[/]: {escape(o.destination)} is an address of this node → local delivery "
                 "(no nat POSTROUTING)")
    verdict = {"masquerade": f"MASQUERADE → source {o.source_ip_seen or '?'}",
               "snat": f"SNAT → source {o.source_ip_seen or 'one of ' + o.reason.removeprefix('SNAT to ')}", "accept": f"no SNAT → source {o.source_ip_seen}",
               "local": f"delivered locally → source {o.source_ip_seen}", "dropped": "dropped",
               "untracked": f"untracked, nat skipped → source {o.source_ip_seen}",
               "unknown": f"unknown: {o.reason}"}[o.kind]
    tree.add(f"[bold]{escape(verdict)}[/]")
