"""`collect` takes each node's nftables ruleset as it takes iptables-save: live through the agent
pod (the local API server, the capture script run in a network namespace with the real `nft`),
written as nodes/<node>/nft-ruleset.json and read back; `nft-ruleset.txt` (the text form) is read
too; a node without `nft` is recorded as absent, not as a failure."""

from __future__ import annotations

import json
import pathlib

import pytest
from kubekit import AKS_NAT, agent_programs, gather, netns_exec
from netns import Topology, requires_netns

from clusterkit import served
from kubeapi import KubeAPI
from masqctl.cluster.bundle import read_bundle, write_bundle
from masqctl.cluster.options import NodeSelection

N0 = "aks-nodepool1-00000000"
FIX = pathlib.Path(__file__).parent.parent / "fixtures" / "nft"
MASQ = ("table inet kindnet-ipmasq {\n chain postrouting {\n  type nat hook postrouting priority srcnat - 10; "
        "policy accept;\n  ip daddr 10.0.0.0/8 return\n  masquerade\n }\n}\n")


@pytest.fixture
def api():
    with KubeAPI() as server:
        served.small_cluster(server, 1)
        server.on_exec(agent_programs())
        yield server


@requires_netns
def test_live_capture_reads_the_real_ruleset(api, tmp_path):
    with Topology() as topo:
        node = topo.node
        node.iptables_restore("\n".join(l for l in AKS_NAT.splitlines() if not l.startswith("#")) + "\n",
                              noflush=False)
        node.run("nft", "-f", "-", input=MASQ)
        api.on_exec(netns_exec(node), node=N0)
        raw = gather(api, tmp_path, nodes=NodeSelection(names=(N0,)))
        c = raw.captures[N0]
        assert c.errors == {} and c.absent == {}
        doc = json.loads(c.nft_ruleset)
        tables = [o["table"]["name"] for o in doc["nftables"] if "table" in o]
        assert "kindnet-ipmasq" in tables and "nat" in tables      # iptables-nft's table is listed too
        out = tmp_path / "bundle"
        files = write_bundle(raw, str(out))
        assert f"nodes/{N0}/nft-ruleset.json" in files
        back = read_bundle(str(out))
        assert back.captures[N0].nft_ruleset == c.nft_ruleset


def test_a_node_without_nft_is_absent_not_failed(api, tmp_path):
    raw = gather(api, tmp_path)
    c = raw.captures[N0]
    assert c.nft_ruleset is None and "nft" not in c.errors
    assert "not in reach" in c.absent["nft"]
    out = tmp_path / "bundle"
    write_bundle(raw, str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert "nft" in manifest["captures"][N0]["absent"] and "nft" not in (manifest.get("failed") or {}).get(N0, {})
    assert read_bundle(str(out)).captures[N0].absent == c.absent


def test_bundle_text_form_is_read(tmp_path):
    node = tmp_path / "nodes" / N0
    node.mkdir(parents=True)
    (node / "iptables-save.txt").write_text(AKS_NAT)
    (node / "nft-ruleset.txt").write_text((FIX / "kube-proxy-overall.txt").read_text())
    raw = read_bundle(str(tmp_path))
    assert raw.captures[N0].nft_ruleset is None
    assert raw.captures[N0].nft_ruleset_text.startswith("table ip kube-proxy")
