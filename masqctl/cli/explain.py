"""`masqctl explain SRC DST`: which rule decides a flow, and what source the destination sees."""

from __future__ import annotations

import gc
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


# --------------------------------------------------------------------------- human output
#
# The human output says each thing once, the answer first: the verdict sentence, the deciding rule
# with where it comes from, the source the destination sees, what the destination is, whether the
# reply comes back, what was evaluated, the path through the chains, and the notes. Each section is
# one function ``(out, result, verbose)`` that prints nothing when it has nothing to say; a new
# section (another path renderer, another dataplane's trace) is one more function placed in
# OFFLINE_SECTIONS or CLUSTER_SECTIONS. ``result`` is an ``analysis.explain.Explanation`` offline
# and an ``analysis.explain_cluster.ClusterExplanation`` on a cluster (``_base`` gives the former).

LABEL = 12        # width of the label column of the fields


class Out:
    """Where the sections print: fields (a label and text wrapped at words under it), free lines,
    and one blank line between sections that printed something."""

    def __init__(self, console) -> None:
        self.console = console
        self._printed = False
        self._gap = False

    def section(self) -> None:
        """The next print starts a new section (one blank line before it, none at the top)."""
        self._gap = self._printed

    def _start(self) -> None:
        if self._gap:
            self.console.print()
            self._gap = False
        self._printed = True

    def line(self, markup: str = "", **kwargs) -> None:
        self._start()
        self.console.print(markup, **kwargs)

    def render(self, renderable) -> None:
        self._start()
        self.console.print(renderable)

    def field(self, label: str, text: str, *, style: str | None = None) -> None:
        """``label`` then ``text`` (plain text, not markup), wrapped at words with continuation
        lines under the text; a word longer than the line (a long rule comment) is folded, never cut."""
        from rich.text import Text

        width = max(self.console.width - LABEL - 1, 20)
        lines = Text(text, style=style or "").wrap(self.console, width, overflow="fold")
        for n, line in enumerate(lines):
            line.rstrip()
            head = Text(f"{label if n == 0 else '':<{LABEL}} ", style="bold")
            self._start()
            self.console.print(head + line, soft_wrap=True)


def _base(result):
    """The evaluator's explanation (offline it is the result itself)."""
    return getattr(result, "base", result)


def _cluster(result) -> bool:
    return hasattr(result, "base")


def _sentence(result) -> str:
    """The evaluator's sentence: the verdict, the source seen and the deciding rule. (On a
    cluster ``summary`` adds the destination and the reply, which have their own sections.)"""
    from masqctl.analysis.explain import summarize

    if not _cluster(result):
        return result.summary
    # the dataplane's sentence where it is not the iptables walk's (Cilium's BPF decision, CNS)
    return result.verdict if getattr(result, "verdict", None) else summarize(result.base)


def section_verdict(out: Out, result, verbose: int) -> None:
    """The answer in one sentence (on a cluster without a capture, labelled WHAT-IF). The fields
    after it say only what it does not."""
    base = _base(result)
    sentence = _sentence(result)
    style = {True: "bold red", False: "bold green", None: "bold yellow"}[base.evaluation.masqueraded]
    if _cluster(result) and getattr(result, "change", None):
        sentence = f"WITH THE CHANGE ({result.change['request']}): " + sentence
    if _cluster(result) and result.what_if:
        sentence = "WHAT-IF (no capture of the node): " + sentence
    out.section()
    out.line(_escape(sentence), style=style)


def section_rule(out: Out, result, verbose: int) -> None:
    """The deciding rule as written, and where it comes from (the ConfigMap, key and line of its
    CIDR; another program's chain; drift)."""
    base = _base(result)
    ev = base.evaluation
    step = ev.primary.deciding if ev.agreed else None
    out.section()
    if step is not None and step.index is not None:      # the sentence names it; here it is as written
        out.field("rule", (f"line {step.lineno}: " if step.lineno else "") + step.text)
    provenance = _provenance_text(result, step)
    if provenance:
        out.field("from", provenance)


def _provenance_text(result, step) -> str | None:
    """What the verdict sentence does not already say about where the deciding rule comes from."""
    if _cluster(result):
        prov = result.provenance
        if prov is None or prov["kind"] in ("masquerade", "policy"):   # the sentence says it
            return None if prov is None or "unknown" not in prov["text"] else prov["text"]
        return prov["text"]
    if step is None:
        return None
    prov = _base(result).provenance.get((step.chain, step.index))
    if prov is None or not (prov.cidr or prov.kind == "link-local"):
        return None
    return f"CIDR {prov.cidr} comes from {prov.describe()}" if prov.cidr else prov.describe()


def section_seen(out: Out, result, verbose: int) -> None:
    """The source address the destination sees (and the destination after DNAT, when it changed)."""
    ev = _base(result).evaluation
    if not ev.agreed:
        return
    o = ev.primary
    said = _sentence(result)
    out.section()
    if o.dnat is not None and not _says(said, f"DNAT to {o.destination}"):
        out.field("DNAT", f"{ev.packet.dst} → {o.destination}" + (f":{o.dport}" if o.dport is not None else "")
                  + f" by {o.dnat.chain} rule {o.dnat.index}")
    if o.source_ip_seen is not None and not _says(said, o.source_ip_seen):
        whose = {"masquerade": "the address MASQUERADE picks on the egress interface", "snat": "SNAT's address"}.get(
            o.kind, "the source itself, not translated")
        if o.kind in ("masquerade", "snat") and o.source_ip_seen == str(ev.packet.src):
            whose = "the source already is that address"
        out.field("seen as", f"{o.source_ip_seen} ({whose})")


