"""Test fleets: Azure CNI node-subnet clusters in their own BYO VNets, peered as a test needs, with
Services and EndpointSlices (``clusterkit.objects``), written as one bundle folder per cluster.

``cluster(name, prefix)`` builds one (VNet ``vnet-<name>`` = ``prefix`` /16, node subnet the first
/24, two nodes, the reconciled ConfigMap of AKS for that VNet, captures equal to what the agent
writes for the effective list); ``peer(a, b)`` adds a peering from a's VNet to b's;
``ingress(b, policy)`` adds an internal LoadBalancer Service with its endpoints; ``write(tmp,
*bundles)`` writes each to ``tmp/<name>`` and returns the folders.
"""

from __future__ import annotations

import ipaddress
import os

from clusterkit import bundle
from clusterkit import objects as o

SUB = "5b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"


class Cluster(bundle.Bundle):
    name: str
    prefix: str

    @property
    def vnet_name(self) -> str:
        return f"vnet-{self.name}"

    @property
    def vnet_id(self) -> str:
        return o.vnet_id(SUB, f"rg-{self.name}-network", self.vnet_name)

    @property
    def vnet(self) -> dict:
        return self.vnets[self.vnet_name]

    def host(self, n: int) -> str:
        return str(ipaddress.ip_network(self.prefix).network_address + n)


def _cidrs(prefix: str) -> list[str]:
    net = ipaddress.ip_network(prefix)
    return [str(next(net.subnets(new_prefix=24))), "10.0.0.0/16", prefix]


def cluster(name: str, prefix: str, *, user_cidrs: list[str] | None = None, services: bool = True,
            plugin: str = "azure", plugin_mode: str | None = None) -> Cluster:
    """A cluster ``name`` whose VNet is ``prefix``; ``user_cidrs``: the user ConfigMap's list;
    ``services``: write services.yaml/endpointslices.yaml (False: an older bundle without them)."""
    b = Cluster()
    b.name, b.prefix = name, prefix
    subnet = _cidrs(prefix)[0]
    vid = b.vnet_id
    reconciled = o.reconciled_text(_cidrs(prefix))
    b.configmaps = [o.configmap("azure-ip-masq-agent-config-reconciled", {"ip-masq-agent-reconciled": reconciled},
                                labels=dict(o.RECONCILED_LABELS))]
    effective = list(_cidrs(prefix))
    if user_cidrs is not None:
        text = "nonMasqueradeCIDRs:\n" + "".join(f"- {c}\n" for c in user_cidrs)
        b.configmaps.append(o.configmap("azure-ip-masq-agent-config", {"ip-masq-agent": text},
                                        labels={"addonmanager.kubernetes.io/mode": "EnsureExists"}))
        effective = list(dict.fromkeys(user_cidrs + effective))
    b.daemonsets = [o.daemonset(desired=2, ready=2, layout="brief")]
    names = [f"aks-{name}-0000000{i}" for i in range(2)]
    b.nodes = [o.node(n, b.host(4 + i), labels={"agentpool": "system", "kubernetes.azure.com/agentpool": "system"})
               for i, n in enumerate(names)]
    b.pods = [o.agent_pod(n, b.host(4 + i), layout="brief") for i, n in enumerate(names)]
    b.pods += [o.pod(f"web-{i}", node=n, namespace="default", ip=b.host(10 + i)) for i, n in enumerate(names)]
    pool = o.agent_pool("system", count=2, vnet_subnet_id=f"{vid}/subnets/snet-nodes",
                        keys=("name", "count", "osType", "mode", "vnetSubnetId"))
    b.aks = o.aks(f"aks-{name}", id=f"/subscriptions/{SUB}/resourcegroups/rg-{name}/providers/"
                  f"Microsoft.ContainerService/managedClusters/aks-{name}", resource_group=f"rg-{name}",
                  node_resource_group=f"MC_rg-{name}_aks-{name}_westeurope", plugin=plugin, plugin_mode=plugin_mode,
                  pod_cidr="10.244.0.0/16" if plugin_mode == "overlay" else None, pools=[pool])
    b.vnets = {b.vnet_name: o.vnet(b.vnet_name, vid, resource_group=f"rg-{name}-network", prefixes=[prefix],
                                   subnets=[o.subnet(vid, "snet-nodes", subnet)])}
    b.captures = {n: {"iptables-save.txt": o.iptables_save(effective)} for n in names}
    if services:
        b.services = [o.service("kubernetes", cluster_ip="10.0.0.1", ports=(("https", "TCP", 443, 443, None),),
                                selector={})]
        b.endpointslices = []
    return b


def peer(a: Cluster, b: Cluster, *, state: str = "Connected", space: list[str] | None = None) -> None:
    """A peering from ``a``'s VNet to ``b``'s (routing ``space``, default b's VNet)."""
    a.vnet["virtualNetworkPeerings"].append(o.peering(f"peer-{a.name}-to-{b.name}", b.vnet_id, space or [b.prefix],
                                                      state=state, forwarded=True))


def ingress(b: Cluster, policy: str = "Cluster", *, lb_offset: int = 200) -> str:
    """An internal LoadBalancer Service ingress-nginx/ingress-nginx-controller on ``b`` with two
    ready endpoints (one per node), externalTrafficPolicy ``policy``; returns its LB IP."""
    lb = b.host(lb_offset)
    b.services.append(o.service("ingress-nginx-controller", "ingress-nginx", type="LoadBalancer",
                                cluster_ip="10.0.87.201", lb_ips=(lb,), external_traffic_policy=policy,
                                health_check_node_port=32001 if policy == "Local" else None,
                                ports=(("http", "TCP", 80, "http", 30412), ("https", "TCP", 443, "https", 31785)),
                                annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}))
    nodes = [n["metadata"]["name"] for n in b.nodes]
    b.endpointslices.append(o.endpointslice(
        "ingress-nginx-controller", "ingress-nginx", ports=(("http", 80, "TCP"), ("https", 443, "TCP")),
        endpoints=[(b.host(20 + i), n, f"ingress-nginx-controller-{i}", True) for i, n in enumerate(nodes)]))
    return lb


def write(tmp, *clusters: Cluster) -> list[str]:
    return [c.write(os.path.join(str(tmp), c.name)) for c in clusters]
