"""Evaluator semantics, one table row per rule of the kernel's nat traversal."""

from __future__ import annotations

import ipaddress

import pytest

from masqctl.netfilter.dump import parse_dump
from masqctl.netfilter.evaluate import Packet, evaluate
from masqctl.netfilter.facts import NodeFacts, parse_address_fact, parse_ip_addr, parse_ipset_save

NODE = "10.224.0.4"
FACTS = dict(addresses=[f"{NODE}/16@eth0", "10.244.1.1/24@cbr0"], node_ip=NODE)


def nat(*rules: str, chains: str = "", policies: str = "") -> str:
    names = sorted({w.split()[1] for w in rules if w.startswith("-A ")} - {"PREROUTING", "INPUT", "OUTPUT",
                                                                           "POSTROUTING"} | set(chains.split()))
    head = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]"] + [f":{n} - [0:0]" for n in names]
    return "\n".join(head + list(rules) + ["COMMIT"]) + "\n"


def facts(addresses=(), node_ip=None, **kw) -> NodeFacts:
    return NodeFacts(addresses=[parse_address_fact(a) for a in addresses],
                     node_ip=ipaddress.ip_address(node_ip) if node_ip else None, **kw)


def run(text, src="10.244.1.5", dst="203.0.113.9", proto="tcp", dport=None, from_host=False, **fact_kw):
    kw = dict(FACTS)
    kw.update(fact_kw)
    return evaluate(parse_dump(text), Packet(ipaddress.ip_address(src), ipaddress.ip_address(dst), proto, dport,
                                             None, from_host), facts(**kw))


AGENT = [
    '-A POSTROUTING -m comment --comment "\\"ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL '
    'destination traffic to our custom IP-MASQ-AGENT chain\\"" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT',
    '-A IP-MASQ-AGENT -d 10.224.0.0/16 -m comment --comment "ip-masq-agent: local traffic is not subject to '
    'MASQUERADE" -j RETURN',
    '-A IP-MASQ-AGENT -d 10.0.0.0/16 -m comment --comment "ip-masq-agent: local traffic is not subject to '
    'MASQUERADE" -j RETURN',
    '-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last '
    'in chain)" -j MASQUERADE',
]

KUBE = [
    "-A PREROUTING -j KUBE-SERVICES",
    "-A OUTPUT -j KUBE-SERVICES",
    "-A POSTROUTING -j KUBE-POSTROUTING",
    "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
    "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
    "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
    "-A KUBE-POSTROUTING -j MASQUERADE --random-fully",
    "-A KUBE-SERVICES -d 10.0.0.10/32 -p udp -m udp --dport 53 -j KUBE-SVC-DNS",
    "-A KUBE-SERVICES -d 10.0.0.20/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-API",
    "-A KUBE-SVC-DNS ! -s 10.244.0.0/16 -d 10.0.0.10/32 -p udp -m udp --dport 53 -j KUBE-MARK-MASQ",
    "-A KUBE-SVC-DNS -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-A",
    "-A KUBE-SVC-DNS -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B",
    "-A KUBE-SVC-DNS -j KUBE-SEP-C",
    "-A KUBE-SEP-A -s 10.244.1.5/32 -j KUBE-MARK-MASQ",
    "-A KUBE-SEP-A -p udp -m udp -j DNAT --to-destination 10.244.1.5:53",
    "-A KUBE-SEP-B -s 10.244.2.7/32 -j KUBE-MARK-MASQ",
    "-A KUBE-SEP-B -p udp -m udp -j DNAT --to-destination 10.244.2.7:53",
    "-A KUBE-SEP-C -s 10.244.3.9/32 -j KUBE-MARK-MASQ",
    "-A KUBE-SEP-C -p udp -m udp -j DNAT --to-destination 10.244.3.9:53",
    "-A KUBE-SVC-API -j KUBE-SEP-API",
    "-A KUBE-SEP-API -p tcp -m tcp -j DNAT --to-destination 10.224.0.4:6443",
] + AGENT[:2] + [AGENT[1].replace("10.224.0.0/16", "10.244.0.0/16")] + AGENT[2:]

