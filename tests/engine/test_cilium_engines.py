"""Conformance of the azure-ip-masq-merger and Cilium ip-masq-agent engines.

Each case cites the upstream line it rests on:
* ACN = Azure/azure-container-networking at cbd7560, azure-ip-masq-merger/ip_masq_merger.go (GO) and
  ip_masq_merger_test.go (TEST);
* CIL = cilium/cilium pkg/ipmasq/ipmasq.go at 6b3e8fb (GO) and pkg/ipmasq/ipmasq_test.go (the
  netip/testify version with TestUpdateIPv4 at line 163; TEST).
"""

from __future__ import annotations

import pytest

from masqctl.engine import ConfigSource
from masqctl.engine.cilium import DEFAULT_NON_MASQ, LINK_LOCAL_V4, LINK_LOCAL_V6, load, parse_prefix
from masqctl.engine.merger import merge
from masqctl.errors import ConfigError


def src(name: str, text: str) -> ConfigSource:
    return ConfigSource(name, text.encode())


# --------------------------------------------------------------------------- merger

MERGER_CASES = [
    # (name, files, cidr set or None when the merged file is deleted, masqLinkLocal, masqLinkLocalIPv6)
    # ACN TEST:89-96 "no config files": no merged file
    ("no files", [], None, False, False),
    # ACN TEST:97-114 "one valid config"
    ("one valid", [("ip-masq-foo.yaml",
                    '{"nonMasqueradeCIDRs":["10.0.0.0/8"],"masqLinkLocal":true,"masqLinkLocalIPv6":false}')],
     {"10.0.0.0/8"}, True, False),
    # ACN TEST:115-136 "two valid configs merged": union, booleans OR'd
    ("two merged", [("ip-masq-a.yaml",
                     '{"nonMasqueradeCIDRs":["10.0.0.0/8"],"masqLinkLocal":false,"masqLinkLocalIPv6":true}'),
                    ("ip-masq-b.yaml",
                     '{"nonMasqueradeCIDRs":["192.168.0.0/16"],"masqLinkLocal":true,"masqLinkLocalIPv6":false}')],
     {"10.0.0.0/8", "192.168.0.0/16"}, True, True),
    # ACN TEST:137-162 "two valid configs merged yaml"
    ("two merged yaml", [("ip-masq-a.yaml", 'nonMasqueradeCIDRs: ["10.0.0.0/8"]\nmasqLinkLocal: false\n'
                                            'masqLinkLocalIPv6: true'),
                         ("ip-masq-b.yaml", 'nonMasqueradeCIDRs: ["192.168.0.0/16"]\nmasqLinkLocal: true\n'
                                            'masqLinkLocalIPv6: false')],
     {"10.0.0.0/8", "192.168.0.0/16"}, True, True),
    # ACN TEST:263-277 TestMergeCIDRs: duplicates once
    ("duplicates", [("ip-masq-a", "nonMasqueradeCIDRs: [10.0.0.0/8, 192.168.1.0/24]"),
                    ("ip-masq-b", "nonMasqueradeCIDRs: [192.168.1.0/24, 172.16.0.0/12]")],
     {"10.0.0.0/8", "192.168.1.0/24", "172.16.0.0/12"}, False, False),
    # ACN GO:160-161 only names starting with ip-masq are read
    ("other names unread", [("config.yaml", "nonMasqueradeCIDRs: [10.0.0.0/8]"),
                            ("ip-masq-agent", "nonMasqueradeCIDRs: [172.16.0.0/12]")], {"172.16.0.0/12"}, False, False),
    # ACN GO:172-189 an empty file decodes to null and still counts (configAdded): empty list written
    ("empty file counts", [("ip-masq-agent", "")], set(), False, False),
    # ACN GO:266-277 validateCIDR has no family check and GO:238-239 no count limit
    ("no limit, ipv6 ok", [("ip-masq-agent", "nonMasqueradeCIDRs:\n" + "".join(
        f"- 10.{i}.0.0/16\n" for i in range(70)) + "- 2001:db8::/32\n")],
     {f"10.{i}.0.0/16" for i in range(70)} | {"2001:db8::/32"}, False, False),
    # ACN TEST:279-283 TestValidateCIDR valid list (2001:db8::/32 included)
    ("valid cidrs", [("ip-masq-agent", "nonMasqueradeCIDRs: [10.0.0.0/8, 192.168.1.0/24, 2001:db8::/32]")],
     {"10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32"}, False, False),
]


