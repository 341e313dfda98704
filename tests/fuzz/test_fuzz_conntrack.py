"""Property tests of the conntrack table reader: any text gives entries or a coded E318 naming the
file and line — never another exception. Real lines, damaged at a random place, and lines built
from conntrack's own words in any order."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masqctl.errors import InputError
from masqctl.netfilter.conntrack import Question, parse_table, search_lines, search_table
from timelimit import time_limit

EXAMPLES = int(os.environ.get("MASQCTL_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

REAL = [
    "ipv4     2 tcp      6 431999 ESTABLISHED src=10.244.1.2 dst=10.42.1.10 sport=51234 dport=443 "
    "src=10.42.1.10 dst=10.40.0.4 sport=443 dport=61022 [ASSURED] mark=0 zone=0 use=2",
    "udp      17 28 src=10.9.0.1 dst=10.9.0.2 sport=39226 dport=53 [UNREPLIED] src=10.9.0.2 dst=10.9.0.1 "
    "sport=53 dport=39226 mark=0 use=1",
    "ipv6     10 tcp      6 59 CLOSE_WAIT src=fd00:0009:0000:0000:0000:0000:0000:0001 "
    "dst=fd00:0009:0000:0000:0000:0000:0000:0002 sport=57888 dport=443 src=fd00:0009:0000:0000:0000:0000:0000:0002 "
    "dst=fd00:0009:0000:0000:0000:0000:0000:0001 sport=443 dport=57888 [ASSURED] mark=0 zone=0 use=2",
    "ipv4     2 icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=77 src=10.0.0.2 dst=10.0.0.1 type=0 "
    "code=0 id=77 mark=0 zone=0 use=2",
    "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.",
]
WORDS = ["ipv4", "ipv6", "2", "10", "tcp", "udp", "sctp", "icmp", "icmpv6", "gre", "unknown", "6", "17", "132", "1",
         "58", "47", "ESTABLISHED", "TIME_WAIT", "[ASSURED]", "[UNREPLIED]", "[NEW]", "[", "]", "=", "src=10.0.0.1",
         "dst=10.0.0.2", "src=fd00::1", "dst=fd00::", "sport=1", "dport=65535", "sport=65536", "dport=01",
         "type=8", "code=0", "id=1", "mark=1", "zone=70000", "use=", "src=", "x=y", "#", "shown.", "conntrack",
         "0", "4294967296", "٣", "src=1.2.3.4\u00a0"]


def check(text: str) -> None:
    try:
        table = parse_table(text, "nodes/n/conntrack.txt")
    except InputError as err:
        assert err.code == "E318"
        assert err.input.startswith("nodes/n/conntrack.txt line ")
        line = int(err.input.rsplit(" ", 1)[1])
        assert 1 <= line <= max(1, len(text.splitlines()))
        return
    for e in table.entries:
        assert e.proto in ("tcp", "udp", "sctp", "icmp", "icmpv6")
        assert e.family in (4, 6)
        for port in (e.orig_sport, e.orig_dport, e.reply_sport, e.reply_dport):
            assert port is None or 0 <= port <= 65535
    assert len(table.entries) + table.duplicates + table.skipped <= len(text.splitlines())


@FUZZ
@given(st.text(max_size=400))
def test_any_text(text):
    check(text)


@FUZZ
@given(st.lists(st.sampled_from(REAL), min_size=1, max_size=5), st.integers(0, 2000), st.text(max_size=6),
       st.integers(0, 6))
def test_real_lines_damaged(lines, at, junk, cut):
    text = "\n".join(lines)
    at %= len(text) + 1
    check(text[:at] + junk + text[at + cut:])


@FUZZ
@given(st.lists(st.lists(st.sampled_from(WORDS), max_size=24), max_size=4))
def test_lines_of_conntracks_words(lines):
    check("\n".join(" ".join(words) for words in lines))


# --------------------------------------------------------------------------- the fast path agrees with parse_line

V4 = st.builds("{}.{}.{}.{}".format, *[st.integers(0, 255)] * 4)
V6 = st.sampled_from(["fd00::1", "fd00:0009:0000:0000:0000:0000:0000:0001", "2603:1000:4::1", "::ffff:10.0.0.1",
                      "fe80::1"])
PORT = st.integers(0, 65535)
TAIL = st.lists(st.sampled_from(["[ASSURED]", "[OFFLOAD]", "mark=0", "mark=7", "zone=0", "zone=3", "use=1",
                                 "use=2", "id=99", "secctx=system_u:object_r:unlabeled_t:s0", "delta-time=5"]),
                max_size=5)


@st.composite
def valid_lines(draw) -> str:
    proto = draw(st.sampled_from(["tcp", "udp", "sctp"]))
    v6 = draw(st.booleans())
    addr = V6 if v6 else V4
    a, b, c, d = draw(addr), draw(addr), draw(addr), draw(addr)
    head = f"{proto} {dict(tcp=6, udp=17, sctp=132)[proto]}"
    if draw(st.booleans()):
        head = ("ipv6     10 " if v6 else "ipv4     2 ") + head
    state = {"tcp": draw(st.sampled_from(["ESTABLISHED", "TIME_WAIT", "SYN_SENT", "CLOSE", "SYN_SENT2"])),
             "sctp": draw(st.sampled_from(["ESTABLISHED", "COOKIE_WAIT", "CLOSED"])), "udp": ""}[proto]
    unrep = "[UNREPLIED] " if draw(st.booleans()) else ""
    p = [draw(PORT) for _ in range(4)]
    tail = " ".join(draw(TAIL))
    return (f"{head} {draw(st.integers(0, 432000))} {state} src={a} dst={b} sport={p[0]} dport={p[1]} {unrep}"
            f"src={c} dst={d} sport={p[2]} dport={p[3]} {tail}")


@FUZZ
@given(valid_lines())
def test_the_fast_path_reads_a_line_as_parse_line_does(text):
    from masqctl.netfilter.conntrack import parse_line

    (entry,) = parse_table(text, "t").entries
    assert entry == parse_line(text, 1)


# --------------------------------------------------------------------------- search_table agrees with the plain reader

QUESTIONS = st.builds(Question, st.sampled_from(["10.0.0.1", "10.0.0.2", "10.40.0.4", "fd00::1", "fd00::2", "fd00:9::1"]),
                      st.one_of(st.none(), st.sampled_from([0, 1, 2, 443, 53, 65535, 39226])),
                      st.one_of(st.none(), st.sampled_from(["10.0.0.2", "10.0.0.1", "fd00::2"])))


def same_search(text, question: Question) -> None:
    """``search_table`` (one regular expression over the table, then only some lines read) gives
    what ``search_lines`` (every line through parse_line) gives: the same entries and counts,
    or the same error on the same line; on bytes as on text."""
    outcomes = []
    for reader, given in ((search_lines, text), (search_table, text), (search_table, text.encode())):
        try:
            with time_limit(20, "search_table"):
                outcomes.append(reader(given, "nodes/n/conntrack.txt", question))
        except InputError as err:
            assert err.code == "E318"
            outcomes.append((err.code, err.input, err.message))
    assert outcomes[0] == outcomes[1] == outcomes[2]


@FUZZ
@given(st.lists(st.one_of(valid_lines(), st.sampled_from(REAL)), min_size=1, max_size=6), st.integers(0, 4000),
       st.text(max_size=6), st.integers(0, 6), QUESTIONS)
def test_search_table_reads_what_parse_line_reads(lines, at, junk, cut, question):
    text = "\n".join(lines)
    same_search(text, question)
    at %= len(text) + 1
    same_search(text[:at] + junk + text[at + cut:], question)


@FUZZ
@given(st.text(max_size=300), QUESTIONS)
def test_search_table_on_any_text(text, question):
    same_search(text, question)


@FUZZ
@given(st.lists(st.lists(st.sampled_from(WORDS), max_size=24), max_size=4), QUESTIONS)
def test_search_table_on_conntracks_words(lines, question):
    same_search("\n".join(" ".join(words) for words in lines), question)
