"""examples/kind-nftables: a node whose masquerading lives only in native nftables tables
(kube-proxy --proxy-mode=nftables and kindnet's table); inspect and explain give the answers its
README promises, and the committed files are what tests/cluster/examplegen_nft.py makes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from netns import requires_netns

from masqctl.analysis.explain_cluster import ClusterRequest, explain_snapshot
from masqctl.analysis.inspect import inspect
from masqctl.analysis.nftfacts import KINDNET, KUBE_PROXY
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLE = os.path.join(ROOT, "examples", "kind-nftables")
NODE = "kind-worker"


def _gen():
    spec = importlib.util.spec_from_file_location("examplegen_nft", os.path.join(ROOT, "tests", "cluster",
                                                                                 "examplegen_nft.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def snap():
    return build_snapshot(read_bundle(BUNDLE))


def test_inspect_names_both_tables(snap):
    report = inspect(snap)
    mq026 = [f for f in report.findings if f.code == "MQ026"]
    assert len(mq026) == 1 and mq026[0].nodes == (NODE,)
    assert KUBE_PROXY in mq026[0].detail and KINDNET in mq026[0].detail
    assert "has no iptables-save: iptables rules there, if any, are not known" in mq026[0].detail
    assert report.exit_code == 0


@pytest.mark.parametrize("src,dst,masq,seen,words", [
    # kindnet's chain (priority srcnat - 10) masquerades what its set does not exempt
    ("ns1/pod1", "203.0.113.9:443", True, "192.168.0.2", "table inet kindnet-ipmasq, written by " + KINDNET),
    # the node network is in kindnet's set; kube-proxy's masquerading chain RETURNs (no 0x4000 mark)
    ("ns1/pod1", "192.168.0.9:443", False, "10.180.0.1", "of table ip kube-proxy"),
    # hairpin to its own Service (proxier_test.go "hairpin to cluster IP"): kube-proxy marks and masquerades
    ("ns1/pod1", "172.30.0.41:80", True, "192.168.0.2", "of table ip kube-proxy, written by " + KUBE_PROXY),
    # another pod to that Service ("simple clusterIP"): DNAT, not masqueraded
    ("ns4/pod4", "172.30.0.41:80", False, "10.180.0.4", "of table ip kube-proxy"),
])
def test_explain(snap, src, dst, masq, seen, words):
    ex = explain_snapshot(snap, ClusterRequest(src=src, dst=dst))
    d = ex.to_dict()
    assert d["masqueraded"] is masq and d["source_ip_seen"] == seen
    assert words in json.dumps(d["provenance"] if "provenance" in d else d)
    assert any("nftables ruleset is evaluated alone" in n for n in d["notes"])


def test_cli_explain_runs_on_it():
    r = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "explain", "--bundle", BUNDLE, "ns1/pod1",
                        "203.0.113.9:443", "-o", "json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["masqueraded"] is True
    # no Azure here: no VNet in the reply, and the node's capture is not called missing
    assert d["reply"]["comes_back"] is True and "VNet" not in d["reply"]["reason"]
    assert "iptables-save of the nodes (only their nftables rulesets were captured)" in d["mode"]["missing"]


def test_documents_are_what_the_generator_writes():
    gen = _gen()
    raw = read_bundle(BUNDLE)
    docs = gen.spec()
    assert raw.nodes == docs["nodes.yaml"]["items"] and raw.pods == docs["pods.yaml"]["items"]
    assert raw.daemonsets == docs["daemonsets.yaml"]["items"]
    assert raw.configmaps == docs["configmaps.yaml"]["items"]


@requires_netns
def test_ruleset_is_real_nft_output():
    """Loading the same tables into a fresh namespace lists exactly the committed nft-ruleset.json."""
    got = _gen()._captures()
    with open(os.path.join(BUNDLE, "nodes", NODE, "nft-ruleset.json")) as f:
        assert got["nft-ruleset.json"] == f.read()
    with open(os.path.join(BUNDLE, "nodes", NODE, "ip-addr.txt")) as f:
        assert got["ip-addr.txt"] == f.read()
