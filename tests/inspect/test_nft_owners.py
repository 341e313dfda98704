"""inspect names who owns a node's native nftables tables, as the chain signatures name iptables
chains: kube-proxy's nftables mode (``table ip kube-proxy``, kube-proxy's own golden rule set),
kindnet's masquerade (``table inet kindnet-ipmasq``, kindnet's golden table) and Calico's nftables
dataplane (``table ip calico``, tests/fixtures/nft/calico-nat.nft, written from felix's renderer),
in the JSON and the text form of the listing."""

from __future__ import annotations

import pathlib

import pytest
from clusterkit.akscal import NODES, base

from masqctl.analysis.inspect import inspect
from masqctl.analysis.nftfacts import CALICO, IPTABLES_NFT, KINDNET, KUBE_PROXY, nft_facts
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions

FIX = pathlib.Path(__file__).parent.parent / "fixtures" / "nft"


@pytest.mark.parametrize("fixture, owner, table, masquerading", [
    ("kube-proxy-overall.json", KUBE_PROXY, "ip kube-proxy",
     "table ip kube-proxy chain nat-postrouting (postrouting, priority 100)"),
    ("kube-proxy-overall.txt", KUBE_PROXY, "ip kube-proxy",
     "table ip kube-proxy chain nat-postrouting (postrouting, priority 100)"),
    ("kindnet-ipmasq.txt", KINDNET, "inet kindnet-ipmasq",
     "table inet kindnet-ipmasq chain postrouting (postrouting, priority 90)"),
    ("calico-nat.json", CALICO, "ip calico", "table ip calico chain nat-POSTROUTING (postrouting, priority 100)"),
    ("calico-nat.txt", CALICO, "ip calico", "table ip calico chain nat-POSTROUTING (postrouting, priority 100)"),
])
def test_owner_is_named_in_mq026(tmp_path, fixture, owner, table, masquerading):
    b = base()
    name = "nft-ruleset.json" if fixture.endswith(".json") else "nft-ruleset.txt"
    b.captures[NODES[0]][name] = (FIX / fixture).read_text()
    snap = gather(GatherOptions(bundle=b.write(str(tmp_path / "b"))))
    facts = nft_facts(snap.captures[NODES[0]])
    assert (table, owner) in facts.tables
    assert masquerading in facts.masquerading
    mq026 = [f for f in inspect(snap).findings if f.code == "MQ026"]
    assert len(mq026) == 1 and mq026[0].severity == "warning" and mq026[0].nodes == (NODES[0],)
    assert owner in mq026[0].detail and f"{masquerading}: reaches masquerade/snat" in mq026[0].evidence


def test_iptables_nft_tables_are_not_native(tmp_path):
    # iptables-nft's own `table ip nat` (upper-case chains) is the iptables rules, not a native table
    text = ("table ip nat {\n chain POSTROUTING {\n  type nat hook postrouting priority srcnat; policy accept;\n"
            "  counter masquerade\n }\n}\n")
    b = base()
    b.captures[NODES[0]]["nft-ruleset.txt"] = text
    snap = gather(GatherOptions(bundle=b.write(str(tmp_path / "b"))))
    facts = nft_facts(snap.captures[NODES[0]])
    assert facts.tables == [("ip nat", IPTABLES_NFT)] and facts.native == [] and facts.masquerading == []
    assert not any(f.code == "MQ026" for f in inspect(snap).findings)
