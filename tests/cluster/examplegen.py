"""Rebuild the example bundles in examples/ from the seed reports (run as root).

    python tests/cluster/examplegen.py [NAME ...]
    python tests/cluster/examplegen.py --documents-only [NAME ...]   # keep the committed node captures

Every example is a cluster described as data below: the values the seeds give verbatim, and
reconstructed values around them (each example's README says which is which). Node dumps are
real: the node's tables (kube-proxy, AKS's own rules, the agent's chain as the engine renders
it for the projected ConfigMaps, CNS's SWIFT-POSTROUTING where it applies) are loaded with
``iptables-restore`` into a scratch network namespace and read back with ``iptables-save``;
``ip -o addr`` is taken from the same namespace after giving it the node's interfaces.

``spec(name)`` (no root needed) returns the example's intended contents, which
``test_examples.py`` compares the committed bundles with.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from masqctl.cluster.bundle import write_bundle
from masqctl.cluster.model import NodeCapture
from masqctl.cluster.raw import RawCluster
from masqctl.engine import AgentOptions, ConfigSource, effective_config, render

NAMES = ("aks-azure-cni", "aks-kubenet", "hub-spoke", "aks-pod-subnet")
FLEET_NAMES = ("hub-spoke-fleet/spoke1", "hub-spoke-fleet/hub")   # examples/hub-spoke-fleet/
WIRESERVER = "168.63.129.16"
IMDS = "169.254.169.254"
API_SERVER_IP = "203.0.113.10"   # documentation range: stands for the API server's public IP


def guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "masqctl-example/" + "/".join(parts)))


def kp_hash(text: str) -> str:
    """kube-proxy's chain-name hash: SHA-256, base32, first 16 characters."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:16].decode()


# =========================================================================== the clusters as data


@dataclass
class NodeSpec:
    name: str
    ip: str
    prefix: int                       # the node subnet's prefix length (eth0's address)
    pod_cidr: str | None = None       # kubenet only
    pod_ips: list[str] = field(default_factory=list)   # addresses handed to pods on this node


@dataclass
class Service:
    namespace: str
    name: str
    cluster_ip: str
    ports: list[tuple[str, str, int, int]]       # (port name, protocol, port, target port)
    endpoints: list[str]                          # pod IPs (or the API server's IP)
    type: str = "ClusterIP"                       # or LoadBalancer (an internal Azure load balancer)
    lb_ip: str | None = None                      # status.loadBalancer.ingress[0].ip
    node_ports: tuple[int, ...] = ()              # one per port (LoadBalancer)
    external_traffic_policy: str = "Cluster"      # LoadBalancer only (the ingress-nginx chart's default)
    annotations: dict | None = None
    health_check_node_port: int | None = None     # externalTrafficPolicy Local: the API server allocates one


@dataclass
class Example:
    name: str
    cluster: str
    subscription: str
    resource_group: str
    location: str
    node_resource_group: str
    collected_at: str
    network: dict                   # az aks show networkProfile
    vnet: dict                      # az network vnet show
    nodes: list[NodeSpec]
    pool: dict                      # agent pool profile extras (vnetSubnetId, podSubnetId…)
    configmaps: list[dict]          # the masquerade ConfigMaps (verbatim where the seed has them)
    agent: dict | None              # the agent DaemonSet (None: none deployed)
    agent_pod_names: list[str]
    agent_pod_labels: dict
    services: list[Service]
    workloads: list[tuple[str, str, str, int]]   # (namespace, name, app label, node index)
    kube_proxy_local: list[str]     # how kube-proxy tells pod traffic: ["!", "-s", CIDR] or ["!", "-i", "azv+"]
    swift_source: str | None = None  # CNS SNAT for DNS/IMDS from this pod range (pod subnet mode)
    bridge: str | None = None       # kubenet: cbr0 holds the node's pod CIDR gateway
    kubernetes_version: str = "1.31.1"
    node_image: str = "AKSUbuntu-2204gen2containerd-202509.08.0"


def _reconciled(text: str, labels: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "azure-ip-masq-agent-config-reconciled", "namespace": "kube-system",
                         "labels": labels},
            "data": {"ip-masq-agent-reconciled": text}}


AKS_RECONCILE_LABELS = {"addonmanager.kubernetes.io/mode": "Reconcile", "component": "ip-masq-agent",
                        "kubernetes.io/cluster-service": "true"}


def aks_agent_daemonset(image: str, labels: dict, *, annotations: dict | None = None, mode: int = 444) -> dict:
    """AKS's azure-ip-masq-agent DaemonSet (the parts the seeds show verbatim, the rest as AKS ships it)."""
    selector = {"k8s-app": "azure-ip-masq-agent", "tier": "node"}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"annotations": annotations or {"deprecated.daemonset.template.generation": "1"},
                     "generation": 1, "labels": labels, "name": "azure-ip-masq-agent", "namespace": "kube-system"},
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**selector, "kubernetes.azure.com/managedby": "aks"}},
                "spec": {
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                            {"key": "kubernetes.azure.com/cluster", "operator": "Exists"},
                            {"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]}]}]}}},
                    "automountServiceAccountToken": False,
                    "containers": [{
                        "args": ["--v=2", "--resync-interval=60"],
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "name": "azure-ip-masq-agent",
                        "resources": {"limits": {"cpu": "500m", "memory": "250Mi"},
                                      "requests": {"cpu": "100m", "memory": "50Mi"}},
                        "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}, "privileged": False},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "volumeMounts": [{"mountPath": "/etc/config", "name": "azure-ip-masq-agent-config-volume"},
                                         {"mountPath": "/run/xtables.lock", "name": "iptableslock"}],
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "hostNetwork": True,
                    "priorityClassName": "system-node-critical",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30,
                    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                    {"effect": "NoExecute", "operator": "Exists"},
                                    {"effect": "NoSchedule", "operator": "Exists"}],
                    "volumes": [
                        {"name": "azure-ip-masq-agent-config-volume",
                         "projected": {"defaultMode": 420, "sources": [
                             {"configMap": {"items": [{"key": "ip-masq-agent", "mode": mode, "path": "ip-masq-agent"}],
                                            "name": "azure-ip-masq-agent-config", "optional": True}},
                             {"configMap": {"items": [{"key": "ip-masq-agent-reconciled", "mode": mode,
                                                       "path": "ip-masq-agent-reconciled"}],
                                            "name": "azure-ip-masq-agent-config-reconciled", "optional": True}}]}},
                        {"hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}, "name": "iptableslock"}],
                },
            },
            "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"},
        },
    }


def article_agent_daemonset() -> dict:
    """The user-deployed agent of the pod-subnet article, as the API server returns it
    (``mode: 0444`` in the applied YAML is octal, stored and printed as 292)."""
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"annotations": {"deprecated.daemonset.template.generation": "1"}, "generation": 1,
                     "labels": {"addonmanager.kubernetes.io/mode": "Reconcile", "component": "ip-masq-agent",
                                "kubernetes.io/cluster-service": "true"},
                     "name": "ip-masq-agent", "namespace": "kube-system"},
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"k8s-app": "ip-masq-agent"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "ip-masq-agent"}},
                "spec": {
                    "containers": [{
                        "image": "mcr.microsoft.com/aks/ip-masq-agent-v2:v0.1.15",
                        "imagePullPolicy": "Always",
                        "name": "ip-masq-agent",
                        "resources": {},
                        "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}, "privileged": False},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "volumeMounts": [{"mountPath": "/etc/config", "name": "ip-masq-agent-volume", "readOnly": True}],
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "hostNetwork": True,
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30,
                    "volumes": [{"name": "ip-masq-agent-volume", "projected": {"defaultMode": 420, "sources": [
                        {"configMap": {"items": [{"key": "ip-masq-agent", "mode": 292, "path": "ip-masq-agent"}],
                                       "name": "ip-masq-agent-config", "optional": True}}]}}],
                },
            },
            "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"},
        },
    }


def _subnet_pods(base: str, first: int, count: int) -> list[str]:
    a, b, c, _ = (int(x) for x in base.split("."))
    out = []
    for i in range(first, first + count):
        out.append(f"{a}.{b}.{c + i // 256}.{i % 256}")
    return out


