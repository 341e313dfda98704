"""Property tests of the nftables reader and evaluator: any text, any JSON document gives a
ruleset (and an evaluation) or a coded E341-E344 naming the file — never another exception."""

from __future__ import annotations

import ipaddress
import json
import os
import pathlib
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent))
from timelimit import time_limit  # noqa: E402

from masqctl.analysis.explain_nft import read_ruleset  # noqa: E402
from masqctl.errors import InputError  # noqa: E402
from masqctl.netfilter.nfteval import NftEvaluator  # noqa: E402
from masqctl.netfilter.walk import Packet  # noqa: E402

EXAMPLES = int(os.environ.get("MASQCTL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FIX = pathlib.Path(__file__).parent.parent / "fixtures" / "nft"
TEXT = (FIX / "kube-proxy-overall.txt").read_text()
DOC = json.loads((FIX / "kube-proxy-overall.json").read_text())
WORDS = ["table", "ip", "inet", "chain", "set", "map", "{", "}", ";", "\n", "type", "nat", "hook", "postrouting",
         "prerouting", "priority", "srcnat", "dstnat", "-", "10", "policy", "accept", "drop", "ip", "saddr", "daddr",
         "10.0.0.0/8", "@s", "masquerade", "snat", "dnat", "to", "1.2.3.4:80", "vmap", ":", "goto", "jump", "c",
         ".", "th", "dport", "meta", "mark", "&", "0x4000", "==", "!=", "0", "ct", "state", "new", "fib", "local",
         "numgen", "random", "mod", "2", "elements", "=", ",", '"x"', "flags", "interval", "return", "ipv4_addr"]


def check(text: str) -> None:
    try:
        rs = read_ruleset(text, "nodes/n/nft-ruleset.json")
    except InputError as err:
        assert err.code in ("E341", "E342", "E343", "E344") and err.input == "nodes/n/nft-ruleset.json"
        return
    ev = NftEvaluator(rs)
    for dst, port in (("203.0.113.9", 443), ("172.30.0.41", None)):
        ev.evaluate(Packet(ipaddress.ip_address("10.0.0.2"), ipaddress.ip_address(dst), "tcp", port, None))


@FUZZ
@given(st.integers(0, len(TEXT)), st.text(max_size=8))
def test_damaged_text(at, junk):
    with time_limit(20, "nft text"):
        check(TEXT[:at] + junk + TEXT[at + len(junk):])


@FUZZ
@given(st.lists(st.sampled_from(WORDS), max_size=60))
def test_words(words):
    with time_limit(20, "nft words"):
        check(" ".join(words))


json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 70000) | st.sampled_from(
    ["ip", "nat", "postrouting", "@x", "10.0.0.1", "tcp", "accept", "masquerade", ""]),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from(
        ["family", "table", "name", "chain", "hook", "prio", "type", "expr", "match", "left", "right", "op",
         "payload", "vmap", "key", "data", "set", "elem", "concat", "prefix", "jump", "target", "policy"]),
        kids, max_size=4), max_leaves=20)


@FUZZ
@given(st.integers(0, len(DOC["nftables"]) - 1), st.lists(st.text(max_size=3), max_size=3), json_values)
def test_damaged_json(index, path, value):
    doc = json.loads(json.dumps(DOC))
    node = doc["nftables"][index]
    for key in path:
        if isinstance(node, dict) and node:
            k = sorted(node)[len(key) % len(node)]
            if isinstance(node[k], (dict, list)) and node[k]:
                node = node[k] if isinstance(node[k], dict) else node[k][0]
    if isinstance(node, dict) and node:
        node[sorted(node)[0]] = value
    with time_limit(20, "nft json"):
        check(json.dumps(doc))


@FUZZ
@given(st.one_of(st.integers(0, len(TEXT)).map(lambda at: TEXT[:at]), st.lists(st.sampled_from(WORDS), max_size=60)
                 .map(" ".join), st.lists(json_values, max_size=4).map(lambda v: json.dumps({"nftables": v})),
                 st.integers(0, len(DOC["nftables"])).map(lambda n: json.dumps({"nftables": DOC["nftables"][:n]}))),
       st.booleans())
def test_node_ruleset_facts(text, as_json):
    """What inspect and mode detection read from a node's ruleset (owners, nat chains, which masquerade): any
    capture text gives facts, or facts naming why it cannot be read (E341-E344), never an exception."""
    from masqctl.analysis.nftfacts import masquerading_owners, nft_facts
    from masqctl.cluster.model import NodeCapture

    cap = NodeCapture("n", nft_ruleset=text if as_json else None, nft_ruleset_text=None if as_json else text)
    with time_limit(20, "nft facts"):
        facts = nft_facts(cap)
        if not text:            # an empty file is a ruleset that cannot be read (`nft -j list ruleset` never
            # prints nothing; live gathering records empty output as a failure), not a node without one
            assert facts is not None and facts.code == "E344" and masquerading_owners(cap) == frozenset()
            return
        assert facts.unreadable is None or facts.code in ("E341", "E342", "E343", "E344")
        owners = masquerading_owners(cap)
        assert (facts.unreadable is None) or owners == frozenset()
        assert bool(facts.masquerading) == bool(owners)
