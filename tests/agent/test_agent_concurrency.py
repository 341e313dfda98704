"""Atomicity and concurrency: kill -9 in the middle of syncs never exposes a partial chain, and
other writers (holding the xtables lock, or writing at the same time) lose nothing."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from agentlib import ROOT, ConfigVolume, assert_exact, chain_rules, intended, keys, run_once, yaml_config
from netns import requires_netns

pytestmark = [requires_netns, pytest.mark.netns]

CHAIN = "IP-MASQ-AGENT"


def cidrs(second_octet: int, count: int) -> list[str]:
    return [f"10.{second_octet}.{i}.0/24" for i in range(count)]


class Sampler(threading.Thread):
    """Lists the agent's chain as fast as it can; records every state that is neither absent,
    nor exactly one of the allowed rule lists."""

    def __init__(self, ns, allowed: list[list], binary: str = "iptables"):
        super().__init__(daemon=True)
        self.ns, self.allowed, self.binary = ns, allowed, binary
        self.samples = 0
        self.seen = set()
        self.bad: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            r = self.ns.run(self.binary, "-w", "5", "-t", "nat", "-S", CHAIN, check=False)
            if r.returncode != 0:
                continue  # chain not created yet
            lines = chain_rules(r.stdout, CHAIN)
            k = keys(lines)
            self.samples += 1
            for i, allowed in enumerate(self.allowed):
                if k == allowed:
                    self.seen.add(i)
                    break
            else:
                self.bad.append(r.stdout)


def test_kill_9_during_syncs_never_leaves_a_partial_chain(node, tmp_path, lockfile):
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(cidrs(1, 40), False)})
    rules_a = intended(cfg.path).ipv4
    cfg.swap({"ip-masq-agent": yaml_config(cidrs(2, 60), True)})
    rules_b = intended(cfg.path).ipv4
    sampler = Sampler(node, [keys(r.text for r in rules_a.rules), keys(r.text for r in rules_b.rules)])
    sampler.start()
    env = dict(os.environ, XTABLES_LOCKFILE=lockfile, PYTHONPATH=ROOT)
    rng = random.Random(1234)
    # how long one full --once run takes here; kills are spread over its second half
    began = time.monotonic()
    assert run_once(node, cfg.path, lockfile).returncode == 0
    duration = time.monotonic() - began
    killed_alive = 0
    try:
        for i in range(24):
            cfg.swap({"ip-masq-agent": yaml_config(cidrs(1, 40), False) if i % 2 == 0
                      else yaml_config(cidrs(2, 60), True)})
            proc = node.popen(sys.executable, "-m", "masqctl.agent", "--once", "--config-dir", cfg.path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            time.sleep(rng.uniform(0.5 * duration, 1.05 * duration))
            if proc.poll() is None:
                killed_alive += 1
                proc.send_signal(signal.SIGKILL)
            proc.wait()
        # let orphaned iptables-restore children finish, then two clean runs (A, then B) so the
        # sampler has seen both complete states whatever the kills hit
        time.sleep(0.5)
        for text in (yaml_config(cidrs(1, 40), False), yaml_config(cidrs(2, 60), True)):
            cfg.swap({"ip-masq-agent": text})
            assert run_once(node, cfg.path, lockfile).returncode == 0
            time.sleep(0.3)
    finally:
        sampler.stop.set()
        sampler.join(timeout=10)
    assert sampler.bad == [], f"partial chain observed:\n{sampler.bad[0]}"
    assert sampler.samples > 50
    assert killed_alive >= 5  # the kills did land while agents were running
    assert sampler.seen == {0, 1}  # the sampler recognises both complete states
    r = run_once(node, cfg.path, lockfile)
    assert r.returncode == 0, r.stderr
    assert_exact(node.iptables_save(), intended(cfg.path).ipv4)


def test_waits_for_a_writer_holding_the_xtables_lock(node, tmp_path, lockfile, agents):
    """iptables-legacy: kube-proxy-like writer holds the lock for 3s while it adds 30 rules;
    the agent (lock wait 1s) reports the lock, retries with backoff, then applies the new
    config. Both sides' rules are all there."""
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(cidrs(1, 5))})
    agent = agents(node, "--config-dir", cfg.path, "--resync-interval", "2", "--iptables-backend", "legacy",
                   "--iptables-wait", "1", "--v=2", lockfile=lockfile)
    agent.wait_for(lambda: agent.get("/readyz")[0] == 200, what="ready")
    node.run("env", f"XTABLES_LOCKFILE={lockfile}", "iptables-legacy", "-w", "5", "-t", "nat", "-N", "FOREIGN")
    with open(lockfile, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # held by "kube-proxy"
        cfg.swap({"ip-masq-agent": yaml_config(cidrs(3, 8))})
        # the holder writes its own rules meanwhile (its children use another lock file, as the
        # holder's own writes would not wait for the lock it holds)
        for i in range(30):
            node.run("env", f"XTABLES_LOCKFILE={lockfile}.holder", "iptables-legacy", "-t", "nat", "-A", "FOREIGN",
                     "-d", f"203.0.113.{i}/32", "-j", "RETURN")
        agent.wait_for(lambda: (agent.metric("masqctl_node_agent_iptables_errors_total", kind="lock") or 0) >= 1,
                       timeout=10, what="lock reported")
        save = node.run("iptables-legacy-save", "-t", "nat").stdout
        assert "10.3.0.0/24" not in save  # the agent did not write while the lock was held
    want = intended(cfg.path).ipv4
    agent.wait_for(lambda: keys(chain_rules(node.run("iptables-legacy-save", "-t", "nat").stdout, CHAIN))
                   == keys(r.text for r in want.rules), timeout=15, what="new config after the lock")
    save = node.run("iptables-legacy-save", "-t", "nat").stdout
    assert_exact(save, want)
    assert len(chain_rules(save, "FOREIGN")) == 30
    assert agent.get("/readyz")[0] == 200
    assert "xtables lock" in agent.logs()


@pytest.mark.parametrize("backend", ["", "legacy"])
def test_concurrent_writer_loses_no_rules(node, tmp_path, lockfile, agents, backend):
    """Another program appends rules (to POSTROUTING and its own chain) while the agent
    keeps rewriting its chain after config swaps: every rule of both survives."""
    binary = f"iptables-{backend}" if backend else "iptables"
    save_cmd = f"iptables-{backend}-save" if backend else "iptables-save"
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(cidrs(1, 10))})
    args = ["--config-dir", cfg.path, "--resync-interval", "1"]
    if backend:
        args += ["--iptables-backend", backend]
    agent = agents(node, *args, lockfile=lockfile)
    agent.wait_for(lambda: agent.get("/readyz")[0] == 200, what="ready")
    node.run("env", f"XTABLES_LOCKFILE={lockfile}", binary, "-w", "5", "-t", "nat", "-N", "WRITER")
    count = 40
    errors: list[str] = []

    def writer():
        for i in range(count):
            chain = "POSTROUTING" if i % 2 else "WRITER"
            r = node.run("env", f"XTABLES_LOCKFILE={lockfile}", binary, "-w", "5", "-t", "nat", "-A", chain,
                         "-s", f"198.51.100.{i}/32", "-j", "RETURN", check=False)
            if r.returncode != 0:
                errors.append(r.stderr)
            time.sleep(0.06)  # spread the writes over several agent periods

    t = threading.Thread(target=writer)
    t.start()
    i = 0
    while t.is_alive():
        cfg.swap({"ip-masq-agent": yaml_config(cidrs(1 + i % 3, 10 + i % 3))})
        i += 1
        time.sleep(0.3)
    t.join()
    assert errors == []
    want = intended(cfg.path).ipv4
    agent.wait_for(lambda: keys(chain_rules(node.run(save_cmd, "-t", "nat").stdout, CHAIN))
                   == keys(r.text for r in want.rules), timeout=5, what="last config")
    save = node.run(save_cmd, "-t", "nat").stdout
    assert_exact(save, want)
    writer_rules = [ln for ln in save.splitlines() if "198.51.100." in ln]
    assert len(writer_rules) == count, save
    assert agent.metric("masqctl_node_agent_config_generation") >= 2  # rewrote its chain meanwhile