def _peering(sub: str, rg: str, vnet: str, name: str, remote_prefixes: list[str], remote_rg_id: str,
             remote_vnet: str, etag: str, resource_guid: str) -> dict:
    """A Connected, in-sync VNet peering of ``vnet`` to ``remote_vnet``, as `az network vnet peering
    show` prints it."""
    return {
        "allowForwardedTraffic": True, "allowGatewayTransit": False, "allowVirtualNetworkAccess": True,
        "doNotVerifyRemoteGateways": False, "etag": f'W/"{etag}"',
        "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/"
              f"{vnet}/virtualNetworkPeerings/{name}",
        "name": name, "peerCompleteVnets": True, "peeringState": "Connected",
        "peeringSyncLevel": "FullyInSync", "provisioningState": "Succeeded",
        "remoteAddressSpace": {"addressPrefixes": list(remote_prefixes)},
        "remoteVirtualNetwork": {"id": f"{remote_rg_id}/providers/Microsoft.Network/virtualNetworks/{remote_vnet}"},
        "remoteVirtualNetworkAddressSpace": {"addressPrefixes": list(remote_prefixes)},
        "resourceGroup": rg, "resourceGuid": resource_guid,
        "type": "Microsoft.Network/virtualNetworks/virtualNetworkPeerings", "useRemoteGateways": False,
    }


def _vnet(ex_sub: str, rg: str, name: str, location: str, prefixes: list[str], subnets: list[dict],
          peerings: list[dict] | None = None) -> dict:
    vid = f"/subscriptions/{ex_sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{name}"
    out_subnets = []
    for s in subnets:
        sub = {"addressPrefix": s["prefix"], "delegations": s.get("delegations", []),
               "etag": f'W/"{guid(name, s["name"], "etag")}"', "id": f"{vid}/subnets/{s['name']}", "name": s["name"],
               "privateEndpointNetworkPolicies": "Disabled", "privateLinkServiceNetworkPolicies": "Enabled",
               "provisioningState": "Succeeded", "resourceGroup": rg, "type": "Microsoft.Network/virtualNetworks/subnets"}
        for k in ("networkSecurityGroup", "routeTable"):
            if k in s:
                sub[k] = s[k]
        out_subnets.append(sub)
    return {
        "addressSpace": {"addressPrefixes": prefixes},
        "enableDdosProtection": False,
        "etag": f'W/"{guid(name, "etag")}"',
        "id": vid,
        "location": location,
        "name": name,
        "privateEndpointVNetPolicies": "Disabled",
        "provisioningState": "Succeeded",
        "resourceGroup": rg,
        "resourceGuid": guid(name, "resourceGuid"),
        "subnets": out_subnets,
        "type": "Microsoft.Network/virtualNetworks",
        "virtualNetworkPeerings": peerings or [],
    }


def _common_services(service_cidr_base: str, coredns: list[str], metrics: list[str]) -> list[Service]:
    a, b, c, _ = service_cidr_base.split(".")
    ip = lambda last: f"{a}.{b}.{c}.{last}"
    return [
        Service("default", "kubernetes", ip(1), [("https", "tcp", 443, 443)], [API_SERVER_IP]),
        Service("kube-system", "kube-dns", ip(10), [("dns", "udp", 53, 53), ("dns-tcp", "tcp", 53, 53)], coredns),
        Service("kube-system", "metrics-server", ip(187), [("", "tcp", 443, 4443)], metrics),
    ]


