"""The node-agent's pure parts: drift comparison and repair payloads, flags, endpoints
address parsing, metrics text, log format, and what the process imports."""

from __future__ import annotations

import ast
import io
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml
from agentlib import ROOT, ConfigVolume, yaml_config
from netns import requires_netns

from masqctl.agent.health import parse_bind
from masqctl.agent.klog import Logger
from masqctl.agent.main import main as agent_main
from masqctl.agent.metrics import AgentState
from masqctl.agent.reconcile import LiveFamily, cleanup_payload, compare, repair_payload
from masqctl.engine import AgentOptions, EffectiveConfig, Setting, render
from masqctl.engine.model import CidrEntry, Origin
from masqctl.errors import UsageError

CHAIN = "IP-MASQ-AGENT"
GO_JUMP = ('-A POSTROUTING -m comment --comment "\\"ip-masq-agent: ensure nat POSTROUTING directs all '
           'non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain\\"" -m addrtype ! --dst-type LOCAL '
           '-j IP-MASQ-AGENT')


def family_rules(cidrs=("10.0.0.0/8",), link_local=False, flavor="azure-v2"):
    o = (Origin("file", "ip-masq-agent", 1),)
    cfg = EffectiveConfig(flavor, tuple(CidrEntry(c, 4, o) for c in cidrs), Setting(link_local, o),
                          Setting(False, o))
    return render(cfg, AgentOptions(flavor=flavor)).ipv4


def saved(fam):
    """The chain as iptables -S prints it: -d before the comment match."""
    out = []
    for r in fam.rules:
        m = re.match(r'-A (\S+) (-m comment --comment "[^"]*") (-d \S+) (.*)', r.text)
        out.append(f"-A {m[1]} {m[3]} {m[2]} {m[4]}" if m else r.text)
    return tuple(out)


def test_in_sync_when_the_same_rules_are_printed_in_iptables_order():
    fam = family_rules()
    drift = compare(fam, LiveFamily(saved(fam), (GO_JUMP,)))
    assert drift.in_sync and drift.describe() == "in sync"


def test_an_unsplittable_live_line_is_drift_not_a_crash():
    fam = family_rules()
    live = saved(fam) + ('-A IP-MASQ-AGENT -m comment --comment "unterminated -j RETURN',)
    bad_jump = '-A POSTROUTING -m comment --comment "x -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT'
    drift = compare(fam, LiveFamily(live, (bad_jump,)))
    assert not drift.in_sync and "POSTROUTING jump absent" in drift.describe()


