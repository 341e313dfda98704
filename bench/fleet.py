#!/usr/bin/env python3
"""Benchmark: `masqctl inspect` of a fleet of clusters in one run vs each cluster inspected alone.

Generates K bundles of N nodes each with ``bench/inspect.py``'s generator (full node dumps, pods,
nodes, ConfigMaps, DaemonSets, ``aks.json``, the VNet with its peering), each cluster under its
own AKS name and in its own VNet space, the first one a hub peered with every other (both
directions), and ``services.yaml``/``endpointslices.yaml`` in each (ClusterIP Services and one
internal LoadBalancer Service with its endpoints), so the fleet checks have work to do.

Then it times, in the same run (best of R rounds, the commands interleaved):

* the fleet: ``masqctl inspect --bundle B1 … --bundle BK -o json`` (one process);
* the reference: ``masqctl inspect --bundle Bi -o json`` for each cluster (K processes), summed.

Prints both, and the ratio fleet / sum (the goal: at most 2.0).

    python3 bench/fleet.py [--clusters 5] [--nodes 200] [--services 300] [--repeat 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE] + [HERE]

from timing import best, load_bench  # noqa: E402


def _second_octet(k: int) -> int:
    return 224 + k * 16 if k < 2 else 16 + k * 16     # 10.224/12, 10.240/12, 10.48/12, …


def retarget(text: str, k: int) -> str:
    """A generated cluster's documents moved to cluster ``k``: its own AKS name and 10.x/12 space."""
    if k == 0:
        return text
    second = _second_octet(k)
    text = re.sub(r"\b10\.(22[4-9]|23[0-9])\.", lambda m: f"10.{second + int(m.group(1)) - 224}.", text)
    return text.replace("aks-fleet", f"aks-fleet-{k}").replace("aks-vnet-27182818", f"aks-vnet-2718281{k}")


def services_docs(k: int, n: int) -> tuple[dict, dict]:
    second = _second_octet(k)
    items, slices = [], []
    for s in range(40):
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": f"svc-{s}", "namespace": f"team{s % 7}"},
                      "spec": {"type": "ClusterIP", "clusterIP": f"10.0.{s // 250}.{10 + s % 250}",
                               "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                               "selector": {"app": f"app{s}"}}})
    items.append({"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx",
                               "annotations": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}},
                  "spec": {"type": "LoadBalancer", "clusterIP": "10.0.87.201", "externalTrafficPolicy": "Cluster",
                           "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443,
                                      "nodePort": 31785}],
                           "selector": {"app": "ingress-nginx"}},
                  "status": {"loadBalancer": {"ingress": [{"ip": f"10.{second}.255.10"}]}}})
    slices.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                   "metadata": {"name": "ingress-nginx-controller-abcde", "namespace": "ingress-nginx",
                                "labels": {"kubernetes.io/service-name": "ingress-nginx-controller"}},
                   "ports": [{"name": "https", "port": 443, "protocol": "TCP"}],
                   "endpoints": [{"addresses": [f"10.{second}.{(5 + i * 32) // 256}.{(5 + i * 32) % 256}"],
                                  "conditions": {"ready": True}, "nodeName": f"aks-nodepool1-27182818-vmss{i:06x}"}
                                 for i in range(min(n, 3))]})
    wrap = lambda xs: {"apiVersion": "v1", "kind": "List", "items": xs, "metadata": {"resourceVersion": ""}}  # noqa: E731
    return wrap(items), wrap(slices)


def peer(vnet: dict, name: str, remote_id: str, space: str) -> None:
    vnet.setdefault("virtualNetworkPeerings", []).append({
        "name": name, "peeringState": "Connected", "peeringSyncLevel": "FullyInSync",
        "remoteVirtualNetwork": {"id": remote_id}, "remoteAddressSpace": {"addressPrefixes": [space]},
        "remoteVirtualNetworkAddressSpace": {"addressPrefixes": [space]},
        "allowForwardedTraffic": True, "allowGatewayTransit": False, "useRemoteGateways": False})