def example(name: str) -> Example:
    if name == "aks-azure-cni":
        sub = guid("aks-azure-cni", "subscription")
        nrg = "MC_rg_akscal_swedencentral"
        node_ip = "10.224.0.4"
        pods = _subnet_pods("10.224.0.0", 5, 30)        # Azure CNI preallocates maxPods (30) IPs per node
        nodes = [NodeSpec("aks-nodepool1-36628055-vmss000000", node_ip, 16, pod_ips=pods)]
        reconciled = _reconciled("nonMasqueradeCIDRs:\n  - 10.224.0.0/16\n  - 10.0.0.0/16\n  - 10.224.0.0/12\n"
                                 "masqLinkLocal: true\n", AKS_RECONCILE_LABELS)
        return Example(
            name=name, cluster="akscal", subscription=sub, resource_group="rg", location="swedencentral",
            node_resource_group=nrg, collected_at="2025-03-14T09:12:41Z",
            network={"networkPlugin": "azure", "networkPluginMode": None, "networkPolicy": None,
                     "networkDataplane": "azure", "networkMode": None, "podCidr": None, "podCidrs": None,
                     "serviceCidr": "10.0.0.0/16", "serviceCidrs": ["10.0.0.0/16"], "dnsServiceIp": "10.0.0.10"},
            vnet=_vnet(sub, nrg, "aks-vnet-39458073", "swedencentral", ["10.224.0.0/12"],
                       [{"name": "aks-subnet", "prefix": "10.224.0.0/16"}]),
            nodes=nodes, pool={"vnetSubnetId": None, "podSubnetId": None, "maxPods": 30},
            configmaps=[reconciled],
            agent=aks_agent_daemonset("mcr.microsoft.com/aks/ip-masq-agent-v2:v0.1.11",
                                      {"addonmanager.kubernetes.io/mode": "Reconcile", "component": "azure-ip-masq-agent",
                                       "kubernetes.azure.com/managedby": "aks", "tier": "node"}),
            agent_pod_names=["azure-ip-masq-agent-xpvjn"],
            agent_pod_labels={"controller-revision-hash": "694d4d7dcd", "k8s-app": "azure-ip-masq-agent",
                              "kubernetes.azure.com/managedby": "aks", "pod-template-generation": "1", "tier": "node"},
            services=_common_services("10.0.0.0", [pods[0], pods[1]], [pods[2], pods[3]]),
            workloads=[("default", "web-7d9f8b6c5-8xk2p", "web", 0), ("default", "web-7d9f8b6c5-q4m7z", "web", 0)],
            kube_proxy_local=["!", "-i", "azv+"],
        )
    if name == "aks-kubenet":
        sub = guid("aks-kubenet", "subscription")
        nrg = "MC_rg_akskube_swedencentral"
        nodes = []
        for i in range(3):
            cidr = f"10.244.{i}.0/24"
            nodes.append(NodeSpec(f"aks-nodepool1-10522532-vmss00000{i}", f"10.224.0.{4 + i}", 16, pod_cidr=cidr,
                                  pod_ips=[f"10.244.{i}.{j}" for j in range(2, 12)]))
        reconciled = _reconciled("nonMasqueradeCIDRs:\n  - 10.244.0.0/16\nmasqLinkLocal: true\n", AKS_RECONCILE_LABELS)
        rt = {"id": f"/subscriptions/{sub}/resourceGroups/{nrg}/providers/Microsoft.Network/routeTables/"
                    "aks-agentpool-12544801-routetable", "resourceGroup": nrg}
        nsg = {"id": f"/subscriptions/{sub}/resourceGroups/{nrg}/providers/Microsoft.Network/networkSecurityGroups/"
                     "aks-agentpool-12544801-nsg", "resourceGroup": nrg}
        return Example(
            name=name, cluster="akskube", subscription=sub, resource_group="rg", location="swedencentral",
            node_resource_group=nrg, collected_at="2025-03-14T21:40:05Z",
            network={"networkPlugin": "kubenet", "networkPluginMode": None, "networkPolicy": None,
                     "networkDataplane": None, "networkMode": None, "podCidr": "10.244.0.0/16",
                     "podCidrs": ["10.244.0.0/16"], "serviceCidr": "10.0.0.0/16", "serviceCidrs": ["10.0.0.0/16"],
                     "dnsServiceIp": "10.0.0.10"},
            vnet=_vnet(sub, nrg, "aks-vnet-12544801", "swedencentral", ["10.224.0.0/12"],
                       [{"name": "aks-subnet", "prefix": "10.224.0.0/16", "routeTable": rt,
                         "networkSecurityGroup": nsg}]),
            nodes=nodes, pool={"vnetSubnetId": None, "podSubnetId": None, "maxPods": 110},
            configmaps=[reconciled],
            agent=aks_agent_daemonset("mcr.microsoft.com/aks/ip-masq-agent-v2:v0.1.11",
                                      {"addonmanager.kubernetes.io/mode": "Reconcile", "component": "azure-ip-masq-agent",
                                       "kubernetes.azure.com/managedby": "aks", "tier": "node"}),
            agent_pod_names=["azure-ip-masq-agent-hm4n2", "azure-ip-masq-agent-ht2tj", "azure-ip-masq-agent-rtc8z"],
            agent_pod_labels={"controller-revision-hash": "5c9f7d8b4", "k8s-app": "azure-ip-masq-agent",
                              "kubernetes.azure.com/managedby": "aks", "pod-template-generation": "1", "tier": "node"},
            services=_common_services("10.0.0.0", ["10.244.0.2", "10.244.1.2"], ["10.244.1.3", "10.244.2.2"]),
            workloads=[("default", "web-7d9f8b6c5-2lq8d", "web", 0), ("default", "web-7d9f8b6c5-9vt6w", "web", 2)],
            kube_proxy_local=["!", "-s", "10.244.0.0/16"],
            bridge="cbr0",
        )
    if name == "hub-spoke":
        sub = guid("hub-spoke", "subscription")
        hub_sub = guid("hub-spoke", "hub-subscription")
        nrg = "MC_rg-spoke1_aks-spoke1_westeurope"
        net_rg = "rg-spoke1-network"
        subnet_id = (f"/subscriptions/{sub}/resourceGroups/{net_rg}/providers/Microsoft.Network/virtualNetworks/"
                     "vnet-spoke1/subnets/snet-aks-nodes")
        nodes = [NodeSpec(f"aks-system-20931744-vmss00000{i}", f"10.40.0.{4 + 31 * i}", 17,
                          pod_ips=_subnet_pods("10.40.0.0", 5 + 31 * i, 30)) for i in range(2)]
        reconciled = _reconciled("MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 10.40.0.0/17  # subnet CIDR\n"
                                 "- 10.0.0.0/16\n- 10.40.0.0/15  # vnet CIDR\n",
                                 {"app.kubernetes.io/managed-by": "Eno", "component": "ip-masq-agent"})
        peering = _peering(sub, net_rg, "vnet-spoke1", "peer-spoke1-to-hub", ["10.42.0.0/15"],
                           f"/subscriptions/{hub_sub}/resourceGroups/rg-hub-network", "vnet-hub",
                           etag=guid("hub-spoke", "peering"), resource_guid=guid("hub-spoke", "peering-guid"))
        return Example(
            name=name, cluster="aks-spoke1", subscription=sub, resource_group="rg-spoke1", location="westeurope",
            node_resource_group=nrg, collected_at="2025-09-19T20:05:31Z",
            network={"networkPlugin": "azure", "networkPluginMode": None, "networkPolicy": None,
                     "networkDataplane": "azure", "networkMode": None, "podCidr": None, "podCidrs": None,
                     "serviceCidr": "10.0.0.0/16", "serviceCidrs": ["10.0.0.0/16"], "dnsServiceIp": "10.0.0.10"},
            vnet=_vnet(sub, net_rg, "vnet-spoke1", "westeurope", ["10.40.0.0/15"],
                       [{"name": "snet-aks-nodes", "prefix": "10.40.0.0/17"}], [peering]),
            nodes=nodes, pool={"vnetSubnetId": subnet_id, "podSubnetId": None, "maxPods": 30},
            configmaps=[reconciled],
            agent=aks_agent_daemonset("mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2",
                                      {"app.kubernetes.io/managed-by": "Eno", "component": "azure-ip-masq-agent",
                                       "kubernetes.azure.com/managedby": "aks", "tier": "node"}),
            agent_pod_names=["azure-ip-masq-agent-s4wqn", "azure-ip-masq-agent-7jz2c"],
            agent_pod_labels={"controller-revision-hash": "6f8d9c7b5d", "k8s-app": "azure-ip-masq-agent",
                              "kubernetes.azure.com/managedby": "aks", "pod-template-generation": "1", "tier": "node"},
            services=[*_common_services("10.0.0.0", [nodes[0].pod_ips[0], nodes[1].pod_ips[0]],
                                        [nodes[0].pod_ips[1], nodes[1].pod_ips[1]]),
                      Service("orders", "orders-api", "10.0.143.52", [("http", "tcp", 80, 8080)],
                              [nodes[0].pod_ips[4], nodes[1].pod_ips[4]])],
            workloads=[("orders", "orders-api-5b7c9d8f6-kq2xv", "orders-api", 0),
                       ("orders", "orders-api-5b7c9d8f6-w8d4n", "orders-api", 1),
                       ("billing", "invoice-client-6d4f9b8c7-t5rjp", "invoice-client", 0)],
            kube_proxy_local=["!", "-i", "azv+"],
        )
    if name == "hub-spoke-fleet/spoke1":
        # spoke 1 after the field report's fix: the user ConfigMap azure-ip-masq-agent-config (verbatim
        # from the report) keeps 10.0.0.0/8 unmasqueraded
        ex = example("hub-spoke")
        user_cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"ip-masq-agent": "nonMasqueradeCIDRs:\n- 10.0.0.0/8"},
                   "metadata": {"labels": {"addonmanager.kubernetes.io/mode": "EnsureExists", "component": "ip-masq-agent",
                                           "kubernetes.io/cluster-service": "true"},
                                "name": "azure-ip-masq-agent-config", "namespace": "kube-system"}}
        ex.configmaps = [*ex.configmaps, user_cm]
        ex.collected_at = "2025-09-19T20:12:40Z"
        return ex
    if name == "hub-spoke-fleet/hub":
        sub = guid("hub-spoke", "hub-subscription")
        spoke_sub = guid("hub-spoke", "subscription")
        net_rg = "rg-hub-network"
        subnet_id = (f"/subscriptions/{sub}/resourceGroups/{net_rg}/providers/Microsoft.Network/virtualNetworks/"
                     "vnet-hub/subnets/snet-aks-nodes")
        nodes = [NodeSpec(f"aks-system-38217465-vmss00000{i}", f"10.42.0.{4 + 31 * i}", 17,
                          pod_ips=_subnet_pods("10.42.0.0", 5 + 31 * i, 30)) for i in range(2)]
        reconciled = _reconciled("MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 10.42.0.0/17  # subnet CIDR\n"
                                 "- 10.0.0.0/16\n- 10.42.0.0/15  # vnet CIDR\n",
                                 {"app.kubernetes.io/managed-by": "Eno", "component": "ip-masq-agent"})
        peering = _peering(sub, net_rg, "vnet-hub", "peer-hub-to-spoke1", ["10.40.0.0/15"],
                           f"/subscriptions/{spoke_sub}/resourceGroups/rg-spoke1-network", "vnet-spoke1",
                           etag=guid("hub-spoke-fleet", "hub-peering"),
                           resource_guid=guid("hub-spoke-fleet", "hub-peering-guid"))
        ingress = Service("ingress-nginx", "ingress-nginx-controller", "10.0.87.201",
                          [("http", "tcp", 80, 80), ("https", "tcp", 443, 443)],
                          [nodes[0].pod_ips[4], nodes[1].pod_ips[4]], type="LoadBalancer", lb_ip="10.42.1.10",
                          node_ports=(30412, 31785), external_traffic_policy="Cluster",
                          annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"})
        # a Service that keeps its clients' addresses: only the node with its endpoint receives
        audit = Service("audit", "audit-api", "10.0.143.52", [("https", "tcp", 443, 8443)], [nodes[1].pod_ips[6]],
                        type="LoadBalancer", lb_ip="10.42.1.11", node_ports=(31226,), external_traffic_policy="Local",
                        health_check_node_port=32318,
                        annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"})
        return Example(
            name=name, cluster="aks-hub", subscription=sub, resource_group="rg-hub", location="westeurope",
            node_resource_group="MC_rg-hub_aks-hub_westeurope", collected_at="2025-09-19T20:13:05Z",
            network={"networkPlugin": "azure", "networkPluginMode": None, "networkPolicy": None,
                     "networkDataplane": "azure", "networkMode": None, "podCidr": None, "podCidrs": None,
                     "serviceCidr": "10.0.0.0/16", "serviceCidrs": ["10.0.0.0/16"], "dnsServiceIp": "10.0.0.10"},
            vnet=_vnet(sub, net_rg, "vnet-hub", "westeurope", ["10.42.0.0/15"],
                       [{"name": "snet-aks-nodes", "prefix": "10.42.0.0/17"}], [peering]),
            nodes=nodes, pool={"vnetSubnetId": subnet_id, "podSubnetId": None, "maxPods": 30},
            configmaps=[reconciled],
            agent=aks_agent_daemonset("mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2",
                                      {"app.kubernetes.io/managed-by": "Eno", "component": "azure-ip-masq-agent",
                                       "kubernetes.azure.com/managedby": "aks", "tier": "node"}),
            agent_pod_names=["azure-ip-masq-agent-b7x2d", "azure-ip-masq-agent-q9m4t"],
            agent_pod_labels={"controller-revision-hash": "6f8d9c7b5d", "k8s-app": "azure-ip-masq-agent",
                              "kubernetes.azure.com/managedby": "aks", "pod-template-generation": "1", "tier": "node"},
            services=[*_common_services("10.0.0.0", [nodes[0].pod_ips[0], nodes[1].pod_ips[0]],
                                        [nodes[0].pod_ips[1], nodes[1].pod_ips[1]]), ingress, audit],
            workloads=[("ingress-nginx", "ingress-nginx-controller-6d9c8b7f4-2xk9p", "ingress-nginx-controller", 0),
                       ("ingress-nginx", "ingress-nginx-controller-6d9c8b7f4-7qv5m", "ingress-nginx-controller", 1),
                       ("audit", "audit-api-5f7b9c6d8-q4wzn", "audit-api", 1)],
            kube_proxy_local=["!", "-i", "azv+"],
        )
    if name == "aks-pod-subnet":
        sub = guid("aks-pod-subnet", "subscription")
        rg = "rg-aks-podsubnet"
        vid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/vnet-aks"
        nodes = [NodeSpec(f"aks-nodepool1-41962758-vmss00000{i}", f"10.0.0.{4 + i}", 24,
                          pod_ips=[f"192.168.{i}.{j}" for j in range(4, 14)]) for i in range(2)]
        user_cm = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"labels": {"addonmanager.kubernetes.io/mode": "EnsureExists", "component": "ip-masq-agent",
                                           "kubernetes.io/cluster-service": "true"},
                                "name": "ip-masq-agent-config", "namespace": "kube-system"},
                   "data": {"ip-masq-agent": "nonMasqueradeCIDRs:\n- 10.0.0.0/16 # VNet and service CIDR\n"
                                             "- 192.168.0.0/16 # Pod subnet\nmasqLinkLocal: false\n"
                                             "masqLinkLocalIPv6: false\n"}}
        return Example(
            name=name, cluster="aks-podsubnet", subscription=sub, resource_group=rg, location="uksouth",
            node_resource_group="MC_rg-aks-podsubnet_aks-podsubnet_uksouth", collected_at="2025-06-02T14:27:10Z",
            network={"networkPlugin": "azure", "networkPluginMode": None, "networkPolicy": None,
                     "networkDataplane": "azure", "networkMode": None, "podCidr": None, "podCidrs": None,
                     "serviceCidr": "10.0.128.0/20", "serviceCidrs": ["10.0.128.0/20"], "dnsServiceIp": "10.0.128.10"},
            vnet=_vnet(sub, rg, "vnet-aks", "uksouth", ["10.0.0.0/16", "192.168.0.0/16"],
                       [{"name": "snet-nodes", "prefix": "10.0.0.0/24"},
                        {"name": "snet-pods", "prefix": "192.168.0.0/16", "delegations": [{
                            "actions": ["Microsoft.Network/virtualNetworks/subnets/join/action"],
                            "etag": f'W/"{guid("podsubnet", "delegation")}"',
                            "id": f"{vid}/subnets/snet-pods/delegations/aks-delegation", "name": "aks-delegation",
                            "provisioningState": "Succeeded", "resourceGroup": rg,
                            "serviceName": "Microsoft.ContainerService/managedClusters",
                            "type": "Microsoft.Network/virtualNetworks/subnets/delegations"}]}]),
            nodes=nodes, pool={"vnetSubnetId": f"{vid}/subnets/snet-nodes", "podSubnetId": f"{vid}/subnets/snet-pods",
                               "podIpAllocationMode": "DynamicIndividual", "maxPods": 30},
            configmaps=[user_cm],
            agent=article_agent_daemonset(),
            agent_pod_names=["ip-masq-agent-9w2xh", "ip-masq-agent-m5lkt"],
            agent_pod_labels={"controller-revision-hash": "7b6c5d9f8", "k8s-app": "ip-masq-agent",
                              "pod-template-generation": "1"},
            services=_common_services("10.0.128.0", ["192.168.0.4", "192.168.1.4"], ["192.168.0.5", "192.168.1.5"]),
            workloads=[("default", "web-7d9f8b6c5-h8k3m", "web", 0), ("default", "web-7d9f8b6c5-p2x9s", "web", 1)],
            kube_proxy_local=["!", "-i", "azv+"],
            swift_source="192.168.0.0/16",
        )
    raise KeyError(name)


