"""The node-agent against real iptables in namespaces: apply, follow config swaps, repair drift,
invalid configs, signals and cleanup."""

from __future__ import annotations

import os

import pytest
from agentlib import (ConfigVolume, assert_exact, chain_rules, intended, jumps, keys, run_once,
                      yaml_config)
from netns import requires_netns

pytestmark = [requires_netns, pytest.mark.netns]

CHAIN = "IP-MASQ-AGENT"
AKS_RECONCILED = yaml_config(["10.224.0.0/16", "10.0.0.0/16", "10.224.0.0/12"], True)


@pytest.mark.parametrize("backend", ["", "legacy"])
def test_apply_writes_exactly_the_chain_and_one_jump(node, tmp_path, lockfile, backend):
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent-reconciled": AKS_RECONCILED,
                                                  "ip-masq-agent": yaml_config(["192.168.0.0/16"])})
    extra = ["--iptables-backend", backend] if backend else []
    r = run_once(node, cfg.path, lockfile, *extra)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    save = node.run("iptables-save" if not backend else f"iptables-{backend}-save", "-t", "nat").stdout
    assert_exact(save, intended(cfg.path).ipv4)
    # nothing else in the table: the four built-in chains, ours, one jump, our rules
    rules = [ln for ln in save.splitlines() if ln.startswith("-A ")]
    assert len(rules) == 1 + len(intended(cfg.path).ipv4.rules)
    # the azure-v2 jump carries the Go agent's quoted comment, as on AKS nodes
    assert '--comment "\\"ip-masq-agent: ensure nat POSTROUTING' in jumps(save)[0]
    # a second run finds nothing to do and writes nothing
    r = run_once(node, cfg.path, lockfile, *extra, "--v=4")
    assert r.returncode == 0 and "sync unchanged" in r.stderr, r.stderr


def test_ipv6_family_with_enable_ipv6(node, tmp_path, lockfile):
    cfg = ConfigVolume(str(tmp_path / "config"),
                       {"ip-masq-agent": yaml_config(["10.0.0.0/8", "fd00:1::/64"], False)})
    r = run_once(node, cfg.path, lockfile, "--enable-ipv6")
    assert r.returncode == 0, r.stderr
    rules = intended(cfg.path, enable_ipv6=True)
    assert_exact(node.iptables_save(), rules.ipv4)
    save6 = node.iptables_save(family=6)
    assert_exact(save6, rules.ipv6)
    assert any("fd00:1::/64" in ln for ln in chain_rules(save6, CHAIN))
    assert any("fe80::/10" in ln for ln in chain_rules(save6, CHAIN))
    # without --enable-ipv6 the IPv6 CIDR is the Go agent's validation error (exit 1, nothing written)
    other = tmp_path / "other"
    ConfigVolume(str(other), {"ip-masq-agent": yaml_config(["fd00:1::/64"])})
    r = run_once(node, str(other), lockfile, "--masq-chain", "OTHER-CHAIN")
    assert r.returncode == 1 and "E107" in r.stderr, r.stderr
    assert ":OTHER-CHAIN" not in node.iptables_save()