def generate_fleet(root: str, clusters: int, nodes: int, services: int, endpoints: int, workloads: int) -> list[str]:
    bench = load_bench("inspect")
    base = os.path.join(root, "base")
    os.makedirs(base)
    bench.write_bundle_dir(base, nodes, services, endpoints, workloads, False)
    folders = []
    for k in range(clusters):
        out = os.path.join(root, f"cluster{k}")
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, base)
            os.makedirs(os.path.join(out, rel), exist_ok=True)
            for f in files:
                with open(os.path.join(dirpath, f)) as fh:
                    text = fh.read()
                name = retarget(f, k)
                with open(os.path.join(out, rel, name), "w") as fh:
                    fh.write(retarget(text, k))
        svc, eps = services_docs(k, nodes)
        with open(os.path.join(out, "services.yaml"), "w") as fh:
            json.dump(svc, fh)
        with open(os.path.join(out, "endpointslices.yaml"), "w") as fh:
            json.dump(eps, fh)
        folders.append(out)
    # the hub (cluster 0) and each spoke peered both ways
    vnets = []
    for k, out in enumerate(folders):
        (path,) = [os.path.join(out, "vnets", f) for f in os.listdir(os.path.join(out, "vnets"))]
        with open(path) as fh:
            vnets.append((path, json.load(fh)))
    for k in range(1, clusters):
        hub_path, hub = vnets[0]
        path, spoke = vnets[k]
        peer(hub, f"hub-to-{k}", spoke["id"], spoke["addressSpace"]["addressPrefixes"][0])
        peer(spoke, f"{k}-to-hub", hub["id"], hub["addressSpace"]["addressPrefixes"][0])
    for path, doc in vnets:
        with open(path, "w") as fh:
            json.dump(doc, fh, indent=2)
    return folders


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--services", type=int, default=300, help="ClusterIP Services in each node's nat table")
    ap.add_argument("--endpoints", type=int, default=4)
    ap.add_argument("--workloads", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", metavar="DIR", help="generate into DIR (new) and keep it")
    args = ap.parse_args()
    if args.clusters < 2 or args.nodes < 1 or args.repeat < 1:
        ap.error("--clusters must be at least 2, --nodes and --repeat at least 1")
    root = args.keep or tempfile.mkdtemp(prefix="masqctl-bench-fleet-")
    if args.keep:
        os.makedirs(root)
    try:
        t0 = time.perf_counter()
        folders = generate_fleet(root, args.clusters, args.nodes, args.services, args.endpoints, args.workloads)
        print(f"generated {args.clusters} clusters x {args.nodes} nodes in {time.perf_counter() - t0:.1f} s")
        # inspect exits 1 on error findings (the generated drift): only 2 and above is a failure here
        cli = ["sh", "-c", '"$0" "$@" >/dev/null; [ $? -le 1 ]', sys.executable, "-m", "masqctl.cli.main", "inspect",
               "-o", "json"]
        os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
        fleet_cmd = cli + [a for f in folders for a in ("--bundle", f)]
        singles = [cli + ["--bundle", f] for f in folders]
        times = best([fleet_cmd, *singles], args.repeat)
        fleet_t, single_ts = times[0], times[1:]
        import subprocess

        doc = json.loads(subprocess.run(fleet_cmd[3:], capture_output=True, text=True).stdout)
        codes = sorted({f["code"] for f in doc["fleet"]["findings"]})
        total = sum(single_ts)
        print(f"fleet inspect ({args.clusters} clusters): {fleet_t:.2f} s; fleet findings {', '.join(codes) or 'none'}; "
              f"{len(doc['fleet']['connections'])} connections")
        print("single inspects: " + ", ".join(f"{t:.2f}" for t in single_ts) + f" s; sum {total:.2f} s")
        print(f"ratio fleet / sum of singles: {fleet_t / total:.2f}x (goal <= 2.0x)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
