"""The rules the engine renders: exact text per agent, seed captures, and real iptables."""

from __future__ import annotations

import os

import pytest

from masqctl.engine import (AZURE_V2, TKE, UPSTREAM, AgentOptions, ConfigSource, agent_config_json,
                            effective_config, load_config_dir, parse_to_ports, render)
from masqctl.engine.model import CidrEntry, EffectiveConfig, Origin, Setting
from masqctl.errors import UsageError
from masqctl.netfilter.canonical import is_masq_jump, rule_key
from masqctl.netfilter.tokens import split_args
from netns import NetNS, requires_netns

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
NM = '-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE"'
MQ = ('-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE '
      '(must be last in chain)" -j MASQUERADE')


def config(cidrs=(), ll=False, ll6=False, flavor=AZURE_V2, src=()) -> EffectiveConfig:
    o = (Origin("default", note="test"),)
    fam = lambda c: 6 if ":" in c else 4  # noqa: E731
    return EffectiveConfig(flavor, tuple(CidrEntry(c, fam(c), o) for c in cidrs), Setting(ll, o), Setting(ll6, o),
                           non_masquerade_src_cidrs=tuple(CidrEntry(c, fam(c), o) for c in src))


def payload(*lines: str) -> str:
    return "\n".join(["*nat", ":IP-MASQ-AGENT - [0:0]", *lines, "COMMIT"]) + "\n"


RESERVED = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24",
            "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4"]

# (description, config, options, expected IPv4 payload, expected IPv6 payload or None)
V2_CASES = [
    ("empty config", config(), AgentOptions(enable_ipv6=True),
     payload(f"{NM} -d 169.254.0.0/16 -j RETURN", MQ), payload(f"{NM} -d fe80::/10 -j RETURN", MQ)),
    ("default config", config(RESERVED[:3]), AgentOptions(),
     payload(f"{NM} -d 169.254.0.0/16 -j RETURN", *(f"{NM} -d {c} -j RETURN" for c in RESERVED[:3]), MQ), None),
    ("default config with reserved ranges", config(RESERVED), AgentOptions(),
     payload(f"{NM} -d 169.254.0.0/16 -j RETURN", *(f"{NM} -d {c} -j RETURN" for c in RESERVED), MQ), None),
    ("IPv4 and IPv6 CIDRs go to their own table", config(["10.244.0.0/16", "fc00::/7"]),
     AgentOptions(enable_ipv6=True),
     payload(f"{NM} -d 169.254.0.0/16 -j RETURN", f"{NM} -d 10.244.0.0/16 -j RETURN", MQ),
     payload(f"{NM} -d fe80::/10 -j RETURN", f"{NM} -d fc00::/7 -j RETURN", MQ)),
    ("masqLinkLocalIPv6 drops the fe80::/10 RETURN", config(ll6=True), AgentOptions(enable_ipv6=True),
     payload(f"{NM} -d 169.254.0.0/16 -j RETURN", MQ), payload(MQ)),
    ("masqLinkLocal drops the 169.254.0.0/16 RETURN", config(["10.0.0.0/8"], ll=True), AgentOptions(),
     payload(f"{NM} -d 10.0.0.0/8 -j RETURN", MQ), None),
    ("another chain name", config(), AgentOptions(masq_chain="MY-MASQ"),
     payload(f"{NM} -d 169.254.0.0/16 -j RETURN", MQ).replace("IP-MASQ-AGENT", "MY-MASQ"), None),
]


@pytest.mark.parametrize("desc,cfg,options,want4,want6", V2_CASES, ids=[c[0] for c in V2_CASES])
def test_azure_v2_payloads(desc, cfg, options, want4, want6):
    rules = render(cfg, options)
    assert rules.ipv4.payload() == want4
    assert (rules.ipv6.payload() if rules.ipv6 else None) == want6


def test_azure_v2_jump_carries_literal_quotes_and_upstream_does_not():
    v2 = render(config(), AgentOptions()).ipv4.jump
    assert v2.text == ('-A POSTROUTING -m comment --comment "\\"ip-masq-agent: ensure nat POSTROUTING directs all '
                       'non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain\\"" -m addrtype ! '
                       '--dst-type LOCAL -j IP-MASQ-AGENT')
    assert v2.args[3].startswith('"ip-masq-agent') and v2.args[3].endswith('chain"')
    up = render(config(flavor=UPSTREAM), AgentOptions(flavor=UPSTREAM)).ipv4.jump
    assert '--comment "ip-masq-agent: ensure' in up.text
    assert is_masq_jump(v2.args, "IP-MASQ-AGENT") and is_masq_jump(up.args, "IP-MASQ-AGENT")


RF = " --random-fully"
# upstream's writeMasqRules cases: (--to-ports, random-fully, expected rule tails after the MASQUERADE comment)
TO_PORTS_CASES = [
    ("", True, [RF]),
    ("", False, [""]),
    ("1024-29999", True, [f"{RF} -p {p} --to-ports 1024-29999" for p in ("tcp", "udp", "sctp")] + [RF]),
    ("1024-29999,32768-65535", True,
     [t for p in ("tcp", "udp", "sctp") for t in (
         f"{RF} -p {p} -m statistic --mode random --probability 0.469292562840114 --to-ports 1024-29999",
         f"{RF} -p {p} --to-ports 32768-65535")] + [RF]),
    ("1024-29999,32768-49151,61000-65535", False,
     [t for p in ("tcp", "udp", "sctp") for t in (
         f" -p {p} -m statistic --mode random --probability 0.5807279140612474 --to-ports 1024-29999",
         f" -p {p} -m statistic --mode random --probability 0.7831739961759082 --to-ports 32768-49151",
         f" -p {p} --to-ports 61000-65535")] + [""]),
    ("1024,65535", True,
     [t for p in ("tcp", "udp", "sctp") for t in (
         f"{RF} -p {p} -m statistic --mode random --probability 0.5 --to-ports 1024",
         f"{RF} -p {p} --to-ports 65535")] + [RF]),
]


