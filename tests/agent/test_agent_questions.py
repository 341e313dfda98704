"""A command that asks something (``--help``, ``--version``, a flag the agent does not know)
answers and exits: the daemon never starts from it. Each command runs as a process with a short
timeout, inside a network namespace of its own and with a PATH that has no iptables, so even a
daemon started by mistake could touch nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from agentlib import ROOT, ConfigVolume, yaml_config
from netns import netns_available, requires_netns

import masqctl

# entry points: the module, the console script's lean path, and the typer path (a global option first)
ENTRIES = {
    "module": ["-m", "masqctl.agent"],
    "masqctl": ["-m", "masqctl.cli.main", "node-agent"],
    "typer": ["-m", "masqctl.cli.main", "--debug", "node-agent"],
}
VERSION = f"masqctl node-agent {masqctl.__version__}\n"


@pytest.fixture
def isolated(tmp_path):
    """Run an agent command where a daemon could do no harm; returns (rc, stdout, stderr, nat table)."""
    cfg = ConfigVolume(str(tmp_path / "c"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    ns = None
    if netns_available() is None:
        from netns import NetNS

        ns = NetNS("ask")
    env = dict(os.environ, PYTHONPATH=ROOT)
    no_iptables = "PATH=" + str(tmp_path / "no-iptables-here")

    def run(entry: str, *argv: str):
        # env(1) sets the PATH the agent sees, after ip(8) is found with the test's own
        cmd = [shutil.which("env"), no_iptables, sys.executable, *ENTRIES[entry], "--config-dir", cfg.path, *argv]
        if ns is not None:
            cmd = ns.cmd(*cmd)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=10)
        except subprocess.TimeoutExpired as exc:  # the daemon started: the test fails
            raise AssertionError(f"{' '.join(argv)} did not exit: {exc.stderr!r}") from None
        table = ns.run("iptables-save", "-t", "nat", check=False).stdout if ns is not None else ""
        return r.returncode, r.stdout, r.stderr, table

    yield run
    if ns is not None:
        ns.delete()


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("argv", [["--version"], ["-version"], ["--version=true"], ["--v=2", "--version"]])
def test_version_prints_the_version_and_exits_0(isolated, entry, argv):
    rc, out, err, table = isolated(entry, *argv)
    assert (rc, out) == (0, VERSION), err
    assert "starting" not in err and "IP-MASQ-AGENT" not in table


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_help_prints_the_usage_and_exits_0(isolated, entry):
    rc, out, err, table = isolated(entry, "--help")
    assert rc == 0 and out.startswith("Usage: masqctl node-agent") and "--version" in out
    assert "starting" not in err and "IP-MASQ-AGENT" not in table


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("argv, named", [
    (["--bogus"], "-bogus"),
    # component-base's pflag flags: the Go agents parse with Go's flag package and refuse them too
    (["--log-flush-frequency", "5s"], "-log-flush-frequency"),
    (["--version=raw"], "-version"),
    (["version"], "'version'"),
    (["help"], "'help'"),
    (["--version", "--no-such-flag"], "-no-such-flag"),
])
def test_an_unknown_flag_or_word_is_refused_and_nothing_starts(isolated, entry, argv, named):
    rc, out, err, table = isolated(entry, *argv)
    assert rc == 2 and out == ""
    assert err.startswith("error: E204 ") and named in err.splitlines()[0] and "Traceback" not in err
    assert "starting" not in err and "IP-MASQ-AGENT" not in table


def test_version_is_not_a_flag_the_go_agents_define():
    """The Go agents read their flags with Go's flag package: klog's flags are there, component-base's
    pflag-only --version and --log-flush-frequency are not (inspect reads a Go agent's args so)."""
    from masqctl.analysis.agentconfig import go_flag_set
    from masqctl.errors import UsageError

    for flavor in ("azure-v2", "upstream"):
        assert go_flag_set(flavor).parse(["--logtostderr", "--v=2", "--log_dir=/tmp"])["v"] == 2
        for flag in ("--version", "--log-flush-frequency=5s"):
            with pytest.raises(UsageError):
                go_flag_set(flavor).parse([flag])


# --------------------------------------------------------------------------- one validation

BAD_VALUES = [
    (["--on-invalid-config", "bogus"], "E206", "--on-invalid-config"),
    (["--iptables-backend", "bogus"], "E207", "--iptables-backend"),
    (["--iptables-wait", "-1"], "E204", "--iptables-wait"),
    (["--health-bind", "nope"], "E205", "--health-bind"),
    (["--health-bind", "127.0.0.1:70000"], "E205", "--health-bind"),
    (["--flavor", "bogus"], "E201", "--flavor"),
    (["--resync-interval", "0"], "E204", "--resync-interval"),
    (["--masq-chain", "POSTROUTING"], "E203", "--masq-chain"),
    (["--flavor", "upstream", "--to-ports", "9-1"], "E202", "--to-ports"),
]


@pytest.mark.parametrize("bad, code, named", BAD_VALUES)
def test_dry_run_refuses_what_the_real_run_refuses(isolated, bad, code, named):
    """``--once --dry-run``, ``--once`` and the daemon refuse the same value with the same error,
    before anything is read, written or listened on; inspect says the same of such a DaemonSet."""
    from masqctl.analysis.agentconfig import node_agent_setup
    from masqctl.cluster.model import AgentDaemonSet

    lines = {}
    for mode, extra in (("dry-run", ["--once", "--dry-run"]), ("once", ["--once"]), ("daemon", [])):
        rc, out, err, table = isolated("module", *extra, *bad)
        assert rc == 2 and out == "", (mode, err)
        assert "Traceback" not in err and "starting" not in err and "IP-MASQ-AGENT" not in table
        lines[mode] = err.splitlines()[0]
    assert lines["dry-run"] == lines["once"] == lines["daemon"]
    assert lines["dry-run"].startswith(f"error: {code} {named}") or lines["dry-run"].startswith(f"error: {code} ")
    assert named in lines["dry-run"]

    ds = AgentDaemonSet("kube-system", "masq", "masqctl-node-agent", "azure-v2", "agent", "example/masqctl-node-agent:1",
                        command=("masqctl", "node-agent"), args=tuple(bad))
    _, error, *_ = node_agent_setup(ds)
    assert error is not None and error.code == code and named in error.one_line()


def test_a_question_is_answered_whatever_the_other_values(isolated):
    from masqctl.analysis.agentconfig import node_agent_setup
    from masqctl.cluster.model import AgentDaemonSet

    for question in ("--help", "--version"):
        rc, out, err, _ = isolated("module", "--on-invalid-config", "bogus", "--health-bind", "nope", question)
        assert rc == 0 and out and err == ""
        ds = AgentDaemonSet("kube-system", "masq", "masqctl-node-agent", "azure-v2", "agent", "x/masqctl-node-agent:1",
                            args=("--on-invalid-config", "bogus", question))
        _, error, _, notes, _, on_invalid = node_agent_setup(ds)
        assert error is None and on_invalid is None and any(n.startswith(question + ":") for n in notes)


# --------------------------------------------------------------------------- another program's chain

@pytest.mark.parametrize("chain, owner", [("KUBE-POSTROUTING", "kube-proxy/kubelet"), ("cali-nat-outgoing", "Calico"),
                                          ("CILIUM_POST_nat", "Cilium"), ("SWIFT-POSTROUTING", "Azure CNS")])
def test_a_chain_another_program_owns_is_refused_in_every_mode(isolated, chain, owner):
    for extra in (["--once", "--dry-run"], ["--once"], []):
        rc, out, err, table = isolated("module", *extra, "--masq-chain", chain)
        assert rc == 2 and out == "", err
        first = err.splitlines()[0]
        assert first.startswith(f"error: E230 --masq-chain: {chain} is {owner}") and "--allow-foreign-chain" in err
        assert "starting" not in err and chain not in table


@requires_netns
def test_allow_foreign_chain_takes_it_with_a_warning(node, tmp_path, lockfile):
    """With the flag the agent does what it is told, in a namespace: kube-proxy's chain becomes the
    agent's (that is the damage the refusal prevents), and the agent says so."""
    from agentlib import run_once

    cfg = ConfigVolume(str(tmp_path / "c"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    node.iptables_restore("*nat\n:KUBE-POSTROUTING - [0:0]\n-A POSTROUTING -j KUBE-POSTROUTING\n"
                          "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\nCOMMIT\n")
    dry = run_once(node, cfg.path, lockfile, "--dry-run", "--masq-chain", "KUBE-POSTROUTING", "--allow-foreign-chain")
    assert dry.returncode == 0 and "is kube-proxy/kubelet's chain" in dry.stderr, dry.stderr
    r = run_once(node, cfg.path, lockfile, "--masq-chain", "KUBE-POSTROUTING", "--allow-foreign-chain")
    assert r.returncode == 0, r.stderr
    assert "is kube-proxy/kubelet's chain (--allow-foreign-chain)" in r.stderr
    assert "-A KUBE-POSTROUTING -d 10.0.0.0/8" in node.iptables_save()
