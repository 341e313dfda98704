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
