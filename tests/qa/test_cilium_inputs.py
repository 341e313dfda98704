"""Cilium: the text answer is the BPF decision (as `-o json`'s summary), and a native routing CIDR
of the other family is refused rather than left out."""

from __future__ import annotations

import json

import pytest
from qakit import assert_clean, run

B = "examples/aks-cilium-ebpf"


@pytest.mark.parametrize("src, dst, says", [
    ("orders/orders-api-7d9c6b5f4-x2klm", "10.50.1.1:443", "not masqueraded by Cilium's BPF masquerade"),
    ("orders/orders-db-0", "172.16.4.9:443", "masqueraded by Cilium's BPF masquerade, seen as 10.224.0.5"),
])
def test_the_text_headline_is_the_bpf_decision(src, dst, says):
    # before: the first line was the bypassed iptables walk's ("no nat rule applies (policy ACCEPT)",
    # "masqueraded … by no rule"), contradicting the JSON summary
    r = run("explain", src, dst, "--bundle", B)
    assert_clean(r)
    first = r.stdout.split("\n\n", 1)[0].replace("\n", "")
    assert r.returncode == 0 and first.startswith(says), r.stdout[:600]
    assert "no nat rule applies" not in first and "by no rule" not in first
    doc = json.loads(run("explain", src, dst, "--bundle", B, "-o", "json").stdout)
    assert doc["summary"].startswith(says)


def test_native_routing_cidr_of_the_other_family(tmp_path):
    (tmp_path / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n")
    r = run("explain", "192.168.0.5", "10.50.3.3:443", "--config-dir", str(tmp_path), "--flavor", "cilium",
            "--node-ip", "10.224.0.4", "--native-routing-cidr", "fd00::/64", "-o", "json")
    assert_clean(r)
    err = json.loads(r.stdout)["error"]
    assert r.returncode == 2 and err["code"] == "E234" and err["input"] == "--native-routing-cidr"
    assert "IPv6 CIDR" in err["message"] and "IPv4" in err["message"]
