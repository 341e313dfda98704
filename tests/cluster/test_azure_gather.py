"""gather_azure against a local ARM over HTTPS, with the real SDK clients and real credentials.

The clients are the installed azure-mgmt-containerservice and azure-mgmt-network; credentials are
the real AzureCliCredential (the ``az`` it runs is a stand-in script that prints a token the
local ARM issued) and the real DefaultAzureCredential → EnvironmentCredential →
ClientSecretCredential (MSAL, talking to the local token endpoint). Nothing is patched.
"""

from __future__ import annotations

import re

import pytest

from azurearm.fixtures import *  # noqa: F401,F403 - fixtures and the estate
from azurearm.fixtures import (MANAGED_NODE_RG, MANAGED_RG, MANAGED_VNET, SPOKE_FQDN, SPOKE_NET_RG, SPOKE_RG,
                               SPOKE_VNET, SUB, WIN_VNET, add_managed_cluster, add_spoke_cluster, raw_for)
from azurearm.server import arm_cluster, arm_pool

from masqctl.cluster.live.azure import gather_azure
from masqctl.cluster.model import MissingKey


def by_name(items, name):
    hits = [i for i in items if i["name"] == name]
    assert len(hits) == 1, (name, items)
    return hits[0]


# --------------------------------------------------------------------------- managed VNet, CLI login


def test_managed_vnet_found_in_node_resource_group_with_cli_login(env):
    add_managed_cluster(env.arm)
    raw = raw_for()
    gather_azure(env.options(resource_group=MANAGED_RG, cluster="akscal"), raw)

    assert raw.missing == {}
    aks = raw.aks
    assert aks["id"].lower().endswith("/managedclusters/akscal")
    assert (aks["name"], aks["resourceGroup"], aks["nodeResourceGroup"]) == ("akscal", MANAGED_RG, MANAGED_NODE_RG)
    assert aks["networkProfile"]["networkPlugin"] == "azure"
    assert aks["networkProfile"]["serviceCidr"] == "10.0.0.0/16"
    assert aks["networkProfile"]["podCidr"] is None
    assert aks["networkProfile"]["dnsServiceIp"] == "10.0.0.10"
    # the Windows pool is skipped: no agent runs there
    assert [p["name"] for p in aks["agentPoolProfiles"]] == ["nodepool1"]
    assert aks["agentPoolProfiles"][0] == {"name": "nodepool1", "osType": "Linux", "mode": "System", "count": 1,
                                           "vnetSubnetId": None, "podSubnetId": None, "podIpAllocationMode": None}
    assert list(raw.vnets) == [MANAGED_VNET]
    vnet = raw.vnets[MANAGED_VNET]
    assert vnet["resourceGroup"] == MANAGED_NODE_RG
    assert vnet["addressSpace"] == {"addressPrefixes": ["10.224.0.0/12"]}
    assert [(s["name"], s["addressPrefix"]) for s in vnet["subnets"]] == [("aks-subnet", "10.224.0.0/16")]
    assert vnet["virtualNetworkPeerings"] == []
    # found by listing the node resource group
    assert env.arm.requests(rf"/resourceGroups/{MANAGED_NODE_RG}/providers/Microsoft.Network/virtualNetworks$")
    # the default subscription came from `az account show`; the token from `az account get-access-token`
    calls = env.az.calls
    assert ["account", "show", "--output", "json"] in calls
    token_calls = [c for c in calls if c[:2] == ["account", "get-access-token"]]
    assert token_calls and token_calls[0][token_calls[0].index("--resource") + 1] == env.arm.url
    assert raw.origin["aks"].startswith("Azure Resource Manager (managedClusters rg-akscal/akscal")


def test_every_request_carries_the_sdk_api_version_and_a_bearer_token(env):
    from azure.mgmt.containerservice import ContainerServiceClient
    from azure.identity import AzureCliCredential

    add_managed_cluster(env.arm)
    gather_azure(env.options(resource_group=MANAGED_RG, cluster="akscal"), raw_for())
    arm_requests = [r for r in env.arm.log if r.path.lower().startswith("/subscriptions")]
    assert arm_requests
    assert all(r.token and re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", r.query.get("api-version", ""))
               for r in arm_requests)
    sdk_version = ContainerServiceClient(AzureCliCredential(), SUB)._config.api_version
    cs = [r for r in arm_requests if "Microsoft.ContainerService" in r.path]
    assert cs and {r.query["api-version"] for r in cs} == {sdk_version}