# (name, rules, packet/fact overrides, masqueraded, source seen, deciding (chain, index) or None)
CASES = [
    ("agent: outside every CIDR is masqueraded", nat(*AGENT), {}, True, NODE, ("IP-MASQ-AGENT", 3)),
    ("agent: inside a CIDR RETURNs", nat(*AGENT), {"dst": "10.0.3.4"}, False, "10.244.1.5", ("IP-MASQ-AGENT", 2)),
    ("agent: LOCAL destination skips the jump", nat(*AGENT), {"dst": NODE, "from_host": True, "src": "10.244.1.1"},
     False, "10.244.1.1", ("POSTROUTING", None)),
    ("policy when nothing matches", nat("-A POSTROUTING -d 198.51.100.0/24 -j MASQUERADE"), {}, False,
     "10.244.1.5", ("POSTROUTING", None)),
    ("first MASQUERADE wins over a later RETURN chain",
     nat("-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE", *AGENT), {"dst": "10.0.3.4"}, True, NODE,
     ("POSTROUTING", 1)),
    ("ACCEPT ends the table before a later MASQUERADE",
     nat("-A POSTROUTING -d 203.0.113.0/24 -j ACCEPT", "-A POSTROUTING -j MASQUERADE"), {}, False, "10.244.1.5",
     ("POSTROUTING", 1)),
    ("a RETURN in one chain does not protect against a later jump",
     nat("-A POSTROUTING -j A", "-A POSTROUTING -j B", "-A A -d 203.0.113.0/24 -j RETURN", "-A A -j MASQUERADE",
         "-A B -j MASQUERADE"), {}, True, NODE, ("B", 1)),
    ("target-less rule counts and continues",
     nat("-A POSTROUTING -d 203.0.113.9/32", "-A POSTROUTING -j MASQUERADE"), {}, True, NODE, ("POSTROUTING", 2)),
    ("end of a user chain returns to the caller",
     nat("-A POSTROUTING -j A", "-A POSTROUTING -j MASQUERADE", "-A A -d 10.0.0.0/8 -j RETURN"), {}, True, NODE,
     ("POSTROUTING", 2)),
    ("RETURN after -g resumes in the chain that -j-called the goto-ing chain",
     nat("-A POSTROUTING -j A", "-A POSTROUTING -j SNAT --to-source 192.0.2.1", "-A A -g B",
         "-A A -j SNAT --to-source 192.0.2.2", "-A B -j RETURN"), {}, True, "192.0.2.1", ("POSTROUTING", 2)),
    ("-g from a built-in chain: the end of the target applies the policy",
     nat("-A POSTROUTING -g B", "-A POSTROUTING -j MASQUERADE", "-A B -d 10.0.0.0/8 -j MASQUERADE"), {}, False,
     "10.244.1.5", ("POSTROUTING", None)),
    ("RETURN in a built-in chain applies the policy",
     nat("-A POSTROUTING -d 203.0.113.0/24 -j RETURN", "-A POSTROUTING -j MASQUERADE"), {}, False, "10.244.1.5",
     ("POSTROUTING", 1)),
    ("SNAT picks its --to-source",       # a port needs -p (iptables-restore refuses it without)
     nat("-A POSTROUTING -p tcp -j SNAT --to-source 192.0.2.10:1024-2048"), {}, True, "192.0.2.10",
     ("POSTROUTING", 1)),
    # the kernel picks one address of a range per connection (test_kernel_agreement: not the first)
    ("SNAT to a range: masqueraded, the address is not known",
     nat("-A POSTROUTING -p tcp -j SNAT --to-source 192.0.2.10-192.0.2.20:1024-2048"), {}, True, None,
     ("POSTROUTING", 1)),
    ("negated destination", nat("-A POSTROUTING ! -d 10.0.0.0/8 -j MASQUERADE"), {}, True, NODE, ("POSTROUTING", 1)),
    ("dotted mask", nat("-A POSTROUTING -d 203.0.0.0/255.255.0.0 -j RETURN", "-A POSTROUTING -j MASQUERADE"), {},
     False, "10.244.1.5", ("POSTROUTING", 1)),
    ("non-contiguous mask", nat("-A POSTROUTING -d 0.0.0.9/0.0.0.255 -j RETURN", "-A POSTROUTING -j MASQUERADE"),
     {}, False, "10.244.1.5", ("POSTROUTING", 1)),
    ("egress interface wildcard", nat("-A POSTROUTING -o eth+ -j MASQUERADE"), {}, True, NODE, ("POSTROUTING", 1)),
    ("egress interface of a connected subnet", nat("-A POSTROUTING ! -o cbr0 -j MASQUERADE"),
     {"dst": "10.244.1.9"}, False, "10.244.1.5", ("POSTROUTING", None)),
    ("MASQUERADE on a bridge picks the bridge address",
     nat("-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE"), {"dst": "10.244.1.9"}, True, "10.244.1.1",
     ("POSTROUTING", 1)),
    ("protocol and port", nat("-A POSTROUTING -p udp -m udp --dport 53 -j RETURN", "-A POSTROUTING -j MASQUERADE"),
     {"proto": "udp", "dport": 53}, False, "10.244.1.5", ("POSTROUTING", 1)),
    ("port range and negation", nat("-A POSTROUTING -p tcp -m tcp ! --dport 1000:2000 -j RETURN",
                                    "-A POSTROUTING -j MASQUERADE"), {"dport": 1500}, True, NODE, ("POSTROUTING", 2)),
    ("multiport", nat("-A POSTROUTING -p tcp -m multiport --dports 80,443,8000:8100 -j MASQUERADE"),
     {"dport": 8080}, True, NODE, ("POSTROUTING", 1)),
    ("kube mark from PREROUTING decides KUBE-POSTROUTING (off-cluster source)",
     nat(*KUBE), {"src": "172.16.0.9", "dst": "10.0.0.20", "dport": 443}, False, "172.16.0.9", None),
    ("DNAT to a local address: local delivery, POSTROUTING not walked",
     nat(*KUBE), {"dst": "10.0.0.20", "dport": 443}, False, "10.244.1.5", ("KUBE-SEP-API", 1)),
    ("host traffic: OUTPUT DNAT to itself still walks POSTROUTING",
     nat(*KUBE), {"src": "10.224.0.4", "dst": "10.0.0.20", "dport": 443, "from_host": True}, False, "10.224.0.4",
     ("KUBE-POSTROUTING", 1)),
    ("conntrack DNAT state in POSTROUTING",
     nat("-A PREROUTING -d 10.0.0.30/32 -j DNAT --to-destination 203.0.113.9",
         "-A POSTROUTING -m conntrack --ctstate DNAT -j MASQUERADE"), {"dst": "10.0.0.30"}, True, NODE,
     ("POSTROUTING", 1)),
    ("conntrack DNAT state is false without DNAT",
     nat("-A POSTROUTING -m conntrack --ctstate DNAT -j MASQUERADE"), {}, False, "10.244.1.5", ("POSTROUTING", None)),
    ("conntrack original destination",
     nat("-A PREROUTING -d 10.0.0.30/32 -j DNAT --to-destination 203.0.113.9",
         "-A POSTROUTING -m conntrack --ctorigdst 10.0.0.30 -j SNAT --to-source 192.0.2.5"), {"dst": "10.0.0.30"},
     True, "192.0.2.5", ("POSTROUTING", 1)),
    ("host traffic: OUTPUT REDIRECT goes to 127.0.0.1 over lo, and POSTROUTING runs",
     nat("-A OUTPUT -p udp -j REDIRECT --to-ports 5353", "-A POSTROUTING -o lo -p udp -m udp --dport 5353 "
         "-j SNAT --to-source 127.0.0.7"), {"src": "10.224.0.4", "proto": "udp", "dport": 53, "from_host": True},
     True, "127.0.0.7", ("POSTROUTING", 1)),
    ("REDIRECT delivers locally", nat("-A PREROUTING -p tcp -j REDIRECT --to-ports 15001",
                                      "-A POSTROUTING -j MASQUERADE"), {}, False, "10.244.1.5", ("PREROUTING", 1)),
    ("mark toggled by --set-xmark v/0", nat("-A POSTROUTING -j MARK --set-xmark 0x4000/0x0",
                                             "-A POSTROUTING -m mark --mark 0x4000 -j MASQUERADE"), {}, True, NODE,
     ("POSTROUTING", 2)),
    ("mark --set-mark ORs under the mask", nat("-A PREROUTING -j MARK --set-mark 0x10/0xff",
                                                "-A POSTROUTING -m mark --mark 0x10/0xf0 -j MASQUERADE"), {}, True,
     NODE, ("POSTROUTING", 1)),
    ("loopback is always LOCAL", nat("-A POSTROUTING -m addrtype --dst-type LOCAL -j MASQUERADE"),
     {"dst": "127.0.0.53", "from_host": True, "src": "127.0.0.1"}, True, None, ("POSTROUTING", 1)),
    ("0.0.0.0/8 is BROADCAST, not LOCAL",
     nat("-A POSTROUTING -m addrtype --dst-type BROADCAST -j RETURN", "-A POSTROUTING -j MASQUERADE"),
     {"dst": "0.1.2.3"}, False, "10.244.1.5", ("POSTROUTING", 1)),
    ("subnet broadcast", nat("-A POSTROUTING -m addrtype --dst-type BROADCAST -j RETURN",
                             "-A POSTROUTING -j MASQUERADE"), {"dst": "10.224.255.255"}, False, "10.244.1.5",
     ("POSTROUTING", 1)),
    ("addrtype --limit-iface-out: local on another device is UNICAST",
     nat("-A POSTROUTING -m addrtype ! --src-type LOCAL --limit-iface-out -j MASQUERADE"),
     {"src": "10.224.0.4", "dst": "10.244.1.9", "from_host": True}, True, "10.244.1.1", ("POSTROUTING", 1)),
    ("addrtype --limit-iface-out: local on the egress device",
     nat("-A POSTROUTING -m addrtype ! --src-type LOCAL --limit-iface-out -j MASQUERADE"),
     {"src": "10.244.1.1", "dst": "10.244.1.9", "from_host": True}, False, "10.244.1.1", ("POSTROUTING", None)),
    ("ipset membership decided with contents",
     nat("-A POSTROUTING -m set --match-set masq-src src -m set ! --match-set all-pools dst -j MASQUERADE"),
     {"ipsets": "create masq-src hash:net family inet\nadd masq-src 10.244.0.0/16\n"
                "create all-pools hash:net family inet\nadd all-pools 10.244.0.0/16\n"}, True, NODE,
     ("POSTROUTING", 1)),
    ("ipset ip,port,ip (hairpin loop-back set)",
     nat("-A POSTROUTING -m set --match-set LOOP dst,dst,src -j MASQUERADE"),
     {"dst": "10.244.1.5", "src": "10.244.1.5", "proto": "udp", "dport": 53,
      "ipsets": "create LOOP hash:ip,port,ip family inet\nadd LOOP 10.244.1.5,udp:53,10.244.1.5\n"}, True,
     "10.244.1.1", ("POSTROUTING", 1)),
    ("ipset nomatch entry", nat("-A POSTROUTING -m set --match-set N dst -j MASQUERADE"),
     {"ipsets": "create N hash:net family inet\nadd N 203.0.113.0/24\nadd N 203.0.113.0/28 nomatch\n"}, False,
     "10.244.1.5", ("POSTROUTING", None)),
    ("physdev on a non-bridged frame", nat("-A POSTROUTING -m physdev --physdev-is-bridged -j MASQUERADE"),
     {"bridged": False}, False, "10.244.1.5", ("POSTROUTING", None)),
    ("physdev on a bridged frame", nat("-A POSTROUTING -m physdev --physdev-is-bridged -j MASQUERADE"),
     {"bridged": True}, True, NODE, ("POSTROUTING", 1)),
    ("comment text is never semantics", nat('-A POSTROUTING -m comment --comment "-j MASQUERADE" -j RETURN',
                                            "-A POSTROUTING -j MASQUERADE"), {}, False, "10.244.1.5",
     ("POSTROUTING", 1)),
    ("fragment match is false for a first packet", nat("-A POSTROUTING -f -j MASQUERADE"), {}, False,
     "10.244.1.5", ("POSTROUTING", None)),
]


