"""A dump that does not show everything never gives a decision from what it does not show.

A table the input leaves before its ``COMMIT`` (a file cut short, a paste that stops mid-line,
a second dump appended to a cut one), a chain jumped to but not in the input, a dump without a
nat table: the verdict is unknown with the reason (``masqueraded`` null), unless the walk
decided on rules the input shows whole.
"""

from __future__ import annotations

import ipaddress
import os

import pytest

from masqctl.analysis.dumpfacts import CUT, chain_of_dump
from masqctl.analysis.explain import Request, explain
from masqctl.errors import InputError
from masqctl.netfilter.dump import parse_dump
from masqctl.netfilter.evaluate import Packet, evaluate
from masqctl.netfilter.facts import NodeFacts, parse_address_fact

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB = os.path.join(ROOT, "examples", "hub-spoke", "nodes", "aks-system-20931744-vmss000000", "iptables-save.txt")
FACTS = NodeFacts(addresses=[parse_address_fact("10.224.0.4/16@eth0")], node_ip=ipaddress.ip_address("10.224.0.4"))


def verdict(text: str, dst: str = "203.0.113.9"):
    ev = evaluate(parse_dump(text), Packet(ipaddress.ip_address("10.244.1.5"), ipaddress.ip_address(dst)), FACTS)
    return ev.masqueraded, [o.reason for o in ev.outcomes if o.kind == "unknown"]


HEAD = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
AGENT = (":IP-MASQ-AGENT - [0:0]\n"
         "-A PREROUTING -d 192.0.2.80/32 -j RETURN\n"
         "-A POSTROUTING -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT\n"
         "-A IP-MASQ-AGENT -d 10.0.0.0/8 -j RETURN\n"
         "-A IP-MASQ-AGENT -d 203.0.113.0/24 -j RETURN\n"
         "-A IP-MASQ-AGENT -j MASQUERADE\n")


def test_the_whole_table_decides():
    assert verdict(HEAD + AGENT + "COMMIT\n")[0] is False


@pytest.mark.parametrize("text, why", [
    # the table stops before its COMMIT: the last rule (a RETURN for the destination) may be
    # followed by more rules, and the chain's end is not proof that nothing else matches
    (HEAD + AGENT.rsplit("-A IP-MASQ-AGENT -j MASQUERADE\n", 1)[0], "may be cut mid-way"),
    # a line cut mid-way reads as another rule: "-d 203.0.113.0/2" for "/24"
    (HEAD + AGENT.split("-A IP-MASQ-AGENT -d 203")[0] + "-A IP-MASQ-AGENT -d 203.0.113.0/2", "may be cut mid-way"),
    # cut inside the declarations: POSTROUTING shows none of its rules
    (HEAD + ":IP-MASQ-AGENT - [0:0]\n", "PREROUTING may have rules after the cut, none of them shown"),
    (HEAD + ":IP-MASQ-AG", "PREROUTING may have rules after the cut"),
    (HEAD + AGENT.split("-A IP-MASQ-AGENT")[0], "POSTROUTING rule 1 is not relied on"),
    # a cut dump with another dump appended: the first table has no COMMIT either
    (HEAD + AGENT.rsplit("-A IP-MASQ-AGENT -j MASQUERADE\n", 1)[0] + "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
     "may be cut mid-way"),
    # a chain jumped to but in the input neither declared nor with rules
    (HEAD + "-A POSTROUTING -j KUBE-POSTROUTING\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n",
     "chain KUBE-POSTROUTING is not in the input"),
    # no nat table at all: nothing is known about nat
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n", "no nat table"),
    ("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\n", "before any nat table"),
    ("# Table `nat' is incompatible, use 'nft' tool.\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
     "could not print the nat table"),
])
def test_missing_evidence_is_unknown_never_no_rule(text, why):
    masq, reasons = verdict(text)
    assert masq is None, reasons
    assert any(why in r for r in reasons), reasons


def test_a_cut_table_still_decides_on_chains_it_shows_whole():
    # PREROUTING's, POSTROUTING's and A's rules are followed by B's: all whole; the cut is in B, whose
    # first rule (a RETURN the walk reaches from PREROUTING) is shown in full
    text = (HEAD + ":A - [0:0]\n:B - [0:0]\n-A PREROUTING -j B\n-A POSTROUTING -j A\n-A A -j MASQUERADE\n"
            "-A B -j RETURN\n-A B -j RET")
    assert verdict(text)[0] is True
    dump = parse_dump(text)
    nat = dump.table("nat")
    assert nat.cut and nat.whole("PREROUTING") and nat.whole("POSTROUTING") and nat.whole("A") and not nat.whole("B")
    assert [t for _, t in nat.shown("B")] == ["-A B -j RETURN"]


