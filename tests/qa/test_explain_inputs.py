"""explain on a bundle with odd node rules and odd arguments: honest words, clear errors."""

from __future__ import annotations

import glob
import json
import os

import pytest
from qakit import assert_clean, bundle, run

POD = "orders/orders-api-5b7c9d8f6-kq2xv"


def _empty_postrouting(b: str) -> None:
    """Every node's nat POSTROUTING without rules (the agent's jump and kube-proxy's are gone)."""
    for path in glob.glob(os.path.join(b, "nodes", "*", "iptables-save.txt")):
        with open(path) as fh:
            lines = fh.read().splitlines(keepends=True)
        kept = [ln for ln in lines if not ln.startswith("-A POSTROUTING")]
        assert len(kept) == len(lines) - 2
        with open(path, "w") as fh:
            fh.write("".join(kept))


@pytest.mark.parametrize("output", ["table", "json", "yaml"])
def test_a_chain_policy_that_decides_is_named_as_the_policy(tmp_path, output):
    """No nat rule applies (POSTROUTING is empty): the chain's policy decides, and it is never
    called "rule None"."""
    b = bundle(tmp_path)
    _empty_postrouting(b)
    proc = run("explain", POD, "8.8.8.8", "--bundle", b, "-o", output)
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert "None" not in proc.stdout.replace("null", ""), proc.stdout
    assert "policy ACCEPT" in proc.stdout
    if output == "json":
        doc = json.loads(proc.stdout)
        assert doc["masqueraded"] is False
        assert doc["provenance"]["kind"] == "policy"
        assert doc["provenance"]["chain"] == "POSTROUTING"


@pytest.mark.parametrize("dst,expected", [
    ("::1", "has no IPv6 address"),
    ("[fd00::1]:443", "has no IPv6 address"),
])
def test_a_pod_without_an_address_of_the_family(tmp_path, dst, expected):
    proc = run("explain", POD, dst, "--bundle", os.path.join(bundle(tmp_path)))
    assert_clean(proc)
    assert proc.returncode == 2
    assert "E218" in proc.stderr and expected in proc.stderr, proc.stderr