def test_return_rules_in_another_order_are_not_drift():
    """The Go agent writes its CIDRs in random order; the verdict is the same."""
    fam = family_rules(("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
    live = saved(fam)
    shuffled = (live[0], live[3], live[1], live[2], live[4])
    assert compare(fam, LiveFamily(shuffled, (GO_JUMP,))).in_sync
    # MASQUERADE moved before a RETURN changes the verdict: drift
    moved = (live[0], live[1], live[4], live[2], live[3])
    assert not compare(fam, LiveFamily(moved, (GO_JUMP,))).in_sync


@pytest.mark.parametrize("chain_lines, post, describe", [
    (None, (), "chain absent; POSTROUTING jump absent"),
    ("same", (), "POSTROUTING jump absent"),
    ("same", (GO_JUMP, GO_JUMP.replace('\\"', "")), "2 POSTROUTING jumps"),
    ("extra", (GO_JUMP,), "chain rules: 1 unexpected"),
    ("missing", (GO_JUMP,), "chain rules: 1 missing"),
    ("reversed", (GO_JUMP,), "chain rules: order differs"),
])
def test_drift_cases(chain_lines, post, describe):
    fam = family_rules(("10.0.0.0/8", "172.16.0.0/12"))
    live = saved(fam)
    lines = {None: None, "same": live, "extra": (live[0], f"-A {CHAIN} -j RETURN", *live[1:]),
             "missing": live[:1] + live[2:], "reversed": tuple(reversed(live))}[chain_lines]
    drift = compare(fam, LiveFamily(lines, post))
    assert not drift.in_sync
    assert drift.describe() == describe


def test_repair_payload_is_one_commit_that_never_duplicates_the_jump():
    fam = family_rules()
    absent = repair_payload(fam, compare(fam, LiveFamily(None, ("-A POSTROUTING -j KUBE-POSTROUTING",))))
    assert absent == fam.payload().replace("COMMIT\n", fam.jump.text + "\nCOMMIT\n")
    present = repair_payload(fam, compare(fam, LiveFamily((), (GO_JUMP,))))
    assert present == fam.payload()
    plain = GO_JUMP.replace('\\"', "")
    two = repair_payload(fam, compare(fam, LiveFamily((), (GO_JUMP, "-A POSTROUTING -j X", plain))))
    assert two == fam.payload().replace("COMMIT\n", "-D" + plain[2:] + "\nCOMMIT\n")
    assert "KUBE" not in absent and "-j X" not in two


def test_cleanup_payload():
    assert cleanup_payload(CHAIN, LiveFamily(None, ("-A POSTROUTING -j X",))) is None
    text = cleanup_payload(CHAIN, LiveFamily(("-A IP-MASQ-AGENT -j MASQUERADE",), (GO_JUMP,)))
    assert text == f"*nat\n-D{GO_JUMP[2:]}\n:{CHAIN} - [0:0]\n-X {CHAIN}\nCOMMIT\n"


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8679", ("127.0.0.1", 8679)), (":9000", ("", 9000)), ("[::1]:8679", ("::1", 8679)),
    ("0", None), ("", None),
])
def test_parse_bind(text, expected):
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text", ["8679", "host:", "host:99999", "h:x"])
def test_parse_bind_rejects(text):
    with pytest.raises(UsageError) as info:
        parse_bind(text)
    assert info.value.code == "E205"


@pytest.mark.parametrize("argv, code", [
    (["--on-invalid-config", "crash"], "E206"),
    (["--iptables-backend", "bpf"], "E207"),
    (["--health-bind", "nope"], "E205"),
    (["--resync-interval", "0"], "E204"),
])
def test_bad_agent_flags_are_usage_errors(argv, code, capsys, tmp_path):
    assert agent_main(["--config-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {code} ") and "Traceback" not in err


def test_go_agent_daemonset_arguments_are_accepted(capsys, tmp_path):
    ConfigVolume(str(tmp_path / "c"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    argv = ["--v=2", "--resync-interval=60", "--logtostderr", "--masq-chain=IP-MASQ-AGENT",
            "--nomasq-all-reserved-ranges=false", "--enable-ipv6=false", "--once", "--dry-run",
            "--config-dir", str(tmp_path / "c")]
    assert agent_main(argv) == 0
    out, err = capsys.readouterr()
    assert "-A IP-MASQ-AGENT" in out and "using config:" in err


def test_help_lists_the_daemon_flags(capsys):
    assert agent_main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--health-bind", "--on-invalid-config", "--cleanup-on-exit", "--iptables-backend",
                 "--iptables-wait", "--heartbeat-interval", "--once", "--resync-interval"):
        assert flag in out


def test_metrics_text_format():
    state = AgentState(60.0, (4, 6))
    state.count_sync("unchanged")
    state.count("drift_repairs", 4)
    state.update(config_error=("E105", 'ip-masq-agent line 2: CIDR "10.0.0.1/8" is "not" aligned'),
                 config_valid=True)
    text = state.render()
    assert text.endswith("\n")
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge")
            names.add(name)
            continue
        if line.startswith("#"):
            continue
        assert re.fullmatch(r'[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? -?[0-9.e+]+', line), line
    for name in ("syncs_total", "drift_repairs_total", "config_errors_total", "config_generation",
                 "last_successful_sync_timestamp_seconds", "rules", "ready", "config_valid"):
        assert f"masqctl_node_agent_{name}" in names
    assert 'masqctl_node_agent_syncs_total{result="unchanged"} 1' in text
    assert 'masqctl_node_agent_drift_repairs_total{family="ipv4"} 1' in text
    assert 'message="ip-masq-agent line 2: CIDR \\"10.0.0.1/8\\" is \\"not\\" aligned"' in text
    assert "masqctl_node_agent_config_valid 0" in text
    ok, why = state.ready()
    assert not ok and why.startswith("config invalid")


def test_health_follows_the_last_successful_sync():
    state = AgentState(10.0, (4,))
    assert state.healthy() == (True, "starting")
    state.sync_succeeded()
    now = state.last_success_monotonic
    assert state.healthy(now + 20)[0] is True
    state.tick()
    ok, why = state.healthy(state.loop_tick + 26)
    assert not ok and "loop stalled" in why


def test_klog_line_format_and_verbosity():
    buf = io.StringIO()
    log = Logger(2, buf)
    log.info("using config: {}")
    log.info("hidden", level=3)
    log.warning("careful")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ test_agent_units\.py:\d+\] using config: \{\}",
                        lines[0])
    assert lines[1].startswith("W")


