"""Findings about Cilium's BPF masquerade and pod-subnet mode: MQ021 (the user ConfigMap has no
effect in pod-subnet mode), MQ022 (the merger or Cilium refuses the config), MQ023 (Cilium reads the
config differently from the iptables agent), MQ024 (a node's loaded ip-masq-agent map differs
from the effective config)."""

from __future__ import annotations

from masqctl.analysis.cilium import DNS_IMDS_CONFIGMAP, USER_CONFIGMAP, cilium_facts, effective_map
from masqctl.analysis.findings import ERROR, INFO, WARNING, Context, shown_nodes
from masqctl.cluster.model import MissingKey
from masqctl.engine.ciliumdbg import parse_ipmasq_list, parse_status
from masqctl.errors import InputError

POD_SUBNET = "azure-cni-pod-subnet"
CILIUM_BPF = "cilium-bpf"
LIST = "kubectl -n kube-system exec ds/cilium -c cilium-agent -- cilium-dbg bpf ipmasq list"


def check(ctx: Context) -> None:
    facts = cilium_facts(ctx.snapshot)
    eff = effective_map(ctx.snapshot, facts) if ctx.mode.snat_by == CILIUM_BPF else None
    mq021(ctx, facts)
    mq022(ctx, eff)
    mq023(ctx, eff)
    mq024(ctx, eff)


def mq021(ctx: Context, facts) -> None:
    snap = ctx.snapshot
    if MissingKey.CONFIGMAPS in snap.missing:
        return
    user = snap.configmap(USER_CONFIGMAP)
    if user is None or ctx.mode.name != POD_SUBNET:
        return
    if ctx.mode.snat_by == CILIUM_BPF:
        direct = facts.direct
        detail = (f"ConfigMap {user.ref} exists, but in pod-subnet mode with Cilium's eBPF host routing cilium-agent "
                  f"reads only the AKS-owned {DNS_IMDS_CONFIGMAP} (mounted as its /etc/config"
                  + (f" by DaemonSet {direct.ref}" if direct else "") + "): the user ConfigMap is not mounted, so "
                  "nothing in it changes masquerading. Pod IPs leave unmasqueraded, except Azure DNS and IMDS, which "
                  "Cilium masquerades to the node IP.")
    elif ctx.mode.snat_by == "swift-postrouting":
        detail = (f"ConfigMap {user.ref} exists, but in pod-subnet mode no masquerade agent decides: pod IPs are VNet "
                  "addresses and leave unmasqueraded; only CNS's SWIFT-POSTROUTING SNATs Azure DNS (168.63.129.16:53) "
                  "and IMDS (169.254.169.254:80) to the node IP. Nothing reads the user ConfigMap, so changing it "
                  "changes nothing.")
    else:
        return
    ctx.add("MQ021", WARNING, detail, evidence=list(ctx.mode.evidence)[:4] + [
        f"ConfigMap {user.ref} keys {', '.join(sorted(user.data)) or '(none)'}"],
        fix=f"Nothing to configure for pod source IPs here. Delete the ConfigMap if it only causes confusion:\n"
            f"kubectl -n {user.namespace} delete configmap {user.name}")


def mq022(ctx: Context, eff) -> None:
    if eff is None:
        return
    facts = eff.facts
    if facts.ip_masq_agent is False and facts.bpf_decides:
        user = ctx.snapshot.configmap(USER_CONFIGMAP)
        ctx.add("MQ022", WARNING if user is not None else INFO,
                f"{facts.config_ref} has enable-ip-masq-agent: \"false\" with Cilium's BPF masquerade on: Cilium has "
                "no ip-masq-agent map, so no ConfigMap changes masquerading; every pod packet to a destination "
                "outside the native routing CIDR" + (f" {facts.native_routing_cidr}" if facts.native_routing_cidr
                                                     else "") + " (and not to a remote node) is masqueraded.",
                evidence=facts.evidence(), fix="On AKS, cilium-config is managed: open a support case; elsewhere set "
                "enable-ip-masq-agent: \"true\" in cilium-config and restart the cilium DaemonSet.")
        return
    if eff.error is None or any(v.error is not None for v in ctx.views):
        return       # an agent view reports the refusal itself (MQ002)
    err = eff.error
    who = "the azure-ip-masq-merger" if eff.facts.source == "merger" and eff.merged is None else "Cilium's ip-masq-agent"
    where = next((f"ConfigMap {r} key {k}" for f, r, k in eff.files if f == err.file), err.file or "the config")
    ctx.add("MQ022", ERROR, f"{who} refuses the config ({err.code} {where}" + (f" line {err.line}" if err.line else "")
            + f"): {err.message}", evidence=[err.one_line()],
            fix=f"Fix {where}" + (f" line {err.line}" if err.line else "") + (f": {err.hint}" if err.hint else "")
            + f"\nThen check what Cilium loaded: {LIST}")


