"""Bundle folders for inspect tests, in the native shapes kubectl and az print.

``base()`` is a healthy Azure CNI node-subnet cluster (AKS-managed VNet 10.224.0.0/12, node subnet
aks-subnet 10.224.0.0/16, service CIDR 10.0.0.0/16, three Linux nodes, captures equal to what the
agent writes). Each test patches a copy and writes it with ``Bundle.write(dir)``.
"""

from __future__ import annotations

import copy
import json
import os

import yaml

SUB = "3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c"
NRG = "MC_rg_akscal_westeurope"
VNET = "aks-vnet-39458073"
VNET_ID = f"/subscriptions/{SUB}/resourceGroups/{NRG}/providers/Microsoft.Network/virtualNetworks/{VNET}"
IMAGE = "mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2"
JUMP_COMMENT = ('"\\"ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom '
                'IP-MASQ-AGENT chain\\""')
RETURN_COMMENT = '"ip-masq-agent: local traffic is not subject to MASQUERADE"'
MASQ_COMMENT = '"ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)"'
NODES = ("aks-nodepool1-36628055-vmss000000", "aks-nodepool1-36628055-vmss000001", "aks-nodepool1-36628055-vmss000002")


def reconciled_text(cidrs, link_local: bool = True, extra: str = "") -> str:
    return "nonMasqueradeCIDRs:\n" + "".join(f"  - {c}\n" for c in cidrs) + \
        f"masqLinkLocal: {str(link_local).lower()}\n" + extra


def configmap(name: str, data: dict, namespace: str = "kube-system", labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1001",
                         "labels": labels or {"component": "ip-masq-agent"}}}


