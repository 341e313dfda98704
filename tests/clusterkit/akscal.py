"""The inspect tests' cluster ``akscal``: a healthy Azure CNI node-subnet cluster (AKS-managed VNet
10.224.0.0/12, node subnet aks-subnet 10.224.0.0/16, service CIDR 10.0.0.0/16, three Linux nodes,
captures equal to what the agent writes), as a ``Bundle`` of documents in the ``brief`` layout.
``base()`` builds it; each test patches a copy and writes it with ``Bundle.write(dir)``.
"""

from __future__ import annotations

from clusterkit import bundle
from clusterkit import objects as o
from clusterkit.objects import AGENT_IMAGE as IMAGE
from clusterkit.objects import iptables_save, reconciled_text

SUB = "3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c"
NRG = "MC_rg_akscal_westeurope"
VNET = "aks-vnet-39458073"
VNET_ID = o.vnet_id(SUB, NRG, VNET)
NODES = ("aks-nodepool1-36628055-vmss000000", "aks-nodepool1-36628055-vmss000001", "aks-nodepool1-36628055-vmss000002")
BASE_CIDRS = ("10.224.0.0/12", "10.0.0.0/16")

__all__ = ["BASE_CIDRS", "IMAGE", "NODES", "NRG", "SUB", "VNET", "VNET_ID", "Bundle", "agent_pod", "aks", "base",
           "configmap", "daemonset", "iptables_save", "kubenet", "node", "peering", "reconciled_text", "vnet"]


def configmap(name: str, data: dict, namespace: str = "kube-system", labels: dict | None = None) -> dict:
    """A ConfigMap (data before metadata, resourceVersion 1001, labelled component=ip-masq-agent
    unless ``labels``)."""
    return o.configmap(name, data, namespace, resource_version="1001", data_first=True,
                       labels=labels or {"component": "ip-masq-agent"})


def daemonset(args=o.AGENT_ARGS, desired: int = 3, ready: int = 3) -> dict:
    """AKS's agent DaemonSet, ``ready`` of ``desired`` pods ready."""
    return o.daemonset(args=args, desired=desired, ready=ready, layout="brief")


def agent_pod(i: int, node: str, *, ready: bool = True, restarts: int = 0, waiting: str | None = None,
              last: dict | None = None) -> dict:
    """The agent pod of node ``i`` (``node``), at 10.224.0.<4+i>."""
    return o.agent_pod(node, f"10.224.0.{4 + i}", name=f"azure-ip-masq-agent-{'abcdefgh'[i % 8]}x{i}q", owner_uid="u1",
                       ready=ready, restarts=restarts, waiting=waiting, last_terminated=last, layout="brief")


def node(i: int, name: str, pod_cidr: str | None = None, labels: dict | None = None) -> dict:
    """Node ``i`` of the scale set (10.224.0.<4+i>); ``labels`` follow AKS's pool labels."""
    return o.node(name, f"10.224.0.{4 + i}", pod_cidr,
                  labels={"agentpool": "nodepool1", "kubernetes.azure.com/agentpool": "nodepool1", **(labels or {})},
                  provider_id=o.vmss_provider_id(SUB, NRG, "aks-nodepool1-36628055-vmss", i))


def aks(plugin: str = "azure", mode: str | None = None, pod_cidr: str | None = None, pod_subnet: bool = False,
        ip_families=("IPv4",)) -> dict:
    """``az aks show`` of akscal (``pod_subnet``: the pool has a pod subnet, Azure CNI dynamic IP)."""
    pool = o.agent_pool(vnet_subnet_id=f"{VNET_ID}/subnets/aks-subnet" if pod_subnet else None,
                        pod_subnet_id=f"{VNET_ID}/subnets/pod-subnet" if pod_subnet else None,
                        keys=o.POOL_KEYS if pod_subnet else o.POOL_KEYS[:5])
    return o.aks("akscal", id=f"/subscriptions/{SUB}/resourcegroups/rg/providers/Microsoft.ContainerService/"
                 "managedClusters/akscal", resource_group="rg", node_resource_group=NRG, plugin=plugin,
                 plugin_mode=mode, pod_cidr=pod_cidr, ip_families=ip_families, pools=[pool])


def vnet(peerings=(), subnets=None) -> dict:
    """``az network vnet show`` of the AKS-managed VNet (one subnet unless ``subnets``)."""
    return o.vnet(VNET, VNET_ID, resource_group=NRG, location="westeurope", prefixes=["10.224.0.0/12"],
                  subnets=subnets if subnets is not None else [o.subnet(VNET_ID, "aks-subnet", "10.224.0.0/16")],
                  peerings=peerings)


def peering(name: str, remote: str, prefixes, state: str = "Connected", sync: str = "FullyInSync") -> dict:
    """A peering to the vnet ``remote`` of resource group rg-hub."""
    return o.peering(name, o.vnet_id(SUB, "rg-hub", remote), prefixes, state=state, sync=sync)


class Bundle(bundle.Bundle):
    def add_user(self, text: str, name: str = "azure-ip-masq-agent-config", key: str = "ip-masq-agent",
                 namespace: str = "kube-system") -> "Bundle":
        """Add the user ConfigMap (AKS's EnsureExists label) holding ``text`` under ``key``."""
        self.configmaps.append(configmap(name, {key: text}, namespace,
                                         labels={"addonmanager.kubernetes.io/mode": "EnsureExists"}))
        return self


def base(cidrs=BASE_CIDRS) -> Bundle:
    """A healthy Azure CNI node-subnet cluster that inspect finds nothing wrong with."""
    b = Bundle()
    b.configmaps = [configmap("azure-ip-masq-agent-config-reconciled",
                              {"ip-masq-agent-reconciled": reconciled_text(cidrs)},
                              labels={"addonmanager.kubernetes.io/mode": "Reconcile", "component": "ip-masq-agent"}),
                    configmap("coredns", {"Corefile": ".:53 {}\n"})]
    b.daemonsets = [daemonset()]
    b.nodes = [node(i, n) for i, n in enumerate(NODES)]
    b.pods = [agent_pod(i, n) for i, n in enumerate(NODES)]
    b.aks = aks()
    b.vnets = {VNET: vnet()}
    b.captures = {n: {"iptables-save.txt": iptables_save(cidrs)} for n in NODES}
    return b


def kubenet(cidrs=("10.244.0.0/16",)) -> Bundle:
    """A healthy kubenet cluster (pod CIDR 10.244.0.0/16)."""
    b = base(cidrs)
    b.aks = aks(plugin="kubenet", pod_cidr="10.244.0.0/16")
    b.nodes = [node(i, n, pod_cidr=f"10.244.{i}.0/24") for i, n in enumerate(NODES)]
    return b
