"""Cilium's BPF masquerade decision, table-driven from cilium/cilium bpf/lib/nat.h
``snat_v4_needs_masquerade()`` (the copy read: egress gateway before the exclusion CIDR, the
remote-node branch) and the datapath test ``nat4_remote_node_masquerade_enabled`` (bpf/tests: with
``enable_remote_node_masquerade`` true a packet to a remote node is NAT_NEEDED). Each case names the
nat.h statement it rests on."""

from __future__ import annotations

import pytest

from masqctl.analysis.dataplanes.cilium_bpf import BpfContext, bpf_decision
from masqctl.engine.cilium import load

MAP = load(b"nonMasqueradeCIDRs: [192.168.0.0/16, 10.100.0.0/16]\nmasqLinkLocal: true\n")
NODE = "10.224.0.4"
POD = "192.168.1.7"


def ctx(**kw) -> BpfContext:
    base = dict(node_ip=NODE, src_local_endpoint=True, native_routing_cidr="192.168.0.0/16", routing_mode="native",
                remote_node_masquerade=True, dst_remote_node=False, egress_gateway=False, ip_masq_agent=True,
                lookup=MAP.lookup, chain_of=lambda p: f"map entry {p}")
    base.update(kw)
    return BpfContext(**base)


CASES = [
    # (name, src, dst, context overrides, masqueraded, source seen, deciding check starts with)
    # "if (tuple->saddr == CONFIG(nat_ipv4_masquerade).be32)": host traffic keeps the node IP
    ("host src", NODE, "8.8.8.8", {}, False, NODE, "source is the node's masquerade address"),
    # "egress_gw_snat_needed_hook(...)": before the exclusion CIDR, so even a pod-CIDR destination
    ("egress gw first", POD, "192.168.5.5", {"egress_gateway": True}, True, None, "an egress-gateway"),
    ("egress gw unknown", POD, "8.8.8.8", {"egress_gateway": None}, None, None, "an egress-gateway"),
    # "if (ipv4_is_in_subnet(tuple->daddr, IPV4_SNAT_EXCLUSION_DST_CIDR, ...)) return NAT_PUNT_TO_STACK"
    ("native cidr", POD, "192.168.9.9", {}, False, POD, "destination in the SNAT exclusion CIDR"),
    # without ipv4-native-routing-cidr the exclusion CIDR is the local pod CIDR
    ("local pod cidr", POD, "10.244.0.9", {"native_routing_cidr": None, "local_pod_cidr": "10.244.0.0/24"},
     False, POD, "destination in the SNAT exclusion CIDR"),
    # "if (local_ep && (local_ep->flags & ENDPOINT_F_HOST)) return NAT_PUNT_TO_STACK"
    ("host endpoint", "10.224.0.9", "8.8.8.8", {"src_host_endpoint": True}, False, "10.224.0.9",
     "source is the host endpoint"),
    # "if (map_lookup_elem(&cilium_ipmasq_v4, &pfx)) return NAT_PUNT_TO_STACK"
    ("in map", POD, "10.100.3.3", {}, False, POD, "destination in the ip-masq-agent map"),
    ("map unknown", POD, "10.100.3.3", {"lookup": None}, None, None, "destination in the ip-masq-agent map"),
    # "if (remote_ep && identity_is_remote_node(...))" with enable_remote_node_masquerade (bpf/tests)
    ("remote node masq", POD, "10.224.0.5", {"dst_remote_node": True}, True, NODE, "destination is a remote node"),
    # "if (!is_defined(TUNNEL_MODE)) return NAT_PUNT_TO_STACK": native routing, remote-node masquerade off
    ("remote node native", POD, "10.224.0.5", {"dst_remote_node": True, "remote_node_masquerade": False}, False, POD,
     "destination is a remote node"),
    # tunnel mode: masqueraded (then "if (local_ep) { target->addr = ...")
    ("remote node tunnel", POD, "10.224.0.5", {"dst_remote_node": True, "remote_node_masquerade": False,
                                               "routing_mode": "tunnel"}, True, NODE, "source is a local endpoint"),
    ("remote node unknown", POD, "10.224.0.5", {"dst_remote_node": None}, None, None, "destination is a remote node"),
    # "if (local_ep) { target->addr = CONFIG(nat_ipv4_masquerade).be32; return NAT_NEEDED; }"
    ("internet", POD, "8.8.8.8", {}, True, NODE, "source is a local endpoint"),
    # final "return NAT_PUNT_TO_STACK": not an endpoint of this node
    ("not local", "172.20.0.5", "8.8.8.8", {"src_local_endpoint": False}, False, "172.20.0.5",
     "source is a local endpoint"),
    # masqLinkLocal: true in the AKS reconciled config: IMDS is masqueraded
    ("imds", POD, "169.254.169.254", {}, True, NODE, "source is a local endpoint"),
]


@pytest.mark.parametrize("name,src,dst,over,masq,seen,check", CASES, ids=[c[0] for c in CASES])
def test_order(name, src, dst, over, masq, seen, check):
    d = bpf_decision(src, dst, ctx(**over))
    assert d.masqueraded is masq
    assert d.source_seen == seen
    assert d.deciding.check.startswith(check)
    assert all(s.source for s in d.steps)
    assert d.reason
