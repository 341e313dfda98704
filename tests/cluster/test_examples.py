"""The example bundles in examples/: what they load into, and that they agree with the seeds,
with the engine, and with the generator that built them."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re

import examplegen
import pytest
from clusterkit.bundle import EXAMPLES, ROOT
from netns import NetNS, requires_netns

from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle, write_bundle
from masqctl.cluster.model import (
    ConfigMapProjection,
    ConfigMount,
    KeyToPath,
)
from masqctl.engine import AgentOptions, ConfigSource, effective_config, render
from masqctl.netfilter.canonical import rule_key
from masqctl.netfilter.dump import parse_dump
from masqctl.netfilter.tokens import split_args

SEEDS = os.path.join(ROOT, "tests", "fixtures")
NAMES = examplegen.NAMES


def snapshot(name):
    return build_snapshot(read_bundle(os.path.join(EXAMPLES, name)))


def seed(*parts) -> str:
    with open(os.path.join(SEEDS, *parts), encoding="utf-8") as fh:
        return fh.read()


def projected_sources(snap, ds) -> list[ConfigSource]:
    """The files the agent reads from /etc/config, straight from the DaemonSet's projection."""
    out = []
    for mount in ds.mounts:
        if mount.mount_path != "/etc/config":
            continue
        for src in mount.sources:
            cm = snap.configmap(src.configmap, ds.namespace)
            if cm is None:
                continue
            items = src.items if src.items is not None else tuple(KeyToPath(k, k) for k in cm.data)
            for item in items:
                if item.key in cm.data and item.path.startswith("ip-masq"):
                    out.append(ConfigSource(item.path, cm.data[item.key].encode()))
    return sorted(out, key=lambda s: s.name)


def agent_of(snap):
    (ds,) = snap.daemonsets
    options = AgentOptions(flavor=ds.flavor)
    return ds, options, effective_config(projected_sources(snap, ds), options)


def key(text: str):
    return rule_key(split_args(text)[2:])


EXPECTED = {   # name → (kind, flavour, effective CIDRs in order, masqLinkLocal)
    "aks-azure-cni": ("azure-ip-masq-agent", "azure-v2", ["10.224.0.0/16", "10.0.0.0/16", "10.224.0.0/12"], True),
    "aks-kubenet": ("azure-ip-masq-agent", "azure-v2", ["10.244.0.0/16"], True),
    "hub-spoke": ("azure-ip-masq-agent", "azure-v2", ["10.40.0.0/17", "10.0.0.0/16", "10.40.0.0/15"], True),
    "aks-pod-subnet": ("azure-ip-masq-agent", "azure-v2", ["10.0.0.0/16", "192.168.0.0/16"], False),
}


@pytest.mark.parametrize("name", NAMES)
def test_agent_and_effective_config(name):
    snap = snapshot(name)
    kind, flavor, cidrs, link_local = EXPECTED[name]
    ds, _, config = agent_of(snap)
    assert (ds.kind, ds.flavor) == (kind, flavor)
    assert [c.cidr for c in config.non_masquerade_cidrs] == cidrs
    assert config.masq_link_local.value is link_local
    assert len(snap.pods) == len(snap.nodes) and all(p.ready and p.daemonset == ds.name for p in snap.pods)
    assert {p.node for p in snap.pods} == {n.name for n in snap.nodes}


@pytest.mark.parametrize("name", NAMES)
def test_live_chain_is_what_the_engine_renders_on_every_node(name):
    snap = snapshot(name)
    _, options, config = agent_of(snap)
    rules = render(config, options).ipv4
    assert set(snap.captures) == {n.name for n in snap.nodes}
    for node, cap in snap.captures.items():
        assert (cap.backend, cap.captured_at) == ("nft", snap.collected_at)
        assert cap.via.startswith("agent-pod/") and cap.errors == {}
        dump = parse_dump(cap.iptables_save, source=node)
        nat = dump.table("nat")
        live = [text for _, text in nat.chain(options.masq_chain).lines]
        assert [key(t) for t in live] == [key(r.text) for r in rules.rules], node
        jumps = [t for _, t in nat.chain("POSTROUTING").lines if t.endswith(f"-j {options.masq_chain}")]
        assert [key(t) for t in jumps] == [key(rules.jump.text)]
        assert set(dump.tables) >= {"filter", "nat", "mangle"}
        assert "KUBE-SERVICES" in nat.chains and "KUBE-POSTROUTING" in nat.chains
        node_ip = snap.node(node).internal_ip
        assert f"inet {node_ip}/" in cap.ip_addr


