"""upstream (kubernetes-sigs/ip-masq-agent) and TKE: one file decoded over the defaults.

Reproduces, in our own words, the cases of the upstream agent's unit tests (all keys, partial
keys keeping defaults, resyncInterval forms, invalid YAML/JSON, no file, IPv6), plus cidrLimit
and TKE's source exemptions.
"""

from __future__ import annotations

import json

import pytest

from masqctl.engine import TKE, UPSTREAM, AgentOptions, agent_config_json, load_config_dir
from masqctl.errors import ConfigError

UP = AgentOptions(flavor=UPSTREAM, enable_ipv6=True)
RFC1918 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]

# (description, file content or None for no file, expected (cidrs, masqLinkLocal, cidrLimit, resync s)
#  or ("error", code, line))
CASES = [
    ("yaml, all keys", "\nnonMasqueradeCIDRs:\n  - 172.16.0.0/12\n  - 10.0.0.0/8\ncidrLimit: 64\n"
                       "masqLinkLocal: true\nresyncInterval: 5s\n",
     (["172.16.0.0/12", "10.0.0.0/8"], True, 64, 5.0)),
    ("yaml, only nonMasqueradeCIDRs", "nonMasqueradeCIDRs:\n  - 192.168.0.0/16\n",
     (["192.168.0.0/16"], False, 64, 60.0)),
    ("yaml, only masqLinkLocal keeps the RFC 1918 defaults", "masqLinkLocal: true\n",
     (RFC1918, True, 64, 60.0)),
    ("yaml, only resyncInterval", "resyncInterval: 5m\n", (RFC1918, False, 64, 300.0)),
    ("invalid yaml", "*", ("error", "E102", 1)),
    ("json, all keys", '{"nonMasqueradeCIDRs": ["172.16.0.0/12", "10.0.0.0/8"], "masqLinkLocal": true,'
                       ' "resyncInterval": "5s"}', (["172.16.0.0/12", "10.0.0.0/8"], True, 64, 5.0)),
    ("json, only nonMasqueradeCIDRs", '{"nonMasqueradeCIDRs": ["192.168.0.0/16"]}',
     (["192.168.0.0/16"], False, 64, 60.0)),
    ("json, only masqLinkLocal", '{"masqLinkLocal": true}', (RFC1918, True, 64, 60.0)),
    ("json, resyncInterval written with unicode escapes", '{"resyncInterval": "\\u0035\\u006d"}',
     (RFC1918, False, 64, 300.0)),
    ("json, only resyncInterval", '{"resyncInterval": "5m"}', (RFC1918, False, 64, 300.0)),
    ("invalid json", "{*", ("error", "E102", 1)),
    ("no config file: defaults", None, (RFC1918, False, 64, 60.0)),
    ("json, all keys with an IPv6 CIDR", '{"nonMasqueradeCIDRs": ["172.16.0.0/12", "10.0.0.0/8", "fc00::/7"],'
                                         ' "masqLinkLocal": true, "resyncInterval": "5s"}',
     (["172.16.0.0/12", "10.0.0.0/8", "fc00::/7"], True, 64, 5.0)),
    ("cidrLimit is honoured", "cidrLimit: 2\nnonMasqueradeCIDRs: [10.0.0.0/8, 11.0.0.0/8, 12.0.0.0/8]\n",
     ("error", "E106", 2)),
    ("cidrLimit raised allows more", "cidrLimit: 100\nnonMasqueradeCIDRs:\n"
     + "".join(f"  - 10.{i}.0.0/16\n" for i in range(80)),
     ([f"10.{i}.0.0/16" for i in range(80)], False, 100, 60.0)),
    ("null list sets it to nil: nothing is exempt", "nonMasqueradeCIDRs:\nmasqLinkLocal: true\n",
     ([], True, 64, 60.0)),
    ("null resyncInterval is not a duration", "resyncInterval:\n", ("error", "E108", 1)),
    ("a number is not a duration", "resyncInterval: 60\n", ("error", "E103", 1)),
    ("an unknown unit", "resyncInterval: 5d\n", ("error", "E108", 1)),
    ("cidrLimit must be an integer", '{"cidrLimit": 64.0}', ("error", "E103", 1)),
]


@pytest.mark.parametrize("desc,content,expected", CASES, ids=[c[0] for c in CASES])
def test_upstream_case(desc, content, expected, tmp_path):
    if content is not None:
        (tmp_path / "ip-masq-agent").write_text(content)
    if expected[0] == "error":
        with pytest.raises(ConfigError) as info:
            load_config_dir(str(tmp_path), UP)
        assert (info.value.code, info.value.file, info.value.line) == (expected[1], "ip-masq-agent", expected[2])
        return
    cidrs, ll, limit, resync = expected
    config = load_config_dir(str(tmp_path), UP)
    assert config.cidrs() == cidrs
    assert config.masq_link_local.value is ll
    assert config.cidr_limit.value == limit
    assert config.resync_interval.value == resync


def test_upstream_reads_only_its_own_file_name(tmp_path):
    (tmp_path / "ip-masq-agent-reconciled").write_text("nonMasqueradeCIDRs: [10.244.0.0/16]\n")
    config = load_config_dir(str(tmp_path), UP)
    assert config.cidrs() == RFC1918 and config.defaults_used


def test_upstream_logged_config_json(tmp_path):
    (tmp_path / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\nresyncInterval: 90s\n")
    line = agent_config_json(load_config_dir(str(tmp_path), UP))
    assert line == ('{"nonMasqueradeCIDRs":null,"cidrLimit":64,"masqLinkLocal":false,'
                    '"masqLinkLocalIPv6":false,"resyncInterval":"1m30s"}')


def test_tke_pascal_case_document_with_source_exemptions(tmp_path):
    (tmp_path / "ip-masq-agent").write_text(
        "NonMasqueradeCIDRs:\n- 192.168.0.0/16\nNonMasqueradeSrcCIDRs:\n- 10.0.0.0/12\n"
        "MasqLinkLocal: true\nMasqLinkLocalIPv6: false\nResyncInterval: 1m0s\n")
    config = load_config_dir(str(tmp_path), AgentOptions(flavor=TKE))
    assert config.cidrs() == ["192.168.0.0/16"]
    assert [c.cidr for c in config.non_masquerade_src_cidrs] == ["10.0.0.0/12"]
    assert config.non_masquerade_src_cidrs[0].origins[0].line == 4
    assert config.masq_link_local.value is True and config.resync_interval.value == 60.0
    assert json.loads(agent_config_json(config))["nonMasqueradeSrcCIDRs"] == ["10.0.0.0/12"]


def test_tke_source_cidrs_are_validated(tmp_path):
    (tmp_path / "ip-masq-agent").write_text("NonMasqueradeSrcCIDRs:\n- 10.0.0.1/12\n")
    with pytest.raises(ConfigError) as info:
        load_config_dir(str(tmp_path), AgentOptions(flavor=TKE))
    assert (info.value.code, info.value.line) == ("E105", 2)


def test_source_cidrs_are_only_a_tke_key(tmp_path):
    (tmp_path / "ip-masq-agent").write_text("nonMasqueradeSrcCIDRs: [10.0.0.0/12]\n")
    config = load_config_dir(str(tmp_path), UP)
    assert [w.code for w in config.warnings] == ["W103"]
