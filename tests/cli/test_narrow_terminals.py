"""The human output at 80 and 120 columns: no line wider than the terminal, no address, CIDR,
node or ConfigMap name cut, broken mid-word or replaced by an ellipsis."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB_SPOKE = os.path.join(ROOT, "examples", "hub-spoke")
NAMES = ("azure-ip-masq-agent-config-reconciled", "azure-ip-masq-agent-config", "aks-system-20931744-vmss000000")


def run(width: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False, env={**os.environ, "COLUMNS": str(width)})


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[\w./:-]+", text))


@pytest.mark.parametrize("width", [80, 120])
def test_inspect_fits_and_cuts_nothing(width):
    r = run(width, "inspect", "--bundle", HUB_SPOKE)
    doc = json.loads(run(width, "inspect", "--bundle", HUB_SPOKE, "-o", "json").stdout)
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in r.stdout
    words = words_of(r.stdout)
    for row in doc["config"]["nonMasqueradeCIDRs"]:
        assert row["cidr"] in words
    for name in NAMES:
        assert name in words, name


@pytest.mark.parametrize("width", [80, 120])
def test_apply_plan_fits_and_cuts_nothing(width):
    r = run(width, "apply", "--goal", "preserve-source-ip", "--bundle", HUB_SPOKE)
    plan = json.loads(run(width, "apply", "--goal", "preserve-source-ip", "--bundle", HUB_SPOKE, "-o", "json").stdout)
    flows_at = r.stdout.index("Representative flows")
    block = r.stdout[flows_at:r.stdout.index("\nwarning", flows_at)]
    assert max(len(line) for line in block.splitlines()) <= width
    assert "…" not in r.stdout
    words = words_of(r.stdout)
    for flow in plan["flows"]:
        assert flow["dst"] in words, flow
    assert "169.254.169.254" in words and "azure-ip-masq-agent-config-reconciled" in words


def run_on_terminal(width: int, *args: str) -> str:
    """What a terminal ``width`` columns wide shows (stdout and stderr on one pseudo-terminal)."""
    import fcntl
    import pty
    import struct
    import termios

    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 24, width, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    proc = subprocess.Popen([sys.executable, "-m", "masqctl.cli.main", *args], stdin=subprocess.DEVNULL,
                            stdout=sub, stderr=sub, cwd=ROOT, env={**env, "TERM": "dumb"})
    os.close(sub)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:       # the other side closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(main)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


@pytest.mark.parametrize("args", [
    ("who", "10.40.0.4:51234", "--to", "10.42.1.10:443", "--bundle", HUB_SPOKE),
    ("who", "10.40.0.4", "--to", "10.42.1.10:443", "--bundle", HUB_SPOKE),
    ("apply", "--goal", "preserve-source-ip", "--bundle", HUB_SPOKE),
], ids=["who-exact", "who-candidates", "apply"])
def test_on_an_80_column_terminal_lines_wrap_at_words(args):
    """The terminal does not cut a line: each fits, and every name and address of the piped output
    (written whole, for grep) is whole on the terminal too."""
    shown = run_on_terminal(80, *args)
    piped = run(400, *args)
    assert max(len(line) for line in shown.splitlines()) <= 80, shown
    missing = {w for w in words_of(piped.stdout + piped.stderr) if len(w) > 3} - words_of(shown)
    assert not missing, (missing, shown)


def test_explain_path_hops_wrap_right_of_their_stage_and_name_each_address_once():
    r = run(80, "explain", "10.40.0.9", "orders/orders-api:80", "--bundle", HUB_SPOKE)
    lines = r.stdout.splitlines()
    at = max(i for i, line in enumerate(lines) if line.startswith("path "))
    assert lines[at - 1] == ""                                  # the path is its own block
    block = lines[at + 1:]
    assert max(len(line) for line in lines) <= 80
    hops = [i for i, line in enumerate(block) if re.match(r"  (egress|network|ingress|endpoint) ", line)]
    assert hops
    for i in hops:          # a hop's continuation lines start under its text, not at the margin
        for line in block[i + 1:]:
            if re.match(r"  (egress|network|ingress|endpoint) ", line) or not line.startswith(" "):
                break
            assert line.startswith(" " * 11), line
    seen = " ".join(line for line in lines if line.startswith("seen by the destination") or line.startswith("aks-"))
    entries = re.findall(r"[\d.]+ \(via [\w-]+\)", seen)
    assert entries and len(entries) == len(set(entries)), seen


def test_collect_summary_wraps_at_words_on_an_80_column_terminal(tmp_path):
    shown = run_on_terminal(80, "collect", "-o", str(tmp_path / "b1"), "--bundle", HUB_SPOKE)
    piped = run(400, "collect", "-o", str(tmp_path / "b2"), "--bundle", HUB_SPOKE)
    assert max(len(line) for line in shown.splitlines()) <= 80, shown
    words = {w for w in words_of(piped.stderr) if len(w) > 3 and "/b2" not in w}
    assert words - words_of(shown) == set(), shown