@pytest.mark.parametrize("name, text, over, masq, seen, deciding", CASES, ids=[c[0] for c in CASES])
def test_semantics(name, text, over, masq, seen, deciding):
    over = dict(over)
    if "ipsets" in over:
        over["ipsets"] = parse_ipset_save(over["ipsets"])
    ev = run(text, **over)
    assert ev.agreed, [(o.kind, o.conditions, o.reason) for o in ev.outcomes]
    assert ev.masqueraded is masq
    assert ev.source_ip_seen == seen
    if deciding is not None:
        d = ev.primary.deciding
        assert (d.chain, d.index) == deciding, d


def test_random_branches_are_enumerated_with_their_endpoints():
    ev = run(nat(*KUBE), dst="10.0.0.10", proto="udp", dport=53)
    assert ev.masqueraded is None
    ends = [(o.destination, o.masqueraded, o.source_ip_seen) for o in ev.outcomes]
    # branch A is the pod itself (hairpin): marked, MASQUERADE on cbr0; B and C are RETURNed by the agent
    assert ends == [("10.244.1.5", True, "10.244.1.1"), ("10.244.2.7", False, "10.244.1.5"),
                    ("10.244.3.9", False, "10.244.1.5")]
    assert [round(o.probability, 6) for o in ev.outcomes] == [0.333333, 0.333333, 0.333333]
    assert ev.outcomes[0].dnat.chain == "KUBE-SEP-A"


