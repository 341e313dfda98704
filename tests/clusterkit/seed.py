"""The explain tests' clusters from the seed blog, as bundle folders of ``minimal`` documents
(`kubectl get … -o yaml`, `az aks show`, `az network vnet show`, `iptables-save`, `ip -o addr`).

* ``spoke``: the hub-and-spoke spoke cluster — Azure CNI node subnet, BYO VNet spoke-vnet
  10.40.0.0/15 (node subnet aks-subnet 10.40.0.0/17), peered to hub-vnet 10.42.0.0/16 (peering
  state configurable), service CIDR 10.0.0.0/16, reconciled ConfigMap in PascalCase; optionally the
  user ConfigMap. Node 0 is captured; node 1 is not.
* ``kubenet``: the seed's akskube — kubenet, AKS-managed VNet 10.224.0.0/12, pod CIDR 10.244.0.0/16.
"""

from __future__ import annotations

from clusterkit import objects as o
from clusterkit.bundle import Bundle, list_yaml, write_files

SUB = "00000000-0000-0000-0000-000000000000"
SPOKE_NODES = ("aks-nodepool1-31337-vmss000000", "aks-nodepool1-31337-vmss000001")
KUBENET_NODES = ("aks-nodepool1-10522532-vmss000000", "aks-nodepool1-10522532-vmss000001")
RECONCILED_SPOKE = ("MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 10.40.0.0/17  # subnet CIDR\n- 10.0.0.0/16\n"
                    "- 10.40.0.0/15  # vnet CIDR\n")

__all__ = ["KUBENET_NODES", "RECONCILED_SPOKE", "SPOKE_NODES", "SUB", "configmap", "daemonset", "kubenet",
           "list_yaml", "nat_table", "node", "pod", "spoke", "write_files"]


def nat_table(cidrs: list[str]) -> str:
    """A node's nat table as iptables-save prints it: kube-proxy's hooks, the agent's jump and chain."""
    return o.iptables_save(cidrs, kube_proxy="services", saved=("v1.8.7", "Fri Sep 19 20:08:06 2025"),
                           completed=False)


def daemonset() -> dict:
    """AKS's agent DaemonSet, two pods ready."""
    return o.daemonset(desired=2, layout="minimal")


def configmap(name: str, key: str, text: str) -> dict:
    """A kube-system ConfigMap holding ``text`` under ``key``."""
    return o.configmap(name, {key: text})


def pod(ns: str, name: str, node: str, ip: str, host: bool = False, labels: dict | None = None) -> dict:
    """A running pod (``host``: on the host network, hostIP = its IP)."""
    return o.pod(name, node=node, namespace=ns, ip=ip, host_ip=ip if host else None, host_network=host,
                 container="c", image="busybox", labels=labels, layout="minimal")


def node(name: str, ip: str, labels: dict, pod_cidr: str | None = None, os_name: str = "linux") -> dict:
    """A ready node with ``labels`` after ``kubernetes.io/os``."""
    return o.node(name, ip, pod_cidr, os=os_name, labels=labels)


def _user_cidrs(user: str) -> list[str]:
    return [line.strip()[2:].split()[0] for line in user.splitlines() if line.strip().startswith("- ")]


def _cluster_json(indent: int | None) -> Bundle:
    return Bundle(list_metadata=False, json_indent=indent)


