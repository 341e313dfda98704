"""Cluster documents for apply's tests: an AKS hub-and-spoke spoke (Azure CNI node subnet, peered to
a hub) and a kubenet cluster, as the native documents a bundle or the API server holds."""

from __future__ import annotations

import copy

from kubeapi import objects as o

SUB = "/subscriptions/00000000-0000-0000-0000-000000000000"
SPOKE_VNET_ID = f"{SUB}/resourceGroups/spoke-rg/providers/Microsoft.Network/virtualNetworks/spoke1-vnet"
HUB_VNET_ID = f"{SUB}/resourceGroups/hub-rg/providers/Microsoft.Network/virtualNetworks/hub-vnet"
ONPREM_VNET_ID = f"{SUB}/resourceGroups/old-rg/providers/Microsoft.Network/virtualNetworks/old-vnet"

# As the seed blog shows it (Eno-managed spelling, comments and all).
SPOKE_RECONCILED = ("MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 10.40.0.0/17  # subnet CIDR\n- 10.0.0.0/16\n"
                    "- 10.40.0.0/15  # vnet CIDR\n")
KUBENET_RECONCILED = "nonMasqueradeCIDRs:\n  - 10.244.0.0/16\nmasqLinkLocal: true\n"

NODES = ("aks-nodepool1-00000000", "aks-nodepool1-00000001", "aks-nodepool1-00000002")


def aks(plugin: str) -> dict:
    profile = {"networkPlugin": plugin, "serviceCidr": "10.0.0.0/16", "serviceCidrs": ["10.0.0.0/16"],
               "dnsServiceIp": "10.0.0.10", "outboundType": "loadBalancer"}
    if plugin == "kubenet":
        profile["podCidr"] = "10.244.0.0/16"
        profile["podCidrs"] = ["10.244.0.0/16"]
    return {"id": f"{SUB}/resourceGroups/spoke-rg/providers/Microsoft.ContainerService/managedClusters/spoke1",
            "name": "spoke1", "resourceGroup": "spoke-rg", "location": "westeurope",
            "nodeResourceGroup": "MC_spoke-rg_spoke1_westeurope", "kubernetesVersion": "1.31.2",
            "networkProfile": profile,
            "agentPoolProfiles": [{"name": "nodepool1", "osType": "Linux", "mode": "System", "count": 3,
                                   "vnetSubnetId": f"{SPOKE_VNET_ID}/subnets/aks-subnet"}]}


def spoke_vnet(peer_state: str = "Connected") -> dict:
    return {"id": SPOKE_VNET_ID, "name": "spoke1-vnet", "resourceGroup": "spoke-rg", "location": "westeurope",
            "addressSpace": {"addressPrefixes": ["10.40.0.0/15"]},
            "subnets": [{"name": "aks-subnet", "id": f"{SPOKE_VNET_ID}/subnets/aks-subnet",
                         "addressPrefix": "10.40.0.0/17"}],
            "virtualNetworkPeerings": [
                {"name": "spoke1-to-hub", "peeringState": peer_state, "peeringSyncLevel": "FullyInSync",
                 "remoteVirtualNetwork": {"id": HUB_VNET_ID},
                 "remoteAddressSpace": {"addressPrefixes": ["10.10.0.0/15"]},
                 "remoteVirtualNetworkAddressSpace": {"addressPrefixes": ["10.10.0.0/15"]},
                 "allowForwardedTraffic": True, "useRemoteGateways": False},
                {"name": "spoke1-to-old", "peeringState": "Disconnected", "peeringSyncLevel": "FullyInSync",
                 "remoteVirtualNetwork": {"id": ONPREM_VNET_ID},
                 "remoteAddressSpace": {"addressPrefixes": ["172.20.0.0/16"]}}]}


def kube_objects(plugin: str = "azure", *, user_config: str | None = None, extra_configmaps=(),
                 user_labels: dict | None = None, user_annotations: dict | None = None,
                 user_extra_data: dict | None = None) -> dict[str, list[dict]]:
    """The Kubernetes objects (as the API server stores them) of the spoke cluster."""
    reconciled = SPOKE_RECONCILED if plugin == "azure" else KUBENET_RECONCILED
    nodes, pods = [], []
    for i, name in enumerate(NODES):
        ip = f"10.40.0.{4 + i}" if plugin == "azure" else f"10.224.0.{4 + i}"
        nodes.append(o.node(name, ip=ip, pod_cidr=None if plugin == "azure" else f"10.244.{i}.0/24"))
        pods.append(o.agent_pod(name, ip))
        pods.append(o.pod(f"web-{i}", node=name, ip=f"10.40.0.{30 + i}" if plugin == "azure" else f"10.244.{i}.10",
                          host_ip=ip, owner=("ReplicaSet", "web-1")))
    cms = [o.reconciled_configmap(reconciled), o.configmap("coredns", {"Corefile": ".:53 {}\n"})]
    if user_config is not None:
        cm = o.configmap("azure-ip-masq-agent-config", {"ip-masq-agent": user_config, **(user_extra_data or {})},
                         labels=user_labels)
        if user_annotations:
            cm["metadata"]["annotations"] = dict(user_annotations)
        cms.append(cm)
    cms += [copy.deepcopy(c) for c in extra_configmaps]
    return {"configmaps": cms, "daemonsets": [o.agent_daemonset(desired=len(NODES))], "pods": pods, "nodes": nodes}


def raw_cluster(plugin: str = "azure", *, azure: bool = True, peer_state: str = "Connected", **kw):
    from masqctl.cluster.raw import RawCluster

    objs = kube_objects(plugin, **kw)
    raw = RawCluster(configmaps=objs["configmaps"], daemonsets=objs["daemonsets"], pods=objs["pods"],
                     nodes=objs["nodes"], source="bundle test")
    if azure:
        raw.aks = aks(plugin)
        raw.vnets = {"spoke1-vnet": spoke_vnet(peer_state)}
    else:
        raw.missing["azure"] = "not gathered (--no-azure)"
    return raw


def write_test_bundle(path, plugin: str = "azure", **kw) -> str:
    from masqctl.cluster.bundle import write_bundle

    write_bundle(raw_cluster(plugin, **kw), str(path))
    return str(path)


def load_into(api, plugin: str = "azure", **kw) -> None:
    """Fill a ``KubeAPI`` with the cluster's objects."""
    for objs in kube_objects(plugin, **kw).values():
        for obj in objs:
            api.add(obj)