def test_the_inspect_view_and_the_evaluator_share_the_cut():
    text = HEAD + AGENT.rsplit("-A IP-MASQ-AGENT -j MASQUERADE\n", 1)[0]
    view = chain_of_dump(parse_dump(text), "IP-MASQ-AGENT")
    assert view.capture == CUT and not view.chain_whole and view.last_cut
    assert view.chain_lines == ("-A IP-MASQ-AGENT -d 10.0.0.0/8 -j RETURN",)


def test_a_table_cut_by_the_next_header_is_cut_for_inspect_too():
    text = HEAD + AGENT.rsplit("-A IP-MASQ-AGENT -j MASQUERADE\n", 1)[0] + "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"
    dump = parse_dump(text)
    assert dump.uncommitted == "nat" and chain_of_dump(dump, "IP-MASQ-AGENT").capture == CUT


def test_the_issue_example_head_89_is_undecided():
    with open(HUB) as fh:
        text = "".join(fh.readlines()[:89])
    ex = explain(Request("10.40.0.9", "10.42.1.10", iptables="-", iptables_text=text, node_ip="10.40.0.4"))
    assert ex.masqueraded() is None and ex.to_dict()["deciding_rule"] is None
    assert "cannot be decided" in ex.summary and "cut short" in ex.summary


def _cuts(text: str):
    """Every prefix of ``text`` at a line end, and mid-way through each line."""
    lines = text.splitlines(keepends=True)
    for n in range(1, len(lines) + 1):
        whole = "".join(lines[:n])
        yield whole
        if len(lines[n - 1]) > 6:
            yield whole[:-(len(lines[n - 1]) // 2)]


@pytest.mark.parametrize("dst", ["10.42.1.10", "10.40.0.200", "8.8.8.8", "10.0.0.1:443"])
def test_every_cut_of_a_real_dump_is_undecided_or_the_whole_dumps_verdict(dst):
    with open(HUB) as fh:
        text = fh.read()

    def ask(t):
        return explain(Request("10.40.0.9", dst, iptables="-", iptables_text=t, node_ip="10.40.0.4",
                               local_addresses=["10.40.0.4/17@eth0"]))

    whole = ask(text)
    assert whole.masqueraded() is not None
    decided = 0
    for cut in _cuts(text):
        try:
            ex = ask(cut)
        except InputError as exc:          # a cut inside a word no iptables tool prints: the line is named
            assert exc.code in ("E312", "E314"), exc
            continue
        if ex.masqueraded() is not None:
            decided += 1
            assert (ex.masqueraded(), ex.evaluation.source_ip_seen) == (whole.masqueraded(),
                                                                        whole.evaluation.source_ip_seen), cut[-200:]
    assert decided      # the cuts after the chains the flow needs still decide


def test_what_if_on_a_cut_dump_replaces_the_agent_chain_whole_and_keeps_the_cut_elsewhere(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n")
    cut_in_agent = HEAD + AGENT.split("-A IP-MASQ-AGENT -d 203")[0]
    ex = explain(Request("10.244.1.5", "203.0.113.9", iptables="-", iptables_text=cut_in_agent,
                         config_dir=str(cfg), local_addresses=["10.224.0.4/16@eth0"], node_ip="10.224.0.4"))
    assert ex.masqueraded() is True       # the agent's chain is the rendered one, every rule of it given
    cut_in_declarations = (HEAD + ":IP-MASQ-AGENT - [0:0]\n-A PREROUTING -d 192.0.2.80/32 -j RETURN\n"
                           "-A OUTPUT -j RETURN\n")
    ex = explain(Request("10.244.1.5", "203.0.113.9", iptables="-", iptables_text=cut_in_declarations,
                         config_dir=str(cfg), local_addresses=["10.224.0.4/16@eth0"], node_ip="10.224.0.4"))
    assert ex.masqueraded() is None and "POSTROUTING" in ex.summary   # the jump appended after the cut


def test_what_if_on_a_dump_without_nat_says_the_node_rules_are_not_known(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n")
    ex = explain(Request("10.244.1.5", "203.0.113.9", iptables="-", config_dir=str(cfg),
                         iptables_text="*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", node_ip="10.224.0.4",
                         local_addresses=["10.224.0.4/16@eth0"]))
    assert any("no nat table" in n and "not known" in n for n in ex.notes)
