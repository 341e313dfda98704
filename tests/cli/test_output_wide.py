"""`-o wide`, as kubectl's: the same human output with more columns where there is a table
(inspect's nodes, one row each; apply's flows, one row each); rows are never wrapped or cut, and
a command without a table prints as with `-o table`."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB = os.path.join(ROOT, "examples", "hub-spoke")


def run(width: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False, env={**os.environ, "COLUMNS": str(width)})


@pytest.mark.parametrize("width", [80, 120])
def test_inspect_wide_lists_every_node_in_one_row(width):
    r = run(width, "inspect", "--bundle", HUB, "-o", "wide")
    assert r.returncode == 0, r.stderr
    nodes = yaml.safe_load(open(os.path.join(HUB, "nodes.yaml")))["items"]
    header = next(line for line in r.stdout.splitlines() if line.startswith("NODE "))
    assert header.split() == ["NODE", "POOL", "INTERNAL-IP", "READY", "CHAIN", "BACKEND", "CAPTURED"]
    for n in nodes:
        ip = next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
        row = next(line for line in r.stdout.splitlines() if line.startswith(n["metadata"]["name"] + " "))
        assert row.split()[:6] == [n["metadata"]["name"], "system", ip, "True", "in-sync", "nft"], row
    assert re.search(r"^10\.40\.0\.0/17 +4 ", r.stdout, re.M)          # the family column
    narrow = run(width, "inspect", "--bundle", HUB).stdout
    assert "INTERNAL-IP" not in narrow
    assert narrow.splitlines()[0] == r.stdout.splitlines()[0]          # the same verdict first


def test_apply_wide_is_one_row_per_flow():
    r = run(80, "apply", "--goal", "preserve-source-ip", "--bundle", HUB, "-o", "wide")
    assert r.returncode == 0, r.stderr
    block = r.stdout[r.stdout.index("Representative flows"):]
    assert block.splitlines()[1].split()[:4] == ["FLOW", "DST", "BEFORE", "AFTER"]
    for dst in ("10.42.0.4", "10.0.0.10", "8.8.8.8", "169.254.169.254"):
        assert len([line for line in block.splitlines() if f"  {dst}  " in line]) == 1, dst


def test_commands_without_a_table_print_as_table_and_errors_stay_human():
    dump = os.path.join(HUB, "nodes", "aks-system-20931744-vmss000000", "iptables-save.txt")
    args = ("explain", "10.40.0.9", "10.42.1.10", "--iptables", dump, "--node-ip", "10.40.0.4")
    assert run(80, *args, "-o", "wide").stdout == run(80, *args).stdout
    bad = run(80, "inspect", "--bundle", "/nonexistent", "-o", "wide")
    assert bad.returncode == 2 and bad.stdout == "" and "error E" in bad.stderr