@pytest.mark.parametrize("name,fragment", [("aks-azure-cni", "akscal"), ("aks-kubenet", "akskube")])
def test_seed_lines_appear_verbatim(name, fragment):
    """The seed's `iptables-save | grep masq` lines are in every node's dump, in the same order."""
    lines = seed("seed003", fragment, "iptables-save-grep-masq.txt").splitlines()
    for cap in snapshot(name).captures.values():
        got = [line for line in cap.iptables_save.splitlines() if "masq" in line]   # grep masq
        assert got == lines


def test_aks_azure_cni():
    snap = snapshot("aks-azure-cni")
    assert snap.configmap("azure-ip-masq-agent-config-reconciled").data == {
        "ip-masq-agent-reconciled": seed("seed003", "akscal", "ip-masq-agent-reconciled")}
    assert snap.configmap("azure-ip-masq-agent-config") is None          # no user ConfigMap
    assert snap.configmap("coredns") is None                             # read, but not masquerade-related
    (node,) = snap.nodes
    assert (node.name, node.internal_ip, node.pod_cidrs) == ("aks-nodepool1-36628055-vmss000000", "10.224.0.4", ())
    az = snap.azure
    np = az.cluster.network_profile
    assert (az.cluster.name, np.network_plugin, np.pod_cidrs, np.service_cidrs) == ("akscal", "azure", (), ("10.0.0.0/16",))
    (vnet,) = az.vnets
    assert (vnet.name, vnet.managed, vnet.address_prefixes) == ("aks-vnet-39458073", True, ("10.224.0.0/12",))
    assert vnet.resource_group == az.cluster.node_resource_group == "MC_rg_akscal_swedencentral"
    assert [(s.name, s.prefixes) for s in vnet.subnets] == [("aks-subnet", ("10.224.0.0/16",))]
    # Azure CNI node subnet: pod IPs come from the node subnet
    subnet = ipaddress.ip_network("10.224.0.0/16")
    assert all(ipaddress.ip_address(ip) in subnet for w in snap.workloads for ip in w.pod_ips)
    (ds,) = snap.daemonsets
    assert ds.image == "mcr.microsoft.com/aks/ip-masq-agent-v2:v0.1.11" and ds.args == ("--v=2", "--resync-interval=60")
    assert [p.name for p in snap.pods] == ["azure-ip-masq-agent-xpvjn"]


def test_aks_kubenet():
    snap = snapshot("aks-kubenet")
    assert snap.configmap("azure-ip-masq-agent-config-reconciled").data == {
        "ip-masq-agent-reconciled": seed("seed003", "akskube", "ip-masq-agent-reconciled")}
    assert [(n.name, n.pod_cidrs) for n in snap.nodes] == [
        (f"aks-nodepool1-10522532-vmss00000{i}", (f"10.244.{i}.0/24",)) for i in range(3)]
    assert sorted(p.name for p in snap.pods) == ["azure-ip-masq-agent-hm4n2", "azure-ip-masq-agent-ht2tj",
                                                 "azure-ip-masq-agent-rtc8z"]
    np = snap.azure.cluster.network_profile
    assert (np.network_plugin, np.pod_cidrs, np.service_cidrs) == ("kubenet", ("10.244.0.0/16",), ("10.0.0.0/16",))
    assert snap.azure.vnets[0].name == "aks-vnet-12544801" and snap.azure.vnets[0].managed is True
    # kubenet: pod IPs come from the node's own pod CIDR
    for w in snap.workloads:
        if not w.host_network:
            cidr = snap.node(w.node).pod_cidrs[0]
            assert ipaddress.ip_address(w.pod_ips[0]) in ipaddress.ip_network(cidr), w
    assert snap.daemonsets[0].image == "mcr.microsoft.com/aks/ip-masq-agent-v2:v0.1.11"