AGENT_RUN = """
import sys
sys.argv = ["agent-run"] + sys.argv[1:]
from {module} import main
rc = main(sys.argv[1:])
sys.stdout.write(repr({{"rc": rc, "modules": sorted(sys.modules)}}) + "\\n")
"""


@pytest.mark.parametrize("module, prefix", [("masqctl.agent.main", []),
                                            ("masqctl.cli.main", ["node-agent"])])
def test_agent_never_imports_cli_or_cloud_libraries(tmp_path, module, prefix):
    cfg = ConfigVolume(str(tmp_path / "c"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    r = subprocess.run([sys.executable, "-c", AGENT_RUN.format(module=module), *prefix, "--once", "--dry-run",
                        "--config-dir", cfg.path], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert r.returncode == 0, r.stderr
    result = ast.literal_eval(r.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0
    heavy = [m for m in result["modules"] if m.split(".")[0] in ("typer", "rich", "kubernetes", "azure",
                                                                  "click", "urllib3", "http")]
    assert heavy == []


@requires_netns
def test_running_daemon_never_imports_cli_or_cloud_libraries(node, tmp_path, lockfile):
    """A real daemon run (endpoints on, a sync applied, SIGTERM) in a namespace."""
    cfg = ConfigVolume(str(tmp_path / "c"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    # -S, as in the image: no site-packages start-up hooks loading modules on their own
    path = os.pathsep.join([ROOT, os.path.dirname(os.path.dirname(yaml.__file__))])
    proc = node.popen(sys.executable, "-S", "-c", AGENT_RUN.format(module="masqctl.cli.main"), "node-agent",
                      "--config-dir", cfg.path, "--resync-interval", "1", stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True,
                      env=dict(os.environ, PYTHONPATH=path, XTABLES_LOCKFILE=lockfile))
    try:
        deadline = time.monotonic() + 10
        while "IP-MASQ-AGENT" not in node.iptables_save() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    result = ast.literal_eval(out.strip().splitlines()[-1])
    assert result["rc"] == 0
    assert "masqctl.agent.health" in result["modules"] and "masqctl.agent.loop" in result["modules"]
    heavy = [m for m in result["modules"] if m.split(".")[0] in ("typer", "rich", "kubernetes", "azure",
                                                                  "click", "urllib3", "http", "logging")]
    assert heavy == []
    # the long-running process leaves the engine to its short-lived sync worker
    engine = [m for m in result["modules"] if m.startswith(("masqctl.engine", "masqctl.netfilter", "yaml",
                                                            "masqctl.agent.worker", "masqctl.agent.reconcile"))
              or m in ("dataclasses", "decimal")]
    assert engine == []
    # nor the stdlib modules it deliberately does without (about 1.4 MB together)
    assert [m for m in result["modules"] if m in ("re", "json", "subprocess", "socket", "selectors",
                                                  "locale", "typing", "inspect")] == []


def test_flag_defaults_are_the_engine_constants():
    from masqctl.agent.flags import flag_set
    from masqctl.engine import DEFAULT_CHAIN, DEFAULT_CONFIG_DIR, FLAVORS

    defaults = {f.name: f.default for f in flag_set().flags}
    assert (defaults["masq-chain"], defaults["config-dir"], defaults["flavor"]) == (DEFAULT_CHAIN,
                                                                                   DEFAULT_CONFIG_DIR, FLAVORS[0])
    assert ", ".join(FLAVORS) in next(f.help for f in flag_set().flags if f.name == "flavor")


def test_daemon_reports_engine_usage_errors_at_start(tmp_path):
    """Flags the engine checks (chain name, --to-ports) are checked by the first sync, before
    anything is written: exit 2 with the code."""
    cfg = ConfigVolume(str(tmp_path / "c"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    for flag, code in ((["--masq-chain", "POSTROUTING"], "E203"), (["--flavor", "upstream", "--to-ports", "9-1"],
                                                                   "E202")):
        r = subprocess.run([sys.executable, "-m", "masqctl.agent", "--config-dir", cfg.path, "--health-bind", "0",
                            "--iptables-backend", "nft", *flag], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=ROOT, PATH="/nonexistent"))
        assert r.returncode == 2, r.stderr
        assert f"error: {code} " in r.stderr and "Traceback" not in r.stderr


def test_spawn_timeout_holds_when_the_child_stops_reading_a_large_input():
    """A child that stops reading its stdin must not block the writer past the timeout (the
    input is larger than a pipe buffer; the pipe has some room, not 64 KiB)."""
    from masqctl.agent import spawn

    started = time.monotonic()
    with pytest.raises(spawn.Timeout):
        spawn.run(["sh", "-c", "head -c 20000 >/dev/null; sleep 5"], b"x" * (1 << 20), timeout=0.5)
    assert time.monotonic() - started < 2.5


def test_health_before_the_first_success_counts_on_the_monotonic_clock():
    """No successful sync for more than 2 periods (+5 s) after start: unhealthy, whatever the
    wall clock does (a node stepping its clock at boot) and for the ``now`` asked about."""
    state = AgentState(10.0, (4,))
    later = time.monotonic() + 30
    state.loop_tick = later  # the loop itself is alive
    ok, why = state.healthy(later)
    assert not ok and "no successful sync since start" in why


def test_a_slow_client_holds_the_endpoints_for_at_most_the_connection_timeout():
    """One connection at a time: a client trickling its request must not keep the kubelet's
    probes waiting longer than the per-connection timeout."""
    import socket
    import threading

    from masqctl.agent.health import HealthServer

    server = HealthServer(("127.0.0.1", 0), AgentState(60.0, (4,)))
    server.start()
    stop = threading.Event()
    try:
        slow = socket.create_connection(server.address, timeout=5)

        def trickle():
            for ch in b"GET /healthz HTTP/1.0\r\nX-Slow: " + b"a" * 100:
                if stop.wait(0.3):
                    return
                try:
                    slow.send(bytes([ch]))
                except OSError:
                    return

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        time.sleep(0.2)
        began = time.monotonic()
        probe = socket.create_connection(server.address, timeout=10)
        probe.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = probe.recv(4096)
        waited = time.monotonic() - began
        probe.close()
        assert answer.startswith(b"HTTP/1.0 200")
        assert waited < 3.5, waited
    finally:
        stop.set()
        slow.close()
        server.close()


def test_retries_stay_within_the_budget_including_the_attempts_themselves():
    """Backoff stops when the next attempt would end after the deadline, not only when its
    sleep would: a slow failing attempt (an iptables lock wait) must not overrun the period."""
    from masqctl.agent.iptables import IptablesFailure
    from masqctl.agent.flags import flag_set
    from masqctl.agent.worker import Worker

    values = flag_set().parse([])
    worker = Worker({"mode": "sync", "flags": values, "fallback": None, "budget": 1.0}, Logger(0, io.StringIO()))

    def slow_failure():
        time.sleep(0.3)
        raise IptablesFailure("lock held", kind="lock", code="E402")

    began = time.monotonic()
    with pytest.raises(IptablesFailure):
        worker.retrying("ipv4", slow_failure)
    assert time.monotonic() - began <= 1.0
    assert worker.errors["lock"] >= 1


@pytest.mark.parametrize("period", [1, 60])
def test_the_retry_budget_is_a_fraction_of_the_period(period, tmp_path):
    from masqctl.agent.loop import RETRY_FRACTION, Agent
    from masqctl.agent.flags import flag_set

    agent = Agent(flag_set().parse(["--config-dir", str(tmp_path), "--resync-interval", str(period)]),
                  Logger(0, io.StringIO()))
    asked = []
    agent.call_worker = lambda request: asked.append(request) or None
    assert agent.sync() == "failed"
    assert 0 < asked[0]["budget"] <= period * RETRY_FRACTION


REAP = """
import io, os, sys, time
from masqctl.agent.klog import Logger
from masqctl.agent.loop import Agent
from masqctl.agent.flags import flag_set

agent = Agent(flag_set().parse(["--config-dir", sys.argv[1]]), Logger(0, io.StringIO()))
# an orphan the container's PID 1 inherited (e.g. the iptables child of a worker killed on timeout)
pid = os.posix_spawnp("true", ["true"], os.environ)
time.sleep(0.3)
agent.wait(0.05)
try:
    os.waitpid(pid, os.WNOHANG)
    print("zombie left")
except ChildProcessError:
    print("reaped")
"""


def test_the_daemon_reaps_children_it_did_not_start_between_periods(tmp_path):
    """In the image the daemon is PID 1: orphans are re-parented to it and stay zombies
    unless it reaps them."""
    r = subprocess.run([sys.executable, "-c", REAP, str(tmp_path)], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.stdout.strip() == "reaped", r.stdout + r.stderr


@pytest.mark.parametrize("from_file", [0.0, -5.0, 0.001])
def test_a_period_from_the_file_never_goes_below_one_second(from_file, tmp_path):
    """upstream/tke: ``resyncInterval: 0s`` (or negative) must not turn the loop into a busy
    loop of iptables listings, nor make /healthz's limit negative."""
    from masqctl.agent.loop import Agent
    from masqctl.agent.flags import flag_set

    agent = Agent(flag_set().parse(["--config-dir", str(tmp_path), "--flavor", "upstream"]),
                  Logger(0, io.StringIO()))
    target = [{"family": 4, "chain": CHAIN, "rules": [f"-A {CHAIN} -j MASQUERADE"], "jump": GO_JUMP}]
    agent.accept_config({"config": {"json": "{}", "warnings": [], "source": "ip-masq-agent", "period": from_file},
                         "target": target})
    assert agent.period == 1.0
    assert agent.state.healthy()[0]


def test_a_failed_accept_does_not_end_the_endpoints():
    """accept() can fail for a moment (a client that reset before it was accepted, no free
    descriptor): the responder keeps serving; only closing the server ends it."""
    import errno
    import socket

    from masqctl.agent.health import HealthServer

    server = HealthServer(("127.0.0.1", 0), AgentState(60.0, (4,)))

    class FlakyAccept:
        failures = 1

        def __init__(self, sock):
            self.sock = sock

        def _accept(self):
            if FlakyAccept.failures:
                FlakyAccept.failures -= 1
                raise OSError(errno.ECONNABORTED, "Software caused connection abort")
            return self.sock._accept()

        def shutdown(self, how):
            self.sock.shutdown(how)

        def close(self):
            self.sock.close()

    server.sock = FlakyAccept(server.sock)
    server.start()
    try:
        probe = socket.create_connection(server.address, timeout=3)
        probe.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert probe.recv(4096).startswith(b"HTTP/1.0 200")
        probe.close()
    finally:
        server.close()
    server._thread.join(timeout=3)
    assert not server._thread.is_alive()


def test_exit_policy_writes_nothing_for_an_invalid_config(tmp_path):
    """--on-invalid-config exit: the rules in the kernel stay as they were (the worker gets
    no last good rules to enforce before the agent exits)."""
    from masqctl.agent.loop import Agent
    from masqctl.agent.flags import flag_set

    agent = Agent(flag_set().parse(["--config-dir", str(tmp_path), "--on-invalid-config", "exit"]),
                  Logger(0, io.StringIO()))
    agent.target = [{"family": 4, "chain": CHAIN, "rules": [f"-A {CHAIN} -j MASQUERADE"], "jump": GO_JUMP}]
    asked = []
    agent.call_worker = lambda request: asked.append(request) or None
    agent.sync()
    assert asked[0]["fallback"] is None


def test_spawn_kills_and_reaps_the_child_when_interrupted(monkeypatch):
    """Whatever ends the wait early (a signal handler raising, an unexpected error), the
    child is killed and reaped: no process keeps running unseen, no zombie is left."""
    from masqctl.agent import spawn

    pids = []
    real_spawn = os.posix_spawnp

    def spawned(*args, **kwargs):
        pids.append(real_spawn(*args, **kwargs))
        return pids[-1]

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(spawn.os, "posix_spawnp", spawned)
    monkeypatch.setattr(spawn.select, "select", interrupted)
    with pytest.raises(KeyboardInterrupt):
        spawn.run(["sleep", "30"], timeout=60)
    monkeypatch.undo()
    with pytest.raises(ChildProcessError):
        os.waitpid(pids[0], os.WNOHANG)


def test_spawn_timeout_holds_when_the_child_closes_its_output_and_keeps_running():
    from masqctl.agent import spawn

    started = time.monotonic()
    with pytest.raises(spawn.Timeout):
        spawn.run(["sh", "-c", "exec >&- 2>&-; sleep 5"], timeout=0.5)
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("flavor", ["azure-v2", "upstream"])
def test_the_daemon_reads_the_files_the_engine_reads(tmp_path, flavor):
    from masqctl.agent.loop import config_bytes
    from masqctl.engine import read_config_dir

    files = {"ip-masq-agent": "masqLinkLocal: true\n", "ip-masq-agent-reconciled": "nonMasqueradeCIDRs: []\n",
             "other": "x: 1\n"}
    vol = ConfigVolume(str(tmp_path / "v"), files)
    generation, seen = config_bytes(vol.path, flavor)
    assert generation == vol.generation
    assert [(s.name, s.data) for s in read_config_dir(vol.path, flavor)] == list(seen)
    assert [name for name, _ in seen] == (["ip-masq-agent", "ip-masq-agent-reconciled"]
                                          if flavor == "azure-v2" else ["ip-masq-agent"])
    vol.swap({"ip-masq-agent": "masqLinkLocal: false\n"})
    assert config_bytes(vol.path, flavor)[1] == (("ip-masq-agent", b"masqLinkLocal: false\n"),)
    assert config_bytes(str(tmp_path / "missing"), "azure-v2") is None


GROUP_SIGINT = """
import os, signal, threading
signal.signal(signal.SIGINT, lambda *a: None)  # the agent's handler: finish the sync, then stop
from masqctl.agent import spawn
threading.Timer(0.3, lambda: os.killpg(os.getpgrp(), signal.SIGINT)).start()
print(spawn.run(["sleep", "1"], timeout=10).returncode)
"""


def test_ctrl_c_to_the_process_group_lets_the_current_sync_finish():
    """SIGINT from a terminal reaches the whole foreground group: the agent decides what it
    means (finish the sync, then stop); its iptables and worker children must not die of it."""
    r = subprocess.run([sys.executable, "-c", GROUP_SIGINT], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=ROOT), start_new_session=True)
    assert r.stdout.strip() == "0", r.stdout + r.stderr


def test_spawn_closes_its_pipes_when_it_cannot_make_them_all(monkeypatch):
    """Out of descriptors (EMFILE) half-way through: the pipes already made are closed."""
    import errno

    from masqctl.agent import spawn

    real_pipe = os.pipe
    made = []

    def pipe():
        if len(made) == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        made.append(real_pipe())
        return made[-1]

    before = set(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(spawn.os, "pipe", pipe)
    with pytest.raises(OSError):
        spawn.run(["true"])
    monkeypatch.undo()
    leaked = [fd for fd in made[0] if str(fd) in set(os.listdir("/proc/self/fd")) - before]
    for fd in leaked:
        os.close(fd)
    assert leaked == []