@pytest.mark.parametrize("to_ports,random_fully,tails", TO_PORTS_CASES, ids=[f"{c[0] or 'none'}-{c[1]}" for c in TO_PORTS_CASES])
def test_upstream_masquerade_rules(to_ports, random_fully, tails):
    options = AgentOptions(flavor=UPSTREAM, random_fully=random_fully, to_ports=parse_to_ports(to_ports))
    rules = render(config(ll=True, flavor=UPSTREAM), options).ipv4.rules
    assert [r.text for r in rules] == [MQ + t for t in tails]


def test_azure_v2_never_writes_random_fully_or_to_ports():
    options = AgentOptions(random_fully=True, to_ports=parse_to_ports("1024-29999"))
    assert [r.text for r in render(config(ll=True), options).ipv4.rules] == [MQ]


def test_tke_source_exemptions_come_before_the_destination_returns():
    rules = render(config(["192.168.0.0/16"], ll=True, flavor=TKE, src=["10.0.0.0/12"]),
                   AgentOptions(flavor=TKE, random_fully=False)).ipv4.rules
    assert [r.kind for r in rules] == ["src-return", "return", "masquerade"]
    assert rules[0].text.endswith(" -s 10.0.0.0/12 -j RETURN")
    assert rules[1].text.endswith(" -d 192.168.0.0/16 -j RETURN")


@pytest.mark.parametrize("bad", ["1024-", "a-b", "3-2", "1-2-3", "70000", "1024,,2000"])
def test_bad_to_ports_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        parse_to_ports(bad)


# ---------------------------------------------------------------- seeds (field captures)

def _save_rules(path: str) -> list[list[str]]:
    return [split_args(line) for line in open(path) if line.startswith("-A ")]


@pytest.mark.parametrize("cluster", ["akscal", "akskube"])
def test_seed_reconciled_config_renders_the_rules_on_the_node(cluster):
    folder = os.path.join(FIXTURES, "seed003", cluster)
    options = AgentOptions()
    rules = render(load_config_dir(folder, options), options).ipv4
    live = _save_rules(os.path.join(folder, "iptables-save-grep-masq.txt"))
    live_chain = [w[2:] for w in live if w[1] == "IP-MASQ-AGENT"]
    ours = [r.args for r in rules.rules]
    # the RETURN block is compared as a set (the Go agent's order is random); the catch-all is last
    assert rule_key(live_chain[-1]) == rule_key(ours[-1])
    assert sorted(map(rule_key, live_chain[:-1])) == sorted(map(rule_key, ours[:-1]))
    live_jumps = [w[2:] for w in live if w[1] == "POSTROUTING"]
    assert [rule_key(j) for j in live_jumps] == [rule_key(rules.jump.args)]  # comment text included


def test_seed_blog_user_and_reconciled_merge_to_the_logged_config():
    folder = os.path.join(FIXTURES, "seed000")
    logged = [line.split("using config: ", 1)[1].strip() for line in open(os.path.join(folder, "agent-log.txt"))]
    sources = [ConfigSource(n, open(os.path.join(folder, n), "rb").read())
               for n in ("ip-masq-agent", "ip-masq-agent-reconciled")]
    options = AgentOptions()
    assert agent_config_json(effective_config(sources[1:], options)) == logged[0]  # before the user ConfigMap
    assert agent_config_json(effective_config(sources, options)) == logged[1]      # after it


# ---------------------------------------------------------------- real iptables

REAL_CASES = [
    ("azure-v2 IPv4+IPv6", config(["10.244.0.0/16", "0.0.0.0/0", "fc00::/7"]), AgentOptions(enable_ipv6=True)),
    ("upstream to-ports + random-fully", config(["10.0.0.0/8"], flavor=UPSTREAM),
     AgentOptions(flavor=UPSTREAM, enable_ipv6=True, to_ports=parse_to_ports("1024-29999,32768-65535"))),
    ("tke source exemptions", config(["192.168.0.0/16"], ll=True, flavor=TKE, src=["10.0.0.0/12"]),
     AgentOptions(flavor=TKE)),
]


@requires_netns
@pytest.mark.parametrize("desc,cfg,options", REAL_CASES, ids=[c[0] for c in REAL_CASES])
def test_real_iptables_accepts_the_payload_and_saves_the_same_rules(desc, cfg, options):
    ns = NetNS("render")
    try:
        for fam in render(cfg, options).families():
            ns.iptables_restore(fam.payload(), family=fam.family)
            binary = "iptables" if fam.family == 4 else "ip6tables"
            ns.run(binary, "-w", "-t", "nat", "-A", "POSTROUTING", *fam.jump.args)
            saved = [split_args(line) for line in ns.iptables_save(family=fam.family).splitlines()
                     if line.startswith("-A ")]
            chain = [w[2:] for w in saved if w[1] == fam.chain]
            assert [rule_key(a) for a in chain] == [rule_key(r.args) for r in fam.rules]
            jumps = [w[2:] for w in saved if w[1] == "POSTROUTING"]
            assert [rule_key(a) for a in jumps] == [rule_key(fam.jump.args)]
            assert is_masq_jump(jumps[0], fam.chain)
    finally:
        ns.delete()
