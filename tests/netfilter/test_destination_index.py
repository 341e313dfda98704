"""Long chains are walked with an index of their ``-d ADDR/32`` rules (non-matching rules taken in
bulk): the walks, traces, errors and outcomes are exactly those of reading every rule one by one."""

from __future__ import annotations

import importlib.util
import ipaddress
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masqctl.netfilter import evaluate as evaluatemod
from masqctl.netfilter import matches
from masqctl.netfilter.dump import DumpError, parse_dump
from masqctl.netfilter.evaluate import Packet, evaluate
from masqctl.netfilter.facts import NodeFacts, parse_address_fact
from timelimit import time_limit

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
FACTS = NodeFacts(addresses=[parse_address_fact("10.244.0.1/16@cni0"), parse_address_fact("10.224.0.4/16@eth0")],
                  node_ip=ipaddress.ip_address("10.224.0.4"))


def walk(text: str, src: str, dst: str, proto: str = "tcp", port: int | None = 80, facts=FACTS):
    """Everything a reader of the evaluation sees, or the error the walk raised."""
    try:
        dump = parse_dump(text)
    except DumpError as exc:
        return ("parse error", exc.message, exc.lineno)
    try:
        ev = evaluate(dump, Packet(ipaddress.ip_address(src), ipaddress.ip_address(dst), proto, port), facts)
    except DumpError as exc:
        return ("error", exc.message, exc.lineno)
    return ([(o.kind, o.masqueraded, o.source_ip_seen, o.destination, o.dport, o.reason, o.conditions,
              o.probability, [s.to_dict() for s in o.trace], o.deciding and o.deciding.to_dict())
             for o in ev.outcomes], ev.notes, ev.truncated)


def alike(monkeypatch, text: str, flows) -> None:
    for flow in flows:
        monkeypatch.setattr(matches, "INDEX_MIN", 10 ** 9)     # rule by rule: the reference
        reference = walk(text, *flow)
        monkeypatch.setattr(matches, "INDEX_MIN", 1)           # every chain indexed
        assert walk(text, *flow) == reference, flow
        monkeypatch.setattr(matches, "INDEX_MIN", 64)
        assert walk(text, *flow) == reference, flow


def kube_proxy(services: int, endpoints: int) -> str:
    # by path: bench/ holds an inspect.py, which must not shadow the standard library's
    spec = importlib.util.spec_from_file_location("masqctl_bench_kube_proxy_table",
                                                  os.path.join(BENCH, "kube_proxy_table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate(services, endpoints)


def test_kube_proxy_services_walk_alike(monkeypatch):
    text = kube_proxy(200, 2)
    flows = [("10.244.7.9", "10.96.0.199"), ("10.244.7.9", "10.96.0.0"), ("10.244.7.9", "10.96.0.77", "udp", 53),
             ("10.244.7.9", "203.0.113.9", "tcp", 443), ("10.244.7.9", "10.96.0.199", "tcp", None),
             ("10.244.7.9", "10.224.0.4", "tcp", 30080)]
    alike(monkeypatch, text, flows)
    dump = parse_dump(text)
    ev = evaluate(dump, Packet(ipaddress.ip_address("10.244.7.9"), ipaddress.ip_address("10.96.0.199"), "tcp", 80),
                  FACTS)
    services = dump.table("nat").chain("KUBE-SERVICES")
    assert services.index is not None and len(services.index.by_dst) == 200   # the walk used the index
    assert sum(s.chain == "KUBE-SERVICES" for s in ev.primary.trace) == 200


def test_max_steps_and_cut_tables_stop_alike(monkeypatch):
    rules = [f"-A KUBE-SERVICES -d 10.96.{i // 256}.{i % 256}/32 -p tcp -m tcp --dport 80 -j RETURN"
             for i in range(300)]
    head = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\n"
    whole = head + "\n".join(rules) + "\nCOMMIT\n"
    flows = [("10.244.7.9", "10.96.1.20"), ("10.244.7.9", "203.0.113.9")]
    alike(monkeypatch, head + "\n".join(rules) + "\n", flows)                     # cut short: no COMMIT
    alike(monkeypatch, head + "\n".join(rules[:150]) + "\n*filter\nCOMMIT\n", flows)  # cut by another header
    for limit in (5, 100, 150, 299, 301, 302):
        monkeypatch.setattr(evaluatemod, "MAX_STEPS", limit)
        alike(monkeypatch, whole, flows)


# Rule lines a long chain may hold: /32 destinations written as the kernel prints them, and every
# other way an address may appear (other prefixes, negations, a source first, leading zeros, an
# IPv6 address, a rule cut at the address, quotes left open after it)
ADDRS = ["10.96.0.1", "10.96.0.2", "10.0.0.1", "203.0.113.9"]
LINE = st.one_of(
    st.sampled_from(ADDRS).map(lambda a: f"-A C -d {a}/32 -p tcp -m tcp --dport 80 -j RETURN"),
    st.sampled_from(ADDRS).map(lambda a: f"-A C -d {a}/32 -j MASQUERADE"),
    st.sampled_from([
        "-A C -d 10.96.0.0/16 -j RETURN", "-A C ! -d 10.96.0.1/32 -j RETURN", "-A C -s 10.244.7.9/32 -d 10.96.0.1/32 -j RETURN",
        "-A C -d 010.96.0.1/32 -j RETURN", "-A C -d 10.96.0.01/32 -j RETURN", "-A C -d 10.96.0.1 -j RETURN",
        "-A C -d 10.96.0.1/32", "-A C -d 256.1.1.1/32 -j RETURN", "-A C -d fd00::1/128 -j RETURN",
        "-A C -d 10.96.0.1/32 -m comment --comment \"open -j RETURN", "-A C -d 10.96.0.2/32 -m bogus -j RETURN",
        "-A C -d 10.96.0.1/320 -j RETURN", "-A C -j MARK --set-xmark 0x4000/0x4000", "-A C -j D", "-A C -g D",
        "-A C -d 10.96.0.2/32 -j D", "-A C -m statistic --mode random --probability 0.5 -j D",
        "-A C -m addrtype --dst-type LOCAL -j RETURN", "-A C -d 10.96.0.1/32 -p udp -j DNAT --to-destination 10.0.0.1:53",
    ]))
TAIL = ["-A D -d 10.96.0.1/32 -j RETURN", "-A D -j MASQUERADE"]


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINE, min_size=1, max_size=40), st.sampled_from(ADDRS + ["10.96.0.3", "10.224.0.4"]),
       st.sampled_from(["COMMIT\n", ""]))
def test_generated_chains_walk_alike(lines, dst, end):
    head = ("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:C - [0:0]\n:D - [0:0]\n"
            "-A PREROUTING -j C\n-A POSTROUTING -j C\n")
    text = head + "\n".join(lines + TAIL) + "\n" + end
    mp = pytest.MonkeyPatch()
    try:
        with time_limit(20, "a generated chain"):
            alike(mp, text, [("10.244.7.9", dst), ("10.244.7.9", dst, "udp", 53)])
    finally:
        mp.undo()


def test_an_ipv6_packet_skips_every_ipv4_host_rule(monkeypatch):
    rules = [f"-A C -d 10.96.0.{i}/32 -j RETURN" for i in range(100)] + ["-A C -d fd00::1/128 -j MASQUERADE"]
    text = "*nat\n:POSTROUTING ACCEPT [0:0]\n:C - [0:0]\n-A POSTROUTING -j C\n" + "\n".join(rules) + "\nCOMMIT\n"
    alike(monkeypatch, text, [("fd00::9", "fd00::1"), ("fd00::9", "fd00::2")])
