"""Damaged inputs of the several-cluster and nftables paths, as an operator meets them: each gives
a coded error (or finding) naming the input, exit 2, no traceback."""

from __future__ import annotations

import json
import os

from qakit import assert_clean, bundle, run

POD = "orders/orders-api-5b7c9d8f6-kq2xv"
SVC = "ingress-nginx/ingress-nginx-controller:https"


def test_a_broken_bundle_among_several_is_named(tmp_path):
    spoke = bundle(tmp_path, "hub-spoke-fleet")
    hub, spoke = os.path.join(spoke, "hub"), os.path.join(spoke, "spoke1")
    with open(os.path.join(spoke, "nodes.yaml"), "w") as fh:
        fh.write("{{{ : [\n")
    for args in (["inspect"], ["explain", POD, SVC]):
        r = run(*args, "--bundle", spoke, "--bundle", hub, "-o", "json")
        assert_clean(r)
        err = json.loads(r.stdout)["error"]
        assert r.returncode == 2 and err["code"] == "E321", r.stderr
        assert err["input"] == f"{spoke}: nodes.yaml line 1", err
        assert f"E321 {spoke}: nodes.yaml line 1: not valid YAML" in r.stderr
    # one bundle: the file alone names it, as before
    r = run("inspect", "--bundle", spoke)
    assert r.returncode == 2 and "error E321 nodes.yaml line 1: not valid YAML" in r.stderr


def test_an_nft_ruleset_written_on_one_line(tmp_path):
    # what `nft -f` accepts (checked with nft -c -f): the rule after `priority srcnat;` is a rule,
    # not part of the base chain's priority
    f = tmp_path / "one-line.nft"
    f.write_text("table ip nat { chain POSTROUTING { type nat hook postrouting priority srcnat; "
                 "policy accept; ip daddr != 10.0.0.0/8 masquerade; }; }\n")
    r = run("explain", "10.244.1.5", "8.8.8.8", "--nft", str(f), "--node-ip", "10.0.0.1", "-o", "json")
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["masqueraded"] is True and doc["source_ip_seen"] == "10.0.0.1"
    r = run("explain", "10.244.1.5", "10.8.8.8", "--nft", str(f), "--node-ip", "10.0.0.1", "-o", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["masqueraded"] is False


def _kind_with_ruleset(tmp_path, data: bytes) -> str:
    b = bundle(tmp_path, "kind-nftables")
    with open(os.path.join(b, "nodes", "kind-worker", "nft-ruleset.json"), "wb") as fh:
        fh.write(data)
    return b


def test_an_empty_or_binary_nft_ruleset_in_a_bundle_is_named(tmp_path):
    for i, (data, says) in enumerate([(b"", "the file is empty"), (b"\x00\x01", "is binary")]):
        b = _kind_with_ruleset(tmp_path / str(i), data)
        r = run("inspect", "--bundle", b, "-o", "json")
        assert_clean(r)
        found = [f for f in json.loads(r.stdout)["findings"] if f["code"] == "MQ027"]
        assert found and says in found[0]["detail"], r.stdout[:2000]
        r = run("explain", "ns1/pod1", "203.0.113.9:443", "--bundle", b)
        assert_clean(r)
        assert r.returncode == 2 and "E223" in r.stderr and "nftables ruleset cannot be read" in r.stderr
        assert "nodes/kind-worker/nft-ruleset.json" in r.stderr and says in r.stderr, r.stderr
