"""`masqctl explain --nft` as users run it: JSON and text forms, stdin, with --iptables, errors."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
from errordoc import error_of, no_result
from netns import NetNS, requires_netns

FIX = pathlib.Path(__file__).parent.parent / "fixtures" / "nft"
KP = str(FIX / "kube-proxy-overall.json")
FACTS = ["--node-ip", "192.168.0.2", "--local-address", "192.168.0.2/24@eth0"]


def masqctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          input=stdin, timeout=60)


def test_hairpin_json_and_sentence():
    # "hairpin to cluster IP" (kubernetes pkg/proxy/nftables/proxier_test.go, TestClusterIPGeneral): masq true
    r = masqctl("explain", "10.180.0.1", "172.30.0.41:80", "--nft", KP, *FACTS, "-o", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["masqueraded"] is True and doc["source_ip_seen"] == "192.168.0.2"
    assert doc["deciding_rule"]["chain"] == "masquerading" and doc["input"]["nft"] == KP
    assert doc["trace"][0]["hook"].startswith("prerouting: table ip kube-proxy")
    r = masqctl("explain", "10.180.0.1", "172.30.0.41:80", "--nft", str(FIX / "kube-proxy-overall.txt"), *FACTS)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "is masqueraded to 192.168.0.2 by masquerading rule 3" in text and "catch-all" not in text


def test_stdin_and_both_on_stdin():
    r = masqctl("explain", "10.0.0.2", "172.30.0.41:80", "--nft", "-", *FACTS, "-o", "json",
                stdin=(FIX / "kube-proxy-overall.json").read_text())
    assert r.returncode == 0 and json.loads(r.stdout)["masqueraded"] is False
    r = masqctl("explain", "10.0.0.2", "1.2.3.4", "--nft", "-", "--iptables", "-", "-o", "json", stdin="")
    assert r.returncode == 2 and no_result(r) and error_of(r.stdout)["code"] == "E235"


def test_bad_ruleset_is_coded(tmp_path):
    bad = tmp_path / "nft-ruleset.json"
    bad.write_text('{"nftables": [{"table": {"family": "ipx", "name": "t"}}]}')
    r = masqctl("explain", "10.0.0.2", "1.2.3.4", "--nft", str(bad), "-o", "json")
    err = error_of(r.stdout)
    assert r.returncode == 2 and err["code"] == "E342" and err["input"] == str(bad)
    assert "nftables[0].table.family" in err["message"]
    r = masqctl("explain", "10.0.0.2", "1.2.3.4", "--nft", str(bad), "--bundle", str(tmp_path))
    assert r.returncode == 2 and "E226" in r.stderr


@pytest.mark.parametrize("expr, named", [
    ("ip ttl 64", "ip ttl"), ("meta skuid 0", "meta skuid"), ("numgen inc mod 2 0", "numgen"),
    ("ct zone 3", "ct zone"), ("rt mtu 1400", "rt mtu"),
])
@requires_netns
def test_an_unknown_expression_leaves_the_verdict_null_and_named(tmp_path, expr, named):
    """The kernel's own listing (``nft -j list ruleset`` after ``nft -f`` in a namespace) of a masquerade
    behind a match masqctl does not evaluate: masqueraded null, the expression named, never a guess; a
    destination an earlier rule decides stays decided."""
    ns = NetNS("nftx")
    try:
        ns.run("nft", "-f", "-", input="table ip t {\n chain p {\n  type nat hook postrouting priority srcnat; "
               f"policy accept;\n  ip daddr 10.0.0.0/8 accept\n  {expr} masquerade\n }}\n}}\n")
        listing = tmp_path / "nft-ruleset.json"
        listing.write_text(ns.run("nft", "-j", "list", "ruleset").stdout)
    finally:
        ns.delete()
    r = masqctl("explain", "10.244.1.2", "203.0.113.9:80", "--nft", str(listing), "--node-ip", "10.224.0.4",
                "-o", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["masqueraded"] is None and doc["source_ip_seen"] is None
    unknown = [s for s in doc["trace"] if s["result"] == "unknown"]
    assert unknown and named in unknown[0]["action"] + unknown[0]["text"]
    assert any(named in n for n in doc["notes"])
    r = masqctl("explain", "10.244.1.2", "10.1.2.3:80", "--nft", str(listing), "--node-ip", "10.224.0.4", "-o", "json")
    assert json.loads(r.stdout)["masqueraded"] is False
