"""Property tests of the azure-ip-masq-merger and Cilium ip-masq-agent engines: any bytes as config
files give a merged config / a loaded map, or a coded ``ConfigError`` naming the file — never another
exception, never a hang. The merged file the merger writes is always one Cilium reads."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from timelimit import time_limit

from masqctl.engine import ConfigSource
from masqctl.engine.cilium import load, parse_prefix
from masqctl.engine.merger import merge
from masqctl.errors import ConfigError

EXAMPLES = int(os.environ.get("MASQCTL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

CIDRISH = st.one_of(st.from_regex(r"[0-9a-f:.]{0,20}/[0-9]{0,3}", fullmatch=True),
                    st.sampled_from(["10.0.0.0/8", "10.0.0.1/8", "2001:db8::/32", "fe80::/10", "0.0.0.0/0",
                                     "::ffff:10.0.0.0/104", "1.2.3.4/32", ""]))
ITEM = st.one_of(CIDRISH, st.integers(), st.none(), st.booleans())
DOC = st.builds(lambda key, items, ll: f"{key}: [{', '.join(repr(i) if isinstance(i, str) else str(i).lower() if i is not None else 'null' for i in items)}]\nmasqLinkLocal: {ll}\n",
                st.sampled_from(["nonMasqueradeCIDRs", "nonmasqueradecidrs", "NonMasqueradeCIDRs", "other"]),
                st.lists(ITEM, max_size=6), st.sampled_from(["true", "false", "yes", "1", "null"]))
DATA = st.one_of(DOC.map(str.encode), st.binary(max_size=200))


def _coded(exc: ConfigError) -> None:
    assert exc.code.startswith("E") and exc.file


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["ip-masq-agent", "ip-masq-agent-reconciled", "ip-masq-x", "other"]), DATA),
                max_size=3, unique_by=lambda t: t[0]))
def test_merge_then_cilium(files):
    with time_limit(20, "merge"):
        try:
            merged = merge([ConfigSource(n, d) for n, d in files])
        except ConfigError as exc:
            _coded(exc)
            return
        text = merged.text()
        if text is None:
            assert not any(n.startswith("ip-masq") for n, _ in files)
            return
        loaded = load(text.encode(), ipv4=True, ipv6=True)   # what the merger writes, Cilium reads
        assert set(merged.cidrs()) <= set(loaded.prefixes()) | {c for c in merged.cidrs() if "ffff" in c}


@FUZZ
@given(DATA, st.booleans(), st.booleans())
def test_cilium_any_bytes(data, v4, v6):
    with time_limit(20, "cilium load"):
        try:
            loaded = load(data, ipv4=v4, ipv6=v6)
        except ConfigError as exc:
            _coded(exc)
            return
        assert loaded.listing().count("\n") == len(loaded.entries)
        assert all((e.family == 4 and v4) or (e.family == 6 and v6) for e in loaded.entries)


@FUZZ
@given(st.text(max_size=40))
def test_parse_prefix_any_text(text):
    try:
        parse_prefix(text)
    except ValueError:
        pass


LINE = st.one_of(CIDRISH, st.sampled_from(["IP PREFIX/ADDRESS   ", "No entries found.", "", "   "]), st.text(max_size=30))


@FUZZ
@given(st.one_of(st.lists(LINE, max_size=8).map("\n".join), st.text(max_size=200)))
def test_ipmasq_list_any_text(text):
    from masqctl.engine.ciliumdbg import parse_ipmasq_list
    from masqctl.errors import InputError

    with time_limit(20, "ipmasq list"):
        try:
            prefixes = parse_ipmasq_list(text, "nodes/n/cilium-ipmasq.txt")
        except InputError as exc:
            assert exc.code == "E333" and "cilium-ipmasq.txt" in exc.input
            return
        assert len(set(prefixes)) == len(prefixes)
        for p in prefixes:     # each is in the form cilium-dbg prints, and reads back as itself
            assert parse_ipmasq_list(p + "\n") == (p,)


@FUZZ
@given(st.text(max_size=300))
def test_status_any_text(text):
    from masqctl.engine.ciliumdbg import parse_status

    with time_limit(20, "cilium status"):
        m = parse_status(text)
        assert m is None or m.line >= 1
