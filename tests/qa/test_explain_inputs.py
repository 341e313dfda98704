"""explain on a bundle with odd node rules and odd arguments: honest words, clear errors."""

from __future__ import annotations

import glob
import json
import os

import pytest
from qakit import assert_clean, bundle, run
from errordoc import no_result

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


DUMP = os.path.join("examples", "hub-spoke", "nodes", "aks-system-20931744-vmss000000", "iptables-save.txt")
ON_BUNDLE = ("--bundle", os.path.join("examples", "hub-spoke"))
OFFLINE = ("--iptables", DUMP, "--node-ip", "10.40.0.4")


@pytest.mark.parametrize("where", [ON_BUNDLE, OFFLINE], ids=["bundle", "offline"])
@pytest.mark.parametrize("src,dst,code,says", [
    ("10.40.0.9", "8.8.8.8:0", "E210", "port 0 is outside"),
    ("10.40.0.9", "8.8.8.8:65536", "E210", "port 65536 is outside"),
    ("10.40.0.9", "[8.8.8.8]:99999", "E210", "port 99999 is outside"),
    ("10.40.0.9", "0.0.0.0", "E210", "unspecified"),
    ("0.0.0.0", "8.8.8.8", "E210", "unspecified"),
    ("10.40.0.9", "0.0.0.0:443", "E210", "unspecified"),
    ("10.40.0.9", "255.255.255.255", "E210", "limited broadcast"),
    ("255.255.255.255", "8.8.8.8", "E210", "limited broadcast"),
    ("10.40.0.9", "224.0.0.1", "E210", "multicast"),
    ("10.40.0.9", "239.1.2.3:5000", "E210", "multicast"),
    ("224.0.0.5", "8.8.8.8", "E210", "multicast"),
    ("10.40.0.9", "8.8.8.8:abc", "E210", "not an IP address"),
])
def test_addresses_no_packet_uses_are_refused_not_answered(where, src, dst, code, says):
    """A verdict ("masqueraded … the reply comes back") for 0.0.0.0, broadcast or multicast would
    be invented: no such packet goes through nat POSTROUTING. A bad port is a port error."""
    proc = run("explain", src, dst, *where, "-o", "json")
    assert_clean(proc)
    assert proc.returncode == 2, proc.stdout
    assert no_result(proc)
    assert f"error {code}" in proc.stderr and says in proc.stderr, proc.stderr
    assert ("SRC" if says and src != "10.40.0.9" else "DST") in proc.stderr


@pytest.mark.parametrize("dst", ["8.8.8.8:443", "[8.8.8.8]:80", "10.42.1.10:443", "169.254.169.254"])
def test_ordinary_destinations_still_answer(dst):
    proc = run("explain", "10.40.0.9", dst, *ON_BUNDLE, "-o", "json")
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["masqueraded"] in (True, False)
