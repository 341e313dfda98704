#!/usr/bin/env python3
"""Benchmark: `masqctl explain` over a big kube-proxy-like nat table vs `iptables-restore --test`.

Generates an iptables-save style nat table the size of a large kube-proxy node (~5,000
services with 4 endpoints each, ~95k lines), then times, in the same run:

* `masqctl explain POD CLUSTER-IP:PORT --iptables FILE -o json` (whole process: start-up,
  read, parse, walk, JSON) for the last service in KUBE-SERVICES (the longest walk), and for an
  external destination;
* `iptables-restore --test FILE` (parse and validate only, nothing committed) inside a
  throw-away network namespace (needs root and iproute2).

Bytecode is compiled once first into a private cache, as an installed masqctl has it (see
``timing.installed_env``). Prints each command's median and best time over the interleaved
rounds, and the ratio explain / iptables-restore as the median of the per-round ratios (≤ 1.0:
explain is faster).

    sudo python3 bench/explain.py [--services 5000] [--endpoints 4] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from kube_proxy_table import generate
from timing import installed_env, median_ratios, rounds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    text = generate(args.services, args.endpoints)
    with tempfile.TemporaryDirectory(prefix="masqctl-bench-") as tmp:
        path = os.path.join(tmp, "nat.txt")
        with open(path, "w") as fh:
            fh.write(text)
        lines = text.count("\n")
        last = args.services - 1
        last_vip = f"10.{96 + last // 65536}.{(last // 256) % 256}.{last % 256}"
        facts = ["--local-address", "10.224.0.4/16@eth0", "--node-ip", "10.224.0.4", "-o", "json"]
        explain = [sys.executable, "-m", "masqctl.cli.main", "explain"]
        ns = f"mqbench{os.getpid()}"
        cmds = [["ip", "netns", "exec", ns, "iptables-restore", "--test", path],
                explain + ["10.244.7.9", f"{last_vip}:80", "--iptables", path] + facts,
                explain + ["10.244.7.9", "203.0.113.9:443", "--iptables", path] + facts]
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            env = installed_env(os.path.join(tmp, "pycache"))
            rounds(cmds[1:], 1, env)                     # bytecode written, the file in the page cache
            times = rounds(cmds, args.repeat, env)
        finally:
            subprocess.run(["ip", "netns", "del", ns], check=False)

    med = [statistics.median(ts) for ts in times]
    ratio = median_ratios(times, 0)
    print(f"nat table: {lines} lines, {args.services} services x {args.endpoints} endpoints, {args.repeat} rounds")
    print("                                   median     best")
    print(f"iptables-restore --test            {med[0]:7.3f} s {min(times[0]):7.3f} s")
    print(f"masqctl explain pod -> last VIP    {med[1]:7.3f} s {min(times[1]):7.3f} s   ratio {ratio[1]:.2f}")
    print(f"masqctl explain pod -> external    {med[2]:7.3f} s {min(times[2]):7.3f} s   ratio {ratio[2]:.2f}")
    print(f"ratio (worst explain / restore, median of rounds): {max(ratio[1], ratio[2]):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
