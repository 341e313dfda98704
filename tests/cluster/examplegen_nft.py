"""Rebuild examples/kind-nftables (run as root: it loads the rules into a scratch namespace).

    python tests/cluster/examplegen_nft.py

A kind node whose masquerading lives in native nftables tables only: kube-proxy
``--proxy-mode=nftables`` (``table ip kube-proxy``: the golden rule set of kubernetes/kubernetes
pkg/proxy/nftables/proxier_test.go TestOverallNFTablesRules, tests/fixtures/nft/kube-proxy-overall.txt,
node IP 192.168.0.2 and pods 10.180.0.x as in that test) and kindnet's masquerade
(``table inet kindnet-ipmasq``: the table kubernetes-sigs/kindnet pkg/masq writes, the structure of
tests/fixtures/nft/kindnet-ipmasq.txt, with this cluster's pod range and node network as its
non-masquerade set). The node's ``nft-ruleset.json`` and ``ip-addr.txt`` are what ``nft -j list
ruleset`` and ``ip -o addr`` print in a namespace holding those tables and the node's address;
the Kubernetes documents are written here. ``spec()`` (no root) gives the documents.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "examples", "kind-nftables")
FIX = os.path.join(ROOT, "tests", "fixtures", "nft")
NODE = "kind-worker"
NODE_IP = "192.168.0.2"          # testNodeIP of proxier_test.go
POD_CIDR = "10.180.0.0/16"       # the endpoints of the golden rule set are 10.180.0.x
NODE_NET = "192.168.0.0/24"

KINDNET = """table inet kindnet-ipmasq {
\tset noMasqV4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { %s, %s }
\t}

\tset noMasqV6 {
\t\ttype ipv6_addr
\t\tflags interval
\t\tauto-merge
\t}

\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat - 10; policy accept;
\t\tct state established,related accept
\t\tfib daddr type local accept
\t\tip daddr @noMasqV4 accept
\t\tip6 daddr @noMasqV6 accept
\t\tcounter masquerade
\t}
}
""" % (POD_CIDR, NODE_NET)


def _pod(ns, name, ip, owner, node=NODE, host=False):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True, "uid": "u"}]},
            "spec": {"nodeName": node, "hostNetwork": host, "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0}]}}


def _ds(name, image, args):
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"k8s-app": name}}, "template": {"spec": {
                "hostNetwork": True, "containers": [{"name": name, "image": image, "command": [name], "args": args}]}}},
            "status": {"desiredNumberScheduled": 1, "numberReady": 1}}


def spec() -> dict[str, dict]:
    """The Kubernetes documents of the bundle (file name -> a kind: List)."""
    lst = lambda items: {"apiVersion": "v1", "kind": "List", "items": items}   # noqa: E731
    kp_conf = ("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\n"
               f"clusterCIDR: 10.0.0.0/8\n")
    return {
        "nodes.yaml": lst([{"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "labels": {
            "kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}},
            "spec": {"podCIDR": "10.180.0.0/24", "podCIDRs": ["10.180.0.0/24"]},
            "status": {"addresses": [{"type": "InternalIP", "address": NODE_IP},
                                     {"type": "Hostname", "address": NODE}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}]),
        "configmaps.yaml": lst([{"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                                 "data": {"config.conf": kp_conf}}]),
        "daemonsets.yaml": lst([_ds("kube-proxy", "registry.k8s.io/kube-proxy:v1.33.0",
                                    ["--config=/var/lib/kube-proxy/config.conf"]),
                                _ds("kindnet", "docker.io/kindest/kindnetd:v20250512-df8de77b", [])]),
        "pods.yaml": lst([_pod("kube-system", "kube-proxy-7x2kq", NODE_IP, ("DaemonSet", "kube-proxy"), host=True),
                          _pod("kube-system", "kindnet-9zq4d", NODE_IP, ("DaemonSet", "kindnet"), host=True),
                          _pod("ns1", "pod1", "10.180.0.1", ("ReplicaSet", "pod1-5b7c9d8f6")),
                          _pod("ns4", "pod4", "10.180.0.4", ("ReplicaSet", "pod4-6c8d7e9f0"))]),
    }


def _captures() -> dict[str, str]:
    ns = f"mqgen{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    run = lambda *a, **kw: subprocess.run(["ip", "netns", "exec", ns, *a], check=True, capture_output=True,  # noqa
                                          text=True, **kw)
    try:
        run("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        run("sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1")
        run("ip", "link", "set", "lo", "up")
        run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
        run("ip", "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        run("ip", "link", "set", "eth0", "up")
        with open(os.path.join(FIX, "kube-proxy-overall.txt")) as f:
            run("nft", "-f", "-", input=f.read())
        run("nft", "-f", "-", input=KINDNET)
        return {"nft-ruleset.json": run("nft", "-j", "list", "ruleset").stdout,
                "ip-addr.txt": run("ip", "-o", "addr").stdout}
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main() -> None:
    os.makedirs(os.path.join(OUT, "nodes", NODE), exist_ok=True)
    for name, doc in spec().items():
        with open(os.path.join(OUT, name), "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
    for name, text in _captures().items():
        with open(os.path.join(OUT, "nodes", NODE, name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