def test_random_branches_that_agree_give_a_verdict():
    ev = run(nat("-A POSTROUTING -p tcp -m statistic --mode random --probability 0.5 -j MASQUERADE "
                 "--to-ports 1000-2000",
                 "-A POSTROUTING -p tcp -j MASQUERADE --to-ports 3000-4000"))
    assert ev.agreed and ev.masqueraded is True and len(ev.outcomes) == 2


def test_unknown_match_walks_both_outcomes():
    ev = run(nat("-A POSTROUTING -m recent --rcheck --name x -j MASQUERADE"))
    assert ev.masqueraded is None
    assert [o.kind for o in ev.outcomes] == ["masquerade", "accept"]
    post = [s for s in ev.outcomes[0].trace if s.hook == "POSTROUTING"]
    assert post[0].result == "unknown"
    assert "recent" in ev.outcomes[0].conditions[0]


def test_unknown_match_with_agreeing_outcomes_is_decided():
    ev = run(nat("-A POSTROUTING -m recent --rcheck --name x -j MARK --set-xmark 0x1/0x1",
                 "-A POSTROUTING -j MASQUERADE"))
    assert ev.agreed and ev.masqueraded is True


def test_unknown_addrtype_without_node_addresses_and_consistent_assumption():
    dump = parse_dump(nat(*AGENT))
    ev = evaluate(dump, Packet(ipaddress.ip_address("10.244.1.5"), ipaddress.ip_address("203.0.113.9")), NodeFacts())
    assert ev.masqueraded is None
    kinds = sorted(o.kind for o in ev.outcomes)
    # "203.0.113.9 is the node's": delivered locally; "is not": masqueraded (source unknown)
    assert kinds == ["local", "masquerade"]


