"""Cilium's BPF masquerade (AKS Azure CNI powered by Cilium with eBPF host routing).

The ``azure-ip-masq-merger`` sidecar merges the two ConfigMaps into the one file Cilium's
ip-masq-agent loads into its ``cilium_ipmasq_v4`` map (pod subnet: the AKS-owned
``azure-dns-imds-ip-masq-agent-config`` instead, the user ConfigMap is not read); the BPF
program on the node's device decides, and the agent's iptables rules are bypassed.

``bpf_decision`` follows the order of ``snat_v4_needs_masquerade()`` in cilium/cilium
``bpf/lib/nat.h`` (the copy read has the egress-gateway check before the exclusion CIDR on
purpose, and the remote-node branch; ``enable_remote_node_masquerade`` from the datapath test
``bpf/tests/…nat4_remote_node_masquerade_enabled``): each step is reported like a rule of a
trace, with the deciding map entry's provenance (map entry ← merged file ← ConfigMap line).
A fact the snapshot does not give (an egress-gateway policy where that feature is on, whether
the destination is a remote node) makes the verdict ``None`` with the reason, never a guess.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from dataclasses import replace as _replace

from masqctl.analysis.cilium import BpfContext
from masqctl.analysis.dataplanes.base import Dataplane
from masqctl.analysis.explain import Explanation, Request, explain, parse_endpoint
from masqctl.engine.cilium import MapEntry

NAT_H = "cilium/cilium bpf/lib/nat.h snat_v4_needs_masquerade()"


@dataclass(frozen=True)
class BpfStep:
    """One check of the BPF decision, as a line of a trace."""

    check: str                  # what is asked
    answer: bool | None         # the answer (None: unknown)
    result: str                 # "continue" | "masquerade" | "not masqueraded" | "unknown"
    detail: str = ""
    source: str = ""            # the nat.h statement it rests on

    def to_dict(self) -> dict:
        return {"check": self.check, "answer": self.answer, "result": self.result, "detail": self.detail,
                "source": self.source}


@dataclass
class BpfDecision:
    masqueraded: bool | None
    source_seen: str | None
    steps: list[BpfStep] = field(default_factory=list)
    reason: str = ""
    deciding: BpfStep | None = None

    def to_dict(self) -> dict:
        return {"masqueraded": self.masqueraded, "source_seen": self.source_seen, "reason": self.reason,
                "steps": [s.to_dict() for s in self.steps]}


def _in(ip: str, cidr: str | None) -> bool:
    if not cidr:
        return False
    a, n = ipaddress.ip_address(ip), ipaddress.ip_network(cidr, strict=False)
    return a.version == n.version and a in n


def bpf_decision(src: str, dst: str, ctx: BpfContext) -> BpfDecision:
    """Cilium's masquerade decision for a new IPv4 connection SRC → DST leaving this node."""
    steps: list[BpfStep] = []

    def end(masq: bool | None, seen: str | None, step: BpfStep, reason: str) -> BpfDecision:
        steps.append(step)
        return BpfDecision(masq, seen, steps, reason, step)

    # 1. host traffic that already carries the masquerade address
    if ctx.node_ip is not None and src == ctx.node_ip:
        return end(False, src, BpfStep("source is the node's masquerade address", True, "not masqueraded",
                                       "host traffic keeps its address (the port is reserved in the NAT table)",
                                       "if (tuple->saddr == CONFIG(nat_ipv4_masquerade).be32)"),
                   "the source is the node IP itself")
    steps.append(BpfStep("source is the node's masquerade address", False, "continue", "",
                         "if (tuple->saddr == CONFIG(nat_ipv4_masquerade).be32)"))
    # 2. a reply of a local endpoint: a new connection is not one
    steps.append(BpfStep("reply of a connection opened from outside", False, "continue",
                         "a new connection from SRC", "if (ct_is_reply4(get_ct_map4(tuple), tuple))"))
    # 3. egress gateway, before the exclusion CIDR on purpose
    if ctx.egress_gateway is None:
        return end(None, None, BpfStep("an egress-gateway policy selects the packet", None, "unknown",
                                       "egress gateway is enabled and its policies are not in the snapshot",
                                       "if (egress_gw_snat_needed_hook(tuple->saddr, tuple->daddr, …))"),
                   "whether an egress-gateway policy applies is unknown")
    if ctx.egress_gateway:
        return end(True, None, BpfStep("an egress-gateway policy selects the packet", True, "masquerade",
                                       "SNAT to the policy's egress IP",
                                       "if (egress_gw_snat_needed_hook(tuple->saddr, tuple->daddr, …))"),
                   "an egress-gateway policy")
    steps.append(BpfStep("an egress-gateway policy selects the packet", False, "continue", "",
                         "if (egress_gw_snat_needed_hook(tuple->saddr, tuple->daddr, …))"))
    # 4. the SNAT exclusion CIDR: native routing CIDR, else the local pod CIDR
    exclusion = ctx.native_routing_cidr or ctx.local_pod_cidr
    what = "ipv4-native-routing-cidr" if ctx.native_routing_cidr else "the node's pod CIDR"
    if exclusion is None:
        steps.append(BpfStep("destination in the SNAT exclusion CIDR", None, "continue",
                             "no ipv4-native-routing-cidr or pod CIDR known; taken as not in it",
                             "if (ipv4_is_in_subnet(tuple->daddr, IPV4_SNAT_EXCLUSION_DST_CIDR, …))"))
    elif _in(dst, exclusion):
        return end(False, src, BpfStep(f"destination in the SNAT exclusion CIDR ({what} {exclusion})", True,
                                       "not masqueraded", "", "if (ipv4_is_in_subnet(tuple->daddr, "
                                       "IPV4_SNAT_EXCLUSION_DST_CIDR, …)) return NAT_PUNT_TO_STACK"),
                   f"{dst} is in {what} {exclusion}")
    else:
        steps.append(BpfStep(f"destination in the SNAT exclusion CIDR ({what} {exclusion})", False, "continue", "",
                             "if (ipv4_is_in_subnet(tuple->daddr, IPV4_SNAT_EXCLUSION_DST_CIDR, …))"))
    # 5. the host endpoint
    if ctx.src_host_endpoint:
        return end(False, src, BpfStep("source is the host endpoint", True, "not masqueraded", "",
                                       "if (local_ep && (local_ep->flags & ENDPOINT_F_HOST))"),
                   "host traffic is not masqueraded")
    steps.append(BpfStep("source is the host endpoint", False, "continue", "",
                         "if (local_ep && (local_ep->flags & ENDPOINT_F_HOST))"))
    # 6. the ip-masq-agent map
    if ctx.ip_masq_agent:
        if ctx.lookup is None:
            return end(None, None, BpfStep("destination in the ip-masq-agent map", None, "unknown",
                                           "the map Cilium loaded is not known",
                                           "if (map_lookup_elem(&cilium_ipmasq_v4, &pfx))"),
                       "the ip-masq-agent map is not known")
        entry = ctx.lookup(dst)
        if entry is not None:
            chain = ctx.chain_of(entry.prefix) if ctx.chain_of else f"map entry {entry.prefix}"
            return end(False, src, BpfStep("destination in the ip-masq-agent map", True, "not masqueraded", chain,
                                           "if (map_lookup_elem(&cilium_ipmasq_v4, &pfx)) return NAT_PUNT_TO_STACK"),
                       f"{dst} is in {entry.prefix} of the ip-masq-agent map")
        steps.append(BpfStep("destination in the ip-masq-agent map", False, "continue", "no entry holds it",
                             "if (map_lookup_elem(&cilium_ipmasq_v4, &pfx))"))
    # 7. remote nodes
    if ctx.dst_remote_node is None:
        return end(None, None, BpfStep("destination is a remote node", None, "unknown",
                                       "the cluster's node addresses are not known",
                                       "if (remote_ep && identity_is_remote_node(remote_ep->sec_identity))"),
                   "whether the destination is a remote node is unknown")
    if ctx.dst_remote_node:
        if ctx.remote_node_masquerade:
            return end(True, ctx.node_ip, BpfStep("destination is a remote node", True, "masquerade",
                                                  "enable-remote-node-masquerade is true",
                                                  "CONFIG(enable_remote_node_masquerade)"),
                       "traffic to a remote node, with enable-remote-node-masquerade")
        if ctx.routing_mode == "native":
            return end(False, src, BpfStep("destination is a remote node", True, "not masqueraded",
                                           "native routing", "if (!is_defined(TUNNEL_MODE)) return NAT_PUNT_TO_STACK"),
                       "traffic to a remote node in native routing")
        if ctx.routing_mode is None:
            return end(None, None, BpfStep("destination is a remote node", True, "unknown",
                                           "routing mode (native or tunnel) unknown", "if (!is_defined(TUNNEL_MODE))"),
                       "the routing mode is unknown")
        steps.append(BpfStep("destination is a remote node", True, "continue",
                             "tunnel mode: pod-to-remote-node traffic leaves unencapsulated and is masqueraded",
                             "if (remote_ep->flag_skip_tunnel) return NAT_PUNT_TO_STACK"))
    else:
        steps.append(BpfStep("destination is a remote node", False, "continue", "",
                             "if (remote_ep && identity_is_remote_node(remote_ep->sec_identity))"))
    # 8. a local endpoint
    if ctx.src_local_endpoint is None:
        return end(None, None, BpfStep("source is a local endpoint", None, "unknown",
                                       "whether SRC is a pod of this node is unknown", "if (local_ep)"),
                   "whether the source is a local endpoint is unknown")
    if ctx.src_local_endpoint:
        return end(True, ctx.node_ip, BpfStep("source is a local endpoint", True, "masquerade",
                                              f"SNAT to the node IP {ctx.node_ip or '(unknown)'}",
                                              "if (local_ep) { target->addr = CONFIG(nat_ipv4_masquerade)"),
                   "a pod of this node to a destination no exemption holds")
    return end(False, src, BpfStep("source is a local endpoint", False, "not masqueraded", "",
                                   "return NAT_PUNT_TO_STACK"), "the source is not an endpoint of this node")


