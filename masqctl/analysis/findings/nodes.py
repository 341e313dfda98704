"""Findings about what the nodes run: MQ003 (agent pods), MQ004/MQ005 (drift), MQ006 (shadowing),
MQ017 (mixed iptables backends)."""

from __future__ import annotations

from masqctl.agent.flags import foreign_chain_owner
from masqctl.analysis.drift import DRIFT, EMPTY, capture_gap
from masqctl.analysis.dumpfacts import dump_gap, shadowing_of_dump
from masqctl.analysis.findings import ERROR, INFO, WARNING, Context, shown_nodes
from masqctl.cluster.model import MissingKey
from masqctl.netfilter.dump import DumpError, parse_dump


def check(ctx: Context) -> None:
    mq003(ctx)
    drift_findings(ctx)
    captures = ctx.snapshot.captures
    captured = [n for n in ctx.nodes if (c := captures.get(n)) is not None and c.holds("iptables_save")]
    missing = [n for n in ctx.nodes if n not in captured]
    empty = [n for n in missing if (c := captures.get(n)) is not None and c.iptables_save == ""]
    if not captured and not empty:
        reason = ctx.snapshot.missing.get(MissingKey.CAPTURES) or "no node's iptables-save was captured"
        for code in ("MQ006", "MQ017"):
            ctx.skip(code, f"no captures: {reason}", ctx.nodes)
        return
    by_reason: dict[str, list[str]] = {}
    for n in missing:
        gap = capture_gap(ctx.snapshot, n, captures.get(n), "iptables-save")
        by_reason.setdefault(gap if gap == EMPTY else "no capture on these nodes: " + gap.removeprefix(
            "no capture: "), []).append(n)
    for reason, nodes in by_reason.items():
        for code in ("MQ006", "MQ017"):
            ctx.skip(code, reason, nodes)
    if captured:
        mq006(ctx, captured)
        mq017(ctx, captured)


# --------------------------------------------------------------------------- MQ003


def _selected(node_labels: dict, selector: dict) -> bool:
    return all(node_labels.get(k) == v for k, v in selector.items())


def mq003(ctx: Context) -> None:
    snap = ctx.snapshot
    if MissingKey.DAEMONSETS in snap.missing:
        ctx.skip("MQ003", ctx.no_agent())
        return
    if not ctx.views:
        decides = getattr(ctx.mode, "agent_decides", None)
        if decides:
            ctx.add("MQ003", ERROR, "No masquerade agent DaemonSet runs, although in this network mode "
                    f"({ctx.mode.name}) the iptables agent is what masquerades pod traffic.",
                    evidence=[f"no DaemonSet in {snap.namespace} looks like an ip-masq agent"]
                    + list(ctx.mode.evidence), nodes=tuple(ctx.nodes),
                    fix="On AKS the azure-ip-masq-agent DaemonSet is managed by AKS: run "
                        "`az aks update -g <rg> -n <cluster>` to reconcile the cluster, or open a support case.")
        return
    if MissingKey.PODS in snap.missing:
        ctx.skip("MQ003", f"pods were not gathered: {snap.missing[MissingKey.PODS]}")
        return
    node_of = ctx.dumps.node if ctx.dumps is not None else snap.node
    for view in ctx.views:
        ds = view.daemonset
        pods = [p for p in snap.pods if p.namespace == ds.namespace and (p.daemonset == ds.name or (
            p.daemonset is None and p.name.startswith(ds.name + "-")))]
        by_node: dict[str, list] = {}
        for p in pods:
            if p.node:
                by_node.setdefault(p.node, []).append(p)
        scope = [n for n in ctx.nodes if (node := node_of(n)) is None or _selected(node.labels, ds.node_selector)]
        if not pods and ds.desired and ds.ready == ds.desired:
            ctx.skip("MQ003", f"the pods of DaemonSet {ds.ref} are not in the snapshot; its status says "
                     f"{ds.ready}/{ds.desired} ready")
            continue
        problems: dict[str, list[str]] = {}     # description -> nodes
        severity = WARNING
        for n in scope:
            ps = by_node.get(n, [])
            if not ps:
                if snap.nodes:
                    problems.setdefault("no agent pod on the node", []).append(n)
                    severity = ERROR
                continue
            for p in ps:
                if not p.ready or (p.phase and p.phase != "Running"):
                    what = f"pod not ready ({p.waiting_reason or p.phase or 'not ready'})"
                    severity = ERROR
                elif p.restarts > 0:
                    what = "pod restarted"
                else:
                    continue
                if p.restarts:
                    what += f", {p.restarts} restarts"
                if p.last_termination_reason or p.last_termination_exit_code is not None:
                    what += f"; last termination: {p.last_termination_reason or '?'}"
                    if p.last_termination_exit_code is not None:
                        what += f" (exit code {p.last_termination_exit_code})"
                    if p.last_termination_message:
                        what += f": {p.last_termination_message.strip().splitlines()[-1][:200]}"
                problems.setdefault(what, []).append(n)
        if not problems:
            continue
        nodes = sorted({n for ns in problems.values() for n in ns})
        lines = [f"{what}: {shown_nodes(ns)}" for what, ns in problems.items()]
        cause = ""
        if view.error is not None and view.on_invalid_config == "keep":
            cause = (f" The config is invalid ({view.error.one_line()}, MQ002), but this agent keeps its last good "
                     "rules on it rather than exiting, so it does not explain restarts.")
        elif view.error is not None:
            cause = f" The config error explains a crash loop: {view.error.one_line()} (MQ002)."
        elif view.flag_error is not None:
            cause = f" {view.flag_error.message} (MQ002)."
        counts = ""
        if ds.desired is not None and ds.ready is not None:
            counts = f" DaemonSet {ds.ref}: {ds.ready}/{ds.desired} ready."
        ctx.add("MQ003", severity, f"Agent {ds.ref} is not healthy on {len(nodes)} node(s): " + "; ".join(lines)
                + "." + counts + cause + " A node without a running agent keeps whatever rules it had "
                "(a new node has none).",
                evidence=[f"pod {p.namespace}/{p.name} on {p.node}: phase {p.phase}, ready {p.ready}, restarts "
                          f"{p.restarts}" + (f", waiting {p.waiting_reason}" if p.waiting_reason else "")
                          for p in pods if p.node in nodes][:10],
                fix=f"kubectl -n {ds.namespace} logs <pod> --previous   # the agent's last words\n"
                    f"kubectl -n {ds.namespace} describe pod <pod>\n" + (
                        "Fix the config first (MQ002); the pods recover on their own." if cause else
                        f"kubectl -n {ds.namespace} rollout restart daemonset {ds.name}"),
                nodes=tuple(nodes),
                command="" if cause else f"kubectl -n {ds.namespace} rollout restart daemonset {ds.name}")