def test_ipset_without_contents_is_unknown():
    ev = run(nat("-A POSTROUTING -m set --match-set S dst -j MASQUERADE"))
    assert ev.masqueraded is None
    assert "ipset S" in ev.outcomes[0].conditions[0]


def test_unknown_port_is_assumed_consistently_along_a_path():
    ev = run(nat(*KUBE), dst="10.0.0.20")          # no port given: KUBE-SERVICES rule 2 is unknown
    assert [o.kind for o in ev.outcomes] == ["local", "accept"]
    assert ev.outcomes[0].dport == 6443            # "port is 443" assumed, then DNAT to :6443
    assert ev.masqueraded is False                 # both outcomes keep the source: decided
    ev = run(nat(*KUBE), dst="10.0.0.10", src="172.16.0.9", proto="udp")
    # port 53 assumed: KUBE-SVC-DNS's own --dport 53 rule agrees (marks), every endpoint masquerades;
    # port not 53: the agent RETURNs 10.0.0.0/16
    assert [o.kind for o in ev.outcomes] == ["masquerade"] * 3 + ["accept"] and ev.masqueraded is None


def test_physdev_unknown_without_the_fact():
    assert run(nat("-A POSTROUTING -m physdev --physdev-is-bridged -j MASQUERADE")).masqueraded is None


