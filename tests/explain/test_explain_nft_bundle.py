"""explain on a bundle takes the node's nftables ruleset (nodes/<node>/nft-ruleset.json or .txt)
with its iptables-save: a native nft exemption before iptables' POSTROUTING does not stop the
agent's MASQUERADE (accept ends only its own chain), a native snat at a lower priority decides
first."""

from __future__ import annotations

import shutil
from pathlib import Path

from masqctl.analysis.explain_cluster import ClusterRequest
from masqctl.ops.explain import explain_on_cluster
from masqctl.cluster.options import GatherOptions

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hub-spoke"
POD, DST = "orders/orders-api-5b7c9d8f6-kq2xv", "10.42.1.10:443"


def _bundle(tmp_path, nft: str, name: str = "nft-ruleset.txt") -> str:
    out = tmp_path / "b"
    shutil.copytree(EXAMPLE, out)
    for node in (out / "nodes").iterdir():
        (node / name).write_text(nft)
    return str(out)


def _explain(bundle: str):
    return explain_on_cluster(GatherOptions(bundle=bundle), ClusterRequest(src=POD, dst=DST), None).to_dict()


def test_native_accept_does_not_stop_the_agent(tmp_path):
    nft = ("table inet exempt {\n chain post {\n  type nat hook postrouting priority srcnat - 10; policy accept;\n"
           "  ip daddr 10.42.0.0/15 accept\n }\n}\n")
    doc = _explain(_bundle(tmp_path, nft))
    assert doc["masqueraded"] is True and doc["deciding_rule"]["chain"] == "IP-MASQ-AGENT"
    assert "nftables ruleset" in " ".join(doc["notes"])
    assert "nftables ruleset captured" in doc["rules_from"]


def test_native_snat_first_decides(tmp_path):
    nft = ("table ip other {\n chain post {\n  type nat hook postrouting priority srcnat - 10; policy accept;\n"
           "  ip daddr 10.42.0.0/15 snat to 10.40.0.250\n }\n}\n")
    doc = _explain(_bundle(tmp_path, nft))
    assert doc["masqueraded"] is True and doc["source_ip_seen"] == "10.40.0.250"
    assert doc["deciding_rule"]["chain"] == "post"


def test_no_ruleset_but_kube_proxy_without_services_says_may_be_incomplete(tmp_path):
    # the example's nodes run kube-proxy pods; without KUBE-SERVICES in iptables-save, kube-proxy's
    # rules are elsewhere (nftables mode) and no ruleset was captured
    out = tmp_path / "b"
    shutil.copytree(EXAMPLE, out)
    for n in (out / "nodes").iterdir():
        text = (n / "iptables-save.txt").read_text()
        (n / "iptables-save.txt").write_text("\n".join(l for l in text.splitlines() if "KUBE-SERVICES" not in l)
                                             + "\n")
    doc = _explain(str(out))
    assert any("may be incomplete (MQ025)" in n and "kube-proxy" in n for n in doc["notes"]), doc["notes"]
    assert doc["masqueraded"] is True        # the verdict stands; the note says what it may miss
    assert not any("MQ025" in n for n in _explain(_bundle(tmp_path / "x", "table ip t {\n}\n"))["notes"])