def test_hub_spoke_before_the_fix():
    snap = snapshot("hub-spoke")
    cm = snap.configmap("azure-ip-masq-agent-config-reconciled")
    assert cm.data == {"ip-masq-agent-reconciled": seed("seed000", "ip-masq-agent-reconciled")}
    assert cm.labels == {"app.kubernetes.io/managed-by": "Eno", "component": "ip-masq-agent"}
    assert snap.configmap("azure-ip-masq-agent-config") is None          # the blog's fix is not applied yet
    (ds,) = snap.daemonsets
    assert ds.image == "mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2"
    assert ds.labels == {"app.kubernetes.io/managed-by": "Eno", "component": "azure-ip-masq-agent",
                         "kubernetes.azure.com/managedby": "aks", "tier": "node"}
    assert ds.mounts == (ConfigMount("azure-ip-masq-agent-config-volume", "/etc/config", None, (
        ConfigMapProjection("azure-ip-masq-agent-config", (KeyToPath("ip-masq-agent", "ip-masq-agent", 444),), True),
        ConfigMapProjection("azure-ip-masq-agent-config-reconciled",
                            (KeyToPath("ip-masq-agent-reconciled", "ip-masq-agent-reconciled", 444),), True))),)
    assert "azure-ip-masq-agent-s4wqn" in [p.name for p in snap.pods]
    az = snap.azure
    (pool,) = az.cluster.agent_pools
    (vnet,) = az.vnets
    assert vnet.managed is False and pool.vnet_subnet_id.endswith("/virtualNetworks/vnet-spoke1/subnets/snet-aks-nodes")
    assert vnet.address_prefixes == ("10.40.0.0/15",) and vnet.subnets[0].prefixes == ("10.40.0.0/17",)
    (peering,) = vnet.peerings
    assert (peering.state, peering.sync_level, peering.remote_address_space, peering.remote_vnet_name) == \
        ("Connected", "FullyInSync", ("10.42.0.0/15",), "vnet-hub")
    # the hub is not covered by the effective config: pod traffic to it is masqueraded
    _, _, config = agent_of(snap)
    hub = ipaddress.ip_network("10.42.0.0/15")
    assert not any(hub.subnet_of(ipaddress.ip_network(c.cidr)) for c in config.non_masquerade_cidrs)
    # the agent logged this config before the fix (seed 000)
    log = seed("seed000", "agent-log.txt")
    assert 'using config: {"nonMasqueradeCIDRs":["10.40.0.0/17","10.0.0.0/16","10.40.0.0/15"],"masqLinkLocal":true' in log


def test_aks_pod_subnet():
    snap = snapshot("aks-pod-subnet")
    assert [d.name for d in snap.daemonsets] == ["ip-masq-agent"]        # user-deployed; no azure-ip-masq-agent
    assert snap.configmap("azure-ip-masq-agent-config-reconciled") is None
    cm = snap.configmap("ip-masq-agent-config")
    assert "- 192.168.0.0/16 # Pod subnet" in cm.data["ip-masq-agent"]
    (ds,) = snap.daemonsets
    assert ds.image == "mcr.microsoft.com/aks/ip-masq-agent-v2:v0.1.15" and ds.args == ()
    assert ds.mounts[0].sources == (ConfigMapProjection("ip-masq-agent-config",
                                                        (KeyToPath("ip-masq-agent", "ip-masq-agent", 0o444),), True),)
    (pool,) = snap.azure.cluster.agent_pools
    assert pool.pod_subnet_id.endswith("/subnets/snet-pods") and pool.pod_ip_allocation_mode == "DynamicIndividual"
    (vnet,) = snap.azure.vnets
    pods_subnet = next(s for s in vnet.subnets if s.name == "snet-pods")
    assert pods_subnet.prefixes == ("192.168.0.0/16",)
    assert pods_subnet.delegations == ("Microsoft.ContainerService/managedClusters",)
    for w in snap.workloads:
        if not w.host_network:
            assert ipaddress.ip_address(w.pod_ips[0]) in ipaddress.ip_network("192.168.0.0/16")
    for node, cap in snap.captures.items():
        swift = parse_dump(cap.iptables_save).table("nat").chain("SWIFT-POSTROUTING")
        texts = [t for _, t in swift.lines]
        ip = snap.node(node).internal_ip
        assert texts == [
            (f"-A SWIFT-POSTROUTING -s 192.168.0.0/16 -d 168.63.129.16/32 -p udp -m addrtype ! --dst-type LOCAL "
             f"-m udp --dport 53 -j SNAT --to-source {ip}"),
            (f"-A SWIFT-POSTROUTING -s 192.168.0.0/16 -d 168.63.129.16/32 -p tcp -m addrtype ! --dst-type LOCAL "
             f"-m tcp --dport 53 -j SNAT --to-source {ip}"),
            (f"-A SWIFT-POSTROUTING -s 192.168.0.0/16 -d 169.254.169.254/32 -p tcp -m addrtype ! --dst-type LOCAL "
             f"-m tcp --dport 80 -j SNAT --to-source {ip}")]


