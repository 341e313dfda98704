"""Cluster documents for apply's tests: an AKS hub-and-spoke spoke (Azure CNI node subnet, peered to
a hub) and a kubenet cluster, as the native documents a bundle or the API server holds."""

from __future__ import annotations

import copy

from clusterkit import objects
from clusterkit import served as o

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
    kubenet = ("podCidr", "podCidrs") if plugin == "kubenet" else ()
    return objects.aks("spoke1", id=f"{SUB}/resourceGroups/spoke-rg/providers/Microsoft.ContainerService/managedClusters/spoke1",
                       resource_group="spoke-rg", node_resource_group="MC_spoke-rg_spoke1_westeurope", plugin=plugin,
                       pod_cidr="10.244.0.0/16" if kubenet else None,
                       network_keys=("networkPlugin", "serviceCidr", "serviceCidrs", "dnsServiceIp", "outboundType",
                                     *kubenet),
                       pools=[objects.agent_pool(vnet_subnet_id=f"{SPOKE_VNET_ID}/subnets/aks-subnet",
                                                 keys=("name", "osType", "mode", "count", "vnetSubnetId"))])


def spoke_vnet(peer_state: str = "Connected") -> dict:
    hub = objects.peering("spoke1-to-hub", HUB_VNET_ID, ["10.10.0.0/15"], state=peer_state, forwarded=True,
                          keys=objects.PEERING_KEYS[:7] + ("useRemoteGateways",))
    old = objects.peering("spoke1-to-old", ONPREM_VNET_ID, ["172.20.0.0/16"], state="Disconnected",
                          keys=objects.PEERING_KEYS[:5])
    return objects.vnet("spoke1-vnet", SPOKE_VNET_ID, resource_group="spoke-rg", location="westeurope",
                        prefixes=["10.40.0.0/15"], subnets=[objects.subnet(SPOKE_VNET_ID, "aks-subnet", "10.40.0.0/17")],
                        peerings=[hub, old], keys=("id", "name", "resourceGroup", "location", "addressSpace", "subnets",
                                                   "virtualNetworkPeerings"))


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