# --------------------------------------------------------------------------- BYO VNet, service principal


def test_byo_vnet_in_other_resource_group_with_pod_subnet_and_peerings_service_principal(env):
    add_spoke_cluster(env.arm)
    env.use_service_principal()
    raw = raw_for()
    gather_azure(env.options(subscription=SUB, resource_group=SPOKE_RG, cluster="spoke1-aks", azure_auth="default"),
                 raw)

    assert raw.missing == {}
    pools = raw.aks["agentPoolProfiles"]
    assert [p["name"] for p in pools] == ["system", "user1"]          # "win" skipped
    system = by_name(pools, "system")
    assert system["podSubnetId"].endswith(f"/virtualNetworks/{SPOKE_VNET}/subnets/pods")
    assert system["podIpAllocationMode"] == "DynamicIndividual"
    np = raw.aks["networkProfile"]
    assert (np["networkDataplane"], np["networkPolicy"], np["outboundType"]) == ("cilium", "cilium",
                                                                                 "userDefinedRouting")
    assert np["advancedNetworking"] == {"performance": {"accelerationMode": "None"}}

    # one VNet: the union of the pools' subnets (case-insensitive), not the Windows pool's VNet
    assert list(raw.vnets) == [SPOKE_VNET]
    assert not env.arm.requests(WIN_VNET)
    vnet = raw.vnets[SPOKE_VNET]
    assert vnet["resourceGroup"] == SPOKE_NET_RG
    nodes = by_name(vnet["subnets"], "nodes")
    assert nodes["addressPrefix"] is None and nodes["addressPrefixes"] == ["10.40.0.0/17", "10.41.0.0/24"]
    pods = by_name(vnet["subnets"], "pods")
    assert [d["serviceName"] for d in pods["delegations"]] == ["Microsoft.ContainerService/managedClusters"]

    hub = by_name(vnet["virtualNetworkPeerings"], "to-hub")
    assert (hub["peeringState"], hub["peeringSyncLevel"]) == ("Connected", "FullyInSync")
    assert hub["remoteAddressSpace"] == {"addressPrefixes": ["10.100.0.0/16"]}
    assert hub["remoteVirtualNetwork"]["id"].endswith("/virtualNetworks/hub-vnet")
    assert (hub["allowForwardedTraffic"], hub["useRemoteGateways"], hub["allowGatewayTransit"]) == (True, True, False)
    spoke2 = by_name(vnet["virtualNetworkPeerings"], "to-spoke2")
    assert (spoke2["peeringState"], spoke2["peeringSyncLevel"]) == ("Disconnected", "LocalNotInSync")
    assert spoke2["remoteVirtualNetworkAddressSpace"] == {"addressPrefixes": ["10.50.0.0/16", "10.51.0.0/16"]}
    assert (spoke2["peerCompleteVnets"], spoke2["localSubnetNames"], spoke2["remoteSubnetNames"]) == (
        False, ["nodes"], ["apps"])
    # the token came from the local token endpoint (MSAL), not from az
    assert env.arm.requests(r"/adfs/oauth2/token$", method="POST")
    assert not [c for c in env.az.calls if c[:2] == ["account", "get-access-token"]]


def test_vnet_without_embedded_subnets_and_peerings_lists_them(env):
    add_spoke_cluster(env.arm, embed=False)
    raw = raw_for()
    gather_azure(env.options(subscription=SUB, resource_group=SPOKE_RG, cluster="spoke1-aks"), raw)
    assert raw.missing == {}
    vnet = raw.vnets[SPOKE_VNET]
    assert {s["name"] for s in vnet["subnets"]} == {"nodes", "pods"}
    assert {p["name"] for p in vnet["virtualNetworkPeerings"]} == {"to-hub", "to-spoke2"}
    assert env.arm.requests(rf"/virtualNetworks/{SPOKE_VNET}/subnets$")
    assert env.arm.requests(rf"/virtualNetworks/{SPOKE_VNET}/virtualNetworkPeerings$")


