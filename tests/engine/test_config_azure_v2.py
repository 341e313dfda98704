"""azure-v2 (AKS ip-masq-agent-v2) config reading, validation and merge, case by case.

The first block reproduces, in our own words, the cases of the agent's public unit tests
(config sync: single/multiple files, YAML/JSON, partial keys, duplicates, wrong prefix,
invalid YAML/JSON, empty and null entries). The agent compares CIDR lists order-insensitively,
so do we; our own order is checked separately.
"""

from __future__ import annotations

import pytest

from masqctl.engine import AgentOptions, ConfigSource, effective_config, load_config_dir
from masqctl.errors import ConfigError

V6 = AgentOptions(enable_ipv6=True)
V4 = AgentOptions()

# (description, {file name: content}, options, expected (cidrs, masqLinkLocal, masqLinkLocalIPv6)
#  or ("error", code, file, line))
CASES = [
    ("single yaml file, all keys",
     {"ip-masq-config-0": "\nnonMasqueradeCIDRs:\n  - 172.16.0.0/12\n  - 10.0.0.0/8\nmasqLinkLocal: true\n"
                          "masqLinkLocalIPv6: true\n"},
     V6, (["172.16.0.0/12", "10.0.0.0/8"], True, True)),
    ("single yaml file, only nonMasqueradeCIDRs",
     {"ip-masq-config-0": "nonMasqueradeCIDRs:\n  - 192.168.0.0/16\n"},
     V6, (["192.168.0.0/16"], False, False)),
    ("single yaml file, only masqLinkLocal: no defaults, empty list",
     {"ip-masq-config-0": "masqLinkLocal: true\n"},
     V6, ([], True, False)),
    ("single json file, partial keys",
     {"ip-masq-config-0": '\n\t\t{\n\t\t  "nonMasqueradeCIDRs": ["172.16.0.0/12", "10.0.0.0/8"],\n'
                          '\t\t  "masqLinkLocal": true\n\t\t}\n'},
     V6, (["172.16.0.0/12", "10.0.0.0/8"], True, False)),
    ("single json file, only nonMasqueradeCIDRs",
     {"ip-masq-config-0": '{"nonMasqueradeCIDRs": ["192.168.0.0/16"]}'},
     V6, (["192.168.0.0/16"], False, False)),
    ("single json file, only masqLinkLocal",
     {"ip-masq-config-0": '{"masqLinkLocal": true}'},
     V6, ([], True, False)),
    ("single json file, all keys with an IPv6 CIDR",
     {"ip-masq-config-0": '{"nonMasqueradeCIDRs": ["172.16.0.0/12", "10.0.0.0/8", "fc00::/7"],'
                          ' "masqLinkLocal": true, "masqLinkLocalIPv6": true}'},
     V6, (["172.16.0.0/12", "10.0.0.0/8", "fc00::/7"], True, True)),
    ("two json files, booleans OR'd, lists unioned",
     {"ip-masq-config-0": '{"nonMasqueradeCIDRs": ["172.16.0.0/12", "10.0.0.0/8", "fc00::/7"],'
                          ' "masqLinkLocal": false, "masqLinkLocalIPv6": false}',
      "ip-masqconfig-1": '{"nonMasqueradeCIDRs": ["1.0.0.0/8", "2.2.0.0/16"], "masqLinkLocal": true,'
                         ' "masqLinkLocalIPv6": false}'},
     V6, (["172.16.0.0/12", "10.0.0.0/8", "fc00::/7", "1.0.0.0/8", "2.2.0.0/16"], True, False)),
    ("a file without the ip-masq prefix is never read",
     {"ip-masq-config-0": '{"nonMasqueradeCIDRs": ["111.254.0.0/15", "8.0.0.0/8"]}',
      "bad-prefix-config-1": '{"nonMasqueradeCIDRs": ["4.4.0.0/8"], "masqLinkLocal": true,'
                             ' "masqLinkLocalIPv6": true}'},
     V6, (["111.254.0.0/15", "8.0.0.0/8"], False, False)),
    ("three yaml files, partial keys, a duplicate CIDR kept once",
     {"ip-masq-config-0": "nonMasqueradeCIDRs:\n  - 155.128.0.0/9\n  - 10.0.0.0/8\nmasqLinkLocal: false\n",
      "ip-masqconfig-1": "masqLinkLocalIPv6: true\n",
      "ip-masqconfig-2": "nonMasqueradeCIDRs:\n  - 10.240.0.0/16\n  - 10.0.0.0/8\n  - 180.132.128.0/18\n"},
     V6, (["155.128.0.0/9", "10.0.0.0/8", "10.240.0.0/16", "180.132.128.0/18"], False, True)),
    ("no ip-masq file at all: the RFC 1918 defaults",
     {"bad-prefix-config-0": '{"nonMasqueradeCIDRs": ["225.255.240.0/20"]}'},
     V6, (["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"], False, False)),
    ("no ip-masq file, reserved ranges flag",
     {}, AgentOptions(nomasq_all_reserved_ranges=True),
     (["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24",
       "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4"], False, False)),
    ("reserved-ranges flag is ignored once a file exists",
     {"ip-masq-agent": "masqLinkLocal: false\n"}, AgentOptions(nomasq_all_reserved_ranges=True),
     ([], False, False)),
    ("invalid json", {"ip-masq-config-0": "{*"}, V6, ("error", "E102", "ip-masq-config-0", 1)),
    ("invalid yaml", {"ip-masq-config-0": "*"}, V6, ("error", "E102", "ip-masq-config-0", 1)),
    ("empty list entry in yaml is an empty CIDR",
     {"ip-masq-config-0": "\nnonMasqueradeCIDRs:\n  - \n"}, V6, ("error", "E104", "ip-masq-config-0", 3)),
    ("valid, empty and IPv6 entries mixed: the empty one fails",
     {"ip-masq-config-0": "nonMasqueradeCIDRs:\n  - 192.168.0.0/24\n  - \n  - fd88:1234::/80\n"
                          "masqLinkLocal: true\nmasqLinkLocalIPv6: true\n"},
     V6, ("error", "E104", "ip-masq-config-0", 3)),
    ("quoted empty string", {"ip-masq-config-0": 'nonMasqueradeCIDRs:\n  - ""\n'}, V6,
     ("error", "E104", "ip-masq-config-0", 2)),
    ("two yaml files, the first has an empty entry",
     {"ip-masq-config-0": "nonMasqueradeCIDRs:\n  -\n",
      "ip-masq-config-1": "nonMasqueradeCIDRs:\n  - 192.168.0.0/24\nmasqLinkLocal: true\n"},
     V6, ("error", "E104", "ip-masq-config-0", 2)),
    ("json null list item",
     {"ip-masq-config-0": '{"nonMasqueradeCIDRs": ["111.254.0.0/15", "8.0.0.0/8"]}',
      "ip-masq-config-1": '{\n "nonMasqueradeCIDRs": [null, "172.168.0.0/16"],\n "masqLinkLocal": true\n}'},
     V6, ("error", "E104", "ip-masq-config-1", 2)),
    # --- beyond the upstream unit tests: documented Go behaviour
    ("keys match case-insensitively (PascalCase reconciled ConfigMaps)",
     {"ip-masq-agent-reconciled": "MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 10.40.0.0/17\n"},
     V4, (["10.40.0.0/17"], True, False)),
    ("YAML 1.1 booleans as go-yaml reads them: yes, on, y",
     {"ip-masq-a": "masqLinkLocal: y\n", "ip-masq-b": "masqLinkLocalIPv6: on\n"},
     V4, ([], True, True)),
    ("a misaligned CIDR names its line",
     {"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 10.0.0.1/8\n"},
     V4, ("error", "E105", "ip-masq-agent", 3)),
    ("an unparseable CIDR", {"ip-masq-agent": "nonMasqueradeCIDRs: [10.256.0.0/16]\n"}, V4,
     ("error", "E104", "ip-masq-agent", 1)),
    ("an IPv6 CIDR without --enable-ipv6",
     {"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - fc00::/7\n"}, V4,
     ("error", "E107", "ip-masq-agent", 3)),
    ("a number where a CIDR belongs", {"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10\n"}, V4,
     ("error", "E103", "ip-masq-agent", 2)),
    ("a list where a bool belongs", {"ip-masq-agent": "masqLinkLocal:\n  - true\n"}, V4,
     ("error", "E103", "ip-masq-agent", 2)),
    ("a string where a bool belongs", {"ip-masq-agent": 'masqLinkLocal: "yes please"\n'}, V4,
     ("error", "E103", "ip-masq-agent", 1)),
    ("a string where the list belongs", {"ip-masq-agent": "nonMasqueradeCIDRs: 10.0.0.0/8\n"}, V4,
     ("error", "E103", "ip-masq-agent", 1)),
    ("a top-level list is not a config", {"ip-masq-agent": "- 10.0.0.0/8\n"}, V4,
     ("error", "E103", "ip-masq-agent", 1)),
    ("an empty file is a valid empty config", {"ip-masq-agent": ""}, V4, ([], False, False)),
    ("a file of comments only is a valid empty config", {"ip-masq-agent": "# nothing\n"}, V4,
     ([], False, False)),
    ("null bool leaves false", {"ip-masq-agent": "masqLinkLocal: null\nnonMasqueradeCIDRs: ~\n"}, V4,
     ([], False, False)),
    ("0.0.0.0/0 is a valid exception (masquerade nothing)",
     {"ip-masq-agent": "nonMasqueradeCIDRs: [0.0.0.0/0]\n"}, V4, (["0.0.0.0/0"], False, False)),
    ("::/0 with IPv6 enabled", {"ip-masq-agent": "nonMasqueradeCIDRs: ['::/0']\n"}, V6,
     (["::/0"], False, False)),
    ("::/0 without IPv6", {"ip-masq-agent": "nonMasqueradeCIDRs: ['::/0']\n"}, V4,
     ("error", "E107", "ip-masq-agent", 1)),
    ("65 CIDRs in one file are too many",
     {"ip-masq-agent": "nonMasqueradeCIDRs:\n" + "".join(f"  - 10.{i}.0.0/16\n" for i in range(65))},
     V4, ("error", "E106", "ip-masq-agent", 1)),
    ("the limit is per file: 2 x 64 merge to 128",
     {"ip-masq-a": "nonMasqueradeCIDRs:\n" + "".join(f"  - 10.{i}.0.0/16\n" for i in range(64)),
      "ip-masq-b": "nonMasqueradeCIDRs:\n" + "".join(f"  - 11.{i}.0.0/16\n" for i in range(64))},
     V4, ([f"10.{i}.0.0/16" for i in range(64)] + [f"11.{i}.0.0/16" for i in range(64)], False, False)),
    ("exact-string de-duplication keeps spellings apart",
     {"ip-masq-a": "nonMasqueradeCIDRs: [10.0.0.0/8]\n", "ip-masq-b": "nonMasqueradeCIDRs: [10.0.0.0/08]\n"},
     V4, (["10.0.0.0/8", "10.0.0.0/08"], False, False)),
    ("leading zeros in an octet are refused", {"ip-masq-a": "nonMasqueradeCIDRs: [10.01.0.0/16]\n"},
     V4, ("error", "E104", "ip-masq-a", 1)),
    ("a dotted mask is refused", {"ip-masq-a": "nonMasqueradeCIDRs: [10.0.0.0/255.0.0.0]\n"},
     V4, ("error", "E104", "ip-masq-a", 1)),
    ("an IPv4-mapped IPv6 CIDR would be written to the IPv4 table and fail there",
     {"ip-masq-a": "nonMasqueradeCIDRs: ['::ffff:10.0.0.0/104']\n"}, V6, ("error", "E109", "ip-masq-a", 1)),
    ("JSON NaN is not JSON", {"ip-masq-a": '{"masqLinkLocal": NaN}'}, V4, ("error", "E102", "ip-masq-a", None)),
    ("JSON with trailing garbage", {"ip-masq-a": '{"masqLinkLocal": true} x'}, V4,
     ("error", "E102", "ip-masq-a", 1)),
]


