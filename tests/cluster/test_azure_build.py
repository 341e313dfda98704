"""What gather_azure writes is what build_snapshot reads: live ARM → az-shaped JSON → AzureFacts."""

from __future__ import annotations

import json

from azurearm.fixtures import *  # noqa: F401,F403
from azurearm.fixtures import (MANAGED_NODE_RG, MANAGED_RG, MANAGED_VNET, SPOKE_NET_RG, SPOKE_RG, SPOKE_VNET, SUB,
                               NET_SUB, HUB_RG, add_managed_cluster, add_spoke_cluster, raw_for)

from masqctl.cluster.live.azure import gather_azure
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.model import AgentPool, MissingKey, NetworkProfile, Peering, Subnet

VNET_NS = "providers/Microsoft.Network/virtualNetworks"


def test_spoke_cluster_builds_into_the_expected_azure_facts(env):
    add_spoke_cluster(env.arm)
    raw = raw_for()
    gather_azure(env.options(subscription=SUB, resource_group=SPOKE_RG, cluster="spoke1-aks"), raw)
    # what a bundle stores must survive JSON (vnets/<stem>.json, aks.json)
    raw.aks = json.loads(json.dumps(raw.aks))
    raw.vnets = json.loads(json.dumps(raw.vnets))
    facts = build_snapshot(raw).azure

    assert facts.subscription == SUB
    mc = facts.cluster
    assert (mc.name, mc.resource_group, mc.location, mc.kubernetes_version) == (
        "spoke1-aks", SPOKE_RG, "westeurope", "1.31.2")
    assert mc.network_profile == NetworkProfile(
        network_plugin="azure", network_dataplane="cilium", network_policy="cilium",
        service_cidrs=("10.0.0.0/16",), dns_service_ip="10.0.0.10", ip_families=("IPv4",),
        outbound_type="userDefinedRouting", acceleration_mode="None")
    nodes_id = f"/subscriptions/{SUB}/resourceGroups/{SPOKE_NET_RG}/{VNET_NS}/{SPOKE_VNET}/subnets/nodes"
    pods_id = f"/subscriptions/{SUB}/resourceGroups/{SPOKE_NET_RG}/{VNET_NS}/{SPOKE_VNET}/subnets/pods"
    assert mc.agent_pools[0] == AgentPool(name="system", os_type="Linux", mode="System", count=3,
                                          vnet_subnet_id=nodes_id, pod_subnet_id=pods_id,
                                          pod_ip_allocation_mode="DynamicIndividual")
    assert [p.name for p in mc.agent_pools] == ["system", "user1"]

    (vnet,) = facts.vnets
    assert (vnet.name, vnet.resource_group, vnet.managed) == (SPOKE_VNET, SPOKE_NET_RG, False)
    assert vnet.address_prefixes == ("10.40.0.0/15",)
    assert vnet.subnets == (
        Subnet(name="nodes", id=nodes_id, prefixes=("10.40.0.0/17", "10.41.0.0/24")),
        Subnet(name="pods", id=pods_id, prefixes=("10.40.128.0/17",),
               delegations=("Microsoft.ContainerService/managedClusters",)))
    hub, spoke2 = vnet.peerings
    assert hub == Peering(
        name="to-hub", remote_vnet_id=f"/subscriptions/{NET_SUB}/resourceGroups/{HUB_RG}/{VNET_NS}/hub-vnet",
        state="Connected", sync_level="FullyInSync", remote_address_space=("10.100.0.0/16",),
        remote_vnet_address_space=("10.100.0.0/16",), allow_forwarded_traffic=True, allow_gateway_transit=False,
        use_remote_gateways=True)
    assert (spoke2.state, spoke2.sync_level, spoke2.remote_vnet_address_space, spoke2.peer_complete_vnets,
            spoke2.local_subnet_names, spoke2.remote_subnet_names) == (
        "Disconnected", "LocalNotInSync", ("10.50.0.0/16", "10.51.0.0/16"), False, ("nodes",), ("apps",))


def test_managed_vnet_builds_as_managed(env):
    add_managed_cluster(env.arm)
    raw = raw_for()
    gather_azure(env.options(resource_group=MANAGED_RG, cluster="akscal"), raw)
    snap = build_snapshot(raw)
    (vnet,) = snap.azure.vnets
    assert (vnet.name, vnet.resource_group, vnet.managed) == (MANAGED_VNET, MANAGED_NODE_RG, True)
    assert vnet.subnets[0].prefixes == ("10.224.0.0/16",)
    assert snap.azure.cluster.network_profile.pod_cidrs == ()
    assert snap.azure.cluster.network_profile.service_cidrs == ("10.0.0.0/16",)
    assert not any(k.startswith("azure") for k in snap.missing)


def test_partial_result_keeps_its_reasons_through_build(env):
    add_spoke_cluster(env.arm)
    env.arm.deny("Microsoft.Network/virtualNetworks/read", f"/subscriptions/{SUB}/resourceGroups/{SPOKE_NET_RG}")
    raw = raw_for()
    gather_azure(env.options(subscription=SUB, resource_group=SPOKE_RG, cluster="spoke1-aks"), raw)
    snap = build_snapshot(raw)
    assert snap.azure.cluster.name == "spoke1-aks" and snap.azure.vnets == ()
    assert snap.missing[f"{MissingKey.AZURE_VNETS}/{SPOKE_VNET}"].startswith("403 from ARM")
    assert snap.missing[MissingKey.AZURE_VNETS].startswith("none of the cluster's virtual networks could be read")
    assert MissingKey.AZURE not in snap.missing


def test_no_credentials_builds_with_the_reason(env):
    env.remove_az()
    raw = raw_for()
    gather_azure(env.options(subscription=SUB, resource_group=MANAGED_RG, cluster="akscal"), raw)
    snap = build_snapshot(raw)
    assert snap.azure is None
    assert snap.missing[MissingKey.AZURE].startswith("no credentials: Azure CLI not found on path")