# --------------------------------------------------------------------------- discovery


@pytest.mark.parametrize("how", ["server", "user", "name"])
def test_cluster_discovered_from_the_kubeconfig_context(env, how):
    add_managed_cluster(env.arm)
    add_spoke_cluster(env.arm)
    if how == "server":     # a renamed context still matches by its API server
        kc = env.kubeconfig("dev-west", server=f"https://{SPOKE_FQDN}:443", cluster_entry="whatever")
        context = "dev-west"
    elif how == "user":
        kc = env.kubeconfig("mine", server="https://10.9.9.9:443", user=f"clusterUser_{SPOKE_RG}_spoke1-aks")
        context = "mine"
    else:                   # `az aks get-credentials --admin` names the context NAME-admin
        kc = env.kubeconfig("spoke1-aks-admin", server="https://10.9.9.9:443", cluster_entry="other")
        context = "spoke1-aks-admin"
    raw = raw_for(context)
    gather_azure(env.options(kubeconfig=kc), raw)
    assert raw.missing == {}, raw.missing
    assert raw.aks["name"] == "spoke1-aks"
    assert list(raw.vnets) == [SPOKE_VNET]
    assert f"kubeconfig context {context!r}" in raw.origin["aks"]
    # listed across the subscription (both pages: the local ARM pages by 2)
    assert env.arm.requests(r"/providers/Microsoft.ContainerService/managedClusters$")


def test_cluster_name_without_resource_group_is_looked_up(env):
    add_managed_cluster(env.arm)
    add_spoke_cluster(env.arm)
    env.arm.add(arm_cluster(SUB, "rg-third", "third"))
    raw = raw_for()
    gather_azure(env.options(cluster="AKSCAL"), raw)
    assert raw.aks["name"] == "akscal" and raw.missing == {}
    # three clusters, pages of two: the SDK followed nextLink
    assert len(env.arm.requests(r"/providers/Microsoft.ContainerService/managedClusters$")) == 2


def test_ambiguous_discovery_names_the_candidates_and_raises_nothing(env):
    env.arm.add(arm_cluster(SUB, "rg-a", "aks1"))
    env.arm.add(arm_cluster(SUB, "rg-b", "aks1"))
    kc = env.kubeconfig("aks1", server="https://10.1.2.3:443")
    raw = raw_for("aks1")
    gather_azure(env.options(kubeconfig=kc), raw)
    reason = raw.missing[MissingKey.AZURE_CLUSTER]
    assert reason.startswith("ambiguous: the kubeconfig context 'aks1'")
    assert "rg-a/aks1" in reason and "rg-b/aks1" in reason and "pass -g and --cluster" in reason
    assert raw.aks is None and raw.vnets == {}
    assert raw.missing[MissingKey.AZURE] == reason
    # -g settles it
    raw = raw_for("aks1")
    gather_azure(env.options(kubeconfig=kc, resource_group="rg-b"), raw)
    assert raw.aks["resourceGroup"] == "rg-b"


def test_same_cluster_name_in_two_resource_groups_needs_g(env):
    env.arm.add(arm_cluster(SUB, "rg-a", "aks1"))
    env.arm.add(arm_cluster(SUB, "rg-b", "aks1"))
    raw = raw_for()
    gather_azure(env.options(cluster="aks1"), raw)
    assert raw.missing[MissingKey.AZURE_CLUSTER] == (
        "2 AKS clusters are named 'aks1' in subscription " + SUB + " (rg-a/aks1, rg-b/aks1); pass -g to choose")


def test_no_matching_cluster_says_what_was_compared(env):
    add_managed_cluster(env.arm)
    kc = env.kubeconfig("kind-local", server="https://127.0.0.1:6443")
    raw = raw_for("kind-local")
    gather_azure(env.options(kubeconfig=kc), raw)
    reason = raw.missing[MissingKey.AZURE_CLUSTER]
    assert "no AKS cluster in subscription" in reason
    assert "'kind-local'" in reason and "127.0.0.1" in reason and "rg-akscal/akscal" in reason
    assert "pass -g RG --cluster NAME" in reason
    assert raw.missing[MissingKey.AZURE_VNETS].startswith("not read: the cluster is not known")


