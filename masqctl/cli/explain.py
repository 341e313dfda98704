"""`masqctl explain SRC DST`: which rule decides a flow, and what source the destination sees."""

from __future__ import annotations

import gc
import sys
from typing import Annotated, Optional

import typer

from masqctl.cli import gathering as g
from masqctl.cli.output import Output, OutputOpt, Verbose, emit
from masqctl.errors import UsageError
from masqctl.textinput import read_text

EXPLAIN_SCHEMA = 1  # the version of explain's -o json document; it changes only when a field changes meaning


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
    nft: Annotated[Optional[str], typer.Option(
        "--nft", metavar="FILE", help="`nft -j list ruleset` (or `nft list ruleset`) output of the node; - for "
        "stdin. With --iptables both are walked, in hook and priority order.", rich_help_panel="Rules")] = None,
    config_dir: Annotated[Optional[str], typer.Option(
        "--config-dir", metavar="DIR", help="What-if: evaluate the rules the agent would install for this "
        "config folder (with --iptables: in place of the dump's agent chain).", rich_help_panel="Rules")] = None,
    flavor: Annotated[str, typer.Option("--flavor", help="Agent flavour for --config-dir: azure-v2, upstream, "
                                        "tke, cilium (Cilium's ip-masq-agent), azure-cilium (the AKS merger, then "
                                        "Cilium).", rich_help_panel="Rules")] = "azure-v2",
    native_routing_cidr: Annotated[Optional[str], typer.Option(
        "--native-routing-cidr", metavar="CIDR", help="What-if (cilium flavours): Cilium's ipv4-native-routing-cidr "
        "(exempt before the map).", rich_help_panel="Cilium")] = None,
    remote_node_masquerade: Annotated[bool, typer.Option(
        "--remote-node-masquerade", help="What-if (cilium flavours): enable-remote-node-masquerade.",
        rich_help_panel="Cilium")] = False,
    routing_mode: Annotated[Optional[str], typer.Option(
        "--routing-mode", metavar="native|tunnel", help="What-if (cilium flavours): Cilium's routing mode "
        "(default native).", rich_help_panel="Cilium")] = None,
    remote_node: Annotated[bool, typer.Option(
        "--remote-node", help="What-if (cilium flavours): DST is another node of the cluster (Cilium's "
        "remote-node identity; default: not a node).", rich_help_panel="Cilium")] = False,
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
    add: Annotated[Optional[list[str]], typer.Option(
        "--add", metavar="CIDR", help="On a cluster: evaluate with this CIDR added to the user ConfigMap, as "
        "`masqctl apply --add` plans it (repeatable).", rich_help_panel=g.PANEL_K8S)] = None,
    with_change: Annotated[Optional[str], typer.Option(
        "--with-change", metavar="FILE", help="On a cluster: evaluate with the user config set to FILE (the "
        "agent config, or the manifest `masqctl apply -o yaml` prints).", rich_help_panel=g.PANEL_K8S)] = None,
    gathering: g.GatherFlags = g.GatherFlags(),
    output: OutputOpt = Output.table, verbose: Verbose = 0,
) -> None:
    """Say whether a flow SRC -> DST is masqueraded, by which rule, and what source the destination sees.

    Examples:

      masqctl explain 10.40.0.9 10.42.1.10:443 --bundle examples/hub-spoke --add 10.42.0.0/15

      masqctl explain 10.224.0.30 10.240.0.5 --config-dir examples/config-folders/aks-kubenet

      iptables-save > rules.txt; masqctl explain 10.224.0.30 10.240.0.5 --iptables rules.txt --node-ip 10.224.0.4 --local-address 10.224.0.4

      masqctl explain shop/client-7d9f 10.42.1.1:443 --context aks-spoke1 -g spoke-rg --cluster spoke1
    """
    if gathering.on_cluster:
        files = [name for name, value in (("--iptables", iptables), ("--nft", nft), ("--config-dir", config_dir),
                                          ("--ip-addr", ip_addr)) if value is not None]
        if files:
            raise UsageError(f"{'/'.join(files)} evaluate files without a cluster; on a cluster (--bundle, "
                             "--context, --kubeconfig) the node's capture is used", input=files[0], code="E226",
                             hint="drop one of the two")
        from masqctl.analysis.explain_cluster import ClusterRequest
        from masqctl.ops.explain import explain_path_on, snapshot_for

        change, target = _change_request(add, with_change)
        creq = ClusterRequest(src=src, dst=dst, proto=proto, dport=dport, sport=sport, node=node,
                              from_host=from_host, local_addresses=list(local_address or []), node_ip=node_ip,
                              out_interface=out_interface, in_interface=in_interface, ipset=ipset, bridged=bridged,
                              change=change, change_target=target)
        if gathering.several:
            from masqctl.ops.fleet import gather_clusters
            clusters = gather_clusters(gathering.cluster_options())
            result = explain_path_on([(c.name, c.snapshot) for c in clusters], creq)
        else:
            opts = gathering.options()
            snapshot = snapshot_for(opts, creq, _log if verbose else None)
            result = explain_path_on([(_cluster_name(snapshot, opts), snapshot)], creq)
        if not output.human:
            emit({"schema": EXPLAIN_SCHEMA, **result.to_dict()}, output)
        else:
            from masqctl.cli.explain_path import render_path
            from masqctl.cli.explain_text import render_cluster
            render_cluster(result.egress, verbose)
            render_path(result)
        return
    if node is not None:
        raise UsageError("--node names a node of a cluster: give --bundle DIR or --context", input="--node",
                         code="E227")
    if add or with_change is not None:
        flag = "--add" if add else "--with-change"
        raise UsageError(f"{flag} plans a change of a cluster's user ConfigMap: give --bundle DIR or --context",
                         input=flag, code="E716",
                         hint="without a cluster, --config-dir DIR (with --iptables FILE) evaluates a config folder")
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
    if iptables == "-" and nft == "-":
        raise UsageError("--iptables - and --nft - both read stdin: give one of them as a file", input="--nft",
                         code="E235", hint="e.g. --nft <(nft -j list ruleset) --iptables -")
    stdin_text = read_text("-", what="iptables-save", binary_hint="give the text output of the command") \
        if iptables == "-" else None
    nft_stdin = read_text("-", what="nft ruleset", binary_hint="give the text output of `nft -j list ruleset`") \
        if nft == "-" else None
    req = Request(src=src, dst=dst, proto=proto, dport=dport, sport=sport, from_host=from_host,
                  iptables=iptables, iptables_text=stdin_text, config_dir=config_dir,
                  agent_options=agent_options, local_addresses=list(local_address or []), ip_addr=ip_addr,
                  node_ip=node_ip, out_interface=out_interface, in_interface=in_interface, ipset=ipset,
                  bridged=bridged, nft=nft, nft_text=nft_stdin)
    cilium = (native_routing_cidr, remote_node_masquerade or None, routing_mode, remote_node or None)
    if agent_options is not None and agent_options.flavor in ("cilium", "azure-cilium"):
        from masqctl.analysis.dataplanes.cilium_bpf import what_if
        answer = lambda: what_if(req, *cilium)   # noqa: E731
    elif any(v is not None for v in cilium):
        raise UsageError("--native-routing-cidr, --remote-node-masquerade, --routing-mode and --remote-node describe "
                         "Cilium: use them with --config-dir and --flavor cilium or azure-cilium", input="--flavor",
                         code="E232")
    else:
        answer = lambda: run_explain(req)   # noqa: E731
    # The cyclic garbage collector is paused while the answer is made and written: a big table makes
    # tens of thousands of rule lines, trace steps and their documents (no reference cycles), which
    # it would otherwise walk again and again (a sixth of the time on a 95k-line kube-proxy table).
    collecting = gc.isenabled()
    gc.disable()
    try:
        result = answer()
        if not output.human:
            emit({"schema": EXPLAIN_SCHEMA, **result.to_dict()}, output)
            return
        from masqctl.cli.explain_text import render_human
        render_human(result, verbose)
    finally:
        if collecting:
            gc.enable()


