"""Builders for realistic API objects (AKS-shaped), and a whole small cluster.

Each builder returns plain JSON (what the API server stores); pass it to ``KubeAPI.add``.
"""

from __future__ import annotations

import hashlib
from typing import Any

AGENT_IMAGE = "mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2"
AGENT_LABELS = {"k8s-app": "azure-ip-masq-agent", "tier": "node"}
RECONCILED_V4 = "nonMasqueradeCIDRs:\n  - 10.224.0.0/16\n  - 10.0.0.0/16\n  - 10.224.0.0/12\nmasqLinkLocal: true\n"


def _suffix(seed: str, n: int = 5) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()[:n]


def _uuid(seed: str) -> str:
    h = hashlib.sha1(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _image_id(image: str) -> str:
    return f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "status": {"phase": "Active"}}


def node(name: str, *, ip: str = "10.224.0.4", os: str = "linux", pool: str = "nodepool1",
         labels: dict[str, str] | None = None, pod_cidr: str | None = None, ready: bool = True) -> dict:
    lab = {"kubernetes.io/os": os, "kubernetes.io/hostname": name, "kubernetes.azure.com/agentpool": pool,
           "agentpool": pool, "kubernetes.io/arch": "amd64", **(labels or {})}
    spec: dict[str, Any] = {"providerID": f"azure:///subscriptions/00000000-0000-0000-0000-000000000000/"
                            f"resourceGroups/mc_rg_aks_westeurope/providers/Microsoft.Compute/"
                            f"virtualMachineScaleSets/aks-{pool}-12345678-vmss/virtualMachines/{_suffix(name, 1)}"}
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": lab},
            "spec": spec,
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "reason": "KubeletReady" if ready else "KubeletNotReady"}],
                       "nodeInfo": {"operatingSystem": os, "architecture": "amd64", "bootID": _uuid(name + "boot"),
                                    "machineID": _suffix(name + "m", 32), "systemUUID": _uuid(name + "sys"),
                                    "kernelVersion": "5.15.0-1071-azure" if os == "linux" else "10.0.20348.2700",
                                    "kubeProxyVersion": "", "kubeletVersion": "v1.31.0",
                                    "containerRuntimeVersion": "containerd://1.7.20",
                                    "osImage": "Ubuntu 22.04.4 LTS" if os == "linux" else "Windows Server 2022"}}}


def configmap(name: str, data: dict[str, str], *, namespace: str = "kube-system",
              labels: dict[str, str] | None = None) -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def reconciled_configmap(text: str = RECONCILED_V4) -> dict:
    return configmap("azure-ip-masq-agent-config-reconciled", {"ip-masq-agent-reconciled": text},
                     labels={"addonmanager.kubernetes.io/mode": "Reconcile", "component": "ip-masq-agent",
                             "kubernetes.io/cluster-service": "true"})


def agent_daemonset(*, name: str = "azure-ip-masq-agent", namespace: str = "kube-system",
                    image: str = AGENT_IMAGE, desired: int = 3) -> dict:
    """The AKS azure-ip-masq-agent DaemonSet (projected volume of the two ConfigMaps)."""
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**AGENT_LABELS, "addonmanager.kubernetes.io/mode": "Reconcile"}},
        "spec": {
            "selector": {"matchLabels": dict(AGENT_LABELS)},
            "template": {
                "metadata": {"labels": {**AGENT_LABELS, "kubernetes.azure.com/managedby": "aks"}},
                "spec": {
                    "hostNetwork": True,
                    "automountServiceAccountToken": False,
                    "priorityClassName": "system-node-critical",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                    {"operator": "Exists", "effect": "NoExecute"},
                                    {"operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{
                        "name": "azure-ip-masq-agent", "image": image,
                        "args": ["--v=2", "--resync-interval=60"],
                        "securityContext": {"privileged": False,
                                            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                        "volumeMounts": [{"name": "azure-ip-masq-agent-config-volume", "mountPath": "/etc/config"},
                                         {"name": "iptableslock", "mountPath": "/run/xtables.lock"}],
                    }],
                    "volumes": [
                        {"name": "azure-ip-masq-agent-config-volume", "projected": {"defaultMode": 420, "sources": [
                            {"configMap": {"name": "azure-ip-masq-agent-config", "optional": True,
                                           "items": [{"key": "ip-masq-agent", "path": "ip-masq-agent",
                                                      "mode": 444}]}},
                            {"configMap": {"name": "azure-ip-masq-agent-config-reconciled", "optional": True,
                                           "items": [{"key": "ip-masq-agent-reconciled",
                                                      "path": "ip-masq-agent-reconciled", "mode": 444}]}}]}},
                        {"name": "iptableslock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
                    ],
                },
            },
        },
        "status": {"desiredNumberScheduled": desired, "currentNumberScheduled": desired,
                   "numberReady": desired, "numberAvailable": desired, "updatedNumberScheduled": desired,
                   "numberMisscheduled": 0, "observedGeneration": 1},
    }


def pod(name: str, *, node: str | None, namespace: str = "default", ip: str | None = "10.244.1.10",
        host_ip: str | None = None, host_network: bool = False, phase: str = "Running", ready: bool = True,
        image: str = "nginx:1.27", container: str = "main", labels: dict[str, str] | None = None,
        owner: tuple[str, str] | None = None, restarts: int = 0, waiting: str | None = None,
        last_terminated: dict | None = None) -> dict:
    """A pod. ``owner`` is (kind, name), e.g. ("DaemonSet", "azure-ip-masq-agent")."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "uid": "0000" + _suffix(owner[1], 4), "controller": True,
                                    "blockOwnerDeletion": True}]
    cs: dict[str, Any] = {"name": container, "image": image, "imageID": _image_id(image), "ready": ready, "restartCount": restarts,
                          "started": phase == "Running"}
    if waiting:
        cs["state"] = {"waiting": {"reason": waiting}}
    elif phase == "Running":
        cs["state"] = {"running": {"startedAt": "2026-11-01T10:00:00Z"}}
    if last_terminated:
        cs["lastState"] = {"terminated": last_terminated}
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                              "containerStatuses": [cs]}
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    spec: dict[str, Any] = {"containers": [{"name": container, "image": image}]}
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def agent_pod(node_name: str, node_ip: str, *, daemonset: str = "azure-ip-masq-agent", image: str = AGENT_IMAGE,
              **kw: Any) -> dict:
    """An agent pod of the AKS DaemonSet on ``node_name`` (host network: its IP is the node's)."""
    kw.setdefault("labels", {**AGENT_LABELS, "kubernetes.azure.com/managedby": "aks",
                             "controller-revision-hash": "694d4d7dcd", "pod-template-generation": "1"})
    return pod(f"{daemonset}-{_suffix(node_name)}", node=node_name, namespace="kube-system", ip=node_ip,
               host_ip=node_ip, host_network=True, image=image, container=daemonset,
               owner=("DaemonSet", daemonset), **kw)


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