# =========================================================================== Kubernetes objects


def _meta(ex: Example, name: str, namespace: str | None, **extra) -> dict:
    meta = {"creationTimestamp": _earlier(ex.collected_at), "name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["resourceVersion"] = str(int(hashlib.sha256(f"{ex.name}/{name}".encode()).hexdigest()[:6], 16))
    meta["uid"] = guid(ex.name, namespace or "", name)
    meta.update(extra)
    return meta


def _earlier(ts: str) -> str:
    return ts[:11] + "04:13:02Z"   # created the same day, before the capture


def _with_meta(ex: Example, obj: dict) -> dict:
    m = obj["metadata"]
    full = _meta(ex, m["name"], m.get("namespace"))
    full.update(m)
    return {**obj, "metadata": dict(sorted(full.items()))}


def configmaps(ex: Example) -> list[dict]:
    coredns = {"Corefile": ".:53 {\n    errors\n    ready\n    health {\n      lameduck 5s\n    }\n"
                           "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n      pods insecure\n"
                           "      fallthrough in-addr.arpa ip6.arpa\n      ttl 30\n    }\n"
                           "    prometheus :9153\n    forward . /etc/resolv.conf\n    cache 30\n    loop\n"
                           "    reload\n    loadbalance\n    import custom/*.override\n}\nimport custom/*.server\n"}
    out = [
        {"apiVersion": "v1", "kind": "ConfigMap", "data": coredns,
         "metadata": {"labels": {"addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "kube-dns",
                                 "kubernetes.io/cluster-service": "true"}, "name": "coredns", "namespace": "kube-system"}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"labels": {"addonmanager.kubernetes.io/mode": "EnsureExists", "k8s-app": "kube-dns",
                                 "kubernetes.io/cluster-service": "true"}, "name": "coredns-custom",
                      "namespace": "kube-system"}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "data": {"ladder": '{"coresToReplicas":[[1,2],[512,3],[1024,4],[2048,5]],"nodesToReplicas":[[1,2],[8,3],[16,4],'
                            '[32,5]]}'},
         "metadata": {"labels": {"addonmanager.kubernetes.io/mode": "EnsureExists",
                                 "kubernetes.io/cluster-service": "true"},
                      "name": "coredns-autoscaler", "namespace": "kube-system"}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "data": {"ca.crt": _ca_pem(ex)},
         "metadata": {"annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the "
                                      "kube-apiserver when using internal endpoints such as the internal service IP or "
                                      "kubernetes.default.svc. No other usage is guaranteed across distributions of "
                                      "Kubernetes clusters."},
                      "name": "kube-root-ca.crt", "namespace": "kube-system"}},
        *ex.configmaps,
    ]
    return sorted((_with_meta(ex, o) for o in out), key=lambda o: o["metadata"]["name"])


