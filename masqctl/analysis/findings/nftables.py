"""Findings about native nftables tables: MQ025 (they may decide, but the capture has only
iptables-save), MQ026 (native nat chains run beside iptables' nat table, by owner), MQ027 (a node's
nftables ruleset cannot be read)."""

from __future__ import annotations

from masqctl.analysis.findings import INFO, WARNING, Context, shown_nodes
from masqctl.analysis.nftfacts import nft_facts, native_hints
from masqctl.netfilter.dump import DumpError


def check(ctx: Context) -> None:
    captures = ctx.snapshot.captures
    hinted: dict[str, list[str]] = {}
    decided: dict[tuple, list[str]] = {}
    listed: dict[tuple, list[str]] = {}
    for n in ctx.nodes:
        cap = captures.get(n)
        if cap is None:
            continue
        facts = nft_facts(cap)
        if facts is None:
            chains, whole, incompatible = None, False, None
            if ctx.dumps is not None and ctx.dumps.has_dump(n):     # the facts known: its file not read again
                try:
                    signs = ctx.dumps.signs(n)
                    chains, whole = set(signs.chains), signs.no_nat is None and signs.limit is None
                    incompatible = ctx.dumps.incompatible_tables(n)
                except DumpError:
                    pass
            pods = ctx.dumps.workloads_on(n) if ctx.dumps is not None else None    # indexed once
            hints = native_hints(ctx.snapshot, n, chains, whole, pods, incompatible)
            if hints:
                hinted[n] = hints
            continue
        if facts.unreadable is not None:
            ctx.add("MQ027", WARNING, f"{facts.label}: {facts.unreadable} ({facts.code}). Its native nftables "
                    "tables were not evaluated; what explain says of this node rests on iptables-save alone.",
                    evidence=[f"{facts.label}: {facts.code} {facts.unreadable}"],
                    fix="Capture it again on the node with `nft -j list ruleset > nft-ruleset.json` (the whole "
                        "output, unedited).", nodes=(n,))
            continue
        owners = tuple(sorted({o or f"table {t}" for t, o in facts.native}))
        if facts.masquerading:
            decided.setdefault((owners, tuple(facts.masquerading)), []).append(n)
        elif facts.nat_chains:
            listed.setdefault((owners, tuple(facts.nat_chains)), []).append(n)
    def without_iptables(nodes) -> str:
        bare = [n for n in nodes if not captures[n].iptables_save]
        return (f" The capture of {shown_nodes(sorted(bare))} has no iptables-save: iptables rules there, if any, "
                "are not known.") if bare else ""

    for (owners, chains), nodes in decided.items():
        ctx.add("MQ026", WARNING, f"Native nftables nat chains that can masquerade or SNAT run at postrouting "
                f"beside iptables' nat table ({', '.join(owners)}): the first nat chain, by priority, that binds a "
                "NAT decides the connection, whatever the agent's chain says." + without_iptables(nodes),
                evidence=[f"{c}: reaches masquerade/snat" for c in chains[:6]] + [f"tables of: {', '.join(owners)}"],
                fix="Explain a flow on the node (masqctl explain … --bundle, or --nft with --iptables) to see which "
                    "chain decides; change the exemptions of the program that owns the chain, or turn its "
                    "masquerade off if the agent should decide.", nodes=tuple(sorted(nodes)))
    for (owners, chains), nodes in listed.items():
        ctx.add("MQ026", INFO, f"Native nftables nat chains run beside iptables' nat table ({', '.join(owners)}); "
                "none of them masquerades or SNATs, but they may DNAT or mark packets before the agent's chain."
                + without_iptables(nodes),
                evidence=list(chains[:6]), fix="Nothing to change for masquerading; explain walks these chains "
                "with the iptables rules when a flow is asked about.", nodes=tuple(sorted(nodes)))
    by_hint: dict[tuple, list[str]] = {}
    for n, hints in hinted.items():
        by_hint.setdefault(tuple(h.split(" (", 1)[0] if "runs there (" in h else h for h in hints), []).append(n)
    for hints, nodes in by_hint.items():
        first = hinted[nodes[0]]
        ctx.add("MQ025", WARNING, f"Native nftables tables may decide on {shown_nodes(sorted(nodes))}, but the capture "
                "has only iptables-save, which does not show them: what inspect and explain say of masquerading "
                "there may be incomplete.", evidence=first,
                fix="On the node: `nft -j list ruleset > nft-ruleset.json`, and add it to the bundle as "
                    "nodes/<node>/nft-ruleset.json (masqctl collect does this where nft is in reach, e.g. with "
                    "--debug-pod).", nodes=tuple(sorted(nodes)))