@pytest.mark.parametrize("name,files,cidrs,ll,ll6", MERGER_CASES, ids=[c[0] for c in MERGER_CASES])
def test_merger_conformance(name, files, cidrs, ll, ll6):
    merged = merge([src(n, t) for n, t in files])
    if cidrs is None:
        assert not merged.written and merged.text() is None
        return
    assert merged.written
    assert set(merged.cidrs()) == cidrs
    assert len(merged.cidrs()) == len(cidrs)
    assert merged.masq_link_local.value is ll
    assert merged.masq_link_local_ipv6.value is ll6


MERGER_FATAL = [
    # ACN TEST:163-176 "invalid config file" ("not valid yaml" is a string, not an object)
    ("not an object", [("ip-masq-bad.yaml", "not valid yaml")], "E103"),
    # ACN TEST:177-194 "valid and invalid config files": one bad file, nothing written
    ("valid and invalid", [("ip-masq-good.yaml", '{"nonMasqueradeCIDRs":["10.0.0.0/8"]}'),
                           ("ip-masq-bad.yaml", "not valid yaml")], "E103"),
    # ACN TEST:195-208 "misaligned cidr invalid config file"; GO:273-275 alignment error
    ("misaligned", [("ip-masq-bad.yaml", '{"nonMasqueradeCIDRs":["10.0.0.4/8"]}')], "E331"),
    # ACN TEST:284-287 TestValidateCIDR invalid: 10.0.0.1/8, notacidr, 10.0.0.0/33
    ("host bits", [("ip-masq-agent", "nonMasqueradeCIDRs: [10.0.0.1/8]")], "E331"),
    ("not a cidr", [("ip-masq-agent", "nonMasqueradeCIDRs: [notacidr]")], "E330"),
    ("prefix too long", [("ip-masq-agent", "nonMasqueradeCIDRs: [10.0.0.0/33]")], "E330"),
    # ACN GO:178 encoding/json: a null item leaves "", which GO:268 net.ParseCIDR refuses
    ("null item", [("ip-masq-agent", "nonMasqueradeCIDRs: [null]")], "E330"),
]


@pytest.mark.parametrize("name,files,code", MERGER_FATAL, ids=[c[0] for c in MERGER_FATAL])
def test_merger_fatal(name, files, code):
    with pytest.raises(ConfigError) as exc:
        merge([src(n, t) for n, t in files])
    assert exc.value.code == code
    assert exc.value.file is not None


def test_merged_file_is_yaml_v2_lowercase_and_cilium_reads_it():
    # ACN GO:208 yaml.Marshal of MasqConfig (no yaml tags: lower-cased field names)
    merged = merge([src("ip-masq-agent", "nonMasqueradeCIDRs: [10.0.0.0/8]"),
                    src("ip-masq-agent-reconciled", "MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 192.168.0.0/16\n")])
    text = merged.text()
    assert text == ("nonmasqueradecidrs:\n- 10.0.0.0/8\n- 192.168.0.0/16\nmasqlinklocal: true\n"
                    "masqlinklocalipv6: false\n")
    assert merged.line_of("192.168.0.0/16") == 3
    # CIL GO:249 encoding/json matches keys case-insensitively
    loaded = load(text.encode())
    assert loaded.prefixes() == ["10.0.0.0/8", "192.168.0.0/16"]      # masqLinkLocal true: no 169.254/16
    assert merge([src("ip-masq-agent", "")]).text().startswith("nonmasqueradecidrs: []\n")