def _says(sentence: str, words: str) -> bool:
    """``words`` stand in ``sentence`` as words (``10.0.0.1`` is not in ``10.0.0.10``)."""
    import re

    return re.search(r"(?<![\w.:])" + re.escape(words) + r"(?![\w:]|\.\w)", sentence) is not None


def section_destination(out: Out, result, verbose: int) -> None:
    """What the destination is on the network (VNet, peering and its state, service CIDR, pod, …)."""
    places = result.destination_places
    if not places:
        return
    out.section()
    for n, p in enumerate(places):
        out.field("destination" if n == 0 else "", f"{result.destination}: {p.label}" if n == 0 else p.label)
        for note in p.notes:
            out.field("", note, style="dim")


def section_reply(out: Out, result, verbose: int) -> None:
    """Whether the reply can come back to the source the destination sees."""
    if result.reply is None:
        return
    ok, why = result.reply
    word = {True: "comes back", False: "will not come back", None: "unknown"}[ok]
    style = {True: "green", False: "bold red", None: "yellow"}[ok]
    out.field("reply", f"{word}: {why}", style=style)


def section_context(out: Out, result, verbose: int) -> None:
    """What was evaluated: the node, where its rules come from, the network mode, the source."""
    out.section()
    out.field("node", result.node)
    out.field("rules", _what_if_note(result) or result.rules_from,
              style="bold yellow" if result.what_if else None)
    mode = result.mode.describe()
    if verbose and result.mode.evidence:
        mode += " (evidence: " + "; ".join(result.mode.evidence) + ")"
    out.field("mode", mode)
    src = result.source
    if src.pod is not None or src.kind == "host" or src.how:
        out.field("source", src.how)


def _what_if_note(result) -> str | None:
    if not getattr(result, "what_if", False):
        return None
    return next((n for n in result.notes if n.startswith("WHAT-IF: ")), None)


def section_path(out: Out, result, verbose: int) -> None:
    """The walk through the chains, one tree per path (several when facts are unknown or
    kube-proxy picks an endpoint at random)."""
    from rich.tree import Tree

    base = _base(result)
    ev = base.evaluation
    outcomes = ev.outcomes
    out.section()
    shown = outcomes if verbose or len(outcomes) <= 8 else outcomes[:8]
    for n, o in enumerate(shown, start=1):
        label = f"path {_escape(str(ev.packet.src))} → {_escape(o.destination)}"
        if len(outcomes) > 1:
            prob = "" if o.probability is None or o.probability != o.probability else f" p={o.probability:.3g}"
            label = f"branch {n}/{len(outcomes)}{prob}: {_escape(str(ev.packet.src))} → {_escape(o.destination)}"
            if o.conditions:
                label += " [dim](" + _escape("; ".join(o.conditions)) + ")[/]"
        tree = Tree(f"[bold]{label}[/]" if len(outcomes) == 1 else label)
        _fill(tree, o, base, verbose, _escape, end=len(outcomes) > 1 or o.kind == "unknown")
        out.render(tree)
    if len(outcomes) > len(shown):
        out.line(f"[dim]… {len(outcomes) - len(shown)} more branches (-v shows all; -o json lists them)[/]")


def section_notes(out: Out, result, verbose: int) -> None:
    """Every note once, without those another section already says."""
    said = set()
    if _cluster(result):
        said.add(_what_if_note(result))
        src = result.source
        said.update(n for n in result.notes if n.startswith("SRC ") and src.how and n.endswith(src.how))
    notes = [n for n in dict.fromkeys(_base(result).notes) if n not in said]
    if not notes:
        return
    out.section()
    for n in notes:
        out.field("note", n, style="dim")


OFFLINE_SECTIONS = [section_verdict, section_rule, section_seen, section_path, section_notes]
CLUSTER_SECTIONS = [section_verdict, section_rule, section_seen, section_destination, section_reply,
                    section_context, section_path, section_notes]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def render_cluster(result, verbose: int = 0, console=None) -> None:
    out = Out(console or make_console())
    for section in CLUSTER_SECTIONS:
        section(out, result, verbose)


def render_human(result, verbose: int = 0, console=None) -> None:
    out = Out(console or make_console())
    for section in OFFLINE_SECTIONS:
        section(out, result, verbose)


def _fill(tree, o, result, verbose: int, escape, end: bool = True) -> None:
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
            if (s.hook == "POSTROUTING" or s.hook.startswith(("postrouting: ", "iptables nat POSTROUTING"))) \
                    and not any(h == "POSTROUTING" or h.startswith(("postrouting: ", "iptables nat POSTROUTING"))
                                for h in hooks) and hooks:
                tree.add(f"[cyan]routing[/]: {escape(o.destination)} leaves via {escape(o.egress or 'an unknown interface')}")
            plain = s.hook.startswith(('raw ', 'nat#', 'iptables ')) or ": table " in s.hook
            hooks[s.hook] = tree.add(f"[bold cyan]{'' if plain else 'nat '}{escape(s.hook)}[/]")
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
    if end:      # a single path's end is the verdict, said above
        tree.add(f"[bold]{escape(verdict)}[/]")
