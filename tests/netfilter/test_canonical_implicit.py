"""Implicit protocol matches (``-p udp --dport 53`` without ``-m udp``), against real iptables.

iptables loads the protocol's match by itself when it meets an option that no match or target
given so far knows; ``iptables-save`` then prints ``-p udp -m udp --dport 53``. ``rule_key``
(semantic comparison) and the dump parser (explain's evaluator) must read both spellings the
same way. Ground truth: ``iptables-restore`` of the implicit forms and ``iptables-save`` in a
network namespace the test creates (both backends when the host has them), and real packets
for the verdict.
"""

from __future__ import annotations

import shutil

import pytest
from netns import NetNS, Topology, requires_netns

from masqctl.analysis.explain import Request, explain
from masqctl.netfilter.canonical import RuleSyntaxError, implicit_match, rule_key
from masqctl.netfilter.dump import parse_dump, parse_rule
from masqctl.netfilter.tokens import split_args

HEAD = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]"]

# (rule words after "-A T", the match iptables-save shows for it)
V4 = [
    ("-p udp --dport 53 -j RETURN", "-m udp"),
    ("-m comment --comment x -p udp --dport 53 -j RETURN", "-m udp"),
    ('-m comment --comment "two words" -p tcp --sport 1000:2000 --dport 443 -j RETURN', "-m tcp"),
    ("-p udp -m comment --comment y --dport 53 -m comment --comment z -j RETURN", "-m udp"),
    ("-p tcp ! --dport 80 -j RETURN", "-m tcp"),
    ("-p 17 --sport 1000: -j RETURN", "-m udp"),
    ("-p UDP --destination-port 53:53 -j RETURN", "-m udp"),
    ("-p tcp --syn -j RETURN", "-m tcp"),
    ("-p tcp ! --syn -j RETURN", "-m tcp"),
    ("-p tcp --tcp-flags ACK,SYN SYN -j RETURN", "-m tcp"),
    ("-p tcp --tcp-flags ALL NONE -j RETURN", "-m tcp"),
    ("-p sctp --dport 5000 -j RETURN", "-m sctp"),
    ("-p icmp --icmp-type 8 -j RETURN", "-m icmp"),
    ("-p icmp ! --icmp-type 3/1 -j RETURN", "-m icmp"),
    ("-m addrtype ! --dst-type LOCAL -p udp --dport 53 -j MASQUERADE", "-m udp"),
    ("-p tcp --dport 1 -m tcp --sport 2 -j RETURN", "-m tcp"),      # nft merges the two tcp matches
    ("-j DNAT --to-destination 10.0.0.1 -p udp --dport 5353", "-m udp"),
    ("-p tcp -j MASQUERADE --to-ports 1024-2000 --dport 80", "-m tcp"),
]
V6 = [
    ("-p icmpv6 --icmpv6-type 128 -j RETURN", "-m icmp6"),
    ("-p 58 --icmpv6-type 1/3 -j RETURN", "-m icmp6"),
    ("-m comment --comment x -p udp --dport 53 -j RETURN", "-m udp"),
]


def table(rules: list[str], chain: str = "T") -> str:
    return "\n".join(HEAD + [f":{chain} - [0:0]"] + [f"-A {chain} {r}" for r in rules] + ["COMMIT"]) + "\n"


def _backend_tools(backend: str, family: int) -> tuple[str, str] | None:
    v = "ip6tables" if family == 6 else "iptables"
    restore, save = f"{v}-{backend}-restore", f"{v}-{backend}-save"
    if shutil.which(restore) is None or shutil.which(save) is None:
        return None
    return restore, save