def mq023(ctx: Context, eff) -> None:
    if eff is None or eff.loaded is None:
        return
    loaded = eff.loaded
    if eff.merged is not None and eff.merged.written and not eff.merged.non_masquerade_cidrs:
        files = ", ".join(f"ConfigMap {r} key {k}" for _, r, k in eff.files) or "the ip-masq* files"
        ctx.add("MQ023", WARNING,
                f"the merged config Cilium reads has an empty nonMasqueradeCIDRs list ({files} set no CIDR). Unlike "
                "the iptables agent's defaults, Cilium uses its 11 default ranges only when its file is absent or "
                "0 bytes: with an empty list it exempts only "
                + " and ".join(([", ".join(loaded.prefixes())] if loaded.prefixes() else [])
                               + ([f"the native routing CIDR {eff.facts.native_routing_cidr}"]
                                  if eff.facts.native_routing_cidr else []) or ["link-local"])
                + ", so traffic to every other private range is masqueraded.",
                evidence=[f"merged ip-masq-agent: {eff.merged.text().strip()!r}"],
                fix="List the ranges that must keep pod IPs in nonMasqueradeCIDRs of the user ConfigMap, or delete "
                    "an ip-masq* key that sets nothing.")
    for w in loaded.warnings:
        if w.code == "W107":
            ctx.add("MQ023", INFO, w.message, evidence=[w.describe()],
                    fix="Remove the IPv6 CIDR, or turn on IPv6 masquerade in Cilium (enable-ipv6-masquerade).")


def mq024(ctx: Context, eff) -> None:
    snap = ctx.snapshot
    captured = {n: c for n, c in snap.captures.items() if n in ctx.nodes or not ctx.nodes}
    with_map = {n: c for n, c in captured.items() if c.cilium_ipmasq is not None}
    status_only(ctx, {n: c for n, c in captured.items() if c.cilium_ipmasq is None and c.cilium_status})
    if not with_map:
        if eff is not None:
            ctx.skip("MQ024", f"no node capture has cilium-ipmasq.txt ({LIST})")
        return
    if eff is None or eff.loaded is None:
        ctx.skip("MQ024", "the effective Cilium config is not known" + (f" ({eff.error.code})" if eff and eff.error
                                                                         else ""), nodes=tuple(with_map))
        return
    want = set(eff.loaded.prefixes())
    by_diff: dict[tuple, list[str]] = {}
    for node, cap in sorted(with_map.items()):
        label = f"nodes/{node}/cilium-ipmasq.txt"
        try:
            have = set(parse_ipmasq_list(cap.cilium_ipmasq, label))
        except InputError as exc:
            ctx.skip("MQ024", exc.one_line(), nodes=(node,))
            continue
        status = parse_status(cap.cilium_status) if cap.cilium_status else None
        mode_note = ""
        if status is not None and status.mode.upper() != "BPF":
            mode_note = f"cilium-dbg status says Masquerading: {status.mode}"
        if have != want or mode_note:
            key = (tuple(sorted(want - have)), tuple(sorted(have - want)), mode_note)
            by_diff.setdefault(key, []).append(node)
    for (missing, extra, mode_note), nodes in by_diff.items():
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("extra " + ", ".join(extra))
        if mode_note:
            parts.append(mode_note)
        ctx.add("MQ024", WARNING,
                f"the ip-masq-agent map Cilium loaded on node(s) {shown_nodes(nodes)} differs from the effective "
                f"config: {'; '.join(parts)}. Cilium keeps its last map when it refuses a file, and the merger keeps "
                "its last merged file when it exits, so a stale map means the last good config is in force.",
                evidence=[f"nodes/{n}/cilium-ipmasq.txt" for n in nodes[:5]] +
                [f"effective: {', '.join(sorted(want))}"], nodes=nodes,
                fix=f"Check the merger and cilium-agent logs on those nodes (kubectl -n kube-system logs ds/cilium "
                    f"-c azure-ip-masq-merger), then {LIST}")


def status_only(ctx: Context, caps: dict) -> None:
    """MQ024 from ``cilium-status.txt`` alone (no loaded map captured): a node whose Cilium does
    not masquerade in BPF is not following the BPF path the effective config is read for."""
    by_mode: dict[str, list[str]] = {}
    for node, cap in sorted(caps.items()):
        status = parse_status(cap.cilium_status)
        if status is not None and status.mode.upper() != "BPF":
            by_mode.setdefault(status.mode, []).append(node)
    for mode, nodes in by_mode.items():
        ctx.add("MQ024", WARNING,
                f"cilium-dbg status on node(s) {shown_nodes(nodes)} says Masquerading: {mode}, not BPF: Cilium's BPF "
                "masquerade and its ip-masq-agent map are not what decides there (no cilium-ipmasq.txt was "
                "captured to compare).",
                evidence=[f"nodes/{n}/cilium-status.txt" for n in nodes[:5]], nodes=nodes,
                fix=f"Check cilium-agent's logs and cilium-config on those nodes (kubectl -n kube-system logs "
                    f"ds/cilium -c cilium-agent), then {LIST}")


__all__ = ["check"]
