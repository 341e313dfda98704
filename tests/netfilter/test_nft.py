"""The nftables reader and evaluator on kube-proxy's own golden rule set.

Fixture: tests/fixtures/nft/kube-proxy-overall.nft is the expected rule set of
TestOverallNFTablesRules (kubernetes/kubernetes pkg/proxy/nftables/proxier_test.go at 030880a5,
`baseRules` and the test's `expected`); the .json and .txt beside it are what `nft -j list ruleset`
and `nft list ruleset` (nft 1.0.6) print after loading it. The flow cases mirror that file's
packet-flow tests (TestClusterIPGeneral "simple clusterIP" / "hairpin to cluster IP",
TestLoadBalancer "external to nodePort": masq false / true / true) on this rule set's services."""

from __future__ import annotations

import ipaddress
import json
import pathlib

import pytest

from masqctl.analysis.explain import Request, explain
from masqctl.errors import InputError
from masqctl.netfilter.facts import Address, NodeFacts
from masqctl.netfilter.nftread import NftError, parse_ruleset
from masqctl.netfilter.nfteval import NftEvaluator
from masqctl.netfilter.walk import Packet

FIX = pathlib.Path(__file__).parent.parent / "fixtures" / "nft"
NODE = "192.168.0.2"     # testNodeIP of proxier_test.go


def _facts():
    return NodeFacts(addresses=[Address(ipaddress.ip_address(NODE), ipaddress.ip_network("192.168.0.0/24"), "eth0")],
                     node_ip=ipaddress.ip_address(NODE))


@pytest.fixture(scope="module", params=["json", "txt"])
def ruleset(request):
    return parse_ruleset((FIX / f"kube-proxy-overall.{request.param}").read_text(), request.param)


def _ev(rs, src, dst, port, proto="tcp"):
    return NftEvaluator(rs, None, _facts()).evaluate(
        Packet(ipaddress.ip_address(src), ipaddress.ip_address(dst), proto, port, None))


def test_structure(ruleset):
    t = ruleset.table("ip", "kube-proxy")
    assert [c.name for c in ruleset.nat_chains()] == ["nat-output", "nat-postrouting", "nat-prerouting"]
    assert (t.chains["nat-postrouting"].prio, t.chains["nat-prerouting"].prio) == (100, -100)
    assert t.chains["filter-prerouting-pre-dnat"].prio == -110          # "dstnat - 10" in the text form
    assert t.sets["service-ips"].data_type == "verdict"
    assert len(t.sets["service-ips"].elements) == 9
    assert ruleset.rule_count() == 57


@pytest.mark.parametrize("src,dst,port,masq,endpoints", [
    ("10.0.0.2", "172.30.0.41", 80, False, {"10.180.0.1:80"}),     # "simple clusterIP"
    ("10.180.0.1", "172.30.0.41", 80, True, {"10.180.0.1:80"}),    # "hairpin to cluster IP"
    ("203.0.113.2", NODE, 3003, True, {"10.180.0.3:80"}),          # "external to nodePort"
    ("10.0.0.2", "172.30.0.44", 80, False, {"10.180.0.4:80", "10.180.0.5:80"}),   # two endpoints, numgen
    ("10.0.0.2", "203.0.113.9", 443, False, {"203.0.113.9:443"}),  # not a service
])
def test_kube_proxy_flows(ruleset, src, dst, port, masq, endpoints):
    ev = _ev(ruleset, src, dst, port)
    assert ev.masqueraded is masq
    assert {f"{o.destination}:{o.dport}" for o in ev.outcomes} == endpoints
    if masq:
        assert ev.source_ip_seen == NODE
        assert ev.primary.deciding.chain == "masquerading"


def test_no_port_forks_on_the_vmap(ruleset):
    ev = _ev(ruleset, "10.0.0.2", "172.30.0.41", None)
    assert ev.masqueraded is False
    assert {o.destination for o in ev.outcomes} == {"172.30.0.41", "10.180.0.1"}


def test_unknown_expression_is_named():
    rs = parse_ruleset('table ip t {\n chain p {\n  type nat hook postrouting priority srcnat; policy accept;\n'
                       '  ip daddr 10.0.0.0/8 accept\n  osf name "Linux" masquerade\n }\n}\n', "t.nft")
    ev = _ev(rs, "10.244.1.2", "203.0.113.9", 80)
    assert ev.masqueraded is None
    assert "osf" in ev.primary.reason
    assert _ev(rs, "10.244.1.2", "10.1.2.3", 80).masqueraded is False