def _round_trip(ns: NetNS, backend: str, family: int, rules: list[str]) -> list[str]:
    """The ``-A T`` lines iptables-save prints after restoring ``rules``."""
    tools = _backend_tools(backend, family)
    if tools is None:
        pytest.skip(f"{backend} iptables tools are not installed")
    restore, save = tools
    probe = ns.run(restore, input="\n".join(HEAD + ["COMMIT"]) + "\n", check=False)
    if probe.returncode != 0:
        pytest.skip(f"{restore} does not work here: {probe.stderr.strip()}")
    ns.run(restore, input=table(rules))
    out = ns.run(save, "-t", "nat").stdout
    return [ln for ln in out.splitlines() if ln.startswith("-A T ")]


@requires_netns
@pytest.mark.parametrize("backend", ["nft", "legacy"])
@pytest.mark.parametrize("family, cases", [(4, V4), (6, V6)], ids=["ipv4", "ipv6"])
def test_rule_key_of_implicit_form_equals_what_iptables_saves(backend, family, cases):
    ns = NetNS("canon")
    try:
        saved = _round_trip(ns, backend, family, [r for r, _ in cases])
    finally:
        ns.delete()
    assert len(saved) == len(cases), saved
    for (original, shown), line in zip(cases, saved):
        assert shown in line, (original, line)                 # iptables did load the match itself
        if "--sport 2" not in original:                         # the one mixed spelling
            assert f" {shown} " not in f" {original} "
        assert rule_key(split_args(original)) == rule_key(split_args(line)[2:]), (original, line)


@requires_netns
def test_iptables_refuses_what_is_not_an_implicit_match_and_rule_key_does_not_invent_one():
    """An option before ``-p``, or one the protocol's match does not know, is refused."""
    explicit = rule_key(split_args("-p udp -m udp --dport 53 -j RETURN"))
    ns = NetNS("refuse")
    try:
        for rule in ("--dport 53 -p udp -j RETURN", "-p udp --icmp-type 8 -j RETURN"):
            r = ns.run("iptables-restore", input=table([rule]), check=False)
            assert r.returncode != 0, rule
            try:
                key = rule_key(split_args(rule))
            except RuleSyntaxError:
                continue
            assert key != explicit and not any(m[1] == "udp" and m[2] for m in key.matches), (rule, key)
    finally:
        ns.delete()


@requires_netns
def test_negated_protocol_still_loads_its_match():
    """iptables loads the match after ``! -p`` too: nft keeps ``! -p udp -m udp --dport 53`` (it never
    matches), the legacy kernel refuses it."""
    rule = "! -p udp --dport 53 -j RETURN"
    ns = NetNS("negp")
    try:
        saved = _round_trip(ns, "nft", 4, [rule])
    finally:
        ns.delete()
    assert saved == ["-A T ! -p udp -m udp --dport 53 -j RETURN"]
    assert rule_key(split_args(rule)) == rule_key(split_args(saved[0])[2:])
    assert parse_rule("T", 1, 1, saved[0]).matches[1].module == "udp"
    assert [m.module for m in parse_rule("T", 1, 1, "-A T " + rule).matches] == ["-p", "udp"]


def test_implicit_option_is_not_given_to_the_module_before_it():
    key = rule_key(split_args("-m comment --comment x -p udp --dport 53 -j RETURN"))
    assert dict((m[1], m[2]) for m in key.matches) == {
        "comment": ((False, "--comment", ("x",)),), "udp": ((False, "--dport", ("53",)),)}
    assert key != rule_key(split_args("-m comment --comment x -p udp --dport 54 -j RETURN"))
    assert key != rule_key(split_args("-m comment --comment x -p tcp --dport 53 -j RETURN"))
    assert rule_key(split_args("-p udp --dport 53 -j RETURN")) != rule_key(split_args("-p udp ! --dport 53 -j RETURN"))


@pytest.mark.parametrize("protocol, option, module", [
    ("udp", "--dport", "udp"), ("17", "--sport", "udp"), ("TCP", "--syn", "tcp"), ("6", "--tcp-flags", "tcp"),
    ("sctp", "--chunk-types", "sctp"), ("icmp", "--icmp-type", "icmp"), ("1", "--icmp-type", "icmp"),
    ("icmpv6", "--icmpv6-type", "icmp6"), ("ipv6-icmp", "--icmpv6-type", "icmp6"), ("58", "--icmpv6-type", "icmp6"),
    ("udp", "--icmp-type", None), ("all", "--dport", None), (None, "--dport", None), ("gre", "--dport", None),
])
def test_implicit_match_table(protocol, option, module):
    assert implicit_match(protocol, option) == module


