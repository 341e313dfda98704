"""The conntrack table reader: real captures, every shape of line, and errors naming the line."""

from __future__ import annotations

import os
import time

import pytest

from masqctl.errors import InputError
from masqctl.netfilter.conntrack import parse_table

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "conntrack")


def fixture(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as fh:
        return fh.read()


def test_the_three_real_shapes_give_the_same_connections():
    proc = parse_table(fixture("proc-nf_conntrack.txt"), "proc")
    listed = parse_table(fixture("conntrack-L-and-L-f-ipv6.txt"), "L")
    ext = parse_table(fixture("conntrack-L-o-extended.txt"), "ext")

    def key(e):
        return (e.family, e.proto, e.orig_src, e.orig_sport, e.reply_dst, e.reply_dport, e.state)

    assert sorted(map(key, proc.entries)) == sorted(map(key, listed.entries)) == sorted(map(key, ext.entries))
    assert len(proc.entries) == 5
    assert listed.duplicates == 2          # conntrack -L lists IPv6 too; -f ipv6 repeats them
    v6 = [e for e in proc.entries if e.family == 6 and e.proto == "tcp"][0]
    assert v6.orig_src == "fd00:9::1"      # the kernel's full form, shortened
    assert v6.state == "CLOSE_WAIT" and v6.assured and v6.timeout == 59 and v6.zone == 0 and v6.mark == 0
    udp = [e for e in proc.entries if e.family == 4 and e.proto == "udp"][0]
    assert udp.unreplied and not udp.assured and udp.state is None and udp.orig_dport == 53


NATTED = ("ipv4     2 tcp      6 431999 ESTABLISHED src=10.244.1.2 dst=10.42.1.10 sport=51234 dport=443 "
          "src=10.42.1.10 dst=10.40.0.4 sport=443 dport=61022 [ASSURED] mark=0 zone=0 use=2")


def test_a_masqueraded_entry_keeps_both_tuples():
    (e,) = parse_table(NATTED, "t").entries
    assert (e.orig_src, e.orig_sport, e.orig_dst, e.orig_dport) == ("10.244.1.2", 51234, "10.42.1.10", 443)
    assert (e.reply_src, e.reply_sport, e.reply_dst, e.reply_dport) == ("10.42.1.10", 443, "10.40.0.4", 61022)
    assert e.masqueraded


@pytest.mark.parametrize("line", [
    # accounting, zones per direction, secctx, labels, ids, offload flags
    "ipv4     2 tcp      6 300 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 packets=3 bytes=180 "
    "src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 packets=2 bytes=120 [OFFLOAD] [ASSURED] mark=7 "
    "secctx=system_u:object_r:unlabeled_t:s0 zone=3 delta-time=12 use=1",
    "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 zone-orig=3 src=10.0.0.2 dst=10.0.0.1 "
    "sport=2 dport=1 zone-reply=3 [ASSURED] mark=0 use=1 id=3735928559",
    "[NEW] tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 "
    "sport=2 dport=1",
    "[DESTROY] udp      17 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1",
    "ipv4     2 sctp     132 3 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=9 dport=9 src=10.0.0.2 dst=10.0.0.1 "
    "sport=9 dport=9 [ASSURED] mark=0 zone=0 use=2",
    "ipv4     2 icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=77 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 "
    "id=77 mark=0 zone=0 use=2",
    "icmpv6   58 29 src=fd00::1 dst=fd00::2 type=128 code=0 id=9 src=fd00::2 dst=fd00::1 type=129 code=0 id=9 "
    "mark=0 use=1 id=12345",
])
def test_every_kept_shape_reads(line):
    (e,) = parse_table(line, "t").entries
    assert e.orig_src in ("10.0.0.1", "fd00::1")


def test_zone_and_mark_are_read():
    (e,) = parse_table("ipv4 2 udp 17 30 src=10.0.0.1 dst=10.0.0.2 sport=5 dport=6 src=10.0.0.2 dst=10.0.0.1 "
                       "sport=6 dport=5 mark=255 zone=4 use=1", "t").entries
    assert (e.zone, e.mark) == (4, 255)


def test_other_protocols_comments_and_summaries_are_skipped():
    text = "\n".join([
        "# conntrack -L on aks-node-0",
        "ipv4     2 gre      47 179 timeout=180, stream_timeout=180 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x0",
        "ipv4     2 unknown  41 579 src=10.0.0.1 dst=10.0.0.2 src=10.0.0.2 dst=10.0.0.1 mark=0 zone=0 use=2",
        "dccp     33 10 REQUEST src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1",
        "",
        NATTED,
        "conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.",
    ])
    table = parse_table(text, "t")
    assert len(table.entries) == 1 and table.skipped == 3 and table.lines == 7


def test_the_same_tuple_in_another_zone_is_another_connection():
    a = NATTED
    b = NATTED.replace("zone=0", "zone=1")
    assert len(parse_table("\n".join([a, b, a]), "t").entries) == 2


@pytest.mark.parametrize("line, says", [
    ("tcp 6 10 ESTABLISHED src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2", "reply tuple"),
    ("tcp 7 10 src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1", "number 6"),
    ("ipv4 2 tcp 6 1 src=1.2.3.4 dst=1.2.3.5 sport=1 dport=99999 src=1.2.3.5 dst=1.2.3.4 sport=1 dport=1", "99999"),
    ("ipv4 2 tcp 6 1 src=1.2.3.400 dst=1.2.3.5 sport=1 dport=9 src=1.2.3.5 dst=1.2.3.4 sport=1 dport=1", "1.2.3.400"),
    ("ipv4 2 tcp 6 1 src=fd00::1 dst=fd00::2 sport=1 dport=9 src=fd00::2 dst=fd00::1 sport=1 dport=1", "IPv4"),
    ("ipv6 10 tcp 6 1 src=10.0.0.1 dst=fd00::2 sport=1 dport=9 src=fd00::2 dst=fd00::1 sport=1 dport=1", "IPv6"),
    ("udp 17 30 ESTABLISHED src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1",
     "no state"),
    ("tcp 6 30 src=1.2.3.4 dst=1.2.3.5 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1", "no sport"),
    ("tcp 6 30 src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1 src=9.9.9.9",
     "third src"),
    ("tcp 6 soon src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1", "timeout"),
    ("tcp 6 30 src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1 [ASSURED",
     "FLAG"),
    ("Chain POSTROUTING (policy ACCEPT)", "not a protocol"),
    ("ipv4 10 tcp 6 30 src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1", "number 2"),
])
def test_a_malformed_line_names_the_file_and_line(line, says):
    with pytest.raises(InputError) as info:
        parse_table(NATTED + "\n" + line + "\n", "nodes/n1/conntrack.txt")
    err = info.value
    assert err.code == "E318" and err.input == "nodes/n1/conntrack.txt line 2"
    assert says in err.message, err.message


def test_a_full_table_is_read_validated_and_searched_quickly():
    """262,144 entries (nf_conntrack_max of a big node). The figure against grep is bench/who.py;
    here a generous bound catches a reader that went quadratic or lost its fast path."""
    lines = []
    for n in range(262_144):
        pod = f"10.244.{(n >> 8) & 255}.{n & 255}"
        lines.append(f"ipv4     2 tcp      6 {n % 432000} ESTABLISHED src={pod} dst=10.42.1.10 sport={1024 + n % 60000} "
                     f"dport=443 src=10.42.1.10 dst=10.40.0.{n % 3} sport=443 dport={2000 + n % 60000} [ASSURED] "
                     f"mark=0 zone=0 use=2")
    text = "\n".join(lines)
    start = time.process_time()
    table = parse_table(text, "big")
    hits = [e for e in table.entries if e.reply_dst == "10.40.0.1" and e.reply_dport == 2001]
    took = time.process_time() - start
    expected = [n + 1 for n in range(262_144) if n % 3 == 1 and n % 60000 == 1]
    assert len(table.entries) == 262_144 and [e.line for e in hits] == expected
    assert took < 12, took


def test_the_real_shapes_pass_the_one_pass_check():
    """Every line of the three real captures is accepted by search_table's regular expression, so
    a real table is validated without a second reading of its lines (the property tests check
    that whatever it accepts parse_line accepts too)."""
    from masqctl.netfilter.conntrack import _fast

    for name in ("proc-nf_conntrack.txt", "conntrack-L-and-L-f-ipv6.txt", "conntrack-L-o-extended.txt"):
        text = fixture(name).rstrip("\n")
        bad, _ = _fast(str)
        lines = [line for line in text.splitlines() if "flow entries" not in line]
        refused = [line for line in lines if bad.match("\n" + line)]
        assert refused == [], (name, refused)


@pytest.mark.parametrize("question, want", [
    (("10.9.0.1", 39226, None), [("udp", 39226)]),
    (("10.9.0.1", None, "10.9.0.2"), [("udp", 39226), ("tcp", 45786), ("tcp", 45794)]),
    (("fd00:9::1", 57888, None), [("tcp", 57888)]),
    (("fd00:9::1", None, None), [("tcp", 57888), ("udp", 33863)]),
])
@pytest.mark.parametrize("fixture_name", ["proc-nf_conntrack.txt", "conntrack-L-and-L-f-ipv6.txt",
                                          "conntrack-L-o-extended.txt"])
def test_search_table_finds_the_replies_to_an_address(fixture_name, question, want):
    from masqctl.netfilter.conntrack import Question, search_table

    text = fixture(fixture_name)
    for given in (text, text.encode()):
        found = search_table(given, "t", Question(*question))
        assert sorted((e.proto, e.reply_dport) for e in found.entries) == sorted(want)
    table = parse_table(text, "t")
    assert found.listed == len(table.entries) + table.duplicates


def test_two_pings_with_other_ids_are_two_connections():
    def ping(ident):
        return (f"ipv4     2 icmp     1 29 src=10.244.1.2 dst=8.8.8.8 type=8 code=0 id={ident} src=8.8.8.8 "
                f"dst=10.40.0.4 type=0 code=0 id={ident} mark=0 zone=0 use=2")
    text = "\n".join([ping(7), ping(8), ping(7)])
    table = parse_table(text, "t")
    assert [e.icmp_id for e in table.entries] == [7, 8] and table.duplicates == 1
    from masqctl.netfilter.conntrack import Question, search_table

    found = search_table(text, "t", Question("10.40.0.4"))
    assert [e.icmp_id for e in found.entries] == [7, 8] and found.duplicates == 1 and found.listed == 3


@pytest.mark.parametrize("high", [255, 65535, (1 << 32) - 1, 100, 19, 9, 80])
def test_the_number_expressions_take_exactly_0_to_high(high):
    import re

    from masqctl.netfilter.conntrack import _numbers

    whole = re.compile(_numbers(high) + r" ", re.ASCII)
    values = list(range(0, 2100)) + [high - 1, high, high + 1, high * 10] + [n * 7919 % (high * 3 + 1) for n in range(3000)]
    for v in values:
        assert bool(whole.fullmatch(f"{v} ")) == (v <= high), v
    for text in ("01", "00", "007", "", "+1", "1_0"):
        assert not whole.fullmatch(text + " "), text