def test_no_kubeconfig_and_no_cluster_flag(env):
    add_managed_cluster(env.arm)
    raw = raw_for()
    gather_azure(env.options(), raw)
    assert raw.missing[MissingKey.AZURE_CLUSTER].startswith("cannot tell which AKS cluster to read")
    # with -g and a single cluster there, that one is read
    raw = raw_for()
    gather_azure(env.options(resource_group=MANAGED_RG), raw)
    assert raw.aks["name"] == "akscal"
    assert "the only cluster in resource group" in raw.origin["aks"]


def test_subscription_given_by_name(env):
    env.arm.add_subscription(SUB, "Contoso Spoke")
    env.arm.add_subscription("99999999-9999-4999-8999-999999999999", "Contoso Other")
    add_managed_cluster(env.arm)
    env.az.configure(subscription="99999999-9999-4999-8999-999999999999")  # the az default is not used
    raw = raw_for()
    gather_azure(env.options(subscription="contoso spoke", resource_group=MANAGED_RG, cluster="akscal"), raw)
    assert raw.missing == {} and raw.aks["name"] == "akscal"
    raw = raw_for()
    gather_azure(env.options(subscription="Nope", resource_group=MANAGED_RG, cluster="akscal"), raw)
    assert raw.missing[MissingKey.AZURE].startswith("no subscription: none named 'Nope' is visible")
    assert "Contoso Spoke (" + SUB + ")" in raw.missing[MissingKey.AZURE]


def test_cluster_given_as_resource_id(env):
    add_managed_cluster(env.arm)
    env.az.configure(subscription=None)   # the subscription comes from the ID
    rid = f"/subscriptions/{SUB}/resourceGroups/{MANAGED_RG}/providers/Microsoft.ContainerService/managedClusters/akscal"
    raw = raw_for()
    gather_azure(env.options(cluster=rid), raw)
    assert raw.missing == {} and raw.aks["name"] == "akscal"


# --------------------------------------------------------------------------- credentials


def test_no_az_on_path_is_a_missing_reason_not_an_exception(env):
    add_managed_cluster(env.arm)
    env.remove_az()
    raw = raw_for()
    gather_azure(env.options(subscription=SUB, resource_group=MANAGED_RG, cluster="akscal"), raw)
    assert raw.missing[MissingKey.AZURE] == ("no credentials: Azure CLI not found on path: `az login` first, or "
                                             "--azure-auth default")
    assert raw.aks is None and raw.vnets == {}
    assert not [r for r in env.arm.log if r.path.lower().startswith("/subscriptions")]


def test_az_not_logged_in(env):
    add_managed_cluster(env.arm)
    env.az.configure(logged_in=False)
    raw = raw_for()
    gather_azure(env.options(resource_group=MANAGED_RG, cluster="akscal"), raw)
    assert raw.missing[MissingKey.AZURE] == ("no credentials: the Azure CLI is not logged in: `az login` first, "
                                             "or --azure-auth default")
    raw = raw_for()     # with --subscription the credential itself reports it
    gather_azure(env.options(subscription=SUB, resource_group=MANAGED_RG, cluster="akscal"), raw)
    assert raw.missing[MissingKey.AZURE].startswith("no credentials: Please run 'az login'")


def test_no_subscription_anywhere(env):
    env.remove_az()
    raw = raw_for()
    gather_azure(env.options(azure_auth="default", resource_group=MANAGED_RG, cluster="akscal"), raw)
    assert raw.missing[MissingKey.AZURE] == ("no subscription: pass --subscription, or choose a default with "
                                             "`az login` / `az account set` (the Azure CLI (`az`) is not on PATH)")