def test_xt_extension_is_unknown():
    doc = {"nftables": [{"table": {"family": "ip", "name": "nat"}},
                        {"chain": {"family": "ip", "table": "nat", "name": "POSTROUTING", "type": "nat",
                                   "hook": "postrouting", "prio": 100, "policy": "accept"}},
                        {"rule": {"family": "ip", "table": "nat", "chain": "POSTROUTING",
                                  "expr": [{"xt": {"type": "target", "name": "MASQUERADE"}}]}}]}
    ev = _ev(parse_ruleset(json.dumps(doc), "x.json"), "10.244.1.2", "203.0.113.9", 80)
    assert ev.masqueraded is None and "xt MASQUERADE" in ev.primary.reason


def test_tied_priorities_in_two_tables_walk_both_orders():
    text = ("table ip a {\n chain p {\n  type nat hook postrouting priority srcnat; policy accept;\n"
            "  snat to 192.0.2.1\n }\n}\ntable ip b {\n chain p {\n  type nat hook postrouting priority 100; "
            "policy accept;\n  masquerade\n }\n}\n")
    ev = _ev(parse_ruleset(text, "t"), "10.244.1.2", "203.0.113.9", 80)
    assert ev.masqueraded is None           # snat to 192.0.2.1 or the node address: order decides
    assert {o.source_ip_seen for o in ev.outcomes} == {"192.0.2.1", NODE}
    assert all(any("runs before" in c for c in o.conditions) for o in ev.outcomes)


def test_accept_ends_only_its_own_chain():
    # an exemption that accepts at srcnat - 10 does not stop a masquerade at srcnat
    text = ("table inet x {\n chain early {\n  type nat hook postrouting priority srcnat - 10; policy accept;\n"
            "  ip daddr 203.0.113.0/24 accept\n }\n chain late {\n  type nat hook postrouting priority srcnat; "
            "policy accept;\n  masquerade\n }\n}\n")
    ev = _ev(parse_ruleset(text, "t"), "10.244.1.2", "203.0.113.9", 80)
    assert ev.masqueraded is True and ev.primary.deciding.chain == "late"


@pytest.mark.parametrize("text,code", [
    ("{", "E341"), ('{"nftables": 3}', "E341"), ('{"nftables": [{"chain": {"family": "ip"}}]}', "E342"),
    ("table ip t {\n chain c {\n", "E343"), ("tables ip t {}", "E343"), ("   \n", "E344"),
])
def test_errors_are_coded(tmp_path, text, code):
    f = tmp_path / "nft-ruleset.json"
    f.write_text(text)
    with pytest.raises(InputError) as err:
        explain(Request(src="10.244.1.2", dst="203.0.113.9", nft=str(f)))
    assert err.value.code == code and err.value.input == str(f)


def test_error_names_the_json_path():
    with pytest.raises(NftError) as err:
        parse_ruleset('{"nftables": [{"table": {"family": "ip", "name": "t"}}, {"rule": {"family": "ip", '
                      '"table": "t", "chain": "nope", "expr": []}}]}', "x")
    assert err.value.where == "nftables[1].rule"


def test_explain_with_iptables_too(tmp_path):
    # iptables' POSTROUTING sits at srcnat with kube-proxy's nat-postrouting: a tie between tables
    ipt = tmp_path / "iptables-save.txt"
    ipt.write_text("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                   "-A POSTROUTING -d 10.0.0.0/8 -j RETURN\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n")
    ex = explain(Request(src="10.0.0.2", dst="203.0.113.9:443", iptables=str(ipt),
                         nft=str(FIX / "kube-proxy-overall.json"), node_ip=NODE, local_addresses=[NODE]))
    assert ex.masqueraded() is True
    assert any("every order was walked" in n for n in ex.notes)
    ex = explain(Request(src="10.0.0.2", dst="10.1.2.3:443", iptables=str(ipt),
                         nft=str(FIX / "kube-proxy-overall.json"), node_ip=NODE, local_addresses=[NODE]))
    assert ex.masqueraded() is False


@pytest.mark.parametrize("form", ["json", "txt"])
@pytest.mark.parametrize("src,dst,masq", [
    ("10.244.1.2", "203.0.113.9", True),     # natOutgoing pool to the outside
    ("10.244.1.2", "10.96.0.5", False),      # to another pool (cali40all-ipam-pools)
    ("10.244.1.2", "10.244.7.9", False),     # pod to pod
    ("10.50.0.4", "203.0.113.9", False),     # a source outside the natOutgoing pools
])
def test_calico_nft_nat_outgoing(form, src, dst, masq):
    # tests/fixtures/nft/calico-nat.nft: felix's `table ip calico`, nat-POSTROUTING -> nat-cali-POSTROUTING
    # -> nat-cali-fip-snat (empty), nat-cali-nat-outgoing (felix/rules/nat_test.go NATOutgoingChain)
    rs = parse_ruleset((FIX / f"calico-nat.{form}").read_text(), form)
    ev = _ev(rs, src, dst, 443)
    assert ev.masqueraded is masq
    if masq:
        assert ev.source_ip_seen == NODE and ev.primary.deciding.chain == "nat-cali-nat-outgoing"