def test_marks_set_in_mangle_make_mark_matches_unknown():
    text = "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark 0x200/0xf00\nCOMMIT\n" + nat(
        "-A POSTROUTING -m mark --mark 0x200/0xf00 -j MASQUERADE")
    assert run(text).masqueraded is None


def test_tproxy_in_mangle_sets_a_mark_too():
    text = ("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j TPROXY --on-port 9090 --on-ip 0.0.0.0 "
            "--tproxy-mark 0x200/0xffffffff\nCOMMIT\n" + nat("-A POSTROUTING -m mark --mark 0x200 -j MASQUERADE"))
    assert run(text).masqueraded is None


@pytest.mark.parametrize("rules, reason", [
    (["-A POSTROUTING -j LOOP", "-A LOOP -j LOOP"], "nesting"),
    (["-A POSTROUTING -j NETMAP --to 192.0.2.0/24"], "NETMAP"),
    (["-A POSTROUTING -j MISSING-CHAIN"], "MISSING-CHAIN"),
    (["-A PREROUTING -j MASQUERADE"], "not valid"),
    (["-A PREROUTING -j DNAT --to-destination garbage"], "cannot be read"),
    # the kernel hashes the tuple to pick one: the first of the range (here the node itself) is no answer
    (["-A PREROUTING -j DNAT --to-destination 10.224.0.4-10.224.0.9", "-A POSTROUTING -j MASQUERADE"], "range"),
    (["-A PREROUTING -p tcp -j DNAT --to-destination 192.0.2.1:80-90"], "range"),   # a port needs -p
])
def test_undecidable_rule_sets_end_unknown_never_crash(rules, reason):
    text = nat(*rules, chains="LOOP") if "LOOP" in rules[0] else nat(*rules).replace(":MISSING-CHAIN - [0:0]\n", "")
    ev = run(text)
    assert ev.masqueraded is None
    assert reason in ev.outcomes[0].reason


@pytest.mark.parametrize("rules", [
    ["-A POSTROUTING -j A", "-A A -g B", "-A B -g A"],
    ["-A POSTROUTING -j A", "-A A -g B", "-A B -j A"],
    ["-A POSTROUTING -j A", "-A A -j B", "-A B -g A"],
    ["-A POSTROUTING -g A", "-A A -g A"],
])
def test_loops_through_goto_end_unknown_at_once(rules):
    # the kernel refuses these rule sets; a hand-edited dump must not walk millions of steps
    ev = run(nat(*rules))
    assert ev.masqueraded is None
    assert [o.kind for o in ev.outcomes] == ["unknown"] and "loop" in ev.outcomes[0].reason
    assert len(ev.outcomes[0].trace) < 10