def test_merger_keeps_provenance():
    merged = merge([src("ip-masq-b", "nonMasqueradeCIDRs:\n- 10.0.0.0/8\n"),
                    src("ip-masq-a", "nonMasqueradeCIDRs:\n- 10.0.0.0/8\n")])
    (entry,) = merged.non_masquerade_cidrs
    assert [(o.file, o.line) for o in entry.origins] == [("ip-masq-a", 2), ("ip-masq-b", 2)]


# --------------------------------------------------------------------------- Cilium

LL4, LL6 = {LINK_LOCAL_V4}, {LINK_LOCAL_V6}
DEFAULTS = set(DEFAULT_NON_MASQ)

CILIUM_CASES = [
    # (name, file text or None for no file, ipv4, ipv6, expected map)
    # CIL TEST:169-181 masked: 2.2.2.2/16 -> 2.2.0.0/16, plus link-local
    ("masked", "nonMasqueradeCIDRs:\n- 1.1.1.1/32\n- 2.2.2.2/16", True, False, {"1.1.1.1/32", "2.2.0.0/16"} | LL4),
    # CIL TEST:184-194
    ("replaced", "nonMasqueradeCIDRs:\n- 8.8.0.0/16\n- 2.2.2.2/16", True, False, {"8.8.0.0/16", "2.2.0.0/16"} | LL4),
    # CIL TEST:196-203 no CIDRs: only link-local (no defaults)
    ("no cidrs", "nonMasqueradeCIDRs:\n", True, False, LL4),
    # CIL TEST:205-214 JSON with masqLinkLocal: true
    ("json masqLinkLocal", '{"nonMasqueradeCIDRs": ["8.8.0.0/16", "1.1.2.3/16"], "masqLinkLocal": true}', True, False,
     {"8.8.0.0/16", "1.1.0.0/16"}),
    # CIL TEST:216-227 file deleted: defaults + link-local; GO:227-232
    ("no file", None, True, False, DEFAULTS | LL4),
    # CIL GO:237-241 a zero-byte file is "empty": defaults
    ("zero bytes", "", True, False, DEFAULTS | LL4),
    # CIL GO:244-262 any other content replaces the defaults: a newline, a comment
    ("newline only", "\n", True, False, LL4),
    ("comment only", "# nothing\n", True, False, LL4),
    # CIL TEST:236-246 IPv6 only
    ("ipv6", "nonMasqueradeCIDRs:\n- 1:1:1:1::/64\n- 2:2::/32", False, True, {"1:1:1:1::/64", "2:2::/32"} | LL6),
    # CIL TEST:281-288 no file, IPv6 only: the v4 defaults have no map
    ("ipv6 no file", None, False, True, LL6),
    # CIL TEST:291-308 dual stack
    ("dual", "nonMasqueradeCIDRs:\n- 1.1.1.1/32\n- 2:2::/32", True, True, {"1.1.1.1/32", "2:2::/32"} | LL4 | LL6),
    # CIL TEST:336-347 masqLinkLocalIPv6 only
    ("dual ll6", '{"nonMasqueradeCIDRs": ["1.2.3.4/32", "1:2:3:4::/64"], "masqLinkLocalIPv6": true}', True, True,
     {"1.2.3.4/32", "1:2:3:4::/64"} | LL4),
    # CIL TEST:349-358 dual stack, no file: 11 defaults + both link-local
    ("dual no file", None, True, True, DEFAULTS | LL4 | LL6),
    # CIL TEST:398-406 masqLinkLocal: true removes 169.254.0.0/16
    ("restore ll", "nonMasqueradeCIDRs:\n- 3.3.0.0/16\nmasqLinkLocal: true", True, False, {"3.3.0.0/16"}),
    # CIL TEST:446-454
    ("restore ll6", "nonMasqueradeCIDRs:\n- 3:3::/96\nmasqLinkLocalIPv6: true", False, True, {"3:3::/96"}),
    # CIL GO:75-79 and GO:249 (encoding/json, case-insensitive): the merger's lower-case keys
    ("merger keys", "nonmasqueradecidrs:\n- 10.0.0.0/8\nmasqlinklocal: true\n", True, False, {"10.0.0.0/8"}),
    # CIL GO:253-258: nonMasqueradeCIDRs: null is no CIDRs, not the defaults
    ("null list", "nonMasqueradeCIDRs: null\n", True, False, LL4),
    # pkg/maps/ipmasq Update: an IPv6 entry without an IPv6 map is dropped
    ("v6 dropped", "nonMasqueradeCIDRs: [10.0.0.0/8, 2001:db8::/32]", True, False, {"10.0.0.0/8"} | LL4),
]


