"""Native Kubernetes/Azure documents for tests, shaped exactly as kubectl and az print them."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
SUB = "3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c"

AKS_PROJECTION = [
    {"configMap": {"name": "azure-ip-masq-agent-config", "optional": True,
                   "items": [{"key": "ip-masq-agent", "path": "ip-masq-agent", "mode": 444}]}},
    {"configMap": {"name": "azure-ip-masq-agent-config-reconciled", "optional": True,
                   "items": [{"key": "ip-masq-agent-reconciled", "path": "ip-masq-agent-reconciled",
                              "mode": 444}]}},
]


def configmap(name: str, data: dict | None, namespace: str = "kube-system", **meta) -> dict:
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1001", **meta}}
    if data is not None:
        obj["data"] = data
    return obj


def daemonset(name: str = "azure-ip-masq-agent", image: str = "mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2",
              *, namespace: str = "kube-system", container: str | None = None, volumes: list | None = None,
              mounts: list | None = None, args: list | None = None, selector: dict | None = None,
              extra_containers: list | None = None) -> dict:
    selector = selector or {"k8s-app": name, "tier": "node"}
    volumes = volumes if volumes is not None else [
        {"name": f"{name}-config-volume", "projected": {"defaultMode": 420, "sources": copy.deepcopy(AKS_PROJECTION)}},
        {"name": "iptableslock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
    ]
    mounts = mounts if mounts is not None else [
        {"mountPath": "/etc/config", "name": f"{name}-config-volume"},
        {"mountPath": "/run/xtables.lock", "name": "iptableslock"},
    ]
    c = {"name": container or name, "image": image, "args": args if args is not None else ["--v=2", "--resync-interval=60"],
         "volumeMounts": mounts, "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "labels": {"component": name, "tier": "node"},
                     "generation": 1},
        "spec": {"selector": {"matchLabels": dict(selector)},
                 "template": {"metadata": {"labels": dict(selector)},
                              "spec": {"hostNetwork": True, "containers": [c, *(extra_containers or [])],
                                       "volumes": volumes, "nodeSelector": {"kubernetes.io/os": "linux"}}}},
        "status": {"desiredNumberScheduled": 3, "numberReady": 3, "currentNumberScheduled": 3},
    }


def pod(name: str, node: str, ip: str | None, *, namespace: str = "default", labels: dict | None = None,
        owner_ds: str | None = None, host_network: bool = False, container: str = "app",
        image: str = "nginx:1.27", ready: bool = True, restarts: int = 0, waiting: str | None = None,
        last: dict | None = None, phase: str = "Running") -> dict:
    meta = {"name": name, "namespace": namespace, "labels": labels or {}, "uid": f"uid-{name}"}
    if owner_ds:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": owner_ds,
                                    "controller": True, "blockOwnerDeletion": True, "uid": f"uid-{owner_ds}"}]
    cs = {"name": container, "image": image, "ready": ready, "restartCount": restarts, "started": ready,
          "state": {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2025-09-19T20:00:00Z"}}}
    if last:
        cs["lastState"] = {"terminated": last}
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
              "containerStatuses": [cs], "hostIP": None}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node, "hostNetwork": host_network,
                     "containers": [{"name": container, "image": image}]},
            "status": status}


def node(name: str, ip: str, pod_cidr: str | None = None, *, ready: str = "True", os_label: str = "linux") -> dict:
    spec = {"providerID": f"azure:///subscriptions/{SUB}/resourceGroups/mc_rg_test_westeurope/providers/"
                          f"Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-vmss/virtualMachines/0"}
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/os": os_label, "agentpool": "nodepool1"}},
            "spec": spec,
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": ready}],
                       "nodeInfo": {"operatingSystem": "linux"}}}


def kube_list(items: list) -> dict:
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def run_cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120, check=False)