# --------------------------------------------------------------------------- MQ004 / MQ005


def drift_findings(ctx: Context) -> None:
    report = ctx.drift
    view = ctx.view
    if view is not None and foreign_chain_owner(view.chain) is not None:
        chain_collision(ctx, view, foreign_chain_owner(view.chain))
        return
    if report is None or view is None:
        reason = ctx.no_agent() if view is None else "no rules to compare"
        ctx.skip("MQ004", reason)
        ctx.skip("MQ005", reason)
        return
    if ctx.mode is not None and ctx.mode.agent_decides is False:
        # e.g. pod subnet or Cilium eBPF: the agent's chain (or its absence) changes no verdict
        reason = (f"the iptables agent does not decide masquerading in {ctx.mode.name} mode (MQ015); its chain "
                  "and jump change no verdict")
        ctx.skip("MQ004", reason)
        ctx.skip("MQ005", reason)
        return
    for g in report.groups:
        # what the captures cannot show (no capture, no nat table, a grep excerpt, a dump cut short)
        for code, gaps in (("MQ004", [f.mq004_gap() for f in g.families]),
                           ("MQ005", [f.mq005_gap() for f in g.families])):
            for gap in dict.fromkeys(gaps):
                if gap:
                    ctx.skip(code, gap, g.nodes)
    ds = view.daemonset

    def restart_command(nodes) -> str:
        """Delete the agent pods of these nodes (the DaemonSet recreates them; a fresh agent rewrites its
        chain and jump); several nodes: every agent pod (restarting an agent on a node in sync is
        harmless, and no field selector names several nodes)."""
        where = f" --field-selector spec.nodeName={nodes[0]}" if len(nodes) == 1 else ""
        return f"kubectl -n {ds.namespace} delete pod -l {_selector(ds)}{where}"

    def restart(nodes) -> str:
        return restart_command(nodes) + "   # a fresh agent rewrites the chain"
    for g in report.groups:
        if g.state != DRIFT:
            continue
        chain_issues = [i for f in g.families for i in f.chain_issues()]
        jump_issues = [i for f in g.families for i in f.jump_issues()]
        evidence = [f"nodes/{g.nodes[0]}/{'iptables' if f.family == 4 else 'ip6tables'}-save.txt chain {f.chain}"
                    + (f" ({f.capture})" if f.capture else "") for f in g.families if f.state == DRIFT]
        evidence.append(f"rendered from the effective config of DaemonSet {ds.ref}")
        # a partial capture proves what it shows: say what it is before what it proves
        chain_from = _from([f for f in g.families if f.chain_issues()])
        jump_from = _from([f for f in g.families if f.jump_issues()])
        if chain_issues:
            ctx.add("MQ004", ERROR,
                    f"{chain_from}{'o' if chain_from else 'O'}n {len(g.nodes)} node(s) ({shown_nodes(g.nodes)}) the "
                    f"live {view.chain} chain differs from the effective config: " + "; ".join(chain_issues) + ". "
                    + ("Rules the capture does not show are not known. " if chain_from else "")
                    + "The agent rewrites its chain every "
                    "resync period, so lasting drift means the agent is not running there, runs an older config "
                    "(ConfigMap change not yet synced, ~1–2 min + one period), or something else edits the chain.",
                    evidence=evidence, nodes=g.nodes,
                    fix="Check the agent pod on the node (MQ003) and its log (`using config:` line), then:\n"
                        + restart(g.nodes), command=restart_command(g.nodes))
        if jump_issues:
            ctx.add("MQ005", ERROR,
                    f"{jump_from}{'o' if jump_from else 'O'}n {len(g.nodes)} node(s) ({shown_nodes(g.nodes)}): "
                    + "; ".join(jump_issues) + ". "
                    + ("Without the jump (or the chain) no pod traffic is masqueraded by the agent on these nodes."
                       if any("no POSTROUTING" in i or "absent" in i for i in jump_issues) else
                       "Duplicated jumps are harmless for the verdict but show two writers of the rules."),
                    evidence=evidence, nodes=g.nodes,
                    fix="The agent adds the jump when it is absent; a missing one means the agent is not running "
                        "on the node (MQ003). Duplicates: remove the extra one on the node with\n"
                        f"iptables -t nat -D POSTROUTING -m addrtype ! --dst-type LOCAL -j {view.chain}   "
                        "# run on the node, deletes one copy\nor restart the agent:\n" + restart(g.nodes),
                    command=restart_command(g.nodes))


