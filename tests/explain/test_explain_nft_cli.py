"""`masqctl explain --nft` as users run it: JSON and text forms, stdin, with --iptables, errors."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from errordoc import error_of, no_result

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