MAX_CHANGE = 1024 * 1024     # a ConfigMap holds at most 1 MiB


def _change_request(add, with_change):
    """The planned change of ``--add``/``--with-change`` as ``apply`` takes it (an ``ApplyRequest``),
    and the (namespace, name) a ConfigMap manifest names; (None, None) without one."""
    if not add and with_change is None:
        return None, None
    from masqctl.analysis.plan import ApplyRequest, FileInput, Replacement, check_request
    from masqctl.textinput import Codes, read_bytes

    if add and with_change is not None:
        raise UsageError("--add and --with-change each say what the user config becomes: give one",
                         input="--add --with-change", code="E717")
    if add:
        request = ApplyRequest(add=tuple(add))
        check_request(request)
        return request, None
    codes = Codes(open="E715", binary="E715", size="E715", error=UsageError)
    data = read_bytes(with_change, label=f"--with-change {with_change}", what="", max_bytes=MAX_CHANGE, codes=codes,
                      stdin_ok=False, binary_hint="give the agent config as YAML or JSON text",
                      size_hint="a ConfigMap holds at most 1 MiB")
    manifest = _manifest(data)
    if manifest is None:
        return ApplyRequest(from_file=FileInput(with_change, data)), None
    meta = manifest.get("metadata") or {}
    data_map = manifest.get("data") or {}
    if not isinstance(data_map, dict) or not all(isinstance(v, str) for v in data_map.values()):
        raise UsageError("the ConfigMap's data is not a map of strings", input=f"--with-change {with_change}",
                         code="E715")
    replacement = Replacement(with_change, dict(data_map), dict(meta.get("labels") or {}),
                              dict(meta.get("annotations") or {}))
    return ApplyRequest(replacement=replacement), (str(meta.get("namespace") or "kube-system"),
                                                   str(meta.get("name") or ""))


def _manifest(data: bytes) -> dict | None:
    """The v1 ConfigMap ``data`` holds, or None when it is not a Kubernetes manifest (then it is the
    agent config itself, which ``apply`` validates as the agent does)."""
    import yaml

    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(doc, dict) and doc.get("kind") == "ConfigMap" and doc.get("apiVersion") == "v1":
        return doc
    return None


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