def daemonset(args=("--v=2", "--resync-interval=60"), desired: int = 3, ready: int = 3) -> dict:
    sel = {"k8s-app": "azure-ip-masq-agent", "tier": "node"}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "azure-ip-masq-agent", "namespace": "kube-system",
                     "labels": {"component": "azure-ip-masq-agent", "kubernetes.azure.com/managedby": "aks",
                                "tier": "node"}},
        "spec": {"selector": {"matchLabels": dict(sel)}, "template": {
            "metadata": {"labels": dict(sel)},
            "spec": {"hostNetwork": True, "nodeSelector": {"kubernetes.io/os": "linux"},
                     "containers": [{"name": "azure-ip-masq-agent", "image": IMAGE, "args": list(args),
                                     "volumeMounts": [{"mountPath": "/etc/config",
                                                       "name": "azure-ip-masq-agent-config-volume"},
                                                      {"mountPath": "/run/xtables.lock", "name": "iptableslock"}]}],
                     "volumes": [{"name": "azure-ip-masq-agent-config-volume", "projected": {
                         "defaultMode": 420, "sources": [
                             {"configMap": {"name": "azure-ip-masq-agent-config", "optional": True, "items": [
                                 {"key": "ip-masq-agent", "mode": 444, "path": "ip-masq-agent"}]}},
                             {"configMap": {"name": "azure-ip-masq-agent-config-reconciled", "optional": True,
                                            "items": [{"key": "ip-masq-agent-reconciled", "mode": 444,
                                                       "path": "ip-masq-agent-reconciled"}]}}]}},
                         {"name": "iptableslock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}}]}}},
        "status": {"desiredNumberScheduled": desired, "numberReady": ready, "currentNumberScheduled": desired},
    }


def agent_pod(i: int, node: str, *, ready: bool = True, restarts: int = 0, waiting: str | None = None,
              last: dict | None = None) -> dict:
    name = f"azure-ip-masq-agent-{'abcdefgh'[i % 8]}x{i}q"
    cs = {"name": "azure-ip-masq-agent", "image": IMAGE, "ready": ready, "restartCount": restarts,
          "state": {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2025-09-19T20:00:00Z"}}}
    if last:
        cs["lastState"] = {"terminated": last}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system",
                         "labels": {"k8s-app": "azure-ip-masq-agent", "tier": "node"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                              "name": "azure-ip-masq-agent", "controller": True, "uid": "u1"}]},
            "spec": {"nodeName": node, "hostNetwork": True,
                     "containers": [{"name": "azure-ip-masq-agent", "image": IMAGE}]},
            "status": {"phase": "Running", "podIP": f"10.224.0.{4 + i}", "podIPs": [{"ip": f"10.224.0.{4 + i}"}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [cs]}}


def node(i: int, name: str, pod_cidr: str | None = None, labels: dict | None = None) -> dict:
    spec = {"providerID": f"azure:///subscriptions/{SUB}/resourceGroups/{NRG}/providers/Microsoft.Compute/"
                          f"virtualMachineScaleSets/aks-nodepool1-36628055-vmss/virtualMachines/{i}"}
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "agentpool": "nodepool1",
                                                   "kubernetes.azure.com/agentpool": "nodepool1", **(labels or {})}},
            "spec": spec,
            "status": {"addresses": [{"type": "InternalIP", "address": f"10.224.0.{4 + i}"},
                                     {"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"operatingSystem": "linux"}}}


def aks(plugin: str = "azure", mode: str | None = None, pod_cidr: str | None = None, pod_subnet: bool = False,
        ip_families=("IPv4",)) -> dict:
    pool = {"name": "nodepool1", "count": 3, "osType": "Linux", "mode": "System", "vnetSubnetId": None}
    if pod_subnet:
        pool["vnetSubnetId"] = f"{VNET_ID}/subnets/aks-subnet"
        pool["podSubnetId"] = f"{VNET_ID}/subnets/pod-subnet"
    return {"id": f"/subscriptions/{SUB}/resourcegroups/rg/providers/Microsoft.ContainerService/managedClusters/akscal",
            "name": "akscal", "resourceGroup": "rg", "location": "westeurope", "nodeResourceGroup": NRG,
            "kubernetesVersion": "1.31.2",
            "networkProfile": {"networkPlugin": plugin, "networkPluginMode": mode, "networkPolicy": None,
                               "networkDataplane": "azure", "podCidr": pod_cidr,
                               "podCidrs": [pod_cidr] if pod_cidr else None, "serviceCidr": "10.0.0.0/16",
                               "serviceCidrs": ["10.0.0.0/16"], "dnsServiceIp": "10.0.0.10",
                               "ipFamilies": list(ip_families), "outboundType": "loadBalancer"},
            "agentPoolProfiles": [pool]}


def vnet(peerings=(), subnets=None) -> dict:
    subnets = subnets if subnets is not None else [
        {"name": "aks-subnet", "id": f"{VNET_ID}/subnets/aks-subnet", "addressPrefix": "10.224.0.0/16"}]
    return {"name": VNET, "id": VNET_ID, "resourceGroup": NRG, "location": "westeurope",
            "addressSpace": {"addressPrefixes": ["10.224.0.0/12"]}, "subnets": subnets,
            "virtualNetworkPeerings": list(peerings)}


def peering(name: str, remote: str, prefixes, state: str = "Connected", sync: str = "FullyInSync") -> dict:
    rid = f"/subscriptions/{SUB}/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/{remote}"
    return {"name": name, "peeringState": state, "peeringSyncLevel": sync,
            "remoteVirtualNetwork": {"id": rid}, "remoteAddressSpace": {"addressPrefixes": list(prefixes)},
            "remoteVirtualNetworkAddressSpace": {"addressPrefixes": list(prefixes)},
            "allowForwardedTraffic": False, "allowGatewayTransit": False, "useRemoteGateways": False}


def iptables_save(cidrs, *, link_local: bool = True, jump: int = 1, chain: bool = True, before: str = "",
                  legacy_warning: bool = False, extra_rules: str = "") -> str:
    """A full ``iptables-save`` of an AKS node (kube-proxy, the agent), printed as iptables-save prints."""
    out = ["# Generated by iptables-save v1.8.7 (nf_tables) on Fri Sep 19 20:07:06 2025"]
    if legacy_warning:
        out.append("# Warning: iptables-legacy tables present, use iptables-legacy-save to see them")
    out += ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]", ":KUBE-POSTROUTING - [0:0]"]
    if chain:
        out.append(":IP-MASQ-AGENT - [0:0]")
    out.append('-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING')
    if before:
        out.append(before)
    for _ in range(jump):
        out.append(f"-A POSTROUTING -m comment --comment {JUMP_COMMENT} -m addrtype ! --dst-type LOCAL "
                   "-j IP-MASQ-AGENT")
    if chain:
        if not link_local:
            out.append(f"-A IP-MASQ-AGENT -d 169.254.0.0/16 -m comment --comment {RETURN_COMMENT} -j RETURN")
        for c in cidrs:
            out.append(f"-A IP-MASQ-AGENT -d {c} -m comment --comment {RETURN_COMMENT} -j RETURN")
        out.append(f"-A IP-MASQ-AGENT -m comment --comment {MASQ_COMMENT} -j MASQUERADE")
    out += ["-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
            "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
            '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
            "--random-fully"]
    if extra_rules:
        out.append(extra_rules)
    out += ["COMMIT", "# Completed on Fri Sep 19 20:07:06 2025"]
    return "\n".join(out) + "\n"


class Bundle:
    """The documents of one bundle; ``write`` puts them in a folder."""

    def __init__(self):
        self.configmaps: list[dict] = []
        self.daemonsets: list[dict] = []
        self.pods: list[dict] = []
        self.nodes: list[dict] = []
        self.aks: dict | None = None
        self.vnets: dict[str, dict] = {}
        self.captures: dict[str, dict[str, str]] = {}

    def copy(self) -> "Bundle":
        return copy.deepcopy(self)

    def configmap(self, name: str, namespace: str = "kube-system") -> dict | None:
        for cm in self.configmaps:
            if cm["metadata"]["name"] == name and cm["metadata"]["namespace"] == namespace:
                return cm
        return None

    def set_reconciled(self, text: str) -> "Bundle":
        self.configmap("azure-ip-masq-agent-config-reconciled")["data"] = {"ip-masq-agent-reconciled": text}
        return self

    def add_user(self, text: str, name: str = "azure-ip-masq-agent-config", key: str = "ip-masq-agent",
                 namespace: str = "kube-system") -> "Bundle":
        self.configmaps.append(configmap(name, {key: text}, namespace,
                                         labels={"addonmanager.kubernetes.io/mode": "EnsureExists"}))
        return self

    def capture_all(self, text: str) -> "Bundle":
        for n in self.captures:
            self.captures[n]["iptables-save.txt"] = text
        return self

    def write(self, path: str) -> str:
        os.makedirs(path, exist_ok=True)

        def lst(items):
            return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}

        for fname, items in (("configmaps.yaml", self.configmaps), ("daemonsets.yaml", self.daemonsets),
                             ("pods.yaml", self.pods), ("nodes.yaml", self.nodes)):
            with open(os.path.join(path, fname), "w") as fh:
                yaml.safe_dump(lst(items), fh, sort_keys=False)
        if self.aks is not None:
            with open(os.path.join(path, "aks.json"), "w") as fh:
                json.dump(self.aks, fh, indent=2)
        if self.vnets:
            os.makedirs(os.path.join(path, "vnets"), exist_ok=True)
            for name, doc in self.vnets.items():
                with open(os.path.join(path, "vnets", f"{name}.json"), "w") as fh:
                    json.dump(doc, fh, indent=2)
        for n, files in self.captures.items():
            os.makedirs(os.path.join(path, "nodes", n), exist_ok=True)
            for fname, text in files.items():
                with open(os.path.join(path, "nodes", n, fname), "w") as fh:
                    fh.write(text)
        return path


BASE_CIDRS = ("10.224.0.0/12", "10.0.0.0/16")


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