def _sources(files: dict[str, str]) -> list[ConfigSource]:
    return [ConfigSource(name, content.encode()) for name, content in sorted(files.items())]


@pytest.mark.parametrize("desc,files,options,expected", CASES, ids=[c[0] for c in CASES])
def test_config_case(desc, files, options, expected, tmp_path):
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    if expected[0] == "error":
        _, code, file, line = expected
        with pytest.raises(ConfigError) as info:
            load_config_dir(str(tmp_path), options)
        assert (info.value.code, info.value.file) == (code, file)
        if line is not None:
            assert info.value.line == line
        assert file in info.value.one_line()
        return
    cidrs, ll, ll6 = expected
    config = load_config_dir(str(tmp_path), options)
    assert sorted(config.cidrs()) == sorted(cidrs)
    assert len(config.cidrs()) == len(cidrs)
    assert (config.masq_link_local.value, config.masq_link_local_ipv6.value) == (ll, ll6)
    assert config.defaults_used == (not any(n.startswith("ip-masq") for n in files))


def test_missing_folder_is_an_error_for_azure_v2(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config_dir(str(tmp_path / "nope"), V4)
    assert info.value.code == "E101"


def test_folder_as_config_file_is_an_error(tmp_path):
    (tmp_path / "ip-masq-dir").mkdir()
    with pytest.raises(ConfigError) as info:
        load_config_dir(str(tmp_path), V4)
    assert (info.value.code, info.value.file) == ("E101", "ip-masq-dir")


def test_merge_order_and_provenance_are_deterministic():
    sources = _sources({
        "ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 10.40.0.0/17\n",
        "ip-masq-agent-reconciled": "MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 10.40.0.0/17\n- 10.0.0.0/16\n",
    })
    config = effective_config(sources, V4)
    assert config.cidrs() == ["10.0.0.0/8", "10.40.0.0/17", "10.0.0.0/16"]
    dup = config.non_masquerade_cidrs[1]
    assert [(o.file, o.line, o.key) for o in dup.origins] == [
        ("ip-masq-agent", 3, "nonMasqueradeCIDRs"), ("ip-masq-agent-reconciled", 3, "NonMasqueradeCIDRs")]
    assert [(o.file, o.line) for o in config.masq_link_local.origins] == [("ip-masq-agent-reconciled", 1)]
    assert config.masq_link_local_ipv6.origins[0].kind == "default"


def test_unknown_and_foreign_keys_are_ignored_but_reported():
    config = effective_config(_sources({"ip-masq-agent": (
        "nonMasqueradeCIDR:\n  - 10.0.0.0/8\nresyncInterval: 30s\nmasqLinkLocal: true\n")}), V4)
    assert config.cidrs() == []  # the typo'd key sets nothing
    codes = {(w.code, w.key, w.line) for w in config.warnings}
    assert codes == {("W101", "nonMasqueradeCIDR", 1), ("W103", "resyncInterval", 3)}


def test_duplicate_keys_last_wins_json_in_document_order():
    config = effective_config(_sources({"ip-masq-a": '{"masqLinkLocal": true, "masqLinkLocal": false}'}), V4)
    assert config.masq_link_local.value is False
    assert [w.code for w in config.warnings] == ["W102"]


def test_case_variant_keys_in_yaml_apply_in_sorted_key_order():
    # go-yaml builds a map, sigs.k8s.io/yaml re-encodes it with sorted keys, and encoding/json
    # lets the last matching key win: "masqLinkLocal" sorts after "MasqLinkLocal".
    config = effective_config(_sources({"ip-masq-a": "masqLinkLocal: true\nMasqLinkLocal: false\n"}), V4)
    assert config.masq_link_local.value is True
    config = effective_config(_sources({"ip-masq-a": "masqLinkLocal: false\nMasqLinkLocal: true\n"}), V4)
    assert config.masq_link_local.value is False


def test_yaml_merge_keys_and_anchors_are_followed():
    config = effective_config(_sources({"ip-masq-a": (
        "base: &b\n  masqLinkLocal: true\n<<: *b\nnonMasqueradeCIDRs: &l [10.0.0.0/8]\nx: *l\n")}), V4)
    assert config.masq_link_local.value is True
    assert config.cidrs() == ["10.0.0.0/8"]


def test_effective_config_and_rules_serialise_with_provenance():
    import json

    from masqctl.engine import render

    config = effective_config(_sources({"ip-masq-agent": "nonMasqueradeCIDRs: [10.0.0.0/8]\nbogus: 1\n"}), V4)
    doc = json.loads(json.dumps(config.to_dict()))
    assert doc["nonMasqueradeCIDRs"] == [{"cidr": "10.0.0.0/8", "family": 4, "origins": [
        {"kind": "file", "file": "ip-masq-agent", "line": 1, "key": "nonMasqueradeCIDRs"}]}]
    assert doc["warnings"][0]["code"] == "W101" and doc["files"][0]["format"] == "yaml"
    rules = json.loads(json.dumps(render(config, V4).ipv4.to_dict()))
    assert rules["rules"][1]["cidr"]["origins"][0]["line"] == 1
    assert rules["payload"].startswith("*nat\n:IP-MASQ-AGENT - [0:0]\n")
