"""Small ClusterSnapshot builders for analysis tests (plain model objects, no clients)."""

from __future__ import annotations

from masqctl.cluster.model import (AgentDaemonSet, ClusterSnapshot, ConfigMap, ConfigMapProjection, ConfigMount,
                                   KeyToPath)

V2_IMAGE = "mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2"
UPSTREAM_IMAGE = "registry.k8s.io/networking/ip-masq-agent:v2.10.0"


def aks_mount() -> ConfigMount:
    return ConfigMount("azure-ip-masq-agent-config-volume", "/etc/config", None, (
        ConfigMapProjection("azure-ip-masq-agent-config", (KeyToPath("ip-masq-agent", "ip-masq-agent", 0o444),), True),
        ConfigMapProjection("azure-ip-masq-agent-config-reconciled",
                            (KeyToPath("ip-masq-agent-reconciled", "ip-masq-agent-reconciled", 0o444),), True),
    ))


def aks_daemonset(args=("--v=2", "--resync-interval=60"), command=(), mounts=None, **kw) -> AgentDaemonSet:
    return AgentDaemonSet("kube-system", "azure-ip-masq-agent", "azure-ip-masq-agent", "azure-v2",
                          "azure-ip-masq-agent", V2_IMAGE, command=tuple(command), args=tuple(args),
                          mounts=(aks_mount(),) if mounts is None else tuple(mounts), host_network=True, **kw)


def upstream_daemonset(args=(), command=(), mounts=None) -> AgentDaemonSet:
    mount = ConfigMount("config", "/etc/config", None, (
        ConfigMapProjection("ip-masq-agent", (KeyToPath("config", "ip-masq-agent"),), True),))
    return AgentDaemonSet("kube-system", "ip-masq-agent", "ip-masq-agent", "upstream", "ip-masq-agent",
                          UPSTREAM_IMAGE, command=tuple(command), args=tuple(args),
                          mounts=(mount,) if mounts is None else tuple(mounts), host_network=True)


def reconciled(cidrs, link_local=True, name="azure-ip-masq-agent-config-reconciled",
               key="ip-masq-agent-reconciled") -> ConfigMap:
    text = "nonMasqueradeCIDRs:\n" + "".join(f"  - {c}\n" for c in cidrs) + f"masqLinkLocal: {str(link_local).lower()}\n"
    return ConfigMap("kube-system", name, {key: text})


def user(text: str, name="azure-ip-masq-agent-config", key="ip-masq-agent", namespace="kube-system") -> ConfigMap:
    return ConfigMap(namespace, name, {key: text})


def snapshot(configmaps=(), daemonsets=None, **kw) -> ClusterSnapshot:
    return ClusterSnapshot("test", configmaps=tuple(configmaps),
                           daemonsets=(aks_daemonset(),) if daemonsets is None else tuple(daemonsets), **kw)