def test_default_credential_with_nothing_configured(env):
    env.remove_az()
    env.monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    raw = raw_for()
    gather_azure(env.options(azure_auth="default", subscription=SUB, resource_group=MANAGED_RG, cluster="akscal"),
                 raw)
    reason = raw.missing[MissingKey.AZURE]
    assert reason.startswith("no credentials: ") and "EnvironmentCredential" in reason
    assert reason.endswith("DefaultAzureCredential found none: set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
                           "AZURE_CLIENT_SECRET, use a workload or managed identity, or `az login`")


def test_wrong_client_secret_is_a_sign_in_failure(env):
    add_managed_cluster(env.arm)
    env.use_service_principal(secret="wrong")
    env.monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    raw = raw_for()
    gather_azure(env.options(azure_auth="default", subscription=SUB, resource_group=MANAGED_RG, cluster="akscal"),
                 raw)
    reason = raw.missing[MissingKey.AZURE]
    assert "AADSTS7000215" in reason, reason
    assert raw.aks is None


def test_token_arm_refuses_is_401(env):
    add_managed_cluster(env.arm)
    env.az.configure(token="cli.not-issued-by-this-arm")
    raw = raw_for()
    gather_azure(env.options(subscription=SUB, resource_group=MANAGED_RG, cluster="akscal"), raw)
    reason = raw.missing[MissingKey.AZURE]
    assert reason.startswith(f"401 from ARM at {env.arm.url}: the token was refused (InvalidAuthenticationToken")


def test_unreachable_arm(env, pki):
    from azurearm.server import ARM

    with ARM(pki) as gone:
        url = gone.url
    raw = raw_for()
    gather_azure(env.options(arm_endpoint=url, subscription=SUB, resource_group=MANAGED_RG, cluster="akscal"), raw)
    assert raw.missing[MissingKey.AZURE].startswith(f"cannot reach ARM at {url}: ")


# --------------------------------------------------------------------------- authorisation and partial results


def test_403_on_the_vnet_keeps_the_cluster_and_says_which_action_is_missing(env):
    add_spoke_cluster(env.arm)
    scope = f"/subscriptions/{SUB}/resourceGroups/{SPOKE_NET_RG}"
    env.arm.deny("Microsoft.Network/virtualNetworks/read", scope)
    raw = raw_for()
    gather_azure(env.options(subscription=SUB, resource_group=SPOKE_RG, cluster="spoke1-aks"), raw)
    assert raw.aks["name"] == "spoke1-aks"
    assert raw.vnets == {}
    reason = raw.missing[f"{MissingKey.AZURE_VNETS}/{SPOKE_VNET}"]
    assert reason == (f"403 from ARM: the identity lacks Microsoft.Network/virtualNetworks/read on "
                      f"{scope}/providers/Microsoft.Network/virtualNetworks/{SPOKE_VNET} (AuthorizationFailed); "
                      "grant it Reader there (docs/azure.md lists the actions)")
    assert raw.missing[MissingKey.AZURE_VNETS].startswith("none of the cluster's virtual networks could be read")
    assert MissingKey.AZURE not in raw.missing and MissingKey.AZURE_CLUSTER not in raw.missing


def test_403_on_the_managed_vnet_listing(env):
    add_managed_cluster(env.arm)
    env.arm.deny("Microsoft.Network/virtualNetworks/read", f"/subscriptions/{SUB}/resourceGroups/{MANAGED_NODE_RG}")
    raw = raw_for()
    gather_azure(env.options(resource_group=MANAGED_RG, cluster="akscal"), raw)
    assert raw.aks["name"] == "akscal" and raw.vnets == {}
    reason = raw.missing[MissingKey.AZURE_VNETS]
    assert reason.startswith(f"the AKS-managed VNet (node resource group {MANAGED_NODE_RG}) was not read: 403 from "
                             "ARM: the identity lacks Microsoft.Network/virtualNetworks/read")