def chain_collision(ctx: Context, view, owner: str) -> None:
    """The agent's chain is one another program owns (``--masq-chain KUBE-POSTROUTING``): both
    rewrite it, so its content and the POSTROUTING jumps to it tell nothing about the agent's
    drift, and a restarted agent pod would only take the chain over again."""
    ds = view.daemonset
    chain = view.chain
    nodes = tuple(ctx.nodes)
    ctx.skip("MQ004", f"the agent's chain {chain} is {owner}'s (MQ005): it holds whichever of the two wrote last, "
             "so drift against the agent's config cannot be told", nodes)
    args = " ".join(view.argv) or "(none)"
    ctx.add("MQ005", ERROR,
            f"DaemonSet {ds.ref} runs its agent with --masq-chain {chain}, a nat chain that {owner} owns. On every "
            f"node it runs on the agent flushes that chain each period and writes its own rules there, and {owner} "
            "rewrites it with its rules: the chain holds whichever wrote last, so masquerading of pod traffic, and "
            f"what {owner} does with that chain, changes from one moment to the next. The chain's rules and the "
            f"POSTROUTING jumps to it are {owner}'s as well as the agent's: they show no drift of the agent, and "
            "restarting the agent pods would only take the chain over again.",
            evidence=[f"DaemonSet {ds.ref} container {ds.container} args: {args}",
                      f"{chain}: a chain of {owner}"],
            fix=f"Give the agent a chain of its own: remove --masq-chain {chain}"
                + (" and --allow-foreign-chain" if "--allow-foreign-chain" in args else "")
                + f" from the container args of DaemonSet {ds.ref} (the default is IP-MASQ-AGENT). Then, on each "
                f"node, remove the jump the agent added:\niptables -t nat -D POSTROUTING -m addrtype ! --dst-type "
                f"LOCAL -j {chain}   # run on the node, deletes one copy\n{owner} restores its own rules in the "
                "chain on its next sync.",
            nodes=nodes, title="the agent's chain is a chain another program owns")


_UNREADABLE = "the capture cannot be read"
_NO_RULES = "holds no chains or rules"


def _unreadable(exc) -> str:
    """Why a capture that does not parse says nothing (its node's drift state names the file)."""
    if exc.kind == "empty":
        return "the capture holds no chains or rules"
    return f"{_UNREADABLE}: line {exc.lineno}: {exc.message}"


def _from(families) -> str:
    """``From a fragment of iptables-save (grep output): `` when the issues rest on partial captures."""
    caps = list(dict.fromkeys(f.capture for f in families if f.capture))
    if not caps:
        return ""
    text = "; ".join(caps)
    return text[0].upper() + text[1:] + ": "


def _selector(ds) -> str:
    if ds.selector:
        return ",".join(f"{k}={v}" for k, v in sorted(ds.selector.items()))
    return f"k8s-app={ds.name}"


# --------------------------------------------------------------------------- MQ006


