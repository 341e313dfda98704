"""The command line as a user runs it: `masqctl node-agent --once --dry-run`, exit codes,
errors without tracebacks, and no heavy imports on offline paths."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from errordoc import no_result

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples", "config-folders")


def run(*args: str, module: str = "masqctl.cli.main") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def test_dry_run_prints_the_payload_exactly():
    r = run("node-agent", "--once", "--dry-run", "--config-dir", f"{EXAMPLES}/aks-hub-spoke-custom")
    assert r.returncode == 0, r.stderr
    nm = '-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE"'
    lines = r.stdout.splitlines()
    assert lines[:3] == ["# iptables-restore", "*nat", ":IP-MASQ-AGENT - [0:0]"]
    assert lines[3:7] == [f"{nm} -d {c} -j RETURN" for c in
                          ("10.0.0.0/8", "10.40.0.0/17", "10.0.0.0/16", "10.40.0.0/15")]
    assert lines[7].endswith("-j MASQUERADE") and lines[8] == "COMMIT"
    assert lines[9].startswith("# iptables -t nat: ensure in POSTROUTING")
    assert len(lines) == 10 and r.stderr == ""


def test_dry_run_ipv6_and_flags_in_go_style():
    r = run("node-agent", "-once", "--dry-run=true", "--enable-ipv6", "--masq-chain", "MASQ-TEST", "--v=2",
            "--logtostderr=true", "--resync-interval=60", "--config-dir", f"{EXAMPLES}/aks-kubenet")
    assert r.returncode == 0, r.stderr
    assert "# ip6tables-restore\n*nat\n:MASQ-TEST - [0:0]\n" in r.stdout
    assert "-A MASQ-TEST -m comment --comment \"ip-masq-agent: local traffic is not subject to MASQUERADE\" " \
           "-d fe80::/10 -j RETURN" in r.stdout
    assert 'using config: {"nonMasqueradeCIDRs":["10.244.0.0/16"],"masqLinkLocal":true,"masqLinkLocalIPv6":false}' \
        in r.stderr


def test_lean_entry_point_gives_the_same_output():
    args = ["--once", "--dry-run", "--config-dir", f"{EXAMPLES}/aks-azure-cni-node-subnet"]
    assert run(*args, module="masqctl.agent").stdout == run("node-agent", *args).stdout


@pytest.mark.parametrize("content,needle", [
    ("nonMasqueradeCIDRs:\n  - 10.0.0.1/8\n", 'ip-masq-agent line 2 key nonMasqueradeCIDRs: CIDR \'10.0.0.1/8\''),
    ("nonMasqueradeCIDRs:\n  - fd00::/8\n", "IPv6 CIDR 'fd00::/8' but IPv6 is not enabled"),
    ("masqLinkLocal: maybe\n", "masqLinkLocal is a string ('maybe'), the agent needs true or false"),
    ("nonMasqueradeCIDRs: [\n", "not valid YAML"),
])
def test_invalid_config_exits_1_with_one_clear_line_and_no_stdout(tmp_path, content, needle):
    (tmp_path / "ip-masq-agent").write_text(content)
    r = run("node-agent", "--once", "--dry-run", "--config-dir", str(tmp_path))
    assert r.returncode == 1
    assert no_result(r)
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.splitlines()[0].startswith("error: E10")


def test_unknown_keys_warn_on_stderr(tmp_path):
    (tmp_path / "ip-masq-agent").write_text("nonMasqueradeCIDR: [10.0.0.0/8]\n")
    r = run("node-agent", "--once", "--dry-run", "--config-dir", str(tmp_path))
    assert r.returncode == 0
    assert "W101 ip-masq-agent line 1: key 'nonMasqueradeCIDR' is not known" in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["--flavor", "gke"], "unknown flavour 'gke'"),
    (["--to-ports", "9-1", "--flavor", "upstream"], "first port is greater than last"),
    (["--masq-chain", "POSTROUTING"], "built-in chain"),
    (["--resync-interval", "soon"], "invalid value 'soon'"),
    (["--nope"], "flag provided but not defined: -nope"),
    (["--dry-run"], "--dry-run needs --once"),
])
def test_usage_errors_exit_2(args, needle):
    r = run("node-agent", "--once", *args) if "--dry-run" not in args else run("node-agent", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_help_lists_the_five_commands():
    r = run("--help")
    assert r.returncode == 0
    for command in ("inspect", "explain", "apply", "collect", "node-agent"):
        assert command in r.stdout


PROBE = """
import sys
from masqctl.cli.main import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = sorted({{m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('kubernetes', 'azure', 'typer', 'rich')}})
print('imported:' + ','.join(heavy), file=sys.stderr)
"""


def imported_after(args: list[str]) -> set[str]:
    r = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, cwd=ROOT)
    last = [line for line in r.stderr.splitlines() if line.startswith("imported:")][-1]
    return set(filter(None, last[len("imported:"):].split(",")))


def test_help_imports_no_kubernetes_or_azure():
    assert imported_after(["--help"]) & {"kubernetes", "azure"} == set()


def test_node_agent_imports_no_typer_rich_kubernetes_or_azure():
    args = ["node-agent", "--once", "--dry-run", "--config-dir", f"{EXAMPLES}/aks-kubenet"]
    assert imported_after(args) == set()


def test_node_agent_exit_status_survives_the_typer_path(tmp_path):
    # `--debug` before the command goes through typer instead of the lean forwarder
    (tmp_path / "ip-masq-agent").write_text("nonMasqueradeCIDRs: [10.0.0.1/8]\n")
    r = run("--debug", "node-agent", "--once", "--dry-run", "--config-dir", str(tmp_path))
    assert r.returncode == 1 and "E105" in r.stderr and no_result(r)
    assert run("--debug", "node-agent", "--nope").returncode == 2


def test_cli_needs_no_separate_click_install():
    # recent typer vendors click; the CLI must not import click itself
    import pathlib
    for path in pathlib.Path(ROOT, "masqctl").rglob("*.py"):
        text = path.read_text()
        assert "import click" not in text and "from click" not in text, path