def test_config_swap_followed_and_drift_repaired_foreign_rules_untouched(node, tmp_path, lockfile, agents):
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent-reconciled": AKS_RECONCILED})
    # someone else's rules in nat, before and after the agent starts
    node.iptables_restore("*nat\n:KUBE-POSTROUTING - [0:0]\n-A POSTROUTING -j KUBE-POSTROUTING\n"
                          "-A KUBE-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\nCOMMIT\n")
    agent = agents(node, "--config-dir", cfg.path, "--resync-interval", "1", "--v=2", lockfile=lockfile)
    agent.wait_for(lambda: agent.get("/readyz")[0] == 200, what="ready")
    assert_exact(node.iptables_save(), intended(cfg.path).ipv4)

    # an atomic ..data swap adds a user file: followed within one period (+ slack)
    cfg.swap({"ip-masq-agent-reconciled": AKS_RECONCILED,
              "ip-masq-agent": yaml_config(["172.16.0.0/12"], False)})
    want = intended(cfg.path).ipv4
    agent.wait_for(lambda: keys(chain_rules(node.iptables_save(), CHAIN)) == keys(r.text for r in want.rules),
                   timeout=2.5, what="config swap applied")
    assert agent.metric("masqctl_node_agent_config_generation") == 2
    assert agent.logs().count("using config:") == 2  # once per distinct config, not per period

    # hand-made drift: an extra RETURN at the top of the chain, a foreign rule in POSTROUTING,
    # a foreign chain, and a second copy of the jump
    node.run("iptables", "-t", "nat", "-I", CHAIN, "1", "-j", "RETURN")
    node.run("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/16", "-j", "ACCEPT")
    node.run("iptables", "-t", "nat", "-N", "FOREIGN")
    node.run("iptables", "-t", "nat", "-A", "FOREIGN", "-d", "203.0.113.0/24", "-j", "RETURN")
    node.run("iptables", "-t", "nat", "-A", "POSTROUTING", "-m", "addrtype", "!", "--dst-type", "LOCAL",
             "-j", CHAIN)
    agent.wait_for(lambda: (agent.metric("masqctl_node_agent_drift_repairs_total", family="ipv4") or 0) >= 1,
                   timeout=5, what="drift repair counted")
    agent.wait_for(lambda: len(jumps(node.iptables_save())) == 1, timeout=3, what="one jump")
    save = node.iptables_save()
    assert_exact(save, want)
    assert "-A POSTROUTING -s 10.99.0.0/16 -j ACCEPT" in save
    assert "-A FOREIGN -d 203.0.113.0/24 -j RETURN" in save
    assert "-A POSTROUTING -j KUBE-POSTROUTING" in save
    assert "-A KUBE-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE" in save
    assert agent.metric("masqctl_node_agent_syncs_total", result="repaired") >= 1
    assert "repaired drift in ipv4 nat IP-MASQ-AGENT" in agent.logs()
    # steady state: periods without drift write nothing
    restores = agent.metric("masqctl_node_agent_restores_total", family="ipv4")
    unchanged = agent.metric("masqctl_node_agent_syncs_total", result="unchanged")
    agent.wait_for(lambda: agent.metric("masqctl_node_agent_syncs_total", result="unchanged") >= unchanged + 2,
                   timeout=5, what="two quiet periods")
    assert agent.metric("masqctl_node_agent_restores_total", family="ipv4") == restores
    assert agent.get("/healthz")[0] == 200

    # SIGTERM: exit 0, rules left in place
    assert agent.stop() == 0
    assert_exact(node.iptables_save(), want)


def test_old_quoted_jump_is_recognised_not_duplicated(node, tmp_path, lockfile):
    """The Go azure-v2 agent's jump (quoted comment) stays the only jump when an agent that
    writes the unquoted comment (upstream flavour) takes over."""
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    assert run_once(node, cfg.path, lockfile).returncode == 0  # azure-v2: quoted comment
    before = jumps(node.iptables_save())
    r = run_once(node, cfg.path, lockfile, "--flavor", "upstream", "--no-random-fully")
    assert r.returncode == 0, r.stderr
    save = node.iptables_save()
    assert jumps(save) == before and len(before) == 1
    assert_exact(save, intended(cfg.path, flavor="upstream", random_fully=False).ipv4)


def test_invalid_config_keep_keeps_rules_and_reports(node, tmp_path, lockfile, agents):
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    agent = agents(node, "--config-dir", cfg.path, "--resync-interval", "1", lockfile=lockfile)
    agent.wait_for(lambda: agent.get("/readyz")[0] == 200, what="ready")
    good = node.iptables_save()
    cfg.swap({"ip-masq-agent": yaml_config(["10.0.0.1/8"])})  # not aligned
    agent.wait_for(lambda: agent.get("/readyz")[0] == 503, timeout=3, what="not ready")
    status, body = agent.get("/readyz")
    assert "E105" in body
    agent.wait_for(lambda: (agent.metric("masqctl_node_agent_config_errors_total") or 0) >= 2, timeout=4,
                   what="errors counted every period")
    assert agent.metric("masqctl_node_agent_config_valid") == 0
    _, metrics = agent.get("/metrics")
    assert 'masqctl_node_agent_config_error_info{code="E105"' in metrics
    assert keys(chain_rules(node.iptables_save(), CHAIN)) == keys(chain_rules(good, CHAIN))
    assert agent.get("/healthz")[0] == 200  # alive: restarting would not help
    assert agent.logs().count("E105") == 1  # logged once per distinct error
    # the last good rules are still enforced
    node.run("iptables", "-t", "nat", "-F", CHAIN)
    agent.wait_for(lambda: keys(chain_rules(node.iptables_save(), CHAIN)) == keys(chain_rules(good, CHAIN)),
                   timeout=3, what="last good rules repaired")
    # fixed again: ready, new rules
    cfg.swap({"ip-masq-agent": yaml_config(["10.0.0.0/8", "198.51.100.0/24"])})
    agent.wait_for(lambda: agent.get("/readyz")[0] == 200, timeout=3, what="ready again")
    assert_exact(node.iptables_save(), intended(cfg.path).ipv4)
    assert agent.stop() == 0


