"""network_map: what an address or CIDR is (subnets, VNets, peerings, service/pod CIDRs, Azure's fixed
addresses, private vs internet), how CIDRs relate, and whether a reply can come back."""

from __future__ import annotations

from dataclasses import replace

import pytest
from masq_snapshots import SUB, hub_spoke, kubenet

from masqctl.analysis.mode import detect_mode
from masqctl.analysis.network import network_map
from masqctl.cluster.model import AzureFacts, Peering

HUB = f"{SUB}/resourceGroups/hub-rg/providers/Microsoft.Network/virtualNetworks/hub-vnet"


def with_peering(snapshot, **changes):
    vnet = snapshot.azure.vnets[0]
    peering = replace(vnet.peerings[0], **changes)
    azure = AzureFacts(snapshot.azure.subscription, snapshot.azure.cluster, (replace(vnet, peerings=(peering,)),))
    return replace(snapshot, azure=azure)


PLACES = [
    ("10.40.0.12", ["pod", "node-subnet", "vnet"], "pod shop/client-7d9f"),
    ("10.40.0.4", ["node", "node-subnet", "vnet"], "node aks-nodepool1-1-vmss000000"),
    ("10.40.5.5", ["node-subnet", "vnet"], "node subnet aks-subnet (10.40.0.0/17)"),
    ("10.41.0.9", ["vnet", "vnet"], "subnet db-subnet of VNet spoke-vnet (10.41.0.0/24)"),
    ("10.41.200.1", ["vnet"], "BYO VNet spoke-vnet address space (10.40.0.0/15)"),
    ("10.42.7.7", ["peered-vnet"], "peered VNet hub-vnet 10.42.0.0/16 (Connected, FullyInSync)"),
    ("10.0.0.10", ["service-cidr"], "service CIDR (10.0.0.0/16)"),
    ("169.254.169.254", ["imds", "link-local"], "Azure instance metadata service IMDS (169.254.169.254)"),
    ("168.63.129.16", ["wireserver"], "Azure DNS and wireserver (168.63.129.16)"),
    ("169.254.1.1", ["link-local"], "link-local (169.254.0.0/16)"),
    ("127.0.0.1", ["loopback"], "loopback (127.0.0.0/8)"),
    ("192.168.3.3", ["private"], "private address (RFC 1918, 192.168.0.0/16)"),
    ("100.64.1.1", ["private"], "RFC 6598"),
    ("8.8.8.8", ["internet"], "internet address 8.8.8.8"),
    ("fd00::5", ["private"], "IPv6 unique local"),
    ("2a00:1450::1", ["internet"], "internet"),
]


@pytest.mark.parametrize("ip, kinds, label", PLACES, ids=[p[0] for p in PLACES])
def test_places_of_ip(ip, kinds, label):
    places = network_map(hub_spoke()).places_of_ip(ip)
    assert [p.kind for p in places] == kinds
    assert label in places[0].label


def test_kubenet_pod_cidrs_and_managed_vnet_subnet_from_node_labels():
    nm = network_map(kubenet())
    assert [p.kind for p in nm.places_of_ip("10.244.1.9")] == ["pod", "pod-cidr", "pod-cidr"]
    assert [p.kind for p in nm.places_of_ip("10.244.9.9")] == ["pod-cidr"]
    top = nm.places_of_ip("10.224.3.3")[0]
    assert top.kind == "node-subnet" and top.label == "node subnet aks-subnet (10.224.0.0/16)"
    assert nm.places_of_ip("10.230.0.1")[0].label == "AKS-managed VNet aks-vnet-12544801 address space (10.224.0.0/12)"
    # node pod CIDRs inside the cluster pod CIDR are not listed again among the known networks
    assert [p.cidr for p in nm.known() if p.kind == "pod-cidr"] == ["10.244.0.0/16"]


RELATIONS = [
    ("10.40.0.0/17", ["= node subnet aks-subnet", "⊂ BYO VNet spoke-vnet address space"]),
    ("10.40.0.0/15", ["= BYO VNet spoke-vnet address space", "covers 10.40.0.0/17 (node subnet aks-subnet) too",
                      "covers 10.41.0.0/24 (subnet db-subnet of VNet spoke-vnet) too"]),
    ("10.42.0.0/16", ["= peered VNet hub-vnet (Connected)"]),
    ("10.42.8.0/24", ["⊂ peered VNet hub-vnet (Connected)"]),
    ("10.0.0.0/16", ["= service CIDR"]),
    ("10.0.0.0/8", ["covers 10.40.0.0/15 (BYO VNet spoke-vnet address space) too",
                    "covers 10.0.0.0/16 (service CIDR) too", "covers 10.42.0.0/16 (peered VNet hub-vnet (Connected)) too",
                    "covers 10.40.0.0/17 (node subnet aks-subnet) too",
                    "covers 10.41.0.0/24 (subnet db-subnet of VNet spoke-vnet) too"]),
    ("169.254.0.0/16", ["= link-local", "covers 169.254.169.254/32 (IMDS (Azure instance metadata, answers only the "
                        "VM's own address)) too"]),
    ("192.168.0.0/16", []),
]


@pytest.mark.parametrize("cidr, described", RELATIONS, ids=[r[0] for r in RELATIONS])
def test_relations_of_cidr(cidr, described):
    assert [r.describe() for r in network_map(hub_spoke()).relations_of_cidr(cidr)] == described