class CiliumBpf(Dataplane):
    snat_by = "cilium-bpf"
    note = ("mode {mode}: Cilium's BPF masquerade decides (its decision order in bpf/lib/nat.h is followed below), "
            "fed by the ConfigMaps through azure-ip-masq-merger (pod subnet: by the AKS-owned "
            "azure-dns-imds-ip-masq-agent-config); the agent's iptables rules are bypassed. The ip-masq-agent map "
            "is the node's loaded one where cilium-ipmasq.txt was captured, else the one computed from the ConfigMaps")
    remedy = ("Cilium's BPF masquerade applies the same two ConfigMaps (merged by the azure-ip-masq-merger sidecar), "
              "with BPF semantics; check what it uses with\n"
              "kubectl -n kube-system exec ds/cilium -- cilium bpf ipmasq list")

    def verdict(self, request: Request) -> Explanation:
        base = explain(request)
        ctx = getattr(request, "cilium", None)
        if ctx is None:
            return base
        return apply_decision(base, request, ctx)

    def caveat(self, mode) -> str | None:
        return super().caveat(mode)


def apply_decision(base: Explanation, request: Request, ctx: BpfContext) -> Explanation:
    """``base`` (the walk of the node's iptables) with Cilium's decision in its place: the verdict,
    the source seen and the summary are the BPF path's; the iptables rules are reported as bypassed."""
    ev = base.evaluation
    src = str(base.packet.src)
    dst = str(ev.primary.destination or base.packet.dst)
    if ipaddress.ip_address(dst).version != 4:
        base.notes.append("IPv6: Cilium's IPv6 BPF masquerade is not modelled; the walk of the iptables rules is "
                          "shown, which the BPF path may bypass")
        return base
    walked = ev.primary.deciding
    decision = bpf_decision(src, dst, ctx)
    kind = "masquerade" if decision.masqueraded else ("unknown" if decision.masqueraded is None else "accept")
    outcome = _replace(ev.primary, kind=kind, masqueraded=decision.masqueraded,
                       source_ip_seen=decision.source_seen, deciding=None, trace=[], conditions=[],
                       probability=None, reason=decision.reason)
    ev.outcomes = [outcome]
    verdict = {True: "masqueraded", False: "not masqueraded", None: "unknown (null)"}[decision.masqueraded]
    seen = f", seen as {decision.source_seen}" if decision.source_seen else ""
    base.summary = f"{verdict} by Cilium's BPF masquerade{seen}: {decision.reason}"
    if decision.deciding is not None and decision.deciding.detail:
        base.summary += f" ({decision.deciding.detail})"
    trace = [f"BPF {i + 1}. {s.check}: {'yes' if s.answer else 'no' if s.answer is False else 'unknown'} -> "
             f"{s.result}" + (f" — {s.detail}" if s.detail else "") + f"  [{NAT_H}: {s.source}]"
             for i, s in enumerate(decision.steps)]
    bypassed = ("bypassed, not evaluated: the node's iptables nat POSTROUTING rules (the agent's IP-MASQ-AGENT chain "
                "and any MASQUERADE rule) — Cilium's BPF program on the node's device decides before them")
    if walked is not None:
        at = f"{walked.chain} rule {walked.index}" if walked.index else f"{walked.chain}'s policy"
        bypassed += f"; the iptables walk would have ended at {at}: {walked.text} ({walked.action})"
    extra = []
    if ctx.effective_lookup is not None and ctx.lookup is not None:
        loaded, want = ctx.lookup(dst), ctx.effective_lookup(dst)
        if (loaded is None) != (want is None) or (loaded and want and loaded.prefix != want.prefix):
            extra.append(f"the node's loaded ip-masq-agent map and the effective config disagree for {dst}: loaded "
                         f"{loaded.prefix if loaded else 'no entry'}, effective {want.prefix if want else 'no entry'} "
                         "(a stale map: MQ024); the verdict follows the loaded map, which BPF uses")
    base.notes = trace + extra + [bypassed] + base.notes
    base.input["cilium_bpf"] = decision.to_dict()
    return base


