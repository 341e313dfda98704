"""Two nat tables in one dump (a legacy and an nft capture concatenated, a header repeated).

The kernel runs each nat table on its own at every hook; ACCEPT or the policy ends only that
table, and the first table to NAT the packet decides. Which table runs first is registration
order, which no dump shows: the evaluator walks each table on its own in every order at each
hook, and an answer stands only when every order gives it. Tables are never merged.
"""

from __future__ import annotations

import ipaddress

from masqctl.analysis.explain import Request, explain
from masqctl.netfilter.dump import parse_dump
from masqctl.netfilter.evaluate import Packet, evaluate
from masqctl.netfilter.facts import NodeFacts, parse_address_fact

NODE = "10.224.0.4"
FACTS = NodeFacts(addresses=[parse_address_fact(f"{NODE}/16@eth0")], node_ip=ipaddress.ip_address(NODE))


def table(*rules: str, chains: str = "") -> str:
    head = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]"] + [f":{c} - [0:0]" for c in chains.split()]
    return "\n".join(head + list(rules) + ["COMMIT"]) + "\n"


def run(text: str, dst: str = "203.0.113.9", dport=None):
    return evaluate(parse_dump(text), Packet(ipaddress.ip_address("10.244.1.5"), ipaddress.ip_address(dst), "tcp",
                                             dport), FACTS)


def test_the_issue_example_the_second_tables_masquerade_applies():
    # the first table's ACCEPT ends only the first table: the second one still masquerades
    text = table("-A POSTROUTING -d 203.0.113.0/24 -j ACCEPT") + table("-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE")
    ev = run(text)
    assert ev.masqueraded is True and ev.source_ip_seen == NODE
    assert len(ev.outcomes) == 4 and all(o.deciding.hook == "nat#2 POSTROUTING" for o in ev.outcomes)


def test_tables_that_nat_differently_depend_on_the_order():
    text = table("-A POSTROUTING -j SNAT --to-source 192.0.2.1") + table("-A POSTROUTING -j SNAT --to-source 192.0.2.2")
    ev = run(text)
    assert ev.masqueraded is None
    assert {o.source_ip_seen for o in ev.outcomes} == {"192.0.2.1", "192.0.2.2"}
    assert all(any("before" in c and "POSTROUTING" in c for c in o.conditions) for o in ev.outcomes)


def test_neither_table_nats():
    ev = run(table("-A POSTROUTING -d 203.0.113.0/24 -j RETURN") + table("-A POSTROUTING -j ACCEPT"))
    assert ev.masqueraded is False and ev.source_ip_seen == "10.244.1.5"


def test_a_drop_in_either_table_drops():
    ev = run(table("-A POSTROUTING -j DROP") + table("-A POSTROUTING -j MASQUERADE"))
    assert ev.masqueraded is None      # dropped when the first runs first, masqueraded otherwise


def test_chains_belong_to_their_own_table():
    # the second table jumps to a chain only the first declares: the kernel has no such chain there
    text = table("-A MASQ -j MASQUERADE", chains="MASQ") + table("-A POSTROUTING -j MASQ")
    ev = run(text)
    assert ev.masqueraded is None
    assert any("MASQ is not in the input" in o.reason for o in ev.outcomes if o.kind == "unknown")


def test_a_dnat_in_one_table_feeds_postrouting_of_both():
    text = (table("-A PREROUTING -d 10.0.0.10/32 -p tcp -j DNAT --to-destination 203.0.113.9:8080")
            + table("-A POSTROUTING -d 203.0.113.9/32 -j MASQUERADE"))
    ev = run(text, dst="10.0.0.10", dport=80)
    assert ev.masqueraded is True and {o.destination for o in ev.outcomes} == {"203.0.113.9"}


def test_a_mark_set_in_one_table_is_seen_by_the_other_in_every_order():
    # a mark set at PREROUTING (either table first) is on the packet when POSTROUTING runs
    text = (table("-A PREROUTING -j MARK --set-xmark 0x4000/0x4000")
            + table("-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE"))
    assert run(text).masqueraded is True


def test_more_than_three_nat_tables_are_unknown():
    ev = run(table("-A POSTROUTING -j ACCEPT") * 4)
    assert ev.masqueraded is None and "more than 3 nat tables" in ev.outcomes[0].reason


def test_readers_of_the_merged_view_still_see_every_rule():
    dump = parse_dump(table("-A POSTROUTING -j ACCEPT") + table("-A POSTROUTING -j MASQUERADE"))
    assert dump.repeated_tables == ["nat"] and len(dump.tables_named("nat")) == 2
    assert [t for _, t in dump.table("nat").lines_of["POSTROUTING"]] == ["-A POSTROUTING -j ACCEPT",
                                                                         "-A POSTROUTING -j MASQUERADE"]
    assert [t.lineno for t in dump.tables_named("nat")] == [1, 8]


def test_explain_says_it_walked_each_table_and_the_summary_names_the_table():
    text = table("-A POSTROUTING -d 203.0.113.0/24 -j ACCEPT") + table("-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE")
    ex = explain(Request("10.244.1.5", "203.0.113.9", iptables="-", iptables_text=text,
                         local_addresses=[f"{NODE}/16@eth0"], node_ip=NODE))
    assert ex.masqueraded() is True
    assert any("2 *nat tables" in n and "every order gives the same answer" in n for n in ex.notes)
    assert not any("read as one table" in n for n in ex.notes)
    assert "nat table #2" in ex.summary


def test_what_if_replaces_the_agent_chain_in_the_table_that_has_it(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - 203.0.113.0/24\n")
    agent = table("-A POSTROUTING -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT", "-A IP-MASQ-AGENT -j MASQUERADE",
                  chains="IP-MASQ-AGENT")
    text = table("-A POSTROUTING -d 198.51.100.0/24 -j ACCEPT") + agent
    ex = explain(Request("10.244.1.5", "203.0.113.9", iptables="-", iptables_text=text, config_dir=str(cfg),
                         local_addresses=[f"{NODE}/16@eth0"], node_ip=NODE))
    assert ex.masqueraded() is False      # the rendered chain RETURNs 203.0.113.0/24 in the second table
    dump = parse_dump(text)
    assert "IP-MASQ-AGENT" not in dump.tables_named("nat")[0].lines_of