def _ca_pem(ex: Example) -> str:
    """A throwaway self-signed CA certificate standing for the cluster's (regenerated each run)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(int(guid(ex.name, "ca").replace("-", ""), 16) >> 8)
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=365 * 30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _system_daemonset(ex: Example, name: str, image: str, app: str, *, args: list[str] | None = None,
                      volumes: list | None = None, mounts: list | None = None) -> dict:
    n = len(ex.nodes)
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"annotations": {"deprecated.daemonset.template.generation": "1"}, "generation": 1,
                     "labels": {"addonmanager.kubernetes.io/mode": "Reconcile", "component": app,
                                "kubernetes.azure.com/managedby": "aks", "tier": "node"},
                     "name": name, "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"component": app, "tier": "node"}},
                 "template": {"metadata": {"labels": {"component": app, "tier": "node"}},
                              "spec": {"containers": [{"name": name, "image": image, "args": args or [],
                                                       "volumeMounts": mounts or []}],
                                       "hostNetwork": True, "priorityClassName": "system-node-critical",
                                       "nodeSelector": {"kubernetes.io/os": "linux"}, "volumes": volumes or []}},
                 "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"}},
        "status": _ds_status(n),
    }


def _ds_status(n: int) -> dict:
    return {"currentNumberScheduled": n, "desiredNumberScheduled": n, "numberAvailable": n, "numberMisscheduled": 0,
            "numberReady": n, "observedGeneration": 1, "updatedNumberScheduled": n}


def daemonsets(ex: Example) -> list[dict]:
    kp_args = ["--conntrack-max-per-core=0", "--metrics-bind-address=0.0.0.0:10249",
               "--pod-interface-name-prefix=azv" if "-i" in ex.kube_proxy_local else "--cluster-cidr=10.244.0.0/16",
               "--detect-local-mode=InterfaceNamePrefix" if "-i" in ex.kube_proxy_local else "--detect-local-mode=ClusterCIDR",
               "--v=3"]
    out = [
        _system_daemonset(ex, "kube-proxy", f"mcr.microsoft.com/oss/kubernetes/kube-proxy:v{ex.kubernetes_version}", "kube-proxy",
                          args=kp_args,
                          volumes=[{"hostPath": {"path": "/var/lib/kubelet", "type": ""}, "name": "kubeconfig"},
                                   {"hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}, "name": "iptableslock"}],
                          mounts=[{"mountPath": "/var/lib/kubelet", "name": "kubeconfig", "readOnly": True},
                                  {"mountPath": "/run/xtables.lock", "name": "iptableslock"}]),
        _system_daemonset(ex, "cloud-node-manager", "mcr.microsoft.com/oss/kubernetes/azure-cloud-node-manager:v1.31.2",
                          "cloud-node-manager", args=["--node-name=$(NODE_NAME)", "--wait-routes=false"]),
    ]
    if ex.network["networkPlugin"] == "azure":
        out.append(_system_daemonset(ex, "azure-cns", "mcr.microsoft.com/containernetworking/azure-cns:v1.6.27",
                                     "azure-cns", args=["-c", "tcp://$(CNSIpAddress):$(CNSPort)", "-t", "$(CNSLogTarget)"],
                                     volumes=[{"configMap": {"defaultMode": 420, "name": "azure-cns-config"},
                                               "name": "cns-config"}],
                                     mounts=[{"mountPath": "/etc/azure-cns", "name": "cns-config"}]))
    if ex.agent is not None:
        agent = dict(ex.agent)
        agent["status"] = _ds_status(len(ex.nodes))
        out.append(agent)
    return sorted((_with_meta(ex, o) for o in out), key=lambda o: o["metadata"]["name"])


def _pod(ex: Example, namespace: str, name: str, node: NodeSpec, ip: str, *, labels: dict, image: str,
         container: str, host_network: bool = False, owner: tuple[str, str] | None = None) -> dict:
    meta = {"labels": labels, "name": name, "namespace": namespace}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True,
                                    "kind": owner[0], "name": owner[1], "uid": guid(ex.name, namespace, owner[1])}]
    started = ex.collected_at[:11] + "04:14:20Z"
    return _with_meta(ex, {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"containers": [{"image": image, "imagePullPolicy": "IfNotPresent", "name": container}],
                 "dnsPolicy": "ClusterFirst", "enableServiceLinks": True, "hostNetwork": host_network,
                 "nodeName": node.name, "restartPolicy": "Always", "schedulerName": "default-scheduler",
                 "serviceAccountName": "default", "terminationGracePeriodSeconds": 30},
        "status": {
            "conditions": [{"lastTransitionTime": started, "status": "True", "type": t}
                           for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": [{"containerID": "containerd://" + hashlib.sha256(f"{ex.name}/{name}".encode()).hexdigest(),
                                   "image": image, "imageID": image.rsplit(":", 1)[0] + "@sha256:"
                                   + hashlib.sha256(image.encode()).hexdigest(), "lastState": {}, "name": container,
                                   "ready": True, "restartCount": 0, "started": True,
                                   "state": {"running": {"startedAt": started}}}],
            "hostIP": node.ip, "hostIPs": [{"ip": node.ip}], "phase": "Running",
            "podIP": ip, "podIPs": [{"ip": ip}], "qosClass": "Burstable", "startTime": started,
        },
    })


def pods(ex: Example) -> list[dict]:
    out = []
    svc = {s.name: s for s in ex.services}
    for i, node in enumerate(ex.nodes):
        suffix = hashlib.sha256(f"{ex.name}{node.name}".encode()).hexdigest()[:5]
        out.append(_pod(ex, "kube-system", f"kube-proxy-{suffix}", node, node.ip,
                        labels={"component": "kube-proxy", "controller-revision-hash": "7c8f9d6b5f", "tier": "node"},
                        image=f"mcr.microsoft.com/oss/kubernetes/kube-proxy:v{ex.kubernetes_version}", container="kube-proxy",
                        host_network=True, owner=("DaemonSet", "kube-proxy")))
        out.append(_pod(ex, "kube-system", f"cloud-node-manager-{suffix[::-1]}", node, node.ip,
                        labels={"component": "cloud-node-manager", "tier": "node"},
                        image="mcr.microsoft.com/oss/kubernetes/azure-cloud-node-manager:v1.31.2",
                        container="cloud-node-manager", host_network=True, owner=("DaemonSet", "cloud-node-manager")))
        if ex.network["networkPlugin"] == "azure":
            out.append(_pod(ex, "kube-system", f"azure-cns-{suffix[1:]}{i}", node, node.ip,
                            labels={"component": "azure-cns", "tier": "node"},
                            image="mcr.microsoft.com/containernetworking/azure-cns:v1.6.27", container="azure-cns",
                            host_network=True, owner=("DaemonSet", "azure-cns")))
        if ex.agent is not None:
            agent = ex.agent["spec"]["template"]["spec"]["containers"][0]
            out.append(_pod(ex, "kube-system", ex.agent_pod_names[i], node, node.ip, labels=dict(ex.agent_pod_labels),
                            image=agent["image"], container=agent["name"], host_network=True,
                            owner=("DaemonSet", ex.agent["metadata"]["name"])))
    def node_of(ip: str) -> int:
        return next(i for i, n in enumerate(ex.nodes) if ip in n.pod_ips)

    for j, ip in enumerate(svc["kube-dns"].endpoints):
        ni = node_of(ip)
        out.append(_pod(ex, "kube-system", f"coredns-6bd9d8c8b6-{'xl7nq' if j == 0 else 'zc4rf'}", ex.nodes[ni], ip,
                        labels={"k8s-app": "kube-dns", "kubernetes.azure.com/managedby": "aks", "version": "v20"},
                        image="mcr.microsoft.com/oss/kubernetes/coredns:v1.11.3-2", container="coredns",
                        owner=("ReplicaSet", "coredns-6bd9d8c8b6")))
    for j, ip in enumerate(svc["metrics-server"].endpoints):
        ni = node_of(ip)
        out.append(_pod(ex, "kube-system", f"metrics-server-7b685846d6-{'b9g2t' if j == 0 else 'lk5pw'}", ex.nodes[ni], ip,
                        labels={"k8s-app": "metrics-server"}, image="mcr.microsoft.com/oss/kubernetes/metrics-server:v0.7.2",
                        container="metrics-server-vpa", owner=("ReplicaSet", "metrics-server-7b685846d6")))
    reserved = {ip for s in ex.services for ip in s.endpoints}
    taken = {q["status"]["podIP"] for q in out}
    for ns, name, app, ni in ex.workloads:
        node = ex.nodes[ni]
        service = next((s for s in ex.services if s.name == app and s.namespace == ns), None)
        mine = [e for e in service.endpoints if e in node.pod_ips and e not in taken] if service else []
        ip = mine[0] if mine else next(p for p in node.pod_ips if p not in taken and p not in reserved)
        taken.add(ip)
        out.append(_pod(ex, ns, name, node, ip, labels={"app": app, "pod-template-hash": name.split("-")[-2]},
                        image={"web": "mcr.microsoft.com/azurelinux/base/nginx:1.25",
                               "orders-api": "contoso.azurecr.io/orders-api:2.14.1",
                               "invoice-client": "contoso.azurecr.io/invoice-client:1.3.0",
                               "ingress-nginx-controller": "registry.k8s.io/ingress-nginx/controller:v1.11.2",
                               "audit-api": "contoso.azurecr.io/audit-api:3.2.0"}[app],
                        container=app, owner=("ReplicaSet", "-".join(name.split("-")[:-1]))))
    return out


def _selector(ex: Example, s: Service) -> dict | None:
    """The pods' labels a Service selects: none for ``default/kubernetes`` (the API server writes its
    endpoints), ``k8s-app`` for the kube-system add-ons, ``app`` for the workloads."""
    if s.namespace == "default" and s.name == "kubernetes":
        return None
    if s.namespace == "kube-system":
        return {"k8s-app": s.name}
    return {"app": s.name}


def services(ex: Example) -> list[dict]:
    """``kubectl get svc -A -o yaml``: one Service per ``ex.services`` (ClusterIP, or LoadBalancer
    with its node ports and load-balancer IP)."""
    out = []
    for s in ex.services:
        ports = [{**({"name": n} if n else {}), "port": port, "protocol": proto.upper(), "targetPort": target}
                 for n, proto, port, target in s.ports]
        for p, node_port in zip(ports, s.node_ports):
            p["nodePort"] = node_port
        spec = {"clusterIP": s.cluster_ip, "clusterIPs": [s.cluster_ip], "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "ports": ports,
                "sessionAffinity": "None", "type": s.type}
        if s.type == "LoadBalancer":
            spec.update({"allocateLoadBalancerNodePorts": True, "externalTrafficPolicy": s.external_traffic_policy})
            if s.health_check_node_port is not None:
                spec["healthCheckNodePort"] = s.health_check_node_port
        selector = _selector(ex, s)
        if selector is not None:
            spec["selector"] = selector
        labels = {"component": "apiserver", "provider": "kubernetes"} if selector is None else {}
        meta = {"name": s.name, "namespace": s.namespace, **({"labels": labels} if labels else {}),
                **({"annotations": dict(s.annotations)} if s.annotations else {})}
        status = {"loadBalancer": {"ingress": [{"ip": s.lb_ip, "ipMode": "VIP"}]} if s.lb_ip else {}}
        out.append(_with_meta(ex, {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec,
                                   "status": status}))
    return out


def endpointslices(ex: Example) -> list[dict]:
    """``kubectl get endpointslices -A -o yaml``: one IPv4 slice per Service, its endpoints ready."""
    out = []
    pods_by_ip = {p["status"]["podIP"]: p for p in pods(ex) if not p["spec"].get("hostNetwork")}
    for s in ex.services:
        endpoints = []
        for ip in sorted(s.endpoints):
            ep: dict = {"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False}}
            pod = pods_by_ip.get(ip)
            if pod is not None:
                ep["nodeName"] = pod["spec"]["nodeName"]
                ep["targetRef"] = {"kind": "Pod", "name": pod["metadata"]["name"],
                                   "namespace": pod["metadata"]["namespace"], "uid": pod["metadata"]["uid"]}
            endpoints.append(ep)
        name = s.name if _selector(ex, s) is None else f"{s.name}-{kp_hash(ex.name + s.name)[:5].lower()}"
        labels = {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"
                  if _selector(ex, s) is not None else "endpointslicemirroring-controller.k8s.io",
                  "kubernetes.io/service-name": s.name}
        out.append(_with_meta(ex, {
            "addressType": "IPv4", "apiVersion": "discovery.k8s.io/v1", "endpoints": endpoints, "kind": "EndpointSlice",
            "metadata": {"labels": labels, "name": name, "namespace": s.namespace},
            "ports": [{"name": n, "port": target, "protocol": proto.upper()} for n, proto, _port, target in s.ports]}))
    return out


def nodes(ex: Example) -> list[dict]:
    out = []
    for i, n in enumerate(ex.nodes):
        vmss = n.name.rsplit("vmss", 1)[0] + "vmss"
        labels = {"agentpool": n.name.split("-")[1], "beta.kubernetes.io/arch": "amd64",
                  "beta.kubernetes.io/instance-type": "Standard_D4ds_v5", "beta.kubernetes.io/os": "linux",
                  "kubernetes.azure.com/agentpool": n.name.split("-")[1], "kubernetes.azure.com/cluster": ex.node_resource_group,
                  "kubernetes.azure.com/mode": "system", "kubernetes.azure.com/node-image-version": ex.node_image,
                  "kubernetes.azure.com/os-sku": "Ubuntu", "kubernetes.azure.com/role": "agent",
                  "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux",
                  "node.kubernetes.io/instance-type": "Standard_D4ds_v5",
                  "topology.kubernetes.io/region": ex.location, "topology.kubernetes.io/zone": "0"}
        if ex.network["networkPlugin"] == "azure":
            labels["kubernetes.azure.com/azure-cni-overlay"] = "false"
        spec = {"providerID": f"azure:///subscriptions/{ex.subscription}/resourceGroups/{ex.node_resource_group.lower()}"
                              f"/providers/Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines/{i}"}
        if n.pod_cidr:
            spec["podCIDR"] = n.pod_cidr
            spec["podCIDRs"] = [n.pod_cidr]
        out.append(_with_meta(ex, {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
                         "labels": labels, "name": n.name},
            "spec": spec,
            "status": {
                "addresses": [{"address": n.ip, "type": "InternalIP"}, {"address": n.name, "type": "Hostname"}],
                "allocatable": {"cpu": "3860m", "memory": "12880036Ki", "pods": str(ex.pool["maxPods"])},
                "capacity": {"cpu": "4", "memory": "16375460Ki", "pods": str(ex.pool["maxPods"])},
                "conditions": [{"lastHeartbeatTime": ex.collected_at, "lastTransitionTime": _earlier(ex.collected_at),
                                "message": "kubelet is posting ready status", "reason": "KubeletReady",
                                "status": "True", "type": "Ready"}],
                "nodeInfo": {"architecture": "amd64", "containerRuntimeVersion": "containerd://1.7.27-1",
                             "kernelVersion": "5.15.0-1092-azure", "kubeProxyVersion": f"v{ex.kubernetes_version}",
                             "kubeletVersion": f"v{ex.kubernetes_version}", "operatingSystem": "linux",
                             "osImage": "Ubuntu 22.04.5 LTS"},
            },
        }))
    return out


def aks(ex: Example) -> dict:
    cid = (f"/subscriptions/{ex.subscription}/resourcegroups/{ex.resource_group}/providers/"
           "Microsoft.ContainerService/managedClusters/" + ex.cluster)
    prefix = f"{ex.cluster}-{ex.resource_group}-{ex.subscription[:6]}"[:54]
    fqdn_id = hashlib.sha256(ex.name.encode()).hexdigest()[:8]
    pool = {"availabilityZones": None, "count": len(ex.nodes), "currentOrchestratorVersion": ex.kubernetes_version,
            "enableAutoScaling": False, "enableFips": False, "enableNodePublicIp": False, "kubeletDiskType": "OS",
            "maxPods": ex.pool["maxPods"], "mode": "System", "name": ex.nodes[0].name.split("-")[1],
            "nodeImageVersion": ex.node_image, "orchestratorVersion": ex.kubernetes_version,
            "osDiskSizeGb": 128, "osDiskType": "Ephemeral", "osSku": "Ubuntu", "osType": "Linux",
            "podIpAllocationMode": ex.pool.get("podIpAllocationMode"), "podSubnetId": ex.pool["podSubnetId"],
            "powerState": {"code": "Running"}, "provisioningState": "Succeeded", "type": "VirtualMachineScaleSets",
            "vmSize": "Standard_D4ds_v5", "vnetSubnetId": ex.pool["vnetSubnetId"]}
    network = {"dnsServiceIp": ex.network["dnsServiceIp"], "ipFamilies": ["IPv4"],
               "loadBalancerProfile": {"allocatedOutboundPorts": None, "backendPoolType": "nodeIPConfiguration",
                                       "effectiveOutboundIPs": [{"id": f"/subscriptions/{ex.subscription}/resourceGroups/"
                                                                       f"{ex.node_resource_group}/providers/Microsoft.Network/"
                                                                       f"publicIPAddresses/{guid(ex.name, 'pip')}",
                                                                 "resourceGroup": ex.node_resource_group}],
                                       "managedOutboundIPs": {"count": 1, "countIpv6": None}},
               "loadBalancerSku": "standard", "networkDataplane": ex.network["networkDataplane"],
               "networkMode": ex.network["networkMode"], "networkPlugin": ex.network["networkPlugin"],
               "networkPluginMode": ex.network["networkPluginMode"], "networkPolicy": ex.network["networkPolicy"],
               "outboundType": "loadBalancer", "podCidr": ex.network["podCidr"], "podCidrs": ex.network["podCidrs"],
               "serviceCidr": ex.network["serviceCidr"], "serviceCidrs": ex.network["serviceCidrs"]}
    return {
        "aadProfile": None,
        "addonProfiles": None,
        "agentPoolProfiles": [pool],
        "apiServerAccessProfile": None,
        "azurePortalFqdn": f"{prefix}-{fqdn_id}.portal.hcp.{ex.location}.azmk8s.io",
        "currentKubernetesVersion": ex.kubernetes_version,
        "dnsPrefix": prefix,
        "enableRbac": True,
        "fqdn": f"{prefix}-{fqdn_id}.hcp.{ex.location}.azmk8s.io",
        "id": cid,
        "identity": {"principalId": guid(ex.name, "principal"), "tenantId": guid(ex.name, "tenant"),
                     "type": "SystemAssigned", "userAssignedIdentities": None},
        "identityProfile": {"kubeletidentity": {
            "clientId": guid(ex.name, "kubelet-client"), "objectId": guid(ex.name, "kubelet-object"),
            "resourceId": f"/subscriptions/{ex.subscription}/resourcegroups/{ex.node_resource_group}/providers/"
                          f"Microsoft.ManagedIdentity/userAssignedIdentities/{ex.cluster}-agentpool"}},
        "kubernetesVersion": ex.kubernetes_version,
        "linuxProfile": {"adminUsername": "azureuser", "ssh": {"publicKeys": [{"keyData": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ"
                                                                                      "(example key, not real)"}]}},
        "location": ex.location,
        "name": ex.cluster,
        "networkProfile": network,
        "nodeResourceGroup": ex.node_resource_group,
        "powerState": {"code": "Running"},
        "provisioningState": "Succeeded",
        "resourceGroup": ex.resource_group,
        "sku": {"name": "Base", "tier": "Free"},
        "type": "Microsoft.ContainerService/ManagedClusters",
    }


# =========================================================================== node tables


def _svc_port_name(s: Service, port: str) -> str:
    return f"{s.namespace}/{s.name}:{port}" if port else f"{s.namespace}/{s.name}"


def kube_proxy_nat(ex: Example, node: NodeSpec) -> tuple[list[str], list[str], list[str]]:
    """(chain declarations, rules) of kube-proxy's nat table on ``node`` (iptables mode, v1.31),
    and the rules it adds to the filter table there (externalTrafficPolicy Local)."""
    chains = ["KUBE-KUBELET-CANARY", "KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-PROXY-CANARY",
              "KUBE-SERVICES"]
    rules = ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
             "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
             "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
             "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
             '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully']
    # kube-proxy's local detector: IfNotLocal is kube_proxy_local, IfLocal the same match without "!"
    if_local = ex.kube_proxy_local[1:] if ex.kube_proxy_local[:1] == ["!"] else ex.kube_proxy_local
    svc_rules, sep_rules, nodeport_rules, ext_rules, filter_rules = [], [], [], [], []
    for s in ex.services:
        for port_name, proto, port, target in s.ports:
            spn = _svc_port_name(s, port_name)
            svc = "KUBE-SVC-" + kp_hash(spn + proto)
            chains.append(svc)
            svc_rules.append(f'-A KUBE-SERVICES -d {s.cluster_ip}/32 -p {proto} -m comment --comment "{spn} cluster IP" '
                             f"-m {proto} --dport {port} -j {svc}")
            svc_rules.append(f"-A {svc} {' '.join(ex.kube_proxy_local)} -d {s.cluster_ip}/32 -p {proto} -m comment "
                             f'--comment "{spn} cluster IP" -m {proto} --dport {port} -j KUBE-MARK-MASQ')
            eps = sorted(s.endpoints)
            local_eps = [ep for ep in eps if ep in node.pod_ips]
            if s.type == "LoadBalancer":
                # kube-proxy (iptables mode), upstream kubernetes/kubernetes pkg/proxy/iptables/proxier.go
                # syncProxyRules: the load-balancer IP and the node port jump to the Service's KUBE-EXT chain.
                # externalTrafficPolicy Cluster: KUBE-EXT marks every packet ("masquerade traffic for …
                # external destinations") and jumps to KUBE-SVC (proxier_test.go, TestOverallIPTablesRules,
                # "ns4/svc4:p80" and "ns5/svc5:p80"). Local: KUBE-EXT sends pod traffic (the local
                # detector's IfLocal match, "pod traffic for …") and the node's own ("masquerade LOCAL
                # traffic", "route LOCAL traffic", --src-type LOCAL) to KUBE-SVC, and the rest to KUBE-SVL,
                # which spreads over this node's endpoints only ("ns2/svc2:p80" there). On a node without a
                # local endpoint (hasExternalEndpoints false) KUBE-EXT has no jump to KUBE-SVL, no KUBE-SVL
                # chain is written, and the filter table's KUBE-EXTERNAL-SERVICES DROPs the load-balancer IP
                # and the node port ("%s has no local endpoints", externalTrafficFilterTarget DROP); the
                # health check node port is ACCEPTed in filter KUBE-NODEPORTS on every node
                # ("%s health check node port"). No KUBE-XLB chain: that was the form before v1.24.
                ext = "KUBE-EXT-" + kp_hash(spn + proto)
                svl = "KUBE-SVL-" + kp_hash(spn + proto)
                chains.append(ext)
                node_port = s.node_ports[s.ports.index((port_name, proto, port, target))]
                svc_rules.append(f'-A KUBE-SERVICES -d {s.lb_ip}/32 -p {proto} -m comment --comment "{spn} '
                                 f'loadbalancer IP" -m {proto} --dport {port} -j {ext}')
                nodeport_rules.append(f'-A KUBE-NODEPORTS -p {proto} -m comment --comment "{spn}" -m {proto} '
                                      f"--dport {node_port} -j {ext}")
                if s.external_traffic_policy == "Cluster":
                    ext_rules.append(f'-A {ext} -m comment --comment "masquerade traffic for {spn} external '
                                     'destinations" -j KUBE-MARK-MASQ')
                    ext_rules.append(f"-A {ext} -j {svc}")
                else:
                    assert s.external_traffic_policy == "Local", s.external_traffic_policy
                    ext_rules.append(f"-A {ext} {' '.join(if_local)} -m comment --comment \"pod traffic for {spn} "
                                     f'external destinations" -j {svc}')
                    ext_rules.append(f'-A {ext} -m comment --comment "masquerade LOCAL traffic for {spn} external '
                                     'destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ')
                    ext_rules.append(f'-A {ext} -m comment --comment "route LOCAL traffic for {spn} external '
                                     f'destinations" -m addrtype --src-type LOCAL -j {svc}')
                    if local_eps:
                        chains.append(svl)
                        ext_rules.append(f"-A {ext} -j {svl}")
                        sep_rules.extend(_spread(ex, svl, spn, proto, target, local_eps))
                    else:
                        filter_rules.append(f"-A KUBE-EXTERNAL-SERVICES -d {s.lb_ip}/32 -p {proto} -m comment "
                                            f'--comment "{spn} has no local endpoints" -m {proto} --dport {port} '
                                            "-j DROP")
                        filter_rules.append(f'-A KUBE-EXTERNAL-SERVICES -p {proto} -m comment --comment "{spn} has '
                                            f'no local endpoints" -m addrtype --dst-type LOCAL -m {proto} --dport '
                                            f"{node_port} -j DROP")
                    if s.health_check_node_port is not None:
                        filter_rules.append(f'-A KUBE-NODEPORTS -p tcp -m comment --comment "{spn} health check '
                                            f'node port" -m tcp --dport {s.health_check_node_port} -j ACCEPT')
            svc_rules.extend(_spread(ex, svc, spn, proto, target, eps))
            for ep in eps:
                endpoint = f"{ep}:{target}"
                sep = "KUBE-SEP-" + kp_hash(spn + proto + endpoint)
                chains.append(sep)
                sep_rules.append(f'-A {sep} -s {ep}/32 -m comment --comment "{spn}" -j KUBE-MARK-MASQ')
                sep_rules.append(f'-A {sep} -p {proto} -m comment --comment "{spn}" -m {proto} '
                                 f"-j DNAT --to-destination {endpoint}")
    svc_rules.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the '
                     'last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
    return chains, rules + svc_rules + nodeport_rules + ext_rules + sep_rules, filter_rules


def _spread(ex: Example, chain: str, spn: str, proto: str, target: int, eps: list[str]) -> list[str]:
    """kube-proxy's statistic-random spread of ``chain`` over the endpoints ``eps`` (1/n, 1/(n-1), …)."""
    out = []
    for k, ep in enumerate(eps):
        endpoint = f"{ep}:{target}"
        sep = "KUBE-SEP-" + kp_hash(spn + proto + endpoint)
        left = len(eps) - k
        prob = f" -m statistic --mode random --probability {1 / left:.11f}" if left > 1 else ""
        out.append(f'-A {chain} -m comment --comment "{spn} -> {endpoint}"{prob} -j {sep}')
    return out


