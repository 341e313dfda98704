#!/usr/bin/env python3
"""Benchmark of the node-agent: memory and the cost of a period.

1. Steady-state resident memory (VmRSS) of the running daemon (endpoints on, a few periods
   done) against a bare ``python3`` sleeping, started the same way, both with and without
   ``-S`` (the image runs ``python3 -S``). The Go agent measured in the field: 15.8 MB.
2. On a namespace loaded with a generated kube-proxy-like nat table (~95k lines), the cost
   of one period without drift (what the daemon does every period: read the config files,
   list the agent's chain and POSTROUTING) against one ``iptables-restore --noflush`` of the
   same payload (what an agent that always restores, like the Go agent, does every period),
   for the nft and the legacy backend.

Needs root, iproute2 and iptables; everything runs in namespaces this script creates and
deletes. Prints ratios against references measured in the same run.

    sudo python3 bench/node_agent.py [--services 5000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

from kube_proxy_table import generate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GO_AGENT_RSS_KB = 15820  # ps RSS of /ip-masq-agent-v2 --v=2 --resync-interval=60 on an AKS node

CONFIG = textwrap.dedent("""\
    nonMasqueradeCIDRs:
      - 10.224.0.0/16
      - 10.0.0.0/16
      - 10.224.0.0/12
    masqLinkLocal: true
    """)


class Namespace:
    def __init__(self, tag: str):
        self.name = f"mqbench{os.getpid() % 10000}{tag}"[:15]
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run("ip", "link", "set", "lo", "up")

    def cmd(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd(*args), input=input, capture_output=True, text=True, check=True)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def python_path() -> str:
    """What ``-S`` needs on PYTHONPATH: the repository and PyYAML's site-packages."""
    import yaml

    return os.pathsep.join([ROOT, os.path.dirname(os.path.dirname(yaml.__file__))])


def measure_memory(config_dir: str, settle: float) -> dict:
    ns = Namespace("m")
    results = {}
    try:
        for flags in ([], ["-S"]):
            env = dict(os.environ, PYTHONPATH=python_path(), XTABLES_LOCKFILE=os.path.join(config_dir, "lock"))
            agent = subprocess.Popen(ns.cmd(sys.executable, *flags, "-m", "masqctl.agent", "--config-dir", config_dir,
                                            "--resync-interval", "1"),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            bare = subprocess.Popen([sys.executable, *flags, "-c", "import time; time.sleep(3600)"], env=env)
            try:
                time.sleep(settle)
                ticks0, t0 = cpu_ticks(agent.pid), time.monotonic()
                samples = []
                for _ in range(5):
                    samples.append(rss_kb(agent.pid))
                    time.sleep(1)
                ticks = cpu_ticks(agent.pid) - ticks0
                elapsed = time.monotonic() - t0
                results[" ".join(["python3", *flags])] = {
                    "agent": max(samples), "bare": rss_kb(bare.pid),
                    "cpu": ticks / os.sysconf("SC_CLK_TCK") / elapsed,
                }
            finally:
                for p in (agent, bare):
                    p.terminate()
                    p.wait()
    finally:
        ns.delete()
    return results


PERIOD_BENCH = textwrap.dedent("""
    import json, sys, time
    from masqctl.agent.klog import Logger
    from masqctl.agent.loop import Agent
    from masqctl.agent.flags import flag_set
    from masqctl.agent.worker import _family_rules
    from masqctl.agent.reconcile import LiveFamily, repair_payload, compare

    config_dir, backend, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    values = flag_set().parse(["--config-dir", config_dir, "--iptables-backend", backend])
    agent = Agent(values, Logger(0))
    assert agent.sync() in ("applied", "unchanged")        # the worker writes the rules
    fam = _family_rules(agent.target[0])
    payload = repair_payload(fam, compare(fam, LiveFamily((), (fam.jump.text,))))  # chain + rules only

    def timed(fn):
        out = []
        for _ in range(rounds):
            t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
        return out

    quiet = timed(lambda: agent.sync() == "unchanged" or sys.exit("drift during the bench"))
    restore = timed(lambda: agent.runner.restore(4, payload))
    worker = timed(lambda: agent.call_worker(agent.request("sync", 10.0)))
    print(json.dumps({"quiet": quiet, "restore": restore, "worker": worker}))
""")


def measure_period(config_dir: str, services: int, rounds: int) -> dict:
    table = generate(services, 4, agent_chain=False)
    results = {}
    for backend in ("nft", "legacy"):
        ns = Namespace(backend[0])
        try:
            t = time.perf_counter()
            ns.run(f"iptables-{backend}-restore", "-w", input=table)
            load = time.perf_counter() - t
            count = sum(1 for ln in ns.run(f"iptables-{backend}-save", "-t", "nat").stdout.splitlines()
                        if ln.startswith(("-A", ":")))
            env = dict(os.environ, PYTHONPATH=python_path(), XTABLES_LOCKFILE=os.path.join(config_dir, "lock"))
            r = subprocess.run(ns.cmd(sys.executable, "-c", PERIOD_BENCH, config_dir, backend, str(rounds)),
                               capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
            data = json.loads(r.stdout.strip().splitlines()[-1])
            data.update(load=load, lines=count)
            results[backend] = data
        finally:
            ns.delete()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=5000,
                        help="Services (4 endpoints each) in the generated nat table; 5000 is ~95k lines")
    parser.add_argument("--rounds", type=int, default=20, help="timed repetitions per operation")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds before sampling memory")
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("iptables-nft-restore"):
        print("needs root, iproute2 and iptables (legacy and nft)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="masqctl-bench-") as tmp:
        config_dir = os.path.join(tmp, "config")
        os.mkdir(config_dir)
        with open(os.path.join(config_dir, "ip-masq-agent-reconciled"), "w") as fh:
            fh.write(CONFIG)

        print("== steady-state memory (VmRSS in kB, the unit ps prints), daemon with endpoints, 1 s period")
        for how, m in measure_memory(config_dir, args.settle).items():
            print(f"{how:12s} agent {m['agent']:6d} kB   bare interpreter {m['bare']:6d} kB   "
                  f"agent/bare {m['agent'] / m['bare']:.2f}   agent/Go agent ({GO_AGENT_RSS_KB} kB) "
                  f"{m['agent'] / GO_AGENT_RSS_KB:.2f}   agent over bare {m['agent'] - m['bare']:5d} kB   "
                  f"CPU {100 * m['cpu']:.1f}% at a 1 s period")

        print(f"\n== one period on a kube-proxy-like nat table of {args.services} Services "
              f"({args.rounds} rounds, median)")
        for backend, d in measure_period(config_dir, args.services, args.rounds).items():
            quiet, restore, worker = (statistics.median(d[k]) for k in ("quiet", "restore", "worker"))
            print(f"{backend:6s} table {d['lines']} chain+rule lines (loaded in {d['load']:.1f}s)")
            print(f"       no-drift period {1000 * quiet:7.1f} ms   iptables-restore --noflush {1000 * restore:7.1f} ms"
                  f"   restore/no-drift {restore / quiet:5.1f}x")
            print(f"       (a period that needs the engine: worker process {1000 * worker:7.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