def test_dump_parser_attaches_the_option_to_the_implicit_match():
    rule = parse_rule("T", 1, 1, "-A T -m comment --comment x -p udp --dport 53 -j RETURN")
    assert rule.problem is None
    by = {m.module: m for m in rule.matches}
    assert by["comment"].options == [(False, "--comment", ("x",))]
    assert by["udp"].options == [(False, "--dport", ("53",))]
    rule = parse_rule("T", 1, 1, "-A T -p udp --dport 53 -j RETURN")
    assert rule.problem is None and [m.module for m in rule.matches] == ["-p", "udp"]
    # no protocol: still an option outside any match (the evaluator then says unknown)
    assert parse_rule("T", 1, 1, "-A T --dport 53 -j RETURN").problem is not None


# --- explain: the same verdict for both spellings, and the kernel's -----------------------

EXPLAIN_RULES = [
    "-m comment --comment keep-dns -p udp --dport 9998 -j RETURN",
    "-p tcp ! --dport 9000:9100 -j RETURN",
    "-j MASQUERADE",
]


def _explain(text: str, proto: str, dport: int) -> tuple:
    ex = explain(Request(src=Topology.POD_IP, dst=f"{Topology.DST_IP}:{dport}", proto=proto, iptables="-",
                         iptables_text=text, local_addresses=[f"{Topology.NODE_UPLINK}/24@eth0",
                                                              f"{Topology.POD_GW}/24@vpod"],
                         node_ip=Topology.NODE_UPLINK))
    ev = ex.evaluation
    d = ex.deciding()
    return ev.masqueraded, ev.source_ip_seen, (d.chain, d.index) if d is not None else None


@requires_netns
def test_explain_gives_the_saved_forms_verdict_and_the_kernels():
    implicit = table(EXPLAIN_RULES).replace(":T - [0:0]", ":T - [0:0]\n-A POSTROUTING -j T")
    with Topology() as t:
        t.node.iptables_restore(implicit, noflush=False)
        saved = t.node.iptables_save()
        assert "-p udp -m comment --comment keep-dns -m udp --dport 9998 -j RETURN" in saved
        kernel = {port: t.probe_udp(Topology.DST_IP, port) for port in (9998, 9999)}
    assert kernel == {9998: Topology.POD_IP, 9999: Topology.NODE_UPLINK}
    for port, seen in kernel.items():
        masq = seen != Topology.POD_IP
        ours = _explain(implicit, "udp", port)
        assert ours == _explain(saved, "udp", port)
        assert ours[:2] == (masq, seen), (port, ours)
    # tcp: the negated implicit port range decides both ways, for both spellings
    for port, masq in ((9050, True), (80, False)):
        ours = _explain(implicit, "tcp", port)
        assert ours == _explain(saved, "tcp", port)
        assert ours[0] is masq, (port, ours)


def test_explain_reads_the_implicit_spelling_like_the_explicit_one():
    """Offline too: the port belongs to the udp match, not to the comment before it."""
    implicit = table(EXPLAIN_RULES).replace(":T - [0:0]", ":T - [0:0]\n-A POSTROUTING -j T")
    explicit = implicit.replace("-p udp --dport 9998", "-p udp -m udp --dport 9998")
    for port in (9998, 9999):
        assert _explain(implicit, "udp", port) == _explain(explicit, "udp", port)
    assert _explain(implicit, "udp", 9998)[0] is False and _explain(implicit, "udp", 9999)[0] is True
    assert parse_dump(implicit).table("nat").chain("T").rule(0).problem is None