def agent_rules(ex: Example) -> tuple[list[str], str] | None:
    """The agent chain's rules and its POSTROUTING jump, as the engine renders them for the
    files the DaemonSet projects (read straight from the ConfigMaps, like the kubelet would)."""
    if ex.agent is None:
        return None
    sources = []
    cms = {c["metadata"]["name"]: c for c in ex.configmaps}
    for volume in ex.agent["spec"]["template"]["spec"]["volumes"]:
        for src in (volume.get("projected") or {}).get("sources", []):
            cm = cms.get(src["configMap"]["name"])
            if cm is None:
                continue
            for item in src["configMap"]["items"]:
                if item["key"] in cm["data"] and item["path"].startswith("ip-masq"):
                    sources.append(ConfigSource(item["path"], cm["data"][item["key"]].encode()))
    options = AgentOptions(flavor="azure-v2")
    rules = render(effective_config(sorted(sources, key=lambda s: s.name), options), options).ipv4
    return [r.text for r in rules.rules], rules.jump.text


def node_payload(ex: Example, node: NodeSpec) -> str:
    kp_chains, kp_rules, kp_filter = kube_proxy_nat(ex, node)
    nat_chains = list(kp_chains)
    nat_rules = list(kp_rules)
    if ex.swift_source:
        nat_chains.append("SWIFT-POSTROUTING")
        nat_rules.append("-A POSTROUTING -j SWIFT-POSTROUTING")
        for proto, dst, port in (("udp", WIRESERVER, 53), ("tcp", WIRESERVER, 53), ("tcp", IMDS, 80)):
            nat_rules.append(f"-A SWIFT-POSTROUTING -m addrtype ! --dst-type LOCAL -s {ex.swift_source} -d {dst} "
                             f"-p {proto} -m {proto} --dport {port} -j SNAT --to-source {node.ip}")
    agent = agent_rules(ex)
    if agent is not None:
        chain_rules, jump = agent
        nat_chains.append("IP-MASQ-AGENT")
        nat_rules.append(jump)
        nat_rules.extend(chain_rules)
    filter_chains = ["KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL", "KUBE-FORWARD", "KUBE-KUBELET-CANARY", "KUBE-NODEPORTS",
                     "KUBE-PROXY-CANARY", "KUBE-PROXY-FIREWALL", "KUBE-SERVICES"]
    filter_rules = [
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        ('-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" '
         "-j KUBE-EXTERNAL-SERVICES"),
        "-A INPUT -j KUBE-FIREWALL",
        f"-A FORWARD -d {WIRESERVER}/32 -p tcp -m tcp --dport 32526 -j DROP",
        f"-A FORWARD -d {WIRESERVER}/32 -p tcp -m tcp --dport 80 -j DROP",
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        ('-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" '
         "-j KUBE-EXTERNAL-SERVICES"),
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        "-A OUTPUT -j KUBE-FIREWALL",
        ('-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" '
         "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"),
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
        ('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate '
         "RELATED,ESTABLISHED -j ACCEPT"),
        *kp_filter,
    ]
    mangle_chains = ["KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"]
    mangle_rules = [f"-A FORWARD -d {WIRESERVER}/32 -p tcp -m tcp --dport 80 -j DROP",
                    f"-A FORWARD -d {WIRESERVER}/32 -p tcp -m tcp --dport 32526 -j DROP"]
    security_rules = [f"-A OUTPUT -d {WIRESERVER}/32 -p tcp -m tcp --dport 53 -j ACCEPT",
                      f"-A OUTPUT -d {WIRESERVER}/32 -p tcp -m owner --uid-owner 0 -j ACCEPT",
                      f"-A OUTPUT -d {WIRESERVER}/32 -p tcp -m conntrack --ctstate INVALID,NEW -j DROP"]

    def table(name: str, builtins: list[str], chains: list[str], rules: list[str]) -> str:
        lines = [f"*{name}", *(f":{c} ACCEPT [0:0]" for c in builtins), *(f":{c} - [0:0]" for c in chains), *rules,
                 "COMMIT"]
        return "\n".join(lines) + "\n"

    return (table("mangle", ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"], mangle_chains, mangle_rules)
            + table("filter", ["INPUT", "FORWARD", "OUTPUT"], filter_chains, filter_rules)
            + table("nat", ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"], nat_chains, nat_rules)
            + table("security", ["INPUT", "FORWARD", "OUTPUT"], [], security_rules))


def capture(ex: Example, node: NodeSpec) -> tuple[str, str]:
    """(iptables-save, ip -o addr) of ``node``, from a scratch namespace holding its tables."""
    ns = f"mqex{os.getpid() % 10000}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        def run(*args: str, input: str | None = None) -> str:
            r = subprocess.run(["ip", "netns", "exec", ns, *args], input=input, capture_output=True, text=True,
                               check=False)
            if r.returncode != 0:
                raise RuntimeError(f"{' '.join(args)}: {r.stderr}")
            return r.stdout

        run("ip", "link", "set", "lo", "up")
        run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "azure0p")
        run("ip", "addr", "add", f"{node.ip}/{node.prefix}", "dev", "eth0")
        run("ip", "link", "set", "azure0p", "up")
        run("ip", "link", "set", "eth0", "up")
        if ex.bridge and node.pod_cidr:
            gw = node.pod_cidr.replace(".0/24", ".1/24")
            run("ip", "link", "add", ex.bridge, "type", "bridge")
            run("ip", "addr", "add", gw, "dev", ex.bridge)
            run("ip", "link", "set", ex.bridge, "up")
        run("iptables-restore", "-w", input=node_payload(ex, node))
        return run("iptables-save"), run("ip", "-4", "-o", "addr")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


# =========================================================================== the bundle


def raw_cluster(ex: Example, captures: dict[str, NodeCapture]) -> RawCluster:
    return RawCluster(
        configmaps=configmaps(ex), daemonsets=daemonsets(ex), pods=pods(ex), nodes=nodes(ex),
        services=services(ex), endpointslices=endpointslices(ex), aks=aks(ex),
        vnets={ex.vnet["name"]: ex.vnet}, captures=captures,
        manifest={"collected_at": ex.collected_at, "source": f"context {ex.cluster}",
                  "example": "rebuilt from the seed reports by tests/cluster/examplegen.py; see README.md"},
        source=f"context {ex.cluster}",
    )


def generate(name: str, examples_dir: str) -> str:
    ex = example(name)
    captures = {}
    for i, node in enumerate(ex.nodes):
        dump, addrs = capture(ex, node)
        via = f"agent-pod/{ex.agent_pod_names[i]}" if ex.agent is not None else "debug-pod/masqctl-capture"
        captures[node.name] = NodeCapture(node.name, iptables_save=dump, ip_addr=addrs, captured_at=ex.collected_at,
                                          via=via, backend="nft")
    target = os.path.join(examples_dir, name)
    readme = None
    if os.path.exists(os.path.join(target, "README.md")):
        with open(os.path.join(target, "README.md"), encoding="utf-8") as fh:
            readme = fh.read()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(name)}.", dir=os.path.dirname(target))
    os.rmdir(tmp)
    write_bundle(raw_cluster(ex, captures), tmp)
    if readme is not None:
        with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as fh:
            fh.write(readme)
    if os.path.exists(target):
        shutil.rmtree(target)
    os.rename(tmp, target)
    return target


def refresh(name: str, examples_dir: str) -> str:
    """Rewrite an example's documents from the description above, keeping its committed node
    captures (no root needed: for a change to the Kubernetes or Azure documents only)."""
    from masqctl.cluster.bundle import read_bundle

    ex = example(name)
    target = os.path.join(examples_dir, name)
    old = read_bundle(target)
    with open(os.path.join(target, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(name)}.", dir=os.path.dirname(target))
    os.rmdir(tmp)
    raw = raw_cluster(ex, old.captures)
    raw.configmaps = old.configmaps          # the CA certificate as committed
    write_bundle(raw, tmp)
    with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as fh:
        fh.write(readme)
    shutil.rmtree(target)
    os.rename(tmp, target)
    return target


def main(argv: list[str]) -> int:
    if argv[:1] == ["--documents-only"]:
        for name in argv[1:] or NAMES:
            print(refresh(name, os.path.join(ROOT, "examples")))
        return 0
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 1
    for name in argv or NAMES + FLEET_NAMES:
        print(generate(name, os.path.join(ROOT, "examples")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