def what_if(request: Request, native_routing_cidr: str | None = None, remote_node_masquerade: bool | None = None,
            routing_mode: str | None = None, remote_node: bool | None = None) -> Explanation:
    """``explain --config-dir DIR --flavor cilium|azure-cilium``: Cilium's decision for the map that
    folder gives, with the Cilium facts no bundle gives taken from flags (SRC is a pod of the node,
    DST not a node of the cluster unless ``remote_node``, no egress gateway: each said in the notes)."""
    from masqctl.engine import load_config_dir
    from masqctl.errors import UsageError

    if routing_mode is not None and routing_mode not in ("native", "tunnel"):
        raise UsageError(f"--routing-mode {routing_mode!r}: use native or tunnel", input="--routing-mode",
                         code="E233")
    if native_routing_cidr is not None:
        try:
            native_routing_cidr = str(ipaddress.ip_network(native_routing_cidr, strict=False))
        except ValueError:
            raise UsageError(f"{native_routing_cidr!r} is not a CIDR (such as 192.168.0.0/16)",
                             input="--native-routing-cidr", code="E234") from None
        flow = parse_endpoint(request.dst, "DST")[0].version
        given = ipaddress.ip_network(native_routing_cidr).version
        if flow != given:
            # Cilium has one per family (--ipv4-native-routing-cidr, --ipv6-native-routing-cidr): a
            # CIDR of the other family is not this flow's, and leaving it out would be a guess
            raise UsageError(f"{native_routing_cidr} is an IPv{given} CIDR, and the flow is IPv{flow}: give the "
                             f"IPv{flow} native routing CIDR (Cilium's --ipv{flow}-native-routing-cidr)",
                             input="--native-routing-cidr", code="E234")
    config = load_config_dir(request.config_dir, request.agent_options)
    nets = [ipaddress.ip_network(c) for c in config.cidrs()]

    def lookup(ip: str):
        a = ipaddress.ip_address(ip)
        best = max((n for n in nets if n.version == a.version and a in n), key=lambda n: n.prefixlen, default=None)
        return None if best is None else MapEntry(str(best), best.version, "config")

    def chain_of(prefix: str) -> str:
        entry = next((c for c in config.non_masquerade_cidrs if c.cidr == prefix), None)
        where = " <- ".join(o.describe() for o in entry.origins) if entry is not None else ""
        return f"map entry {prefix}" + (f" <- {where}" if where else "")

    ctx = BpfContext(node_ip=request.node_ip, src_local_endpoint=not request.from_host,
                     src_host_endpoint=request.from_host, native_routing_cidr=native_routing_cidr,
                     routing_mode=routing_mode or "native", remote_node_masquerade=bool(remote_node_masquerade),
                     dst_remote_node=bool(remote_node), egress_gateway=False, lookup=lookup, chain_of=chain_of,
                     map_source=f"the map {request.agent_options.flavor} loads from {request.config_dir}")
    request.cilium = ctx
    ex = CiliumBpf().verdict(request)
    ex.notes = [n for n in ex.notes if not n.startswith("bypassed, not evaluated")]   # no node here
    ex.notes.append("WHAT-IF (Cilium): assumed SRC is a pod of this node" + (" (--from-host: the host)" if
                    request.from_host else "") + (", DST is another node of the cluster (--remote-node)" if
                    remote_node else ", DST is not a node of the cluster") + " and no egress-gateway policy "
                    "applies; routing " + (routing_mode or "native") + (f", native routing CIDR {native_routing_cidr}"
                    if native_routing_cidr else ", no native routing CIDR")
                    + (", remote-node masquerade on" if remote_node_masquerade else ""))
    return ex


__all__ = ["BpfContext", "what_if", "BpfDecision", "BpfStep", "CiliumBpf", "apply_decision", "bpf_decision"]
