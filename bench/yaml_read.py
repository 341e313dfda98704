#!/usr/bin/env python3
"""Benchmark: reading a bundle's ``pods.yaml``, the block reader against libyaml's events.

Generates a ``kubectl get pods -A -o yaml``-shaped list (an agent pod and W workload pods per
node, the pods of ``bench/inspect.py``) or reads a given file, then times in the same run,
rounds interleaved so a burst of load hits all alike:

* ``yamlio.load_yaml_documents`` (what a bundle read uses: the block reader, the events reader
  for what it leaves);
* ``yamlio.load_yaml_events`` (every value from libyaml's events, the reading before the block
  reader);
* ``json.loads`` of the same data as ``kubectl -o json`` text (what a JSON bundle costs).

Checks that both YAML readings give the same values (types and key order included), and prints
the best wall and CPU time of each and the ratios (0.33: a third of the events reader's time).

    python3 bench/yaml_read.py [--nodes 500] [--workloads 30] [--repeat 3] [--file pods.yaml]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE] + [HERE]
sys.path.insert(0, ROOT)

from masqctl.cluster import yamlio  # noqa: E402


def _bench_inspect():
    from timing import load_bench

    return load_bench("inspect")


def generate(nodes: int, workloads: int) -> str:
    """``pods.yaml`` as ``bench/inspect.py`` writes it into its bundle."""
    import yaml

    b = _bench_inspect()
    pods = []
    for i in range(nodes):
        name = b.node_name(i)
        pods.append(b.pod(i, 0, f"azure-ip-masq-agent-{i:05x}", "kube-system", name, b.node_ip(i),
                          image=b.AGENT_IMAGE, owner=("DaemonSet", "azure-ip-masq-agent"), host_network=True,
                          labels={"k8s-app": "azure-ip-masq-agent", "tier": "node"}))
        for k in range(workloads):
            app = f"app{(i * workloads + k) % 211}"
            pods.append(b.pod(i, k + 1, f"{app}-6d9f7b8c5d-{i:04x}{k:02x}", f"team{k % 7}", name, b.pod_ip(i, k),
                              image=f"acr.example.azurecr.io/{app}:1.{k % 9}",
                              owner=("ReplicaSet", f"{app}-6d9f7b8c5d")))
    doc = {"apiVersion": "v1", "items": pods, "kind": "List", "metadata": {"resourceVersion": ""}}
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(doc, Dumper=dumper, default_flow_style=False, sort_keys=True, width=1 << 16)


def canon(value):
    if isinstance(value, dict):
        return ("map", tuple((k, canon(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("seq", tuple(canon(v) for v in value))
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def timed(fn, arg) -> tuple[float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(arg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    del result
    gc.collect()
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--workloads", type=int, default=30, help="workload pods per node")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best time of each reader is kept")
    ap.add_argument("--file", help="read this pods.yaml instead of generating one")
    args = ap.parse_args()

    if args.file:
        with open(args.file, encoding="utf-8") as fh:
            text = fh.read()
        source = args.file
    else:
        text = generate(args.nodes, args.workloads)
        source = f"generated: {args.nodes} nodes x (1 + {args.workloads}) pods"
    lines = text.count("\n")
    print(f"pods.yaml: {source}; {len(text.encode()) / 1e6:.1f} MB, {lines:,} lines")

    block = yamlio.load_yaml_documents("pods.yaml", text)
    reference = yamlio.load_yaml_events("pods.yaml", text)
    same = canon(block) == canon(reference)
    whole = yamlio._load_block("pods.yaml", text) is not None
    json_text = json.dumps(reference[0], indent=4)
    del block, reference
    print(f"same values from both readers: {'yes' if same else 'NO'}; "
          f"block reader used: {'yes' if whole else 'no (the events reader read it all)'}")

    readers = {
        "load_yaml_documents": lambda t: yamlio.load_yaml_documents("pods.yaml", t),
        "load_yaml_events": lambda t: yamlio.load_yaml_events("pods.yaml", t),
        "json.loads": json.loads,
    }
    inputs = {"load_yaml_documents": text, "load_yaml_events": text, "json.loads": json_text}
    best = {name: [float("inf"), float("inf")] for name in readers}
    for _ in range(args.repeat):
        for name, fn in readers.items():
            wall, cpu = timed(fn, inputs[name])
            best[name][0] = min(best[name][0], wall)
            best[name][1] = min(best[name][1], cpu)
    for name, (wall, cpu) in best.items():
        print(f"{name:20} wall {wall:7.2f} s   cpu {cpu:7.2f} s")
    new, old, js = best["load_yaml_documents"], best["load_yaml_events"], best["json.loads"]
    print(f"block / events: wall {new[0] / old[0]:.2f}  cpu {new[1] / old[1]:.2f}   "
          f"block / json.loads: wall {new[0] / js[0]:.2f}  cpu {new[1] / js[1]:.2f}   "
          f"events / json.loads: wall {old[0] / js[0]:.2f}  cpu {old[1] / js[1]:.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
