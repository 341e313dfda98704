"""The AKS cluster the local test API server (tests/kubeapi) serves: objects as the API server
stores them (``kubectl get … -o json`` of a real AKS cluster, layout ``served`` of ``objects``) and
``small_cluster``, which fills a ``KubeAPI`` with a whole cluster."""

from __future__ import annotations

from typing import Any

from clusterkit import objects as o
from clusterkit.objects import AGENT_IMAGE, AGENT_LABELS, RECONCILED_V4, agent_pod, namespace, pod, reconciled_configmap

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
NODE_RESOURCE_GROUP = "mc_rg_aks_westeurope"

__all__ = ["AGENT_IMAGE", "AGENT_LABELS", "RECONCILED_V4", "agent_daemonset", "agent_pod", "configmap", "namespace",
           "node", "pod", "reconciled_configmap", "small_cluster"]


def node(name: str, *, ip: str = "10.224.0.4", os: str = "linux", pool: str = "nodepool1",
         labels: dict[str, str] | None = None, pod_cidr: str | None = None, ready: bool = True) -> dict:
    """An AKS node of scale set ``aks-<pool>-12345678-vmss`` with the labels, kubelet condition and
    nodeInfo the API server reports (Ubuntu 22.04 or Windows Server 2022 after ``os``)."""
    linux = os == "linux"
    return o.node(name, ip, pod_cidr, os=os, ready=ready, ready_reason=True,
                  labels={"kubernetes.io/hostname": name, "kubernetes.azure.com/agentpool": pool, "agentpool": pool,
                          "kubernetes.io/arch": "amd64", **(labels or {})},
                  provider_id=o.vmss_provider_id(SUBSCRIPTION, NODE_RESOURCE_GROUP, f"aks-{pool}-12345678-vmss",
                                                 o.suffix(name, 1)),
                  node_info={"architecture": "amd64", "bootID": o.uuid_of(name + "boot"),
                             "machineID": o.suffix(name + "m", 32), "systemUUID": o.uuid_of(name + "sys"),
                             "kernelVersion": "5.15.0-1071-azure" if linux else "10.0.20348.2700",
                             "kubeProxyVersion": "", "kubeletVersion": "v1.31.0",
                             "containerRuntimeVersion": "containerd://1.7.20",
                             "osImage": "Ubuntu 22.04.4 LTS" if linux else "Windows Server 2022"})


def configmap(name: str, data: dict[str, str], *, namespace: str = "kube-system",
              labels: dict[str, str] | None = None) -> dict:
    """A ConfigMap as stored (no resourceVersion until the server gives one; no empty labels)."""
    return o.configmap(name, data, namespace, labels=labels or None)


def agent_daemonset(*, name: str = "azure-ip-masq-agent", namespace: str = "kube-system",
                    image: str = AGENT_IMAGE, desired: int = 3) -> dict:
    """The AKS azure-ip-masq-agent DaemonSet (projected volume of the two ConfigMaps), all pods ready."""
    return o.daemonset(name, image, namespace=namespace, desired=desired)


def small_cluster(api: Any, nodes: int = 3, *, workloads_per_node: int = 2, windows: tuple[str, ...] = (),
                  agent_nodes: tuple[str, ...] | None = None, user_config: str | None = None) -> list[str]:
    """Fill ``api`` with an AKS-like cluster: ``aks-nodepool1-<i>`` Linux nodes (10.224.0.<4+i>),
    the agent DaemonSet with one Running pod per Linux node (or only on ``agent_nodes``), the
    reconciled ConfigMap (and the user one when ``user_config`` is given), some unrelated
    ConfigMaps, Windows nodes named in ``windows``, and workload pods. Returns the Linux node names."""
    names = [f"aks-nodepool1-{i:08d}" for i in range(nodes)]
    for i, n in enumerate(names):
        ip = f"10.224.{i // 250}.{4 + i % 250}"
        api.add(node(n, ip=ip))
        if agent_nodes is None or n in agent_nodes:
            api.add(agent_pod(n, ip))
        for j in range(workloads_per_node):
            api.add(pod(f"web-{i}-{j}", node=n, namespace="default",
                        ip=f"10.{100 + i // 250}.{i % 250}.{10 + j}",
                        host_ip=ip, labels={"app": "web"}, owner=("ReplicaSet", f"web-{i}")))
    for w in windows:
        api.add(node(w, ip="10.224.9.9", os="windows", pool="win1"))
    api.add(agent_daemonset(desired=len(names) if agent_nodes is None else len(agent_nodes)))
    api.add(reconciled_configmap())
    if user_config is not None:
        api.add(configmap("azure-ip-masq-agent-config", {"ip-masq-agent": user_config}))
    api.add(configmap("coredns", {"Corefile": ".:53 {\n    forward . /etc/resolv.conf\n}\n"}))
    api.add(configmap("kube-root-ca.crt", {"ca.crt": "-----BEGIN CERTIFICATE-----\n...\n"}))
    return names
