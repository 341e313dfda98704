"""`masqctl explain SRC DST`: which rule decides a flow, and what source the destination sees."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from masqctl.cli.options import Context, Kubeconfig, Namespace, Output, OutputOpt, Verbose
from masqctl.errors import UsageError

COLLAPSE = 4  # runs of non-matching rules longer than this are folded in the tree (unless -v)


def explain(
    src: Annotated[str, typer.Argument(metavar="SRC", help="Source address (a pod IP), optionally IP:PORT.",
                                       show_default=False)],
    dst: Annotated[str, typer.Argument(metavar="DST", help="Destination address, optionally IP:PORT or "
                                       "[IPv6]:PORT.", show_default=False)],
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
    context: Context = None, kubeconfig: Kubeconfig = None, namespace: Namespace = "kube-system",
    output: OutputOpt = Output.table, verbose: Verbose = 0,
) -> None:
    """Say whether a flow SRC -> DST is masqueraded, by which rule, and what source the destination sees.

    Examples:

      iptables-save -t nat > nat.txt; masqctl explain 10.224.0.30 10.240.0.5 --iptables nat.txt --node-ip 10.224.0.4 --local-address 10.224.0.4

      masqctl explain 10.224.0.30 10.0.5.9 --config-dir ./configmap-folder -o json
    """
    from masqctl.analysis.explain import Request, explain as run_explain

    if context or kubeconfig:
        raise UsageError("reading a live cluster is not available for explain yet; give --iptables FILE "
                         "and/or --config-dir DIR", input="--context/--kubeconfig", code="E216")
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
    stdin_text = sys.stdin.read() if iptables == "-" else None
    req = Request(src=src, dst=dst, proto=proto, dport=dport, sport=sport, from_host=from_host,
                  iptables=iptables, iptables_text=stdin_text, config_dir=config_dir,
                  agent_options=agent_options, local_addresses=list(local_address or []), ip_addr=ip_addr,
                  node_ip=node_ip, out_interface=out_interface, in_interface=in_interface, ipset=ipset,
                  bridged=bridged)
    result = run_explain(req)
    if output == Output.json:
        # indented for a terminal; compact (C encoder, fast on 10k-step traces) for pipes and files
        sys.stdout.write(json.dumps(result.to_dict(), indent=2 if sys.stdout.isatty() else None,
                                    ensure_ascii=False) + "\n")
        return
    if output == Output.yaml:
        import yaml
        sys.stdout.write(yaml.safe_dump(result.to_dict(), sort_keys=False, allow_unicode=True))
        return
    render_human(result, verbose)


def render_human(result, verbose: int = 0) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    console = Console(highlight=False, soft_wrap=False)
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
            hooks[s.hook] = tree.add(f"[bold cyan]{'' if s.hook.startswith('raw ') else 'nat '}{s.hook}[/]")
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