def test_invalid_config_at_first_start_writes_nothing(node, tmp_path, lockfile, agents):
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": "nonMasqueradeCIDRs: [\n"})
    agent = agents(node, "--config-dir", cfg.path, "--resync-interval", "1", lockfile=lockfile)
    agent.wait_for(lambda: (agent.metric("masqctl_node_agent_config_errors_total") or 0) >= 1,
                   what="config error")
    assert agent.get("/readyz")[0] == 503
    assert CHAIN not in node.iptables_save()
    assert agent.stop() == 0


def test_invalid_config_exit_policy_exits_non_zero(node, tmp_path, lockfile, agents):
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    agent = agents(node, "--config-dir", cfg.path, "--resync-interval", "1", "--on-invalid-config", "exit",
                   lockfile=lockfile)
    agent.wait_for(lambda: agent.get("/readyz")[0] == 200, what="ready")
    cfg.swap({"ip-masq-agent": "masqLinkLocal: [true]\n"})  # wrong type
    assert agent.proc.wait(timeout=5) == 1
    assert "exiting (--on-invalid-config=exit)" in agent.logs()
    assert CHAIN in node.iptables_save()  # like the Go agent: rules stay as they were
    # --once with an invalid folder: exit 1 under either policy
    assert run_once(node, cfg.path, lockfile).returncode == 1


def test_cleanup_on_exit_removes_chain_and_jump(node, tmp_path, lockfile, agents):
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    node.run("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/16", "-j", "ACCEPT")
    agent = agents(node, "--config-dir", cfg.path, "--resync-interval", "1", "--cleanup-on-exit",
                   "--enable-ipv6", lockfile=lockfile)
    agent.wait_for(lambda: agent.get("/readyz")[0] == 200, what="ready")
    assert CHAIN in node.iptables_save(family=6)
    assert agent.stop() == 0
    for family in (4, 6):
        save = node.iptables_save(family=family)
        assert CHAIN not in save, save
    assert "-A POSTROUTING -s 10.99.0.0/16 -j ACCEPT" in node.iptables_save()


def test_missing_iptables_binary_is_retried_then_reported(node, tmp_path, lockfile):
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    r = run_once(node, cfg.path, lockfile, "--resync-interval", "3", env={"PATH": "/nonexistent"})
    assert r.returncode == 1
    assert "E401" in r.stderr and "retrying with backoff" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_refused_payload_is_reported_and_commits_nothing(node):
    from masqctl.agent.iptables import IptablesFailure, Runner

    class NsRunner(Runner):
        def _run(self, argv, stdin, what):
            return super()._run(node.cmd(*argv), stdin, what)

    runner = NsRunner()
    with pytest.raises(IptablesFailure) as info:
        runner.restore(4, "*nat\n:IP-MASQ-AGENT - [0:0]\n-A IP-MASQ-AGENT -j RETURN\n"
                          "-A IP-MASQ-AGENT -m nosuchmatch --foo -j RETURN\nCOMMIT\n")
    assert info.value.kind == "refused" and info.value.code == "E403"
    assert CHAIN not in node.iptables_save()
    assert runner.list_chain(4, CHAIN) is None
    assert runner.list_chain(4, "POSTROUTING") == []


def test_go_agent_random_cidr_order_is_not_rewritten(node, tmp_path, lockfile):
    """The Go agent writes the union of CIDRs in random map order; while it still runs next to
    this agent (a migration), the two must not rewrite each other's chain every period."""
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent-reconciled": AKS_RECONCILED})
    fam = intended(cfg.path).ipv4
    texts = [r.text for r in fam.rules]
    shuffled = [texts[2], texts[0], texts[1], texts[3]]  # three RETURNs permuted, MASQUERADE last
    node.iptables_restore("*nat\n:IP-MASQ-AGENT - [0:0]\n" + "\n".join(shuffled) + "\n" + fam.jump.text + "\nCOMMIT\n")
    r = run_once(node, cfg.path, lockfile, "--v=4")
    assert r.returncode == 0 and "sync unchanged" in r.stderr, r.stderr
    assert keys(chain_rules(node.iptables_save(), CHAIN)) == keys(shuffled)


def test_upstream_flavour_takes_its_period_from_the_file(node, tmp_path, lockfile, agents):
    cfg = ConfigVolume(str(tmp_path / "config"),
                       {"ip-masq-agent": yaml_config(["10.0.0.0/8"], resyncInterval="2s")})
    agent = agents(node, "--config-dir", cfg.path, "--flavor", "upstream", "--resync-interval", "60",
                   lockfile=lockfile)
    agent.wait_for(lambda: agent.get("/readyz")[0] == 200, what="ready")
    agent.wait_for(lambda: agent.metric("masqctl_node_agent_syncs_total", result="unchanged") >= 1,
                   timeout=5, what="a second period after 2s, not 60s")
    assert "resync interval 2s (from the config file)" in agent.logs()
    assert_exact(node.iptables_save(), intended(cfg.path, flavor="upstream").ipv4)


def test_health_port_in_use_is_reported(node, tmp_path, lockfile, agents):
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    first = agents(node, "--config-dir", cfg.path, "--resync-interval", "1", lockfile=lockfile)
    first.wait_for(lambda: first.get("/healthz")[0] == 200, what="first agent up")
    second = agents(node, "--config-dir", cfg.path, "--resync-interval", "1", lockfile=lockfile)
    assert second.proc.wait(timeout=10) == 1
    assert "E501" in second.logs() and "Traceback" not in second.logs()
    assert first.get("/healthz")[0] == 200


def test_quiet_log_at_aks_verbosity_with_a_heartbeat(node, tmp_path, lockfile, agents):
    """--v=2 (AKS's argument): no line per period; the heartbeat says the agent is alive."""
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent-reconciled": AKS_RECONCILED})
    agent = agents(node, "--config-dir", cfg.path, "--resync-interval", "1", "--v=2", "--heartbeat-interval", "2",
                   lockfile=lockfile)
    agent.wait_for(lambda: agent.get("/readyz")[0] == 200, what="ready")
    before = agent.logs().splitlines()
    agent.wait_for(lambda: agent.metric("masqctl_node_agent_syncs_total", result="unchanged") >= 4,
                   timeout=8, what="four quiet periods")
    new = agent.logs().splitlines()[len(before):]
    assert new and all("heartbeat: syncs since start:" in line for line in new), new
    assert len(new) <= 3
    assert sum("using config:" in line for line in agent.logs().splitlines()) == 1


def test_iptables_failing_every_period_makes_the_agent_unready_then_unhealthy(node, tmp_path, lockfile, agents):
    """No iptables binary on PATH (/usr/bin holds ip, not iptables): every period fails after
    its retries; /readyz fails at once, /healthz once no sync succeeded for 2 periods (+5 s)."""
    assert not os.path.exists("/usr/bin/iptables-restore")
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    agent = agents(node, "--config-dir", cfg.path, "--resync-interval", "1", lockfile=lockfile,
                   env={"PATH": "/usr/bin"})
    agent.wait_for(lambda: (agent.metric("masqctl_node_agent_syncs_total", result="failed") or 0) >= 1,
                   what="a failed period")
    status, body = agent.get("/readyz")
    assert status == 503 and "E401" in body
    assert agent.metric("masqctl_node_agent_iptables_errors_total", kind="missing") >= 1
    assert agent.metric("masqctl_node_agent_ready") == 0
    agent.wait_for(lambda: agent.get("/healthz")[0] == 503, timeout=12, what="unhealthy")
    assert "no successful sync since start" in agent.get("/healthz")[1]
    assert agent.stop() == 0


def test_started_like_the_image_with_site_packages_off(node, tmp_path, lockfile):
    # The image runs `python3 -S -m masqctl.agent` with only the package on PYTHONPATH; the
    # engine's PyYAML may live in site-packages, so the sync worker must still find it.
    from agentlib import AgentProcess

    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent-reconciled": AKS_RECONCILED})
    agent = AgentProcess(node, ["--config-dir", cfg.path, "--resync-interval", "1"], lockfile,
                         python_flags=("-S",))
    try:
        agent.wait_for(lambda: chain_rules(node.run("iptables-save", "-t", "nat").stdout, CHAIN),
                       timeout=15, what="the chain applied by a -S agent")
        assert_exact(node.run("iptables-save", "-t", "nat").stdout, intended(cfg.path).ipv4)
        assert "E502" not in agent.logs()
    finally:
        agent.stop()
        agent.close()


def test_cleanup_on_exit_is_for_a_stop_signal_not_for_the_end_of_once(node, tmp_path, lockfile):
    """--cleanup-on-exit removes the rules on SIGTERM/SIGINT; a --once run that simply
    finished leaves what it applied."""
    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    r = run_once(node, cfg.path, lockfile, "--cleanup-on-exit")
    assert r.returncode == 0, r.stderr
    assert_exact(node.iptables_save(), intended(cfg.path).ipv4)


def test_stop_during_a_failing_sync_ends_the_retries(node, tmp_path, lockfile, agents):
    """SIGTERM while the worker retries a failing iptables (no binary on PATH) with a 60 s
    period: the sync ends with the attempt in progress instead of retrying for up to 48 s,
    and the agent exits 0 well within a pod's grace period."""
    import time

    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    agent = agents(node, "--config-dir", cfg.path, "--resync-interval", "60", lockfile=lockfile,
                   env={"PATH": "/usr/bin"})
    agent.wait_for(lambda: "retrying with backoff" in agent.logs(), what="the worker retrying")
    time.sleep(0.3)
    began = time.monotonic()
    assert agent.stop(timeout=20) == 0
    assert time.monotonic() - began < 5, agent.logs()
    assert "E502" not in agent.logs()
