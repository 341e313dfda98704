"""When every path agrees but they decide differently, the sentence says the verdict holds
either way and names each path's deciding rule; it never states one assumption as a fact."""

from __future__ import annotations

import os

from masqctl.analysis.explain import Request, explain

KIND = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "dumps",
                    "kind-kindnet-kube-proxy-iptables.txt")


def test_the_kind_example_holds_either_way_and_names_each_branch():
    ex = explain(Request("10.244.1.5", "10.244.2.7", iptables=KIND))
    doc = ex.to_dict()
    assert doc["masqueraded"] is False and doc["source_ip_seen"] == "10.244.1.5"
    s = ex.summary
    assert "either way" in s
    # the ordinary branch (a remote destination) leads, with its deciding rule
    assert s.index("10.244.2.7 is not an address of this node, KIND-MASQ-AGENT rule 1 RETURNs for 10.244.0.0/16") < \
        s.index("10.244.2.7 is an address of this node, it is delivered locally")
    assert "the destination is an address of this node" not in s      # the assumption is not stated as a fact
    assert doc["deciding_rule"]["chain"] == "KIND-MASQ-AGENT" and doc["deciding_rule"]["index"] == 1
    assert [b["outcome"] for b in doc["branches"]] == ["accept", "local"]


def test_with_the_node_addresses_known_there_is_one_story():
    ex = explain(Request("10.244.1.5", "10.244.2.7", iptables=KIND, local_addresses=["172.18.0.5/16@eth0",
                                                                                     "10.244.1.1/24@cni0"]))
    assert "either way" not in ex.summary and "KIND-MASQ-AGENT rule 1 RETURNs" in ex.summary


def test_paths_that_end_on_the_same_rule_keep_the_one_sentence(tmp_path):
    dump = tmp_path / "d.txt"
    dump.write_text("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -m recent --rcheck --name x -j LOG\n"
                    "-A POSTROUTING -j MASQUERADE\nCOMMIT\n")
    ex = explain(Request("10.244.1.5", "203.0.113.9", iptables=str(dump), local_addresses=["10.224.0.4/16@eth0"]))
    assert ex.masqueraded() is True and "either way" not in ex.summary
    assert "by POSTROUTING rule 2" in ex.summary


def test_a_masquerade_that_holds_either_way(tmp_path):
    dump = tmp_path / "d.txt"
    dump.write_text("*nat\n:POSTROUTING ACCEPT [0:0]\n:A - [0:0]\n"
                    "-A POSTROUTING -m recent --rcheck --name x -j A\n-A POSTROUTING -j MASQUERADE\n"
                    "-A A -j MASQUERADE\nCOMMIT\n")
    ex = explain(Request("10.244.1.5", "203.0.113.9", iptables=str(dump), local_addresses=["10.224.0.4/16@eth0"],
                         node_ip="10.224.0.4"))
    assert ex.masqueraded() is True
    assert ex.summary.startswith("10.244.1.5 → 203.0.113.9 is masqueraded to 10.224.0.4 either way: ")
    assert "A rule 1 masquerades it" in ex.summary and "POSTROUTING rule 2 masquerades it" in ex.summary