def test_a_chain_called_again_after_it_returned_is_no_loop():
    ev = run(nat("-A POSTROUTING -j A", "-A POSTROUTING -j B", "-A A -g M", "-A B -j M",
                 "-A B -j MASQUERADE", "-A M -j MARK --set-xmark 0x1/0x1"))
    assert ev.agreed and ev.masqueraded is True and ev.primary.deciding.chain == "B"


def test_too_many_branches_stop_with_an_unknown_verdict():
    rules = [f"-A POSTROUTING -m recent --rcheck --name r{i} -j MARK --set-xmark 0x{1 << i:x}/0x{1 << i:x}"
             for i in range(12)] + ["-A POSTROUTING -m mark --mark 0x5/0x5 -j MASQUERADE"]
    ev = run(nat(*rules))
    assert ev.truncated and ev.masqueraded is None


def test_ipv6():
    text = ("# Generated by ip6tables-save v1.8.9 (nf_tables) on Sun Nov 22 03:00:00 2026\n" + nat(
        "-A POSTROUTING -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT",
        "-A IP-MASQ-AGENT -d fd00::/8 -j RETURN",
        "-A IP-MASQ-AGENT -d fe80::/10 -j RETURN",
        "-A IP-MASQ-AGENT -j MASQUERADE"))
    dump = parse_dump(text)
    assert dump.family == 6
    f = facts(["fd00:10::4/64@eth0"], node_ip="fd00:10::4")
    ip = ipaddress.ip_address
    ev = evaluate(dump, Packet(ip("fd00:244::5"), ip("2001:db8::9")), f)
    assert (ev.masqueraded, ev.source_ip_seen) == (True, "fd00:10::4")
    ev = evaluate(dump, Packet(ip("fd00:244::5"), ip("fd00:99::9")), f)
    assert (ev.masqueraded, ev.primary.deciding.index) == (False, 1)
    ev = evaluate(dump, Packet(ip("fd00:244::5"), ip("::1"), from_host=True), f)
    assert ev.masqueraded is False


def test_ip_addr_output_is_read():
    text = ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
            "2: eth0    inet 10.224.0.4/16 brd 10.224.255.255 scope global eth0\\       valid_lft forever\n"
            "3: cbr0    inet 10.244.1.1/24 brd 10.244.1.255 scope global cbr0\n"
            "2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever\n")
    addrs = parse_ip_addr(text)
    assert [(str(a.ip), a.interface) for a in addrs] == [("127.0.0.1", "lo"), ("10.224.0.4", "eth0"),
                                                         ("10.244.1.1", "cbr0"), ("fe80::1", "eth0")]


def test_ipv6_flow_never_takes_an_ipv4_node_ip_or_address_list():
    # only IPv4 node facts: MASQUERADE's IPv6 address and whether a v6 address is local stay unknown
    text = nat("-A POSTROUTING -m addrtype ! --dst-type LOCAL -j MASQUERADE")
    ip = ipaddress.ip_address
    f = facts([f"{NODE}/16@eth0"], node_ip=NODE)
    ev = evaluate(parse_dump(text), Packet(ip("fd00:244::5"), ip("2001:db8::9")), f)
    assert all(o.source_ip_seen is None or ":" in o.source_ip_seen for o in ev.outcomes)
    assert ev.masqueraded is None            # 2001:db8::9 may be the node's own: addrtype unknown
    f = facts([f"{NODE}/16@eth0", "fd00:10::4/64@eth0"], node_ip=NODE)
    ev = evaluate(parse_dump(text), Packet(ip("fd00:244::5"), ip("2001:db8::9")), f)
    assert (ev.masqueraded, ev.source_ip_seen) == (True, "fd00:10::4")


