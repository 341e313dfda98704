"""The pure parts of Azure gathering: options, resource IDs, file stems, serialisation, discovery."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace as NS

import pytest

from azurearm.server import arm_cluster, arm_peering, arm_pool, arm_subnet, arm_vnet, subnet_id

from masqctl.cluster.armid import parse_resource_id, subnet_parts, vnet_stems
from masqctl.cluster.live.azure import check_azure_options
from masqctl.cluster.live.azure_discovery import Candidate, KubeHints, kube_hints, match_cluster
from masqctl.cluster.live.azure_json import enum_text, serialise_cluster, serialise_vnet
from masqctl.cluster.options import GatherOptions
from masqctl.errors import UsageError

SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
CID = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1"


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("kw, code, text", [
    ({"cluster": "/subscriptions/x/resourceGroups/rg"}, "E620", "not a managed cluster resource ID"),
    ({"cluster": f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/v"}, "E620",
     "not a managed cluster resource ID"),
    ({"cluster": CID, "resource_group": "rg2"}, "E620", "names resource group 'rg1', but -g says 'rg2'"),
    ({"cluster": CID, "subscription": "11111111-2222-3333-4444-555555555555"}, "E620", "names subscription"),
    ({"arm_endpoint": "http://127.0.0.1:8443"}, "E621", "https://"),
    ({"arm_endpoint": "management.azure.com"}, "E621", "https://"),
    ({"azure": False, "cluster": "aks1", "resource_group": "rg"}, "E622",
     "--resource-group and --cluster cannot be used with --no-azure"),
    ({"subscription": " "}, "E623", "must not be empty"),
    ({"cluster": ""}, "E623", "must not be empty"),
    ({"cluster": "bad name!"}, "E624", "not an AKS cluster name"),
    ({"cluster": "a" * 64}, "E624", "not an AKS cluster name"),
    ({"cluster": ".."}, "E624", "not an AKS cluster name"),
    ({"resource_group": "rg/../../x"}, "E624", "not a resource group name"),
    ({"resource_group": "rg."}, "E624", "not a resource group name"),
    ({"resource_group": "rg with space"}, "E624", "not a resource group name"),
])
def test_contradictory_options_are_usage_errors(kw, code, text):
    with pytest.raises(UsageError) as e:
        check_azure_options(GatherOptions(**kw))
    assert e.value.code == code and text in e.value.one_line() and e.value.exit_code == 2


@pytest.mark.parametrize("kw", [
    {}, {"cluster": "aks1"}, {"resource_group": "rg1"}, {"resource_group": "MC_rg(1).é_x_westeurope"},
    {"cluster": "a"}, {"cluster": "spoke_1-aks"}, {"cluster": CID, "resource_group": "RG1"},
    {"cluster": CID, "subscription": SUB.upper()}, {"cluster": CID, "subscription": "Contoso"},
    {"arm_endpoint": "https://management.chinacloudapi.cn/"}, {"azure": False},
])
def test_consistent_options_pass(kw):
    check_azure_options(GatherOptions(**kw))


def test_scopes_follow_the_cloud():
    from masqctl.cluster.live.azure import _scopes_for

    assert _scopes_for("https://management.azure.com") == ["https://management.azure.com/.default"]
    assert _scopes_for("https://management.usgovcloudapi.net/") == ["https://management.core.usgovcloudapi.net/.default"]
    assert _scopes_for("https://arm.contoso.test:8443/") == ["https://arm.contoso.test:8443/.default"]


def test_importing_the_gatherer_does_not_import_azure():
    code = ("import sys, masqctl.cluster.live.azure, masqctl.cluster.armid, masqctl.cluster.live.azure_json, masqctl.cluster.live.azure_discovery;"
            "print([m for m in sys.modules if m == 'azure' or m.startswith('azure.')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- resource IDs and stems


def test_resource_ids():
    sid = subnet_id(SUB, "rg-net", "vnet1", "nodes")
    rid = subnet_parts(sid)
    assert (rid.subscription, rid.resource_group, rid.parent().name, rid.name) == (SUB, "rg-net", "vnet1", "nodes")
    assert subnet_parts(sid.lower().replace("resourcegroups", "RESOURCEGROUPS")).name == "nodes"
    assert rid.parent().text == f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet1"
    for bad in (None, "", "nodes", "/subscriptions/x", sid + "/extra", sid.replace("subnets", "ipConfigurations"),
                "/subscriptions//resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"):
        assert subnet_parts(bad) is None, bad
    assert parse_resource_id(CID).is_type("microsoft.containerservice", "MANAGEDCLUSTERS")


def test_vnet_stems_are_names_unless_they_collide():
    a = f"/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.Network/virtualNetworks/vnet"
    b = f"/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.Network/virtualNetworks/vnet"
    c = "/subscriptions/other/resourceGroups/rg-a/providers/Microsoft.Network/virtualNetworks/vnet"
    d = f"/subscriptions/{SUB}/resourceGroups/rg(weird)/providers/Microsoft.Network/virtualNetworks/hub"
    stems = vnet_stems([a, b, c, d])
    assert stems[d.lower()] == "hub"
    assert stems[b.lower()] == "rg-b.vnet"
    assert stems[a.lower()] == f"{SUB}.rg-a.vnet" and stems[c.lower()] == "other.rg-a.vnet"
    assert vnet_stems(["/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/a b"]) == {
        "/subscriptions/s/resourcegroups/r/providers/microsoft.network/virtualnetworks/a b": "a_b"}


# --------------------------------------------------------------------------- serialisation across model styles


def _msrest_style_cluster() -> NS:
    """The attribute surface of a 40.x msrest ManagedCluster: plain strings, flattened attributes."""
    np = NS(network_plugin="azure", network_plugin_mode="overlay", network_dataplane="cilium",
            network_policy="cilium", network_mode=None, pod_cidr="10.244.0.0/16", pod_cidrs=["10.244.0.0/16"],
            service_cidr="10.0.0.0/16", service_cidrs=["10.0.0.0/16"], dns_service_ip="10.0.0.10",
            ip_families=["IPv4"], outbound_type="loadBalancer",
            advanced_networking=NS(performance=NS(acceleration_mode="BpfVeth")))
    pools = [NS(name="sys", os_type="Linux", mode="System", count=3,
                vnet_subnet_id=subnet_id(SUB, "rg-net", "v", "nodes"), pod_subnet_id=None, pod_ip_allocation_mode=None),
             NS(name="win", os_type="Windows", mode="User", count=1, vnet_subnet_id=None, pod_subnet_id=None,
                pod_ip_allocation_mode=None)]
    return NS(id=CID.replace("resourceGroups", "resourcegroups"), name="aks1",
              type="Microsoft.ContainerService/ManagedClusters", location="westeurope", node_resource_group="MC_x",
              kubernetes_version="1.31", current_kubernetes_version="1.31.2", network_profile=np,
              agent_pool_profiles=pools)


def test_cluster_serialisation_is_the_same_from_hybrid_and_attribute_only_models():
    from azure.mgmt.containerservice.models import ManagedCluster

    arm = arm_cluster(SUB, "rg1", "aks1", location="westeurope", node_resource_group="MC_x", network_profile={
        "networkPlugin": "azure", "networkPluginMode": "overlay", "networkDataplane": "cilium",
        "networkPolicy": "cilium", "podCidr": "10.244.0.0/16", "podCidrs": ["10.244.0.0/16"],
        "serviceCidr": "10.0.0.0/16", "serviceCidrs": ["10.0.0.0/16"], "dnsServiceIP": "10.0.0.10",
        "ipFamilies": ["IPv4"], "outboundType": "loadBalancer",
        "advancedNetworking": {"enabled": True, "performance": {"accelerationMode": "BpfVeth"}}},
        pools=[arm_pool("sys", mode="System", vnet_subnet_id=subnet_id(SUB, "rg-net", "v", "nodes")),
               arm_pool("win", os_type="Windows", count=1)])
    arm["properties"]["currentKubernetesVersion"] = "1.31.2"
    hybrid = ManagedCluster(arm)
    assert type(hybrid.network_profile.network_plugin_mode) is not str   # an SDK enum member, not a plain str
    got = serialise_cluster(hybrid)
    assert got == serialise_cluster(_msrest_style_cluster())
    assert json.loads(json.dumps(got)) == got
    assert got["networkProfile"]["advancedNetworking"] == {"performance": {"accelerationMode": "BpfVeth"}}
    assert got["networkProfile"]["ipFamilies"] == ["IPv4"]
    assert [p["name"] for p in got["agentPoolProfiles"]] == ["sys"]
    assert got["resourceGroup"] == "rg1"


def test_vnet_serialisation_from_hybrid_models():
    from azure.mgmt.network.models import VirtualNetwork

    arm = arm_vnet(SUB, "rg-net", "v", ["10.40.0.0/15", "fd00::/48"],
                   subnets=[arm_subnet("multi", prefixes=["10.40.0.0/17", "10.41.0.0/24"]),
                            arm_subnet("pods", "10.40.128.0/17", delegations=["Microsoft.ContainerService/managedClusters"])],
                   peerings=[arm_peering("p", "/subscriptions/x/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/h",
                                         state="Initiated", sync="RemoteNotInSync", remote_prefixes=["10.9.0.0/16"])])
    arm.pop("_embed")
    v = VirtualNetwork(arm)
    got = serialise_vnet(v, v.subnets, v.virtual_network_peerings)
    assert got["addressSpace"] == {"addressPrefixes": ["10.40.0.0/15", "fd00::/48"]}
    assert got["resourceGroup"] == "rg-net" and got["type"] == "Microsoft.Network/virtualNetworks"
    multi, pods = got["subnets"]
    assert (multi["addressPrefix"], multi["addressPrefixes"]) == (None, ["10.40.0.0/17", "10.41.0.0/24"])
    assert pods["delegations"][0]["serviceName"] == "Microsoft.ContainerService/managedClusters"
    (p,) = got["virtualNetworkPeerings"]
    assert (p["peeringState"], p["peeringSyncLevel"]) == ("Initiated", "RemoteNotInSync")
    assert p["remoteAddressSpace"] == {"addressPrefixes": ["10.9.0.0/16"]}
    assert p["peerCompleteVnets"] is None and p["localSubnetNames"] is None
    assert serialise_vnet(v, None, None)["subnets"] is None


def test_enum_text_keeps_what_arm_sent():
    from azure.mgmt.network.models import VirtualNetworkPeeringState

    assert enum_text(VirtualNetworkPeeringState.CONNECTED) == "Connected"
    assert enum_text("connected") == "connected"      # an odd-cased value the SDK does not know stays as sent
    assert enum_text(None) is None


# --------------------------------------------------------------------------- kubeconfig and matching


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return str(path)


def test_kube_hints_merge_files_first_wins(tmp_path):
    a = _write(tmp_path / "a", {"current-context": "c1", "contexts": [
        {"name": "c1", "context": {"cluster": "k1", "user": "clusterUser_rg_aks1"}}], "clusters": [
        {"name": "k1", "cluster": {"server": "https://aks1-dns.hcp.westeurope.azmk8s.io:443"}}]})
    b = _write(tmp_path / "b", {"current-context": "c2", "contexts": [
        {"name": "c2", "context": {"cluster": "k2", "user": "u"}}], "clusters": [
        {"name": "k1", "cluster": {"server": "https://shadowed:443"}}, {"name": "k2", "cluster": {"server": "https://k2"}}]})
    import os
    h = kube_hints(os.pathsep.join([a, b]), None)
    assert (h.context, h.cluster_entry, h.user_entry, h.server_host) == (
        "c1", "k1", "clusterUser_rg_aks1", "aks1-dns.hcp.westeurope.azmk8s.io")
    assert kube_hints(os.pathsep.join([a, b]), "c2").server_host == "k2"
    assert kube_hints(a, "c1", server="https://other.example").server_host == "other.example"
    missing = kube_hints(a, "nope")
    assert missing.problem == "context 'nope' is not in the kubeconfig" and missing.server is None


@pytest.mark.parametrize("content", ["{not yaml", "[1, 2]", ""])
def test_kube_hints_never_raise(tmp_path, content):
    p = tmp_path / "kc"
    p.write_text(content)
    h = kube_hints(str(p), "ctx")
    assert h.context == "ctx" and h.server is None
    assert kube_hints(str(tmp_path / "absent"), None).problem.endswith("absent: not found")
    assert kube_hints(None, None, default_path=str(tmp_path / "absent")).problem is None


def test_matching_prefers_server_then_user_then_name():
    a = Candidate("/a", "aks1", "rg-a", ("aks1-a.hcp.x.azmk8s.io",))
    b = Candidate("/b", "aks1", "rg-b", ("aks1-b.hcp.x.azmk8s.io", "aks1-b.privatelink.x.azmk8s.io"))
    c = Candidate("/c", "other", "rg-c", ())
    assert match_cluster([a, b, c], KubeHints(context="aks1")).ambiguous == (a, b)
    m = match_cluster([a, b, c], KubeHints(context="aks1", server="https://AKS1-B.privatelink.x.azmk8s.io:443"))
    assert (m.chosen, m.basis) == (b, "server")
    m = match_cluster([a, b, c], KubeHints(context="aks1", user_entry="clusterAdmin_rg-a_aks1"))
    assert (m.chosen, m.basis) == (a, "user")
    assert match_cluster([a, b, c], KubeHints(context="other-admin")).chosen == c
    assert match_cluster([a, b, c], KubeHints(context="x", cluster_entry="other")).chosen == c
    assert match_cluster([a, b, c], KubeHints(context="nothing")).chosen is None
