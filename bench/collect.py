#!/usr/bin/env python3
"""Benchmark: live gathering (``gather_kube``) of a large cluster through a slow API server.

Starts the test API server (``tests/kubeapi``) with N Linux nodes (default 500), one agent pod
per node, W workload pods per node (default 30) and a fixed latency per API call (default
50 ms), each node's agent answering its exec with a kube-proxy-like nat table (S services).
The server runs in its own process, as a real API server does.
Then runs ``gather_kube`` with the default concurrency (16) and prints:

* the elapsed time of the whole gathering;
* the ideal time for the same work: the calls the server actually received × latency ÷
  concurrency (what perfect overlap of the latency would cost; it ignores all CPU work);
* the ratio elapsed/ideal;
* the capture phase alone, against a sequential reference measured in the same run: a sample
  of nodes captured with concurrency 1, its time per node scaled to N nodes (the speed-up
  that concurrency gives).

The issue's target is N=500 at 50 ms in under 10 s.

    python3 bench/collect.py [--nodes 500] [--latency 0.05] [--workloads 30] [--services 200]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, ROOT)

from kube_proxy_table import generate  # noqa: E402

from kubeapi import ExecResult, KubeAPI, objects  # noqa: E402
from masqctl.cluster.live.capture import MARK  # noqa: E402
from masqctl.cluster.live.kube import gather_kube  # noqa: E402
from masqctl.cluster.options import GatherOptions, NodeSelection  # noqa: E402


def fill(api: KubeAPI, nodes: int, workloads: int) -> list[str]:
    names = objects.small_cluster(api, nodes, workloads_per_node=0)
    for i, n in enumerate(names):
        for j in range(workloads):
            api.add(objects.pod(f"app-{i}-{j}", node=n, namespace=f"team-{j % 7}",
                                ip=f"10.{100 + i // 250}.{i % 250}.{10 + j}", host_ip=f"10.224.0.{4 + i % 250}",
                                labels={"app": f"app-{j}"}, owner=("ReplicaSet", f"app-{j}-7d4b9c")))
    return names


def canned_capture(table: str):
    """An exec handler answering masqctl's capture script with what it prints on a node whose
    ``iptables-save`` prints ``table`` (computed once: the server's CPU is not what is measured;
    tests run the real script with a real shell)."""
    ok = {"iptables-save": table, "ip6tables-save": "", "ip-addr": "1: lo    inet 127.0.0.1/8 scope host lo\n"}
    out = "".join(f"{MARK} begin {k}\n{v}\n{MARK} end {k} rc=0\n" for k, v in ok.items())
    err = "".join(f"{MARK} begin {k}\n\n{MARK} end {k}\n" for k in ok)
    result = ExecResult(stdout=out.encode(), stderr=err.encode())

    def handler(req):
        if req.command[:2] != ("sh", "-c"):
            raise ValueError(f"unexpected command {req.command}")
        return result

    return handler


def serve(args: argparse.Namespace, conn) -> None:
    """The API server, in its own process (as a real one is): it shares no GIL with the client."""
    table = generate(args.services, 3)
    with KubeAPI(latency=args.latency) as api, tempfile.TemporaryDirectory() as tmp:
        names = fill(api, args.nodes, args.workloads)
        gc.collect()
        gc.freeze()   # the stored objects live for the whole run: keep the collector off them
        api.on_exec(canned_capture(table))
        conn.send((api.write_kubeconfig(os.path.join(tmp, "kubeconfig")), names, len(table.splitlines())))
        while True:
            cmd = conn.recv()
            if cmd == "reset":
                del api.log[:]
                conn.send(None)
            elif cmd == "count":
                conn.send(len(api.log))
            else:
                return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--workloads", type=int, default=30, help="workload pods per node")
    ap.add_argument("--services", type=int, default=200, help="kube-proxy services in each node's nat table")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--sample", type=int, default=16, help="nodes captured sequentially for the reference")
    args = ap.parse_args()

    ctx = multiprocessing.get_context("fork")
    conn, child_conn = ctx.Pipe()
    server = ctx.Process(target=serve, args=(args, child_conn), daemon=True)
    server.start()
    try:
        kubeconfig, names, table_lines = conn.recv()
        gather_kube(GatherOptions(kubeconfig=kubeconfig, nodes=NodeSelection(names=(names[0],))))  # warm up

        # the sequential reference: a sample of nodes captured one at a time (concurrency 1);
        # the time per node, from the progress callback, scaled to all nodes
        sample = tuple(names[:: max(1, len(names) // args.sample)][: args.sample])
        marks: list[tuple[int, float]] = []
        gather_kube(GatherOptions(kubeconfig=kubeconfig, nodes=NodeSelection(names=sample), concurrency=1),
                    lambda what, done, total: marks.append((done, time.perf_counter()))
                    if what == "capturing nodes" else None)
        per_node = (marks[-1][1] - marks[0][1]) / len(sample)
        sequential = per_node * args.nodes

        conn.send("reset")
        conn.recv()
        phase: list[float] = []
        t0 = time.perf_counter()
        raw = gather_kube(GatherOptions(kubeconfig=kubeconfig, concurrency=args.concurrency),
                          lambda what, done, total: phase.append(time.perf_counter())
                          if what == "capturing nodes" and done in (0, total) else None)
        elapsed = time.perf_counter() - t0
        capture_phase = phase[-1] - phase[0]
        conn.send("count")
        calls = conn.recv()
    finally:
        conn.send("stop")
        server.join(10)

    captured = sum(1 for c in raw.captures.values() if c.iptables_save)
    failed = {n: c.errors for n, c in raw.captures.items() if not c.iptables_save}
    if captured != args.nodes or failed:
        raise SystemExit(f"only {captured}/{args.nodes} nodes captured: {list(failed.items())[:3]}")
    ideal = calls * args.latency / args.concurrency
    print(f"nodes {args.nodes}, pods {len(raw.pods or [])}, latency {args.latency * 1000:.0f} ms/call, "
          f"concurrency {args.concurrency}, {calls} API calls, nat table {table_lines} lines")
    print(f"gather_kube:          {elapsed:7.2f} s   (target for 500 nodes at 50 ms: < 10 s)")
    print(f"ideal (calls×lat/c):  {ideal:7.2f} s   ratio elapsed/ideal = {elapsed / ideal:.2f}")
    print(f"capture phase:        {capture_phase:7.2f} s   (exec into every node, concurrently)")
    print(f"sequential captures:  {sequential:7.2f} s   ({per_node * 1000:.0f} ms/node measured on {len(sample)} nodes "
          f"one at a time; speed-up = {sequential / capture_phase:.1f}x)")


if __name__ == "__main__":
    main()
