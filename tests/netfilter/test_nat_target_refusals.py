"""A nat target iptables-restore refuses is unknown, naming the line, never a verdict.

Ground truth: ``iptables-restore --test`` (and ``ip6tables-restore --test``) of each rule in a
network namespace the test creates, on both backends when the host has them. The evaluator's
``nat_target_refusal`` must refuse exactly the rules iptables refuses.
"""

from __future__ import annotations

import shutil

import pytest
from netns import NetNS, requires_netns

from masqctl.analysis.explain import Request, explain
from masqctl.netfilter.dump import parse_rule
from masqctl.netfilter.values import nat_target_refusal

V4 = [  # (chain, rule words after "-A CHAIN")
    ("POSTROUTING", "-j SNAT"),
    ("POSTROUTING", '-j SNAT --to-source ""'),
    ("POSTROUTING", "-j SNAT --to-source bogus"),
    ("POSTROUTING", "-j SNAT --to-source 192.0.2.1/24"),
    ("POSTROUTING", "-j SNAT --to-source fd00::1"),
    ("POSTROUTING", "-j SNAT --to-source 192.0.2.1"),
    ("POSTROUTING", "-j SNAT --to-source 192.0.2.1-192.0.2.9"),
    ("POSTROUTING", "-j SNAT --to-source 192.0.2.9-192.0.2.1"),
    ("POSTROUTING", "-j SNAT --to-source 192.0.2.1 --random-fully --persistent"),
    ("POSTROUTING", "-j SNAT --to-source 192.0.2.1:1000"),
    ("POSTROUTING", "-p udp -j SNAT --to-source 192.0.2.1:1000-2000"),
    ("POSTROUTING", "-p tcp -j SNAT --to-source 192.0.2.1:70000"),
    ("POSTROUTING", "-j SNAT --to-source 192.0.2.1 --to-ports 5"),
    ("POSTROUTING", "-j MASQUERADE"),
    ("POSTROUTING", "-j MASQUERADE --random-fully"),
    ("POSTROUTING", "-j MASQUERADE --to-source 192.0.2.1"),
    ("POSTROUTING", "-j MASQUERADE --persistent"),
    ("POSTROUTING", "-j MASQUERADE --to-ports 1000"),
    ("POSTROUTING", "-p tcp -j MASQUERADE --to-ports 1000-2000"),
    ("POSTROUTING", "-p tcp -j MASQUERADE --to-ports 2000-1000"),
    ("POSTROUTING", "-p tcp -j MASQUERADE --to-ports x"),
    ("POSTROUTING", "-j MASQUERADE -p udp --to-ports 1024-65535"),
    ("PREROUTING", "-j DNAT"),
    ("PREROUTING", "-j DNAT --to-destination 192.0.2.1"),
    ("PREROUTING", "-j DNAT --to-destination 192.0.2.1:80"),
    ("PREROUTING", "-p tcp -j DNAT --to-destination 192.0.2.1:80"),
    ("PREROUTING", "-j DNAT --to-destination bogus"),
    ("PREROUTING", "-p tcp -j REDIRECT"),
    ("PREROUTING", "-j REDIRECT --to-ports 80"),
    ("PREROUTING", "-p tcp -j REDIRECT --to-ports 80"),
]
V6 = [
    ("POSTROUTING", "-j SNAT"),
    ("POSTROUTING", "-j SNAT --to-source fd00::1"),
    ("POSTROUTING", "-j SNAT --to-source 192.0.2.1"),
    ("POSTROUTING", "-j SNAT --to-source fd00::1-fd00::9"),
    ("POSTROUTING", "-p tcp -j SNAT --to-source [fd00::1]:1000"),
    ("POSTROUTING", "-j MASQUERADE --to-ports 1000"),
    ("PREROUTING", "-p tcp -j DNAT --to-destination [fd00::1]:80"),
]


def _refused_by_masqctl(chain: str, words: str, family: int) -> bool:
    rule = parse_rule(chain, 1, 1, f"-A {chain} {words}")
    return nat_target_refusal(rule.target, rule.target_options, any(m.module == "-p" for m in rule.matches),
                              family) is not None


@requires_netns
@pytest.mark.parametrize("backend", ["nft", "legacy"])
@pytest.mark.parametrize("family, cases", [(4, V4), (6, V6)], ids=["ipv4", "ipv6"])
def test_masqctl_refuses_exactly_what_iptables_restore_refuses(backend, family, cases):
    binary = f"{'ip6tables' if family == 6 else 'iptables'}-{backend}-restore"
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed")
    ns = NetNS("refuse")
    try:
        head = "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
        if ns.run(binary, "--test", input=head + "COMMIT\n", check=False).returncode != 0:
            pytest.skip(f"{binary} does not work here")
        disagree = []
        for chain, words in cases:
            r = ns.run(binary, "--test", input=f"{head}-A {chain} {words}\nCOMMIT\n", check=False)
            if (r.returncode != 0) != _refused_by_masqctl(chain, words, family):
                disagree.append((words, r.returncode, r.stderr.strip()[:120]))
        assert not disagree
    finally:
        ns.delete()


@pytest.mark.parametrize("rule, why", [
    ("-A POSTROUTING -s 10.244.0.0/16 -j SNAT", "SNAT without --to-source"),
    ("-A POSTROUTING -j SNAT --to-source bogus", "cannot be read as an IPv4 address"),
    ("-A POSTROUTING -j SNAT --to-source 192.0.2.1:1000", "a port but no -p"),
    ("-A POSTROUTING -j MASQUERADE --to-source 192.0.2.1", "MASQUERADE has no option --to-source"),
    ("-A POSTROUTING -j MASQUERADE --to-ports 1000", "a port but no -p"),
])
def test_a_refused_target_on_the_path_is_unknown_naming_the_line(tmp_path, rule, why):
    dump = tmp_path / "dump.txt"
    dump.write_text(f"*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -d 10.0.0.0/8 -j RETURN\n{rule}\nCOMMIT\n")
    ex = explain(Request("10.244.1.5", "203.0.113.9", iptables=str(dump), node_ip="10.224.0.4"))
    doc = ex.to_dict()
    assert doc["masqueraded"] is None and doc["source_ip_seen"] is None and doc["deciding_rule"] is None
    assert "line 4" in ex.summary and why in ex.summary and "iptables-restore" in ex.summary
    assert "SNATed" not in ex.summary and "masqueraded to" not in ex.summary


def test_the_issue_example_never_prints_an_empty_snat_address(tmp_path):
    dump = tmp_path / "dump.txt"
    dump.write_text("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j SNAT\nCOMMIT\n")
    ex = explain(Request("10.244.1.5", "203.0.113.9", iptables=str(dump)))
    assert ex.masqueraded() is None and "one address of" not in ex.summary and "without --to-source" in ex.summary


def test_a_valid_snat_still_decides(tmp_path):
    dump = tmp_path / "dump.txt"
    dump.write_text("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -p tcp -j SNAT --to-source 192.0.2.1:1000-2000"
                    " --random-fully\nCOMMIT\n")
    ex = explain(Request("10.244.1.5", "203.0.113.9", iptables=str(dump), local_addresses=["10.224.0.4/16@eth0"]))
    assert ex.masqueraded() is True and ex.evaluation.source_ip_seen == "192.0.2.1"