def test_overlap_relation():
    rels = network_map(hub_spoke()).relations_of_cidr("10.41.0.0/16")
    assert [(r.relation, r.place.kind) for r in rels] == [("⊂", "vnet"), ("⊃", "vnet")]
    # a range that straddles a boundary without containing either side cannot happen with CIDRs:
    # CIDRs are either nested or disjoint, so ∩ appears only for ranges of another family of tools
    assert all(r.relation != "∩" for r in rels)


def test_bad_input_is_named():
    nm = network_map(hub_spoke())
    with pytest.raises(ValueError, match="not a CIDR"):
        nm.relations_of_cidr("10.0.0.0/33")
    with pytest.raises(ValueError, match="not an IP address"):
        nm.places_of_ip("pod-a")


def test_peering_state_sync_and_gateway_transit():
    s = hub_spoke()
    peer = network_map(s).places_of_ip("10.42.0.1")[0]
    assert peer.peering.state == "Connected" and peer.vnet == "spoke-vnet"
    assert any("remote gateway" in n for n in peer.notes)
    assert any("on-premises" in n for n in network_map(s).notes)
    out = with_peering(s, state="Disconnected")
    assert network_map(out).places_of_ip("10.42.0.1")[0].label == "peered VNet hub-vnet 10.42.0.0/16 (Disconnected, FullyInSync)"
    drift = with_peering(s, sync_level="LocalNotInSync", remote_vnet_address_space=("10.42.0.0/16", "10.43.0.0/16"))
    place = network_map(drift).places_of_ip("10.42.0.1")[0]
    assert "LocalNotInSync" in place.label
    assert any("differs from what the peering routes" in n for n in place.notes)
    # 10.43/16 is in the remote VNet but not yet routed over the peering: not a peered place
    assert network_map(drift).places_of_ip("10.43.0.1")[0].kind == "private"


def test_missing_azure_facts_are_named():
    nm = network_map(hub_spoke(with_azure=False))
    assert any("Azure facts" in m and "--no-azure" in m for m in nm.missing)
    assert nm.places_of_ip("10.42.0.1")[0].kind == "private"
    assert "missing" in nm.places_of_ip("10.42.0.1")[0].label


REPLIES = [
    # (snapshot, source seen, destination, answer, words)
    ("hub", "10.40.0.4", "10.42.1.1", True, "node aks-nodepool1-1-vmss000000"),
    ("hub", "10.40.0.12", "10.42.1.1", True, "routes the VNet's space back over the peering"),
    ("hub-disconnected", "10.40.0.12", "10.42.1.1", False, "Disconnected"),
    ("hub-disconnected", "10.40.0.4", "10.42.1.1", False, "Disconnected"),
    ("hub-notsync", "10.40.0.12", "10.42.1.1", True, "LocalNotInSync"),
    ("hub", "10.40.0.12", "8.8.8.8", False, "private address"),
    ("hub", "10.40.0.4", "8.8.8.8", True, "outbound"),
    ("hub", "10.40.0.12", "169.254.169.254", False, "refused"),
    ("hub", "10.40.0.4", "169.254.169.254", True, "VM's own address"),
    ("hub", "10.40.0.12", "168.63.129.16", True, "VNet"),
    ("hub", "10.40.0.12", "10.41.0.9", True, "same VNet"),
    ("hub", "10.40.0.12", "192.168.9.9", None, "on-prem"),
    ("hub", "10.40.0.12", "10.0.0.10", True, "inside the cluster"),
    ("hub", "203.0.113.9", "10.42.1.1", None, "neither a node address nor a known pod"),
    ("kubenet", "10.244.0.17", "10.230.0.5", False, "the reply will not come back"),
    ("kubenet", "10.244.0.17", "192.168.9.9", False, "the reply will not come back"),
    ("kubenet", "10.244.0.17", "10.224.0.9", True, "AKS route table"),
    ("kubenet", "10.244.0.17", "10.244.1.9", True, "inside the cluster"),
    ("kubenet", "10.244.0.17", "168.63.129.16", False, "the reply will not come back"),
    ("kubenet", "10.224.0.4", "10.230.0.5", True, "node"),
    ("kubenet-noazure", "10.244.0.17", "10.230.0.5", False, "the reply will not come back"),
]


def _snapshot(name):
    return {"hub": hub_spoke(), "hub-disconnected": with_peering(hub_spoke(), state="Disconnected"),
            "hub-notsync": with_peering(hub_spoke(), sync_level="LocalNotInSync"), "kubenet": kubenet(),
            "kubenet-noazure": kubenet(with_azure=False)}[name]


@pytest.mark.parametrize("name, src, dst, answer, words", REPLIES, ids=[f"{r[0]}:{r[1]}->{r[2]}" for r in REPLIES])
def test_reply_path(name, src, dst, answer, words):
    s = _snapshot(name)
    ok, why = network_map(s).reply_path(src, dst, detect_mode(s))
    assert ok is answer, why
    assert words in why


def test_reply_unknown_when_the_mode_is_unknown():
    s = hub_spoke(with_azure=False, capture=False)
    mode = detect_mode(s)
    assert mode.name == "unknown"
    ok, why = network_map(s).reply_path("10.40.0.12", "10.42.1.1", mode)
    assert ok is None and "unknown" in why
    assert Peering  # the model class the map exposes on peered places
