"""`masqctl explain` as users run it: the JSON contract, the sentence, what-if provenance, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest
from errordoc import no_result

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "dumps")
AKS = os.path.join(FIXTURES, "aks-azurecni-ipmasqagent-v2-grep-fragment.txt")
KIND = os.path.join(FIXTURES, "kind-kindnet-kube-proxy-iptables.txt")
CALICO = os.path.join(FIXTURES, "calico-vxlan-kube-proxy-ipvs-nat.txt")
AKS_FACTS = ["--local-address", "10.224.0.4/16@eth0", "--node-ip", "10.224.0.4"]

STEP = {"type": "object", "required": ["chain", "index", "text", "result", "action"],
        "properties": {"chain": {"type": "string"}, "index": {"type": ["integer", "null"], "minimum": 1},
                       "text": {"type": "string"}, "result": {"enum": ["match", "no-match", "unknown"]},
                       "action": {"type": "string"}}}
RULE = {"type": ["object", "null"], "required": ["chain", "index", "text"],
        "properties": {"chain": {"type": "string"}, "index": {"type": ["integer", "null"]},
                       "text": {"type": "string"}}}
SCHEMA = {
    "type": "object",
    "required": ["masqueraded", "source_ip_seen", "deciding_rule", "trace", "notes"],
    "properties": {
        "masqueraded": {"type": ["boolean", "null"]},
        "source_ip_seen": {"type": ["string", "null"]},
        "deciding_rule": RULE,
        "trace": {"type": "array", "items": STEP},
        "notes": {"type": "array", "items": {"type": "string"}},
        "branches": {"type": "array", "minItems": 2, "items": {
            "type": "object", "required": ["endpoint", "masqueraded", "source_ip_seen", "deciding_rule"],
            "properties": {"endpoint": {"type": "string"}, "masqueraded": {"type": ["boolean", "null"]},
                           "probability": {"type": ["number", "null"]}, "deciding_rule": RULE}}},
    },
}


def masqctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          input=stdin, timeout=60)


def as_json(*args: str, stdin: str | None = None) -> dict:
    r = masqctl("explain", *args, "-o", "json", stdin=stdin)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)          # exactly one document, nothing else on stdout
    jsonschema.validate(doc, SCHEMA)
    return doc


def test_the_aks_example_sentence_and_json():
    r = masqctl("explain", "10.224.0.30", "10.240.0.5", "--iptables", AKS, *AKS_FACTS)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert ("10.224.0.30 → 10.240.0.5 is masqueraded to 10.224.0.4 by IP-MASQ-AGENT rule 4 (catch-all MASQUERADE)"
            in text)
    assert "fragment" in text
    doc = as_json("10.224.0.30", "10.240.0.5", "--iptables", AKS, *AKS_FACTS)
    assert doc["masqueraded"] is True and doc["source_ip_seen"] == "10.224.0.4"
    assert doc["deciding_rule"]["chain"] == "IP-MASQ-AGENT" and doc["deciding_rule"]["index"] == 4
    assert [s["result"] for s in doc["trace"] if s["chain"] == "IP-MASQ-AGENT"] == ["no-match"] * 3 + ["match"]
    assert "branches" not in doc


def test_not_masqueraded_inside_a_cidr():
    doc = as_json("10.224.0.30", "10.0.4.4:443", "--iptables", AKS, *AKS_FACTS)
    assert doc["masqueraded"] is False and doc["source_ip_seen"] == "10.224.0.30"
    assert doc["deciding_rule"]["index"] == 2 and doc["dst_port"] == 443


def test_random_branches_in_json():
    doc = as_json("10.244.0.3", "10.96.0.10:53", "--proto", "udp", "--iptables", KIND, "--local-address",
                  "172.18.0.5/16@eth0", "--local-address", "10.244.0.1/24@cni0", "--node-ip", "172.18.0.5")
    assert doc["masqueraded"] is None and doc["deciding_rule"] is None
    assert [(b["endpoint"], b["masqueraded"], b["source_ip_seen"], b["probability"]) for b in doc["branches"]] == [
        ("10.244.0.3:53", True, "10.244.0.1", 0.5), ("10.244.0.4:53", False, "10.244.0.3", 0.5)]
    assert any("1 of 2" in n for n in doc["notes"])


def test_dnat_to_a_local_endpoint_is_not_masqueraded():
    doc = as_json("10.244.0.7", "10.96.0.1:443", "--iptables", KIND, "--local-address", "172.18.0.5/16@eth0",
                  "--node-ip", "172.18.0.5")
    assert doc["masqueraded"] is False and doc["destination_seen"] == "172.18.0.5:6443"
    assert any("local delivery" in n for n in doc["notes"])


def test_ipvs_calico_with_ipsets(tmp_path):
    ipset = tmp_path / "ipset.txt"
    ipset.write_text("create cali40masq-ipam-pools hash:net family inet hashsize 1024 maxelem 1048576\n"
                     "add cali40masq-ipam-pools 192.168.0.0/16\n"
                     "create cali40all-ipam-pools hash:net family inet hashsize 1024 maxelem 1048576\n"
                     "add cali40all-ipam-pools 192.168.0.0/16\n"
                     "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\n"
                     "add KUBE-CLUSTER-IP 10.96.0.10,udp:53\n"
                     "create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536\n"
                     "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535\n")
    facts = ["--local-address", "10.0.0.5/24@eth0", "--node-ip", "10.0.0.5", "--ipset", str(ipset),
             "--out-interface", "eth0", "--proto", "udp"]
    doc = as_json("192.168.1.5", "8.8.8.8:53", "--iptables", CALICO, *facts)
    assert doc["masqueraded"] is True and doc["deciding_rule"]["chain"] == "cali-nat-outgoing"
    doc = as_json("192.168.1.5", "192.168.2.9:53", "--iptables", CALICO, *facts)
    assert doc["masqueraded"] is False
    assert any("IPVS" in n for n in doc["notes"])


def test_dump_from_stdin():
    with open(AKS) as fh:
        doc = as_json("10.224.0.30", "10.240.0.5", "--iptables", "-", *AKS_FACTS, stdin=fh.read())
    assert doc["masqueraded"] is True


def test_what_if_names_the_config_file_and_line(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "ip-masq-agent-reconciled").write_text("nonMasqueradeCIDRs:\n  - 10.224.0.0/16\n  - 10.0.0.0/16\n"
                                                  "masqLinkLocal: true\n")
    (cfg / "ip-masq-agent").write_text("# user additions\nnonMasqueradeCIDRs:\n  - 10.240.0.0/16\n")
    doc = as_json("10.224.0.30", "10.240.0.5", "--config-dir", str(cfg), *AKS_FACTS)
    assert doc["masqueraded"] is False
    origin = doc["deciding_rule"]["origin"]
    assert (origin["file"], origin["line"], origin["cidr"]) == ("ip-masq-agent", 3, "10.240.0.0/16")
    assert "set by ip-masq-agent line 3" in doc["summary"]
    doc = as_json("10.224.0.30", "203.0.113.5", "--config-dir", str(cfg), *AKS_FACTS)
    assert doc["masqueraded"] is True
    assert "outside every non-masquerade CIDR" in doc["summary"]
    # with a dump: the dump's agent chain is replaced by the rendered one
    doc = as_json("10.224.0.30", "10.240.0.5", "--iptables", AKS, "--config-dir", str(cfg), *AKS_FACTS)
    assert doc["masqueraded"] is False and doc["deciding_rule"]["origin"]["file"] == "ip-masq-agent"
    assert any("replaced" in n for n in doc["notes"])


def test_what_if_without_node_facts_answers_for_a_remote_destination(tmp_path):
    # A what-if on the agent's rules alone answers for traffic that leaves the node: with no node
    # addresses, DST is taken as remote (one path), and a note says so.
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n")
    doc = as_json("10.224.0.30", "10.240.0.5", "--config-dir", str(cfg))
    assert doc["masqueraded"] is False
    assert doc["deciding_rule"]["origin"]["file"] == "ip-masq-agent"
    assert "set by ip-masq-agent line 2" in doc["summary"]
    assert any("10.240.0.5 is taken as a remote address" in n for n in doc["notes"])
    doc = as_json("10.224.0.30", "203.0.113.5", "--config-dir", str(cfg))
    assert doc["masqueraded"] is True and doc["deciding_rule"]["chain"] == "IP-MASQ-AGENT"
    assert not doc.get("branches")                 # one path: the remote one
    assert any("203.0.113.5 is taken as a remote address" in n for n in doc["notes"])


def test_what_if_link_local_and_ipv6(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - fd00::/8\nmasqLinkLocal: false\n")
    doc = as_json("10.224.0.30", "169.254.169.254", "--config-dir", str(cfg), "--enable-ipv6", *AKS_FACTS)
    assert doc["masqueraded"] is False and doc["deciding_rule"]["origin"]["kind"] == "link-local"
    assert any("IMDS" in n for n in doc["notes"])
    doc = as_json("fd00:244::5", "fd00:9::1", "--config-dir", str(cfg), "--enable-ipv6", "--local-address",
                  "fd00:10::4/64@eth0", "--node-ip", "fd00:10::4")
    assert doc["masqueraded"] is False and doc["deciding_rule"]["origin"]["line"] == 2
    doc = as_json("fd00:244::5", "[2001:db8::1]:443", "--config-dir", str(cfg), "--enable-ipv6",
                  "--local-address", "fd00:10::4/64@eth0", "--node-ip", "fd00:10::4")
    assert doc["masqueraded"] is True and doc["source_ip_seen"] == "fd00:10::4"


def test_human_output_is_a_tree_and_a_sentence():
    r = masqctl("explain", "10.244.0.3", "10.96.0.10:53", "--proto", "udp", "--iptables", KIND,
                "--local-address", "172.18.0.5/16@eth0", "--node-ip", "172.18.0.5")
    assert r.returncode == 0, r.stderr
    assert "nat PREROUTING" in r.stdout and "nat POSTROUTING" in r.stdout and "branch 1/2" in r.stdout
    assert "did not match" not in r.stdout or "rules" in r.stdout


@pytest.mark.parametrize("args, code, words", [
    (["foo", "1.2.3.4", "--iptables", AKS], "E210", ["SRC", "foo"]),
    (["10.0.0.1", "10.0.0.0/8", "--iptables", AKS], "E210", ["DST"]),
    (["10.0.0.1", "1.2.3.4:99999", "--iptables", AKS], "E210", ["DST"]),
    (["10.0.0.1", "fd00::1", "--iptables", AKS], "E211", []),
    (["10.0.0.1", "1.2.3.4", "--local-address", "nope", "--iptables", AKS], "E212", ["--local-address"]),
    (["10.0.0.1", "1.2.3.4"], "E213", ["--iptables"]),
    (["10.0.0.1", "1.2.3.4", "--proto", "icmp", "--iptables", AKS], "E215", ["--proto"]),
    (["10.0.0.1", "1.2.3.4", "--iptables", "/nonexistent/dump"], "E310", ["/nonexistent/dump"]),
    (["fd00::1", "fd00::2", "--iptables", AKS], "E317", []),
    (["10.0.0.1", "1.2.3.4", "--context", "prod", "--iptables", AKS], "E226", ["--iptables"]),
    (["default/web", "1.2.3.4", "--iptables", AKS], "E227", ["SRC", "namespace/pod"]),
    (["10.0.0.1", "1.2.3.4", "--node", "aks-1", "--iptables", AKS], "E227", ["--node"]),
    (["10.0.0.1", "1.2.3.4", "--flavor", "gke", "--config-dir", "/tmp"], "E201", ["--flavor"]),
])
def test_usage_and_input_errors(args, code, words):
    r = masqctl("explain", *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert code in r.stderr and "Traceback" not in r.stderr
    assert no_result(r)
    for w in words:
        assert w in r.stderr


@pytest.mark.parametrize("content, code, words", [
    ("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nthis is not iptables\nCOMMIT\n", "E312",
     ["line 4", "this is not iptables"]),
    ('*nat\n-A POSTROUTING -m comment --comment "open -j MASQUERADE\nCOMMIT\n', "E312", ["line 2", "open"]),
    ("Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)\n target prot opt source destination\n", "E313",
     ["iptables -L"]),
    ("", "E314", []),
    (b"\x00\x01\x02binary".decode("latin-1"), "E311", []),
])
def test_malformed_dumps(tmp_path, content, code, words):
    path = tmp_path / "dump.txt"
    path.write_text(content)
    r = masqctl("explain", "10.0.0.1", "1.2.3.4", "--iptables", str(path))
    assert r.returncode == 2 and code in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2     # one line, plus a hint
    for w in words:
        assert w in r.stderr


def test_bad_ipset_and_ip_addr_files(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("add NOSUCH 10.0.0.1\n")
    r = masqctl("explain", "10.0.0.1", "1.2.3.4", "--iptables", AKS, "--ipset", str(bad))
    assert r.returncode == 2 and "E315" in r.stderr and "line 1" in r.stderr
    bad.write_text("garbage\n")
    r = masqctl("explain", "10.0.0.1", "1.2.3.4", "--iptables", AKS, "--ip-addr", str(bad))
    assert r.returncode == 2 and "E316" in r.stderr and "line 1" in r.stderr


def test_ipv6_what_if_needs_enable_ipv6(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    r = masqctl("explain", "fd00::1", "fd00::2", "--config-dir", str(cfg))
    assert r.returncode == 2 and "E214" in r.stderr


def test_explain_imports_no_cluster_clients():
    code = ("import sys\nfrom masqctl.cli.main import main\n"
            f"main(['explain', '10.224.0.30', '10.240.0.5', '--iptables', {AKS!r}, '-o', 'json'])\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'azure')]\n"
            "assert not bad, bad\nprint('clean', file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "clean" in r.stderr, r.stderr


def test_fragment_says_what_is_missing():
    fragment = "-A POSTROUTING -j KUBE-POSTROUTING\n-A POSTROUTING -j IP-MASQ-AGENT\n-A IP-MASQ-AGENT -j MASQUERADE\n"
    doc = as_json("10.224.0.30", "10.240.0.5", "--iptables", "-", "--node-ip", "10.224.0.4", stdin=fragment)
    assert doc["masqueraded"] is None and doc["input"]["fragment"] is True
    assert any("not shown" in n and "KUBE-POSTROUTING" in n for n in doc["notes"])
    assert any("DNAT" in n and "not visible" in n for n in doc["notes"])


def test_a_dump_cut_short_says_so():
    whole = "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -d 10.0.0.0/8 -j RETURN\n"
    doc = as_json("10.244.1.5", "10.1.2.3", "--iptables", "-", *AKS_FACTS, stdin=whole)
    assert any("no COMMIT" in n for n in doc["notes"])
    doc = as_json("10.244.1.5", "10.1.2.3", "--iptables", "-", *AKS_FACTS, stdin=whole + "COMMIT\n")
    assert not any("COMMIT" in n for n in doc["notes"])


def test_what_if_on_a_dump_with_a_broken_quote_names_the_line(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n")
    dump = tmp_path / "dump.txt"
    dump.write_text('*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -m comment --comment "a\\" -j X\nCOMMIT\n')
    r = masqctl("explain", "10.244.0.2", "8.8.8.8", "--iptables", str(dump), "--config-dir", str(cfg))
    assert r.returncode == 2 and "E312" in r.stderr and "line 3" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "internal" not in r.stderr


def test_mark_decided_without_a_mangle_table_says_so():
    nat_only = ("*nat\n:POSTROUTING ACCEPT [0:0]\n:KUBE-POSTROUTING - [0:0]\n-A POSTROUTING -j KUBE-POSTROUTING\n"
                "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n-A KUBE-POSTROUTING -j MASQUERADE\n"
                "COMMIT\n")
    doc = as_json("10.244.1.5", "10.1.2.3", "--iptables", "-", *AKS_FACTS, stdin=nat_only)
    assert doc["masqueraded"] is False and any("no mangle table" in n for n in doc["notes"])
    full = "*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n" + nat_only
    doc = as_json("10.244.1.5", "10.1.2.3", "--iptables", "-", *AKS_FACTS, stdin=full)
    assert not any("no mangle table" in n for n in doc["notes"])


def test_raw_notrack_rules_are_reported():
    nat = "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n"
    raw = ("*raw\n:PREROUTING ACCEPT [0:0]\n:CILIUM_PRE_raw - [0:0]\n-A PREROUTING -j CILIUM_PRE_raw\n"
           "-A CILIUM_PRE_raw -s 10.244.0.0/16 -j CT --notrack\nCOMMIT\n")
    doc = as_json("10.244.1.5", "10.1.2.3", "--iptables", "-", *AKS_FACTS, stdin=raw + nat)
    assert any("NOTRACK" in n for n in doc["notes"])
    doc = as_json("10.244.1.5", "10.1.2.3", "--iptables", "-", *AKS_FACTS, stdin=nat)
    assert not any("NOTRACK" in n for n in doc["notes"])
