#!/usr/bin/env python3
"""Benchmark: `masqctl inspect` on a fleet-size bundle vs the kernel tool parsing the same dumps.

Generates a bundle of N AKS nodes (Azure CNI node subnet, the AKS-managed azure-ip-masq-agent
with the reconciled and a user ConfigMap, a peered hub VNet). Each node has a full
``iptables-save``: mangle, filter and a kube-proxy (iptables mode) nat table with S ClusterIP
Services (``bench/kube_proxy_table.py``; S=1000 x 4 endpoints is about 20k lines per node),
AKS's agent chain with its RETURN rules in a per-node random order (the Go agent writes its
CIDRs in map order) and the jump with the quoted comment AKS writes. What differs between
healthy nodes is what differs on a real fleet: the chain counters, the timestamps, the node's
IP (in the filter table, and with ``--nodeport-addresses`` also in nat, as kube-proxy writes
with ``--nodeport-addresses``) and the RETURN order. A few nodes drift: a RETURN missing, the
jump missing or duplicated, a Calico-style masquerade before the jump, iptables-legacy tables
present, a capture cut short mid-line, a node without a capture. ``nodes.yaml``, ``pods.yaml``
(an agent pod and ~30 workload pods per node, shaped like ``kubectl get pods -A -o yaml``),
ConfigMaps, DaemonSets, ``aks.json`` and the VNets complete the bundle.

Then it times, in the same run:

* in a fresh Python process: ``read_bundle`` → ``build_snapshot`` → ``inspect`` → ``to_dict`` +
  ``json.dumps``, each phase, and the process's peak RSS;
* the CLI end to end: ``masqctl inspect --bundle DIR -o json`` as a subprocess (start-up
  included), with its peak RSS;
* the reference: the real ``iptables-restore --test`` (parse and validate only, nothing
  committed; in a throw-away network namespace, so root and iproute2 are needed) on ONE
  healthy node's full dump, best of R, times N — what the kernel's own tool spends just parsing
  the N dumps once. Also the time to read the bundle's bytes from disk (the floor of any tool).

Prints each figure, the ratio CLI / reference (below 1.0: inspecting the fleet costs less than
the kernel tool needs just to parse its dumps), and a one-line summary.

    sudo python3 bench/inspect.py [--nodes 500] [--services 1000] [--endpoints 4]
                                  [--workloads 30] [--repeat 3] [--nodeport-addresses] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# This file is named like the standard library's ``inspect``: keep its folder at the end of sys.path
# so that ``import inspect`` (dataclasses, typing…) gets the real one, and load the table generator
# by path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE] + [HERE]

from timing import load_bench  # noqa: E402

generate = load_bench("kube_proxy_table").generate

SUB = "3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c"
RG = "rg-fleet"
NRG = "MC_rg-fleet_aks-fleet_westeurope"
VNET = "aks-vnet-27182818"
VNET_ID = f"/subscriptions/{SUB}/resourceGroups/{NRG}/providers/Microsoft.Network/virtualNetworks/{VNET}"
HUB_ID = f"/subscriptions/{SUB}/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/hub-vnet"
AGENT_IMAGE = "mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2"
RECONCILED = ("10.224.0.0/16", "10.0.0.0/16", "10.224.0.0/12")
USER = ("10.200.0.0/16",)                      # the peered hub VNet
JUMP = ('-A POSTROUTING -m comment --comment "\\"ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL '
        'destination traffic to our custom IP-MASQ-AGENT chain\\"" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT')
RETURN = '-A IP-MASQ-AGENT -d {} -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN'
MASQ = ('-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE '
        '(must be last in chain)" -j MASQUERADE')
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# the drifted nodes: index -> what is wrong there (indices are spread over the fleet)
DRIFTS = ("missing-return", "missing-return", "no-jump", "two-jumps", "calico-before", "legacy-tables",
          "cut-short", "no-capture")


def node_name(i: int) -> str:
    return f"aks-nodepool1-27182818-vmss{i:06x}"


def node_ip(i: int) -> str:
    return f"10.224.{(4 + i * 32) // 256}.{(4 + i * 32) % 256}"


def pod_ip(i: int, k: int) -> str:
    n = 4 + i * 32 + 1 + k
    return f"10.224.{n // 256}.{n % 256}"


# =========================================================================== node dumps


def _mangle(rnd: random.Random) -> list[str]:
    c = lambda: f"[{rnd.randrange(10**6)}:{rnd.randrange(10**9)}]"  # noqa: E731
    return ["*mangle", f":PREROUTING ACCEPT {c()}", f":INPUT ACCEPT {c()}", f":FORWARD ACCEPT {c()}",
            f":OUTPUT ACCEPT {c()}", f":POSTROUTING ACCEPT {c()}", ":KUBE-IPTABLES-HINT - [0:0]",
            ":KUBE-KUBELET-CANARY - [0:0]", ":KUBE-PROXY-CANARY - [0:0]",
            "-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 80 -j DROP",
            "-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 32526 -j DROP", "COMMIT"]


def _filter(rnd: random.Random, ip: str, services: int) -> list[str]:
    c = lambda: f"[{rnd.randrange(10**6)}:{rnd.randrange(10**9)}]"  # noqa: E731
    out = ["*filter", f":INPUT ACCEPT {c()}", f":FORWARD ACCEPT {c()}", f":OUTPUT ACCEPT {c()}"]
    out += [f":{n} - [0:0]" for n in ("KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL", "KUBE-FORWARD",
                                      "KUBE-KUBELET-CANARY", "KUBE-NODEPORTS", "KUBE-PROXY-CANARY",
                                      "KUBE-PROXY-FIREWALL", "KUBE-SERVICES")]
    out += [
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
        "-j KUBE-PROXY-FIREWALL",
        '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" '
        "-j KUBE-EXTERNAL-SERVICES",
        "-A INPUT -j KUBE-FIREWALL",
        # a node-specific rule: the node's own address (stands for the per-node rules a fleet has)
        f"-A INPUT -d {ip}/32 -p tcp -m tcp --dport 10250 -j ACCEPT",
        "-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 32526 -j DROP",
        "-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 80 -j DROP",
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        "-A OUTPUT -j KUBE-FIREWALL",
        '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet '
        'connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
    ]
    # LoadBalancer services with externalTrafficPolicy Local: their health-check node ports
    for s in range(0, services, 10):
        out.append(f'-A KUBE-NODEPORTS -p tcp -m comment --comment "ns{s % 97}/svc-{s}:http health check node '
                   f'port" -m tcp --dport {30000 + s % 2700} -j ACCEPT')
    out.append("COMMIT")
    return out


class Fleet:
    """The nat template (generated once) and the per-node variations."""

    def __init__(self, services: int, endpoints: int, nodeport_addresses: bool):
        self.services = services
        self.nodeport_addresses = nodeport_addresses
        nat = generate(services, endpoints, agent_chain=False).splitlines()
        start = nat.index("*nat")
        end = nat.index("COMMIT")
        body = nat[start + 1:end]
        self.decls = [line for line in body if line.startswith(":") and " ACCEPT " not in line]
        self.decls.append(":IP-MASQ-AGENT - [0:0]")
        rules = [line for line in body if line.startswith("-A ")]
        self.nodeports = next(r for r in rules if "KUBE-NODEPORTS" in r and r.startswith("-A KUBE-SERVICES"))
        i = rules.index(self.nodeports)
        self.pre, self.post = rules[:i], rules[i + 1:]
        self.cidrs = list(RECONCILED) + list(USER)

    def dump(self, i: int, drift: str | None) -> str | None:
        if drift == "no-capture":
            return None
        rnd = random.Random(i)
        ip = node_ip(i)
        c = lambda: f"[{rnd.randrange(10**6)}:{rnd.randrange(10**9)}]"  # noqa: E731
        stamp = f"{DAYS[i % 7]} Nov {10 + i % 18} {i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d} 2026"
        head = f"# Generated by iptables-save v1.8.9 (nf_tables) on {stamp}"
        out = [head]
        if drift == "legacy-tables":
            out.append("# Warning: iptables-legacy tables present, use iptables-legacy-save to see them")
        out += _mangle(rnd) + [f"# Completed on {stamp}", head] + _filter(rnd, ip, self.services) + \
            [f"# Completed on {stamp}", head]
        out += ["*nat", f":PREROUTING ACCEPT {c()}", f":INPUT ACCEPT {c()}", f":OUTPUT ACCEPT {c()}",
                f":POSTROUTING ACCEPT {c()}"]
        out += self.decls
        pre = list(self.pre)
        # POSTROUTING: kube-proxy's rule first (in self.pre), then the agent's jump
        at = next(k for k, r in enumerate(pre) if r.startswith("-A POSTROUTING")) + 1
        jumps = {"no-jump": 0, "two-jumps": 2}.get(drift, 1)
        extra = []
        if drift == "calico-before":
            out.append(":cali-nat-outgoing - [0:0]")
            extra = ['-A POSTROUTING -m comment --comment "cali:nYKhEzDlr11Jccal" -j cali-nat-outgoing']
        pre[at:at] = extra + [JUMP] * jumps
        out += pre
        if self.nodeport_addresses:
            out.append(f'-A KUBE-SERVICES -d {ip}/32 -m comment --comment "kubernetes service nodeports; NOTE: '
                       'this must be the last rule in this chain" -j KUBE-NODEPORTS')
        else:
            out.append(self.nodeports)
        out += self.post
        cidrs = list(self.cidrs)
        if drift == "missing-return":
            cidrs.remove("10.0.0.0/16")
        rnd.shuffle(cidrs)                  # the Go agent's map order
        out += [RETURN.format(x) for x in cidrs] + [MASQ]
        if drift == "calico-before":
            out.append('-A cali-nat-outgoing -m comment --comment "cali:flqWnvo8yq4ULQLa" -m set --match-set '
                       'cali40masq-ipam-pools src -m set ! --match-set cali40all-ipam-pools dst -j MASQUERADE '
                       "--random-fully")
        out += ["COMMIT", f"# Completed on {stamp}"]
        text = "\n".join(out) + "\n"
        if drift == "cut-short":
            cut = text.index("-A KUBE-SVC-")      # the capture stopped mid-line (a full disk, a killed exec)
            text = text[:cut] + '-A KUBE-SVC-0000000000000007 -m comment --comment "ns7/svc-7:http -> 10.2'
        return text


def ip_addr(i: int) -> str:
    return (f"1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
            f"2: eth0    inet {node_ip(i)}/16 metric 100 brd 10.224.255.255 scope global eth0\\       "
            "valid_lft forever preferred_lft forever\n")


# =========================================================================== Kubernetes and Azure documents


def _meta(name: str, namespace: str | None, labels: dict, i: int, **extra) -> dict:
    m = {"creationTimestamp": "2026-11-01T08:00:00Z", "labels": labels, "name": name,
         "resourceVersion": str(100000 + i), "uid": f"0b1c2d3e-{i:04x}-4f5a-8b9c-{i:012x}"}
    if namespace:
        m["namespace"] = namespace
    m.update(extra)
    return m


def kube_node(i: int) -> dict:
    name = node_name(i)
    labels = {"agentpool": "nodepool1", "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
              "kubernetes.azure.com/agentpool": "nodepool1", "kubernetes.azure.com/cluster": NRG,
              "kubernetes.azure.com/mode": "system", "kubernetes.azure.com/network-subnet": "aks-subnet",
              "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
              "node.kubernetes.io/instance-type": "Standard_D4ds_v5", "topology.kubernetes.io/region": "westeurope",
              "topology.kubernetes.io/zone": f"westeurope-{1 + i % 3}"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": _meta(name, None, labels, i),
            "spec": {"providerID": f"azure:///subscriptions/{SUB}/resourceGroups/{NRG}/providers/Microsoft.Compute/"
                                   f"virtualMachineScaleSets/aks-nodepool1-27182818-vmss/virtualMachines/{i}"},
            "status": {"addresses": [{"address": node_ip(i), "type": "InternalIP"},
                                     {"address": name, "type": "Hostname"}],
                       "allocatable": {"cpu": "3860m", "memory": "12881008Ki", "pods": "250"},
                       "conditions": [{"lastHeartbeatTime": "2026-11-22T05:00:00Z", "message": "kubelet is posting "
                                       "ready status", "reason": "KubeletReady", "status": "True", "type": "Ready"}],
                       "nodeInfo": {"architecture": "amd64", "containerRuntimeVersion": "containerd://1.7.22-1",
                                    "kernelVersion": "5.15.0-1074-azure", "kubeProxyVersion": "v1.31.2",
                                    "kubeletVersion": "v1.31.2", "operatingSystem": "linux",
                                    "osImage": "Ubuntu 22.04.5 LTS"}}}


def pod(i: int, k: int, name: str, namespace: str, node: str, ip: str, *, image: str, owner: tuple[str, str],
        host_network: bool = False, restarts: int = 0, labels: dict | None = None) -> dict:
    container = {"image": image, "imagePullPolicy": "IfNotPresent", "name": name.rsplit("-", 2)[0],
                 "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                 "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "50m", "memory": "64Mi"}},
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                 "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                                   "name": "kube-api-access", "readOnly": True}]}
    conds = [{"lastProbeTime": None, "lastTransitionTime": "2026-11-01T08:01:00Z", "status": "True", "type": t}
             for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
    kind, oname = owner
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": _meta(name, namespace, labels or {"app": name.rsplit("-", 2)[0]}, i * 64 + k,
                              generateName=name.rsplit("-", 1)[0] + "-",
                              ownerReferences=[{"apiVersion": "apps/v1", "blockOwnerDeletion": True,
                                                "controller": True, "kind": kind, "name": oname,
                                                "uid": f"9a8b7c6d-{k:04x}-4e5f-8a9b-0c1d2e3f4a5b"}]),
            "spec": {"containers": [container], "dnsPolicy": "ClusterFirst", "enableServiceLinks": True,
                     "hostNetwork": host_network, "nodeName": node, "preemptionPolicy": "PreemptLowerPriority",
                     "priority": 0, "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
                     "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready",
                                      "operator": "Exists", "tolerationSeconds": 300}],
                     "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                         {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}]},
            "status": {"conditions": conds,
                       "containerStatuses": [{"containerID": f"containerd://{i:032x}{k:032x}", "image": image,
                                              "imageID": image + "@sha256:" + "ab" * 32, "lastState": {},
                                              "name": container["name"], "ready": True, "restartCount": restarts,
                                              "started": True,
                                              "state": {"running": {"startedAt": "2026-11-01T08:01:00Z"}}}],
                       "hostIP": node_ip(i), "hostIPs": [{"ip": node_ip(i)}], "phase": "Running", "podIP": ip,
                       "podIPs": [{"ip": ip}], "qosClass": "Burstable", "startTime": "2026-11-01T08:00:30Z"}}


def daemonsets(n: int) -> list[dict]:
    sel = {"k8s-app": "azure-ip-masq-agent", "tier": "node"}
    agent = {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": _meta("azure-ip-masq-agent", "kube-system", {"component": "azure-ip-masq-agent",
                          "kubernetes.azure.com/managedby": "aks", "tier": "node"}, 1),
        "spec": {"selector": {"matchLabels": dict(sel)}, "template": {
            "metadata": {"labels": dict(sel)},
            "spec": {"hostNetwork": True, "nodeSelector": {"kubernetes.io/os": "linux"},
                     "containers": [{"name": "azure-ip-masq-agent", "image": AGENT_IMAGE,
                                     "args": ["--v=2", "--resync-interval=60"],
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
                         {"name": "iptableslock", "hostPath": {"path": "/run/xtables.lock",
                                                               "type": "FileOrCreate"}}]}}},
        "status": {"currentNumberScheduled": n, "desiredNumberScheduled": n, "numberReady": n - 1}}
    proxy = {"apiVersion": "apps/v1", "kind": "DaemonSet",
             "metadata": _meta("kube-proxy", "kube-system", {"component": "kube-proxy", "tier": "node"}, 2),
             "spec": {"selector": {"matchLabels": {"component": "kube-proxy"}}, "template": {
                 "metadata": {"labels": {"component": "kube-proxy"}},
                 "spec": {"hostNetwork": True, "containers": [{
                     "name": "kube-proxy", "image": "mcr.microsoft.com/oss/kubernetes/kube-proxy:v1.31.2",
                     "command": ["kube-proxy", "--conntrack-max-per-core=0", "--metrics-bind-address=0.0.0.0:10249",
                                 "--cluster-cidr=10.224.0.0/16", "--v=3"]}]}}},
             "status": {"currentNumberScheduled": n, "desiredNumberScheduled": n, "numberReady": n}}
    return [agent, proxy]


def configmaps() -> list[dict]:
    def cm(name, data, i, labels=None):
        return {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                "metadata": _meta(name, "kube-system", labels or {}, i)}
    reconciled = "nonMasqueradeCIDRs:\n" + "".join(f"  - {c}\n" for c in RECONCILED) + "masqLinkLocal: true\n"
    user = "nonMasqueradeCIDRs:\n" + "".join(f"  - {c}\n" for c in USER) + "masqLinkLocal: true\n"
    return [
        cm("azure-ip-masq-agent-config-reconciled", {"ip-masq-agent-reconciled": reconciled}, 11,
           {"component": "ip-masq-agent", "kubernetes.io/cluster-service": "true"}),
        cm("azure-ip-masq-agent-config", {"ip-masq-agent": user}, 12,
           {"addonmanager.kubernetes.io/mode": "EnsureExists"}),
        cm("coredns", {"Corefile": ".:53 {\n    errors\n    ready\n    kubernetes cluster.local in-addr.arpa "
                       "ip6.arpa {\n      pods insecure\n      fallthrough in-addr.arpa ip6.arpa\n    }\n    "
                       "forward . /etc/resolv.conf\n    cache 30\n}\n"}, 13),
        cm("kube-root-ca.crt", {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIE6DCCAtCgAwIBAgIQ\n"
                                "-----END CERTIFICATE-----\n"}, 14),
    ]


def aks(n: int) -> dict:
    return {"id": f"/subscriptions/{SUB}/resourcegroups/{RG}/providers/Microsoft.ContainerService/managedClusters/"
                  "aks-fleet", "name": "aks-fleet", "resourceGroup": RG, "location": "westeurope",
            "nodeResourceGroup": NRG, "kubernetesVersion": "1.31.2",
            "networkProfile": {"networkPlugin": "azure", "networkPluginMode": None, "networkPolicy": None,
                               "networkDataplane": "azure", "podCidr": None, "podCidrs": None,
                               "serviceCidr": "10.0.0.0/16", "serviceCidrs": ["10.0.0.0/16"],
                               "dnsServiceIp": "10.0.0.10", "ipFamilies": ["IPv4"], "outboundType": "loadBalancer"},
            "agentPoolProfiles": [{"name": "nodepool1", "count": n, "osType": "Linux", "mode": "System",
                                   "vnetSubnetId": None}]}


def vnet() -> dict:
    return {"name": VNET, "id": VNET_ID, "resourceGroup": NRG, "location": "westeurope",
            "addressSpace": {"addressPrefixes": ["10.224.0.0/12"]},
            "subnets": [{"name": "aks-subnet", "id": f"{VNET_ID}/subnets/aks-subnet",
                         "addressPrefix": "10.224.0.0/16"}],
            "virtualNetworkPeerings": [{
                "name": "to-hub", "peeringState": "Connected", "peeringSyncLevel": "FullyInSync",
                "remoteVirtualNetwork": {"id": HUB_ID}, "remoteAddressSpace": {"addressPrefixes": ["10.200.0.0/16"]},
                "remoteVirtualNetworkAddressSpace": {"addressPrefixes": ["10.200.0.0/16"]},
                "allowForwardedTraffic": False, "allowGatewayTransit": False, "useRemoteGateways": True}]}


def drift_plan(n: int) -> dict[int, str]:
    """Which node drifts how: spread over the fleet (none when the fleet is tiny)."""
    if n < 2 * len(DRIFTS):
        return {}
    step = n // len(DRIFTS)
    return {k * step + step // 2: d for k, d in enumerate(DRIFTS)}


def write_bundle_dir(out: str, n: int, services: int, endpoints: int, workloads: int,
                     nodeport_addresses: bool, json_documents: bool = False) -> dict:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    def dump(path: str, items: list) -> None:
        doc = {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
        with open(path, "w") as fh:
            if json_documents:      # kubectl get … -o json (the bundle reader takes either)
                json.dump(doc, fh, indent=4)
            else:
                yaml.dump(doc, fh, Dumper=dumper, default_flow_style=False, sort_keys=True, width=1 << 16)

    plan = drift_plan(n)
    fleet = Fleet(services, endpoints, nodeport_addresses)
    os.makedirs(os.path.join(out, "nodes"))
    os.makedirs(os.path.join(out, "vnets"))
    reference = None
    for i in range(n):
        name = node_name(i)
        text = fleet.dump(i, plan.get(i))
        folder = os.path.join(out, "nodes", name)
        os.makedirs(folder)
        with open(os.path.join(folder, "ip-addr.txt"), "w") as fh:
            fh.write(ip_addr(i))
        if text is None:
            continue
        with open(os.path.join(folder, "iptables-save.txt"), "w") as fh:
            fh.write(text)
        if reference is None and i not in plan:
            reference = os.path.join(folder, "iptables-save.txt")
    pods = []
    for i in range(n):
        name = node_name(i)
        restarts = 3 if i == 1 else 0
        pods.append(pod(i, 0, f"azure-ip-masq-agent-{i:05x}", "kube-system", name, node_ip(i), image=AGENT_IMAGE,
                        owner=("DaemonSet", "azure-ip-masq-agent"), host_network=True, restarts=restarts,
                        labels={"k8s-app": "azure-ip-masq-agent", "tier": "node"}))
        for k in range(workloads):
            app = f"app{(i * workloads + k) % 211}"
            pods.append(pod(i, k + 1, f"{app}-6d9f7b8c5d-{i:04x}{k:02x}", f"team{k % 7}", name, pod_ip(i, k),
                            image=f"acr.example.azurecr.io/{app}:1.{k % 9}", owner=("ReplicaSet", f"{app}-6d9f7b8c5d")))
    dump(os.path.join(out, "pods.yaml"), pods)
    dump(os.path.join(out, "nodes.yaml"), [kube_node(i) for i in range(n)])
    dump(os.path.join(out, "daemonsets.yaml"), daemonsets(n))
    dump(os.path.join(out, "configmaps.yaml"), configmaps())
    with open(os.path.join(out, "aks.json"), "w") as fh:
        json.dump(aks(n), fh, indent=2)
    with open(os.path.join(out, "vnets", f"{VNET}.json"), "w") as fh:
        json.dump(vnet(), fh, indent=2)
    return {"reference": reference, "drifted": {node_name(i): d for i, d in plan.items()}}


# =========================================================================== measuring

# Run in a fresh interpreter: phases of the in-process pipeline and the peak RSS of that process.
MEASURE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from masqctl.cluster.bundle import read_bundle
from masqctl.cluster.build import build_snapshot
from masqctl.analysis.inspect import inspect
t1 = time.perf_counter()
raw = read_bundle(sys.argv[1])
t2 = time.perf_counter()
snap = build_snapshot(raw)
del raw
t3 = time.perf_counter()
report = inspect(snap)
t4 = time.perf_counter()
doc = json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
t5 = time.perf_counter()
groups = [(g["state"], g["count"]) for g in report.to_dict()["nodes"]["groups"]]
print(json.dumps({"import": t1 - t0, "read_bundle": t2 - t1, "build_snapshot": t3 - t2, "inspect": t4 - t3,
                  "render_json": t5 - t4, "total": t5 - t1, "json_bytes": len(doc), "groups": groups,
                  "findings": sorted({f.code for f in report.findings}),
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def rss_of(cmd: list[str], env: dict) -> tuple[float, float, str, str, int]:
    """Run ``cmd``; (seconds, peak RSS MiB of that child alone, stdout, stderr, status)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    # read stdout/stderr fully, then reap with wait4 to get this child's own rusage
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    chunks = {proc.stdout: [], proc.stderr: []}
    while sel.get_map():
        for key, _ in sel.select():
            data = os.read(key.fd, 1 << 20)
            if not data:
                sel.unregister(key.fileobj)
            else:
                chunks[key.fileobj].append(data)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - t0
    out, err = b"".join(chunks[proc.stdout]), b"".join(chunks[proc.stderr])
    return elapsed, usage.ru_maxrss / 1024, out.decode(), err.decode(), proc.returncode