def spoke(root, *, user: str | None = None, peering_state: str = "Connected", node_cidrs: list[str] | None = None,
          capture_second: bool = False) -> str:
    """Write the spoke bundle to ``root``; ``user`` is the user ConfigMap's ip-masq-agent text.
    ``node_cidrs`` are the RETURN CIDRs of the captured node's chain (default: what the config says)."""
    rg = "spoke-rg"
    vnet_id = o.vnet_id(SUB, rg, "spoke-vnet")
    b = _cluster_json(1)
    b.configmaps = [configmap("azure-ip-masq-agent-config-reconciled", "ip-masq-agent-reconciled", RECONCILED_SPOKE)]
    effective = ["10.40.0.0/17", "10.0.0.0/16", "10.40.0.0/15"]
    if user is not None:
        b.configmaps.append(configmap("azure-ip-masq-agent-config", "ip-masq-agent", user))
        effective += _user_cidrs(user)
    labels = {"kubernetes.azure.com/agentpool": "nodepool1", "agentpool": "nodepool1"}
    n0, n1 = SPOKE_NODES
    agent = {"k8s-app": "azure-ip-masq-agent", "tier": "node"}
    b.daemonsets = [daemonset()]
    b.nodes = [node(n0, "10.40.0.4", labels), node(n1, "10.40.0.35", labels)]
    b.pods = [pod("shop", "client-7d9f", n0, "10.40.0.12"), pod("shop", "cart-5c6b", n1, "10.40.0.40"),
              pod("kube-system", "azure-ip-masq-agent-x1", n0, "10.40.0.4", host=True, labels=agent),
              pod("kube-system", "azure-ip-masq-agent-x2", n1, "10.40.0.35", host=True, labels=agent)]
    b.aks = o.aks("spoke1", id=f"/subscriptions/{SUB}/resourcegroups/{rg}/providers/Microsoft.ContainerService/"
                  "managedClusters/spoke1", resource_group=rg, node_resource_group="MC_spoke-rg_spoke1",
                  keys=("id", "name", "resourceGroup", "location", "nodeResourceGroup", "networkProfile",
                        "agentPoolProfiles"),
                  network_keys=[k for k in o.NETWORK_KEYS if k != "ipFamilies"],
                  pools=[o.agent_pool(count=2, vnet_subnet_id=f"{vnet_id}/subnets/aks-subnet",
                                      keys=("name", "osType", "mode", "count", "vnetSubnetId", "podSubnetId"))])
    hub = o.peering("spoke-to-hub", o.vnet_id(SUB, "hub-rg", "hub-vnet"), ["10.42.0.0/16"], state=peering_state,
                    forwarded=True, remote_gateways=True,
                    keys=("name", "peeringState", "peeringSyncLevel", "remoteVirtualNetwork", "allowForwardedTraffic",
                          "useRemoteGateways", "remoteAddressSpace", "remoteVirtualNetworkAddressSpace"))
    b.vnets = {"spoke-vnet": o.vnet("spoke-vnet", vnet_id, resource_group=rg, prefixes=["10.40.0.0/15"],
                                    subnets=[o.subnet(vnet_id, "aks-subnet", "10.40.0.0/17", id_first=True),
                                             o.subnet(vnet_id, "db-subnet", "10.41.0.0/24", id_first=True)],
                                    peerings=[hub], keys=_VNET_KEYS)}
    b.captures = {n0: {"iptables-save.txt": nat_table(node_cidrs if node_cidrs is not None else effective),
                       "ip-addr.txt": o.ip_addr("10.40.0.4", 17)}}
    if capture_second:
        b.captures[n1] = {"iptables-save.txt": nat_table(effective)}
    return b.write(str(root))


_VNET_KEYS = ("id", "name", "resourceGroup", "addressSpace", "subnets", "virtualNetworkPeerings")


def kubenet(root, *, user: str | None = None, overlay: bool = False) -> str:
    """The seed's akskube (or, with ``overlay``, the same cluster as Azure CNI overlay)."""
    rg = "MC_rg_akskube_swedencentral"
    vnet_id = o.vnet_id(SUB, rg, "aks-vnet-12544801")
    labels = {"kubernetes.azure.com/agentpool": "nodepool1", "kubernetes.azure.com/network-subnet": "aks-subnet",
              "kubernetes.azure.com/network-name": "aks-vnet-12544801"}
    if overlay:
        labels.update({"kubernetes.azure.com/azure-cni-overlay": "true",
                       "kubernetes.azure.com/podnetwork-type": "overlay"})
    b = _cluster_json(None)
    b.configmaps = [configmap("azure-ip-masq-agent-config-reconciled", "ip-masq-agent-reconciled",
                              o.reconciled_text(["10.244.0.0/16"]))]
    effective = ["10.244.0.0/16"]
    if user is not None:
        b.configmaps.append(configmap("azure-ip-masq-agent-config", "ip-masq-agent", user))
        effective += _user_cidrs(user)
    n0, n1 = KUBENET_NODES
    cbr0 = "" if overlay else o.addr_line(3, "cbr0", "10.244.0.1/24", brd="10.244.0.255", valid="forever")
    b.daemonsets = [daemonset()]
    b.nodes = [node(n0, "10.224.0.4", labels, "10.244.0.0/24"), node(n1, "10.224.0.5", labels, "10.244.1.0/24")]
    b.pods = [pod("default", "web-0", n0, "10.244.0.17"), pod("default", "web-1", n1, "10.244.1.9")]
    b.aks = o.aks("akskube", resource_group="rg", node_resource_group=rg, plugin="azure" if overlay else "kubenet",
                  plugin_mode="overlay" if overlay else None, pod_cidr="10.244.0.0/16",
                  keys=("name", "resourceGroup", "nodeResourceGroup", "networkProfile", "agentPoolProfiles"),
                  network_keys=("networkPlugin", "networkPluginMode", "podCidr", "podCidrs", "serviceCidr",
                                "serviceCidrs"),
                  pools=[o.agent_pool(count=2, keys=("name", "osType", "count", "vnetSubnetId"))])
    b.vnets = {"aks-vnet-12544801": o.vnet("aks-vnet-12544801", vnet_id, resource_group=rg,
                                           prefixes=["10.224.0.0/12"],
                                           subnets=[o.subnet(vnet_id, "aks-subnet", "10.224.0.0/16", id_first=True)],
                                           keys=_VNET_KEYS)}
    b.captures = {n0: {"iptables-save.txt": nat_table(effective), "ip-addr.txt": o.ip_addr("10.224.0.4", 16, cbr0)}}
    return b.write(str(root))