def shadowing(text: str, chain: str, source: str) -> tuple[list[str], str | None]:
    """Rules of nat POSTROUTING that decide besides the agent's chain: before its jump (they decide
    first) or masquerading after it (they masquerade what the agent's chain RETURNed).
    Returns (descriptions, limit): ``limit`` (``dumpfacts.nat_limit``) says why rules that are not
    shown cannot be checked (a grep excerpt, a dump cut short, no nat table), None for a whole table."""
    return shadowing_of_dump(parse_dump(text, source), chain)


def mq006(ctx: Context, captured: list[str]) -> None:
    view = ctx.view
    chain = view.chain if view is not None else "IP-MASQ-AGENT"
    groups: dict[tuple, list[str]] = {}
    partial: dict[str, list[str]] = {}
    dumps = ctx.dumps
    for n in captured:
        try:
            if dumps is not None:
                found, limit = dumps.shadowing(n, chain)
            else:
                found, limit = shadowing(ctx.snapshot.captures[n].iptables_save, chain,
                                         f"nodes/{n}/iptables-save.txt")
        except DumpError as exc:
            partial.setdefault(_unreadable(exc), []).append(n)      # the node's drift state says where
            continue
        if limit:
            partial.setdefault(limit, []).append(n)
        if found:
            groups.setdefault((tuple(found), limit), []).append(n)
    for limit, nodes in partial.items():
        ctx.skip("MQ006", limit if "nothing is known about nat" in limit or "could not print" in limit
                 or limit.startswith(_UNREADABLE) or limit.endswith(_NO_RULES) else
                 f"{limit}: rules it does not show (in POSTROUTING or the chains it leads to) are not known", nodes)
    for (found, limit), nodes in groups.items():
        ctx.add("MQ006", WARNING,
                (f"{limit[0].upper()}{limit[1:]}: o" if limit else "O") +
                f"n {len(nodes)} node(s) ({shown_nodes(nodes)}) nat POSTROUTING has rules that decide besides "
                f"{chain}: " + "; ".join(found) + ". For the packets they match, the agent's config is not what "
                "decides (run `masqctl explain SRC DST` to see the path of one flow).",
                evidence=[f"nodes/{nodes[0]}/iptables-save.txt table nat chain POSTROUTING"],
                fix="Find the program that owns the rule (its comment or chain prefix: cali- is Calico, DOCKER is "
                    "Docker, CILIUM_ is Cilium) and turn off its masquerading for pod traffic (e.g. Calico IPPool "
                    "natOutgoing: false), or accept that it decides.", nodes=tuple(sorted(nodes)))


# --------------------------------------------------------------------------- MQ017


def mq017(ctx: Context, captured: list[str]) -> None:
    mixed = []
    evidence = []
    partial: dict[str, list[str]] = {}
    for n in captured:
        cap = ctx.snapshot.captures[n]
        legacy = cap.backend == "mixed"
        if not legacy:
            try:
                if ctx.dumps is not None:
                    legacy, gap = ctx.dumps.legacy_tables(n), ctx.dumps.dump_gap(n)
                else:
                    dump = parse_dump(cap.iptables_save, f"nodes/{n}/iptables-save.txt")
                    legacy, gap = dump.legacy_tables_present, dump_gap(dump)
            except DumpError as exc:
                partial.setdefault(_unreadable(exc), []).append(n)
                continue
            if not legacy and gap:
                # iptables-nft-save's warning line may be among the lines the capture lacks
                partial.setdefault(gap, []).append(n)
        if legacy:
            mixed.append(n)
            if len(evidence) < 3:
                evidence.append(f"nodes/{n}/iptables-save.txt: '# Warning: iptables-legacy tables present'"
                                if cap.backend != "mixed" else f"node {n} capture: backend mixed")
    for gap, nodes in partial.items():
        if gap.startswith(_UNREADABLE) or gap.endswith(_NO_RULES):
            ctx.skip("MQ017", gap, nodes)
            continue
        ctx.skip("MQ017", f"{gap}: the line `# Warning: iptables-legacy tables present` may be among the lines it "
                 "does not show", nodes)
    if mixed:
        ctx.add("MQ017", WARNING,
                f"On {len(mixed)} node(s) ({shown_nodes(mixed)}) iptables-legacy tables exist beside the nft ones. "
                "Both are active in the kernel, but each iptables-save shows only its own: rules (a masquerade, "
                "a second agent chain) may be invisible to the agent and to this report.",
                evidence=evidence, nodes=tuple(sorted(mixed)),
                fix="On the node: iptables-legacy-save -t nat   # see the hidden rules\n"
                    "Find the program that still uses iptables-legacy (an old DaemonSet image) and move it to the "
                    "node's backend; then flush the legacy nat table.")


__all__ = ["check", "shadowing", "shadowing_of_dump", "INFO"]