@pytest.mark.parametrize("name,text,v4,v6,want", CILIUM_CASES, ids=[c[0] for c in CILIUM_CASES])
def test_cilium_conformance(name, text, v4, v6, want):
    loaded = load(None if text is None else text.encode(), ipv4=v4, ipv6=v6)
    assert set(loaded.prefixes()) == want
    assert len(loaded.prefixes()) == len(want)


def test_cilium_dropped_v6_is_a_warning():
    loaded = load(b"nonMasqueradeCIDRs: [2001:db8::/32]")
    assert [e.prefix for e in loaded.dropped] == ["2001:db8::/32"]
    assert loaded.warnings[0].code == "W107"


PREFIXES = [
    # CIL TEST:516-542 TestParseCIDR
    ("invalid-prefix", None),
    ("3.3.0.0/16", "3.3.0.0/16"),
    ("1:2:3::/96", "1:2:3::/96"),
    ("64.255.255.255/8", "64.0.0.0/8"),       # "always set mask bits to zero (canonicalize)"
    # netip.ParsePrefix: leading zeros, zones, out of range
    ("010.0.0.0/8", None),
    ("10.0.0.0/08", None),
    ("10.0.0.0/33", None),
    ("fe80::1%eth0/64", None),
    ("10.0.0.0", None),
    ("::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104"),
    ("2001:DB8:0:0:1::/80", "2001:db8:0:0:1::/80"),
]


@pytest.mark.parametrize("text,want", PREFIXES)
def test_cilium_parse_prefix(text, want):
    if want is None:
        with pytest.raises(ValueError):
            parse_prefix(text)
        with pytest.raises(ConfigError) as exc:
            load(f"nonMasqueradeCIDRs: [{text!r}]".encode())
        assert exc.value.code == "E332" and exc.value.line == 1
    else:
        from masqctl.engine.cilium import go_prefix_string
        assert go_prefix_string(parse_prefix(text)) == want


@pytest.mark.parametrize("text,code", [
    # CIL GO:50-55 Ipnet.UnmarshalJSON: a value that is not a JSON string
    ("nonMasqueradeCIDRs: [5]", "E103"),
    ("nonMasqueradeCIDRs: [null]", "E332"),
    ("nonMasqueradeCIDRs: 10.0.0.0/8", "E103"),
    ("masqLinkLocal: maybe", "E103"),
])
def test_cilium_refuses_and_keeps_its_map(text, code):
    with pytest.raises(ConfigError) as exc:
        load(text.encode())
    assert exc.value.code == code
    assert "keeps the ip-masq-agent map" in exc.value.message


def test_listing_sorted_one_a_line():
    loaded = load(b"nonMasqueradeCIDRs: [192.168.0.0/16, 10.0.0.0/8, 10.0.0.0/16]", ipv6=True)
    assert loaded.listing() == "10.0.0.0/8\n10.0.0.0/16\n169.254.0.0/16\n192.168.0.0/16\nfe80::/10\n"
    assert loaded.lookup("10.0.1.1").prefix == "10.0.0.0/16"
    assert loaded.lookup("8.8.8.8") is None