def test_physdev_assumption_holds_along_a_path():
    # a path that assumed "bridged" must not assume "not bridged" two rules later
    ev = run(nat("-A POSTROUTING -m physdev --physdev-is-bridged -j MARK --set-xmark 0x1/0x1",
                 "-A POSTROUTING -m physdev ! --physdev-is-bridged -j MASQUERADE"))
    assert ev.masqueraded is None
    assert sorted((o.kind, len(o.conditions)) for o in ev.outcomes) == [("accept", 1), ("masquerade", 1)]
    for o in ev.outcomes:
        assert "bridged" in o.conditions[0]
        assert (o.kind == "masquerade") == o.conditions[0].startswith("assumed not:")


@pytest.mark.parametrize("ipsets", [
    "create S hash:mac\nadd S 00:11:22:33:44:55\n",
    "create S hash:net,iface family inet\nadd S 203.0.113.0/24,eth0\n",
    "create S hash:ip,port family inet\nadd S 203.0.113.9,tcp:80\nadd S 203.0.113.9,icmp:echo-request\n",
])
def test_valid_ipsets_masqctl_cannot_compare_are_unknown_not_an_error(ipsets):
    sets = parse_ipset_save(ipsets)
    assert not sets["S"].supported
    ev = run(nat("-A POSTROUTING -m set --match-set S dst,dst -j MASQUERADE"), ipsets=sets, dport=80)
    assert ev.masqueraded is None


def test_port_assumption_holds_for_negated_port_matches_too():
    # "port is not 53" assumed at rule 1 must make rule 2's "! --dport 53" true, not fork again
    ev = run(nat("-A POSTROUTING -p udp -m udp --dport 53 -j RETURN",
                 "-A POSTROUTING -p udp -m udp ! --dport 53 -j MASQUERADE"), proto="udp")
    assert sorted(o.kind for o in ev.outcomes) == ["accept", "masquerade"]
    masq = next(o for o in ev.outcomes if o.kind == "masquerade")
    assert len(masq.conditions) == 1 and masq.conditions[0].startswith("assumed not:")


def test_conntrack_source_ports():
    text = nat("-A POSTROUTING -p tcp -m conntrack --ctorigsrcport 40000:40100 -j MASQUERADE")
    ip = ipaddress.ip_address
    f = facts(**FACTS)
    ev = evaluate(parse_dump(text), Packet(ip("10.244.1.5"), ip("203.0.113.9"), "tcp", 80, 40050), f)
    assert ev.masqueraded is True
    ev = evaluate(parse_dump(text), Packet(ip("10.244.1.5"), ip("203.0.113.9"), "tcp", 80, 50000), f)
    assert ev.masqueraded is False
    ev = evaluate(parse_dump(text), Packet(ip("10.244.1.5"), ip("203.0.113.9"), "tcp", 80, None), f)
    assert ev.masqueraded is None


def test_raw_untracking_skips_nat_and_forks_on_unknowns():
    raw = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
           "-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack\nCOMMIT\n")
    text = raw + nat("-A POSTROUTING -j MASQUERADE")
    ev = run(text, proto="udp", dport=53)
    assert ev.agreed and ev.masqueraded is False and ev.primary.kind == "untracked"
    assert ev.primary.deciding.hook == "raw PREROUTING" and ev.source_ip_seen == "10.244.1.5"
    assert run(text, proto="udp", dport=80).masqueraded is True
    ev = run(text, proto="udp")                      # port unknown: both
    assert ev.masqueraded is None and sorted(o.kind for o in ev.outcomes) == ["masquerade", "untracked"]
    assert run(text, proto="udp", dport=53, from_host=True).masqueraded is True    # raw OUTPUT has no rule


def test_a_raw_mark_does_not_make_the_mark_known_when_mangle_may_change_it():
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark 0x1/0xffffffff\n"
            "-A PREROUTING -p udp -j CT --notrack\nCOMMIT\n"
            "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark 0x2/0xffffffff\nCOMMIT\n"
            + nat("-A POSTROUTING -m mark --mark 0x1 -j MASQUERADE"))
    assert run(text).masqueraded is None