def test_403_on_peerings_keeps_the_vnet_with_its_subnets(env):
    add_spoke_cluster(env.arm, embed=False)
    env.arm.deny("Microsoft.Network/virtualNetworks/virtualNetworkPeerings/read", f"/subscriptions/{SUB}")
    raw = raw_for()
    gather_azure(env.options(subscription=SUB, resource_group=SPOKE_RG, cluster="spoke1-aks"), raw)
    vnet = raw.vnets[SPOKE_VNET]
    assert {s["name"] for s in vnet["subnets"]} == {"nodes", "pods"}
    assert vnet["virtualNetworkPeerings"] is None
    assert raw.missing[f"{MissingKey.AZURE_VNETS}/{SPOKE_VNET}"].startswith(
        "peerings not read: 403 from ARM: the identity lacks Microsoft.Network/virtualNetworks/"
        "virtualNetworkPeerings/read")


def test_403_on_the_cluster(env):
    add_managed_cluster(env.arm)
    env.arm.deny("Microsoft.ContainerService/managedClusters/read", f"/subscriptions/{SUB}/resourceGroups/{MANAGED_RG}")
    raw = raw_for()
    gather_azure(env.options(resource_group=MANAGED_RG, cluster="akscal"), raw)
    assert raw.missing[MissingKey.AZURE_CLUSTER].startswith(
        "403 from ARM: the identity lacks Microsoft.ContainerService/managedClusters/read on "
        f"/subscriptions/{SUB}/resourceGroups/{MANAGED_RG}/providers/Microsoft.ContainerService/managedClusters/akscal")
    assert raw.aks is None and MissingKey.AZURE in raw.missing


def test_403_listing_the_subscription_suggests_g(env):
    add_managed_cluster(env.arm)
    env.arm.deny("Microsoft.ContainerService/managedClusters/read", f"/subscriptions/{SUB}/providers")
    kc = env.kubeconfig("akscal", server="https://x.example:443")
    raw = raw_for("akscal")
    gather_azure(env.options(kubeconfig=kc), raw)
    reason = raw.missing[MissingKey.AZURE_CLUSTER]
    assert reason.startswith(f"cannot list AKS clusters in subscription {SUB} to find the cluster of the "
                             "kubeconfig context 'akscal'")
    assert reason.endswith("pass -g RG --cluster NAME")
    raw = raw_for("akscal")      # reading the resource group is allowed
    gather_azure(env.options(kubeconfig=kc, resource_group=MANAGED_RG), raw)
    assert raw.aks["name"] == "akscal"


def test_404s_name_what_was_not_found(env):
    add_managed_cluster(env.arm)
    raw = raw_for()
    gather_azure(env.options(resource_group=MANAGED_RG, cluster="nope"), raw)
    assert raw.missing[MissingKey.AZURE_CLUSTER] == (
        f"404 from ARM: AKS cluster nope in resource group {MANAGED_RG} (subscription {SUB}) not found "
        "(ResourceNotFound: The Resource 'Microsoft.ContainerService/managedClusters/nope' under resource group "
        f"'{MANAGED_RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix)")
    raw = raw_for()
    gather_azure(env.options(resource_group="rg-gone", cluster="akscal"), raw)
    assert "ResourceGroupNotFound" in raw.missing[MissingKey.AZURE_CLUSTER]


def test_a_pool_subnet_id_that_is_not_a_subnet(env):
    env.arm.add(arm_cluster(SUB, "rg-x", "odd", pools=[arm_pool("np", vnet_subnet_id="/subscriptions/x/garbage")]))
    raw = raw_for()
    gather_azure(env.options(resource_group="rg-x", cluster="odd"), raw)
    assert raw.aks["name"] == "odd"
    assert raw.missing[MissingKey.AZURE_VNETS] == (
        "agent pool np: vnetSubnetID '/subscriptions/x/garbage' is not a subnet resource ID")


def test_server_error_is_a_reason_too(env):
    add_managed_cluster(env.arm)
    env.arm.fault(r"/virtualNetworks$", 400, "InvalidApiVersionParameter", "The api-version is not supported.")
    raw = raw_for()
    gather_azure(env.options(resource_group=MANAGED_RG, cluster="akscal"), raw)
    assert raw.aks is not None
    assert raw.missing[MissingKey.AZURE_VNETS].endswith(
        "was not read: 400 from ARM reading the virtual networks in node resource group "
        f"{MANAGED_NODE_RG} (InvalidApiVersionParameter: The api-version is not supported.)")