@pytest.mark.parametrize("name", NAMES)
def test_examples_are_complete_and_round_trip(name, tmp_path):
    snap = snapshot(name)
    assert snap.missing == {}
    assert snap.azure.subscription and snap.cluster_name == examplegen.example(name).cluster
    assert os.path.exists(os.path.join(EXAMPLES, name, "README.md"))
    write_bundle(read_bundle(os.path.join(EXAMPLES, name)), tmp_path / "again")
    again = build_snapshot(read_bundle(str(tmp_path / "again")))
    assert dataclasses.replace(again, source=snap.source) == snap


@pytest.mark.parametrize("name", NAMES)
def test_examples_match_their_generator(name):
    """The committed documents are what examplegen.py describes (the CA certificate is regenerated each run)."""
    ex = examplegen.example(name)
    raw = read_bundle(os.path.join(EXAMPLES, name))
    assert raw.daemonsets == examplegen.daemonsets(ex)
    assert raw.pods == examplegen.pods(ex)
    assert raw.nodes == examplegen.nodes(ex)
    assert raw.services == examplegen.services(ex)
    assert raw.endpointslices == examplegen.endpointslices(ex)
    assert raw.aks == json.loads(json.dumps(examplegen.aks(ex)))
    assert raw.vnets == {ex.vnet["name"]: ex.vnet}

    def no_ca(cms):
        return [{**c, "data": {}} if c["metadata"]["name"] == "kube-root-ca.crt" else c for c in cms]
    assert no_ca(raw.configmaps) == no_ca(examplegen.configmaps(ex))
    for node in ex.nodes:
        want = examplegen.node_payload(ex, node)
        got = raw.captures[node.name].iptables_save
        for table in ("filter", "nat", "mangle", "security"):
            a = parse_dump(want).table(table)
            b = parse_dump(got).table(table)
            for chain in set(a.chains) | set(b.chains):
                assert sorted(map(key, (t for _, t in a.chain(chain).lines))) == \
                    sorted(map(key, (t for _, t in b.chain(chain).lines))), (table, chain)


@requires_netns
@pytest.mark.parametrize("name", NAMES + examplegen.FLEET_NAMES)
def test_dumps_are_real_iptables_save_output(name):
    """Each committed dump restores into a fresh namespace and saves back to the same rules."""
    for node, cap in snapshot(name).captures.items():
        ns = NetNS("ex")
        try:
            ns.run("iptables-restore", "-w", input=cap.iptables_save)
            again = ns.run("iptables-save").stdout
        finally:
            ns.delete()
        def strip(text: str) -> list[str]:   # headers name the time; chain counters count real packets
            return [re.sub(r" \[\d+:\d+\]$", "", line) for line in text.splitlines() if not line.startswith("#")]
        assert strip(again) == strip(cap.iptables_save), node


@pytest.mark.parametrize("name", examplegen.FLEET_NAMES)
def test_fleet_examples_are_complete_match_their_generator_and_round_trip(name, tmp_path):
    """examples/hub-spoke-fleet/: the same checks as for the single bundles."""
    test_examples_match_their_generator(name)
    test_examples_are_complete_and_round_trip(name, tmp_path)