def read_bytes(folder: str) -> tuple[float, int]:
    """Seconds to read every file of the bundle (the floor of any tool), and the bytes."""
    t0 = time.perf_counter()
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                total += len(fh.read())
    return time.perf_counter() - t0, total


def restore_test(path: str, repeat: int) -> float:
    """Best-of-``repeat`` seconds of ``iptables-restore --test`` on one dump, in a scratch netns."""
    ns = f"mqinspect{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "--test", path],
                               capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise SystemExit(f"iptables-restore --test failed ({r.returncode}): {r.stderr.strip()[:500]}")
        return min(times)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=4)
    ap.add_argument("--workloads", type=int, default=30, help="workload pods per node")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best time of each measurement is kept")
    ap.add_argument("--nodeport-addresses", action="store_true",
                    help="kube-proxy --nodeport-addresses: every node's nat table names its own IP (no two alike)")
    ap.add_argument("--json", action="store_true",
                    help="write configmaps/daemonsets/pods/nodes.yaml as `kubectl get … -o json` (default: -o yaml)")
    ap.add_argument("--keep", metavar="DIR", help="write the bundle to DIR (new) and keep it")
    ap.add_argument("--bundle", metavar="DIR", help="measure an existing bundle written by --keep")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.nodes < 1 or args.services < 1 or args.endpoints < 1 or args.repeat < 1:
        ap.error("--nodes, --services, --endpoints and --repeat must be at least 1")

    tmp = None
    if args.bundle:
        folder = args.bundle
        info = json.load(open(os.path.join(folder, "bench.json")))
    else:
        if args.keep:
            folder = args.keep
            os.makedirs(folder)
        else:
            tmp = tempfile.mkdtemp(prefix="masqctl-bench-inspect-")
            folder = os.path.join(tmp, "bundle")
            os.makedirs(folder)
        if not args.generate_only:
            # generated in a child of its own: a child forked from a process holding the generated
            # gigabyte would count that process's pages in its own peak RSS
            cmd = [sys.executable, os.path.abspath(__file__), "--generate-only", "--keep", folder,
                   "--nodes", str(args.nodes), "--services", str(args.services),
                   "--endpoints", str(args.endpoints), "--workloads", str(args.workloads)]
            cmd += ["--nodeport-addresses"] * args.nodeport_addresses + ["--json"] * args.json
            os.rmdir(folder)
            subprocess.run(cmd, check=True)
            info = json.load(open(os.path.join(folder, "bench.json")))
        else:
            t0 = time.perf_counter()
            info = write_bundle_dir(folder, args.nodes, args.services, args.endpoints, args.workloads,
                                    args.nodeport_addresses, args.json)
            info["options"] = {k: getattr(args, k) for k in ("services", "endpoints", "workloads",
                                                             "nodeport_addresses", "json")}
            info["generated_s"] = time.perf_counter() - t0
            with open(os.path.join(folder, "bench.json"), "w") as fh:
                json.dump(info, fh)
            return 0
    try:
        n = sum(1 for _ in os.scandir(os.path.join(folder, "nodes")))
        ref_dump = info["reference"]
        with open(ref_dump) as fh:
            ref_lines = sum(1 for _ in fh)
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        best: dict[str, float] = {}
        rss: dict[str, float] = {}
        phases = None
        for _ in range(args.repeat):
            t_read, size = read_bytes(folder)
            best["read"] = min(best.get("read", t_read), t_read)
            el, peak, out, err, code = rss_of([sys.executable, "-c", MEASURE, folder], env)
            if code != 0:
                raise SystemExit(f"in-process measurement failed ({code}):\n{err[-3000:]}")
            m = json.loads(out)
            if phases is None or m["total"] < phases["total"]:
                phases = m
            rss["inproc"] = max(rss.get("inproc", 0), peak)
            el, peak, out, err, code = rss_of([sys.executable, "-m", "masqctl.cli.main", "inspect", "--bundle",
                                               folder, "-o", "json"], env)
            if code not in (0, 1):
                raise SystemExit(f"masqctl inspect failed ({code}):\n{err[-3000:]}")
            doc = json.loads(out)
            best["cli"] = min(best.get("cli", el), el)
            rss["cli"] = max(rss.get("cli", 0), peak)
        t_restore = restore_test(ref_dump, args.repeat)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    opts = info.get("options") or {k: getattr(args, k) for k in ("services", "endpoints", "workloads",
                                                                  "nodeport_addresses", "json")}
    reference = t_restore * n
    groups = ", ".join(f"{g['count']} {g['state']}" for g in doc["nodes"]["groups"])
    print(f"bundle: {n} nodes, {size / 2**20:.0f} MiB; one node's iptables-save: {ref_lines} lines "
          f"({opts['services']} services x {opts['endpoints']} endpoints"
          f"{', node IP in nat' if opts['nodeport_addresses'] else ''}); {opts['workloads']} workload pods per node "
          f"({'kubectl -o json' if opts['json'] else 'kubectl -o yaml'})")
    print(f"node groups: {groups}; findings: {', '.join(sorted({f['code'] for f in doc['findings']}))}")
    print(f"reading the bundle's bytes            {best['read']:8.3f} s")
    print(f"iptables-restore --test, one node      {t_restore:8.3f} s   x {n} nodes = {reference:.3f} s (reference)")
    print(f"in-process (best of {args.repeat}):  read_bundle {phases['read_bundle']:.3f} s, build_snapshot "
          f"{phases['build_snapshot']:.3f} s, inspect {phases['inspect']:.3f} s, JSON {phases['render_json']:.3f} s"
          f" = {phases['total']:.3f} s; peak RSS {rss['inproc']:.0f} MiB")
    print(f"masqctl inspect --bundle -o json (CLI) {best['cli']:8.3f} s   peak RSS {rss['cli']:.0f} MiB")
    print(f"ratio CLI / reference: {best['cli'] / reference:.3f}   (inspect of {n} nodes costs "
          f"{best['cli'] / reference:.2f}x what iptables-restore --test spends just parsing their dumps)")
    print(f"summary: inspect {n} nodes in {best['cli']:.2f} s (in-process {phases['total']:.2f} s, inspect "
          f"alone {phases['inspect']:.2f} s), peak RSS {rss['cli']:.0f} MiB, ratio {best['cli'] / reference:.3f} "
          f"vs iptables-restore --test x {n} ({reference:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
