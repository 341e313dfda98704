"""Sharing parses between nodes changes nothing in the report.

``inspect`` parses each distinct node capture once and shares the facts between every check
(``masqctl.analysis.nodedumps``). ``inspect(..., share_parses=False)`` is the reference: every
check parses each dump itself, as before sharing existed. These tests compare the two on a fleet
of near-identical nodes with a few drifted ones, and reader by reader on ugly dumps, and check
that drifted nodes stay in their own groups. No timing is asserted (bench/inspect.py measures).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re

import pytest

from masqctl.analysis.drift import live_chain
from masqctl.analysis.findings.nodes import shadowing
from masqctl.analysis.inspect import inspect
from masqctl.analysis.mode import detect_mode, dump_signs
from masqctl.analysis.nodedumps import NodeDumps, nat_key, nat_section
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle
from masqctl.cluster.model import NodeCapture
from masqctl.cluster.raw import RawCluster
from masqctl.netfilter.dump import DumpError, parse_dump

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bench():
    """bench/inspect.py's fleet generator (loaded by path: the file shares its name with a stdlib module)."""
    spec = importlib.util.spec_from_file_location("masqctl_bench_inspect_for_tests",
                                                  os.path.join(ROOT, "bench", "inspect.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


def _canon(report) -> str:
    return json.dumps(report.to_dict(), sort_keys=True, ensure_ascii=False)


# =========================================================================== a generated fleet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("fleet") / "bundle")
    os.makedirs(folder)
    info = bench.write_bundle_dir(folder, 64, services=40, endpoints=2, workloads=3, nodeport_addresses=False)
    return build_snapshot(read_bundle(folder)), info["drifted"]


def test_fleet_report_equals_the_unshared_report(fleet):
    snap, _ = fleet
    assert _canon(inspect(snap)) == _canon(inspect(snap, share_parses=False))


def test_fleet_drifted_nodes_keep_their_own_groups(fleet):
    snap, drifted = fleet
    by = {what: sorted(n for n, d in drifted.items() if d == what) for what in set(drifted.values())}
    report = inspect(snap).to_dict()
    groups = report["nodes"]["groups"]

    def group_of(node):
        return next(g for g in groups if node in g["nodes"])

    missing = group_of(by["missing-return"][0])
    assert missing["state"] == "drift" and missing["nodes"] == by["missing-return"]
    assert missing["families"][0]["missing_cidrs"] == ["10.0.0.0/16"]
    assert group_of(by["no-jump"][0])["nodes"] == by["no-jump"]
    assert group_of(by["no-jump"][0])["families"][0]["jumps"] == 0
    assert group_of(by["two-jumps"][0])["families"][0]["jumps"] == 2
    cut = group_of(by["cut-short"][0])
    assert cut["state"] == "unknown" and cut["nodes"] == by["cut-short"]
    assert f"nodes/{by['cut-short'][0]}/iptables-save.txt line " in cut["families"][0]["reason"]
    assert group_of(by["no-capture"][0])["state"] == "unknown"
    in_sync = [g for g in groups if g["state"] == "in-sync"]
    assert len(in_sync) == 1
    healthy = sorted(set(snap.captures) - {n for n, d in drifted.items()
                                           if d not in ("calico-before", "legacy-tables")})
    assert in_sync[0]["nodes"] == healthy
    findings = {f["code"]: f for f in report["findings"]}
    assert findings["MQ006"]["nodes"] == by["calico-before"]
    assert findings["MQ017"]["nodes"] == by["legacy-tables"]
    assert sorted(findings["MQ005"]["nodes"]) == sorted(by["no-jump"] + by["two-jumps"]) or \
        {n for f in report["findings"] if f["code"] == "MQ005" for n in f["nodes"]} == set(by["no-jump"] + by["two-jumps"])


def test_fleet_nat_tables_are_parsed_once_per_distinct_table(fleet):
    snap, drifted = fleet
    dumps = NodeDumps(snap)
    detect_mode(snap, dumps=dumps)
    captured = [n for n, c in snap.captures.items() if c.iptables_save]
    # each node's dump minus its nat table is read once; a nat table once per distinct table (the
    # agent's RETURN rules come in 24 orders, plus the drifted nodes'), the cut-short dump whole
    distinct = len({nat_key(c.iptables_save, *nat_section(c.iptables_save)) for c in snap.captures.values()
                    if c.iptables_save and nat_section(c.iptables_save)})
    assert dumps.shared == len(captured) - distinct - 1
    assert dumps.parses <= len(captured) + distinct + 2
    # the other readers parse nothing more
    before = dumps.parses
    for n in captured:
        try:
            dumps.live_chain(n, 4, "IP-MASQ-AGENT")
            dumps.shadowing(n, "IP-MASQ-AGENT")
            dumps.legacy_tables(n)
        except DumpError:
            assert drifted[n] == "cut-short"
    assert dumps.parses == before


def test_fleet_with_node_ips_in_nat_still_equal(tmp_path):
    folder = str(tmp_path / "b")
    os.makedirs(folder)
    bench.write_bundle_dir(folder, 20, services=12, endpoints=2, workloads=2, nodeport_addresses=True)
    snap = build_snapshot(read_bundle(folder))
    assert _canon(inspect(snap)) == _canon(inspect(snap, share_parses=False))


# =========================================================================== ugly dumps, reader by reader

JUMP = bench.JUMP
RETURN = bench.RETURN
MASQ = bench.MASQ


def nat(counters="[0:0]", cidrs=("10.224.0.0/16", "10.0.0.0/16"), jumps=1, extra_post=(), extra=(), decl_extra=()):
    out = ["*nat", f":PREROUTING ACCEPT {counters}", f":INPUT ACCEPT {counters}", f":OUTPUT ACCEPT {counters}",
           f":POSTROUTING ACCEPT {counters}", ":KUBE-POSTROUTING - [0:0]", ":KUBE-SERVICES - [0:0]",
           ":IP-MASQ-AGENT - [0:0]", *decl_extra,
           '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
           '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
           *extra_post, *([JUMP] * jumps),
           "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
           '-A KUBE-SERVICES -d 10.0.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" '
           "-m tcp --dport 443 -j KUBE-MARK-MASQ",
           *[RETURN.format(c) for c in cidrs], MASQ, *extra, "COMMIT"]
    return out


def filt(ip="10.224.0.4", counters="[0:0]", extra=()):
    return ["*filter", f":INPUT ACCEPT {counters}", f":FORWARD ACCEPT {counters}", f":OUTPUT ACCEPT {counters}",
            ":KUBE-FIREWALL - [0:0]", f"-A INPUT -d {ip}/32 -p tcp -m tcp --dport 10250 -j ACCEPT",
            "-A INPUT -j KUBE-FIREWALL", *extra, "COMMIT"]


HEAD = "# Generated by iptables-save v1.8.9 (nf_tables) on Sun Nov 22 05:58:54 2026"
LEGACY = "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them"


def text(*parts, nl="\n", head=(HEAD,)):
    lines = list(head)
    for p in parts:
        lines += p
    return nl.join(lines) + nl


def _variants(k: int) -> dict[str, str]:
    """Dump texts; ``k`` varies what differs between healthy nodes (counters, node IP, timestamp)."""
    c = f"[{k * 7 + 1}:{k * 911 + 3}]"
    ip = f"10.224.0.{10 + k}"
    calico = '-A POSTROUTING -m comment --comment "cali:x" -j cali-nat-outgoing'
    cali_rule = "-A cali-nat-outgoing -m set --match-set cali40masq-ipam-pools src -j MASQUERADE --random-fully"
    return {
        "base": text(filt(ip, c), nat(c), head=(HEAD.replace("05:58", f"05:{k:02d}"),)),
        "nat-first": text(nat(c), filt(ip, c)),
        "nat-only": text(nat(c)),
        "no-counters-nat-only": text(nat()),
        "legacy-top": text(filt(ip, c), nat(c), head=(HEAD, LEGACY)),
        "legacy-in-nat": text(filt(ip, c), nat(c)[:3] + [LEGACY] + nat(c)[3:]),
        "legacy-after": text(filt(ip, c), nat(c), [LEGACY]),
        "bad-filter-line": text(filt(ip, c, extra=("this is not iptables",)), nat(c)),
        "bad-nat-line": text(filt(ip, c), nat(c, extra=("-A IP-MASQ-AGENT -m comment --comment \"open",))),
        "bad-after": text(filt(ip, c), nat(c), ["COMMIT"]),
        "two-nat": text(nat(c), filt(ip, c), nat(c, cidrs=("10.9.0.0/16",))),
        "rules-after-commit": text(filt(ip, c), nat(c), [JUMP]),
        "decl-after-commit": text(filt(ip, c), nat(c), [":IP-MASQ-AGENT - [0:0]"]),
        "decl-after-commit-absent": text(filt(ip, c), [x for x in nat(c) if "IP-MASQ-AGENT -" not in x
                                                       and not x.startswith(":IP-MASQ-AGENT")],
                                         [":IP-MASQ-AGENT - [0:0]"]),
        "rules-before": text([RETURN.format("10.1.0.0/16")], filt(ip, c), nat(c)),
        "grep-excerpt": "\n".join([JUMP, RETURN.format("10.224.0.0/16"), MASQ]) + "\n",
        "list-format": "\n".join(["-P POSTROUTING ACCEPT", "-N IP-MASQ-AGENT", JUMP, MASQ]) + "\n",
        "crlf": text(filt(ip, c), nat(c), nl="\r\n"),
        "cr-in-declaration": text(filt(ip, c), ["*nat", f":PREROUTING ACCEPT\r{c}"] + nat(c)[2:]),
        "spaces-in-declaration": text(filt(ip, c), ["*nat", f":PREROUTING  ACCEPT {c}"] + nat(c)[2:]),
        "bom": "\ufeff" + text(filt(ip, c), nat(c)),
        "no-commit": text(filt(ip, c), nat(c)[:-1]),
        "empty-nat": text(filt(ip, c), ["*nat", "COMMIT"]),
        "empty-nat-only": text(["*nat", "COMMIT"]),
        "inner-commit": text(filt(ip, c), nat(c)[:6] + [" COMMIT", JUMP] + nat(c)[6:]),
        "chain-absent": text(filt(ip, c), [x for x in nat(c) if "IP-MASQ-AGENT -" not in x
                                           and not x.startswith(":IP-MASQ-AGENT")]),
        "no-jump": text(filt(ip, c), nat(c, jumps=0)),
        "two-jumps": text(filt(ip, c), nat(c, jumps=2)),
        "missing-return": text(filt(ip, c), nat(c, cidrs=("10.224.0.0/16",))),
        "other-order": text(filt(ip, c), nat(c, cidrs=("10.0.0.0/16", "10.224.0.0/16"))),
        "calico": text(filt(ip, c), nat(c, extra_post=(calico,), extra=(cali_rule,),
                                        decl_extra=(":cali-nat-outgoing - [0:0]",))),
        "swift": text(filt(ip, c), nat(c, extra_post=("-A POSTROUTING -j SWIFT-POSTROUTING",),
                                       extra=("-A SWIFT-POSTROUTING -d 168.63.129.16/32 -p udp -m udp --dport 53 "
                                              "-j SNAT --to-source 10.224.0.4",),
                                       decl_extra=(":SWIFT-POSTROUTING - [0:0]",))),
        "cilium-empty": text(filt(ip, c), nat(c, decl_extra=(":CILIUM_POST_nat - [0:0]",))),
        "counters-prefix": text(filt(ip, c), ["*nat", f":POSTROUTING ACCEPT {c}", ":IP-MASQ-AGENT - [0:0]",
                                              f"[{k}:{k * 60}] " + JUMP, f"[{k}:0] " + MASQ, "COMMIT"]),
        "no-nat": text(filt(ip, c)),
        "nat-in-comment": text(filt(ip, c, extra=('-A INPUT -m comment --comment "*nat" -j ACCEPT',)), nat(c)),
        # captures that show only part of nat (drift.LiveView): grep excerpts, dumps cut short, iptables -S
        "grep-chain": "\n".join(x for x in nat(c) if x.startswith("-A IP-MASQ-AGENT ")) + "\n",
        "grep-extra-return": "\n".join([JUMP, RETURN.format("10.224.0.0/16"), RETURN.format("10.9.0.0/16"), MASQ]) + "\n",
        "grep-two-jumps": "\n".join([JUMP, JUMP, RETURN.format("10.224.0.0/16"), MASQ]) + "\n",
        "grep-declaration": "\n".join([":IP-MASQ-AGENT - [0:0]", RETURN.format("10.224.0.0/16")]) + "\n",
        "cut-in-chain": text(filt(ip, c), nat(c)[:-3]),
        "cut-after-chain": text(filt(ip, c), nat(c, extra=("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
                                                          "-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000"))[:-1]),
        "cut-after-chain-one-more": text(filt(ip, c), nat(c, extra=("-A KUBE-MARK-MASQ -j MARK",))[:-1]),
        "cut-mid-line": text(filt(ip, c), nat(c)[:-3]) + "-A IP-MASQ-AGENT -d 10.0.0.0/1",
        "cut-mid-name": text(filt(ip, c), nat(c)[:-2]) + "-A IP-MASQ",
        "cut-in-declarations": text(filt(ip, c), nat(c)[:6]),
        "cut-in-filter": text(filt(ip, c)[:-2]),
        "cut-in-filter-after-nat": text(nat(c), filt(ip, c)[:-1]),
        "list-filter": "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N KUBE-FIREWALL\n-A INPUT -j KUBE-FIREWALL\n",
        "list-postrouting-only": "-P POSTROUTING ACCEPT\n" + JUMP + "\n",
        "list-nat-whole": "\n".join(["-P PREROUTING ACCEPT", "-P INPUT ACCEPT", "-P OUTPUT ACCEPT",
                                     "-P POSTROUTING ACCEPT", "-N IP-MASQ-AGENT", JUMP,
                                     RETURN.format("10.224.0.0/16"), RETURN.format("10.0.0.0/16"), MASQ]) + "\n",
        "incompatible-nat": text(filt(ip, c), ["# Table `nat' is incompatible, use 'nft' tool."]),
        "blank": "\n\n",
        "empty": "",
    }


def _outcome(fn):
    try:
        return ("ok", fn())
    except DumpError as exc:
        return ("error", exc.lineno, exc.message)


@pytest.fixture(scope="module")
def ugly():
    """A snapshot with every variant on three nodes each (different counters, IPs, timestamps)."""
    captures = {}
    for k in range(3):
        for name, t in _variants(k).items():
            node = f"{name}-{k}"
            captures[node] = NodeCapture(node=node, iptables_save=t, ip6tables_save=t if k == 1 else None,
                                         via="bundle")
    return captures


@pytest.mark.parametrize("chain", ["IP-MASQ-AGENT", "MY-MASQ"])
def test_every_reader_equals_its_own_parse(ugly, chain):
    from masqctl.cluster.model import ClusterSnapshot

    snap = ClusterSnapshot("test", captures=ugly)
    dumps = NodeDumps(snap, ("IP-MASQ-AGENT",))
    for node, cap in ugly.items():
        src = f"nodes/{node}/iptables-save.txt"
        t = cap.iptables_save
        assert _outcome(lambda: dumps.live_chain(node, 4, chain)) == _outcome(lambda: live_chain(t, chain, src)), node
        assert _outcome(lambda: dumps.shadowing(node, chain)) == _outcome(lambda: shadowing(t, chain, src)), node
        assert _outcome(lambda: dumps.signs(node)) == _outcome(lambda: dump_signs(parse_dump(t, src))), node
        assert _outcome(lambda: dumps.legacy_tables(node)) == \
            _outcome(lambda: parse_dump(t, src).legacy_tables_present), node
        if cap.ip6tables_save:
            assert _outcome(lambda: dumps.live_chain(node, 6, chain)) == \
                _outcome(lambda: live_chain(cap.ip6tables_save, chain, src.replace("iptables", "ip6tables"))), node
    assert dumps.shared > 0


def test_ugly_inspect_report_equals_the_unshared_report(tmp_path, ugly):
    nodes = sorted(ugly)
    ips = {n: f"10.224.{i // 200}.{4 + i % 200}" for i, n in enumerate(nodes)}
    raw = RawCluster(configmaps=bench.configmaps(), daemonsets=bench.daemonsets(len(nodes)),
                     pods=[bench.pod(i, 0, f"azure-ip-masq-agent-{i:05x}", "kube-system", n, ips[n],
                                     image=bench.AGENT_IMAGE, owner=("DaemonSet", "azure-ip-masq-agent"),
                                     host_network=True, labels={"k8s-app": "azure-ip-masq-agent", "tier": "node"})
                           for i, n in enumerate(nodes)],
                     nodes=[{**bench.kube_node(i), "metadata": {**bench.kube_node(i)["metadata"], "name": n}}
                            for i, n in enumerate(nodes)],
                     captures=dict(ugly), source="test")
    for with_azure in (True, False):
        if with_azure:
            raw.aks, raw.vnets = bench.aks(len(nodes)), {"v": bench.vnet()}
        else:
            raw.aks, raw.vnets = None, {}
        snap = build_snapshot(raw)
        shared, reference = _canon(inspect(snap)), _canon(inspect(snap, share_parses=False))
        assert shared == reference
        # the unreadable captures are named per node, with the line of the whole dump
        assert re.search(r"nodes/bad-filter-line-1/iptables-save\.txt line \d+", shared)


def test_counters_of_builtin_chains_do_not_split_the_key():
    a = _variants(1)["base"]
    b = _variants(2)["base"]
    assert a != b
    assert nat_key(a, *nat_section(a)) == nat_key(b, *nat_section(b))
    # but any other difference in the nat table does
    c = _variants(1)["other-order"]
    assert nat_key(a, *nat_section(a)) != nat_key(c, *nat_section(c))
    d = _variants(1)["spaces-in-declaration"]
    assert nat_key(a, *nat_section(a)) != nat_key(d, *nat_section(d))


def test_node_facts_stay_per_node(tmp_path):
    """Same nat table everywhere; node addresses, labels and unreadable lines elsewhere stay per node."""
    from masqctl.cluster.model import ClusterSnapshot, Node, WorkloadPod

    good = [_variants(k)["base"] for k in range(3)]
    bad = text(filt(), nat(), ["this is not iptables"])     # after the nat table: its line number counts it
    bad_line = bad.splitlines().index("this is not iptables") + 1
    caps = {f"n{k}": NodeCapture(f"n{k}", iptables_save=t, ip_addr=bench.ip_addr(k)) for k, t in enumerate(good)}
    caps["n3"] = NodeCapture("n3", iptables_save=bad)
    nodes = tuple(Node(f"n{k}", bench.node_ip(k), labels={"agentpool": f"pool{k}"}) for k in range(4))
    pods = tuple(WorkloadPod("default", f"p{k}-{j}", f"n{k}", (bench.pod_ip(k, j),)) for k in range(3) for j in range(2))
    snap = ClusterSnapshot("bundle x", nodes=nodes, captures=caps, workloads=pods)
    shared = detect_mode(snap, dumps=NodeDumps(snap))
    assert shared == detect_mode(snap)
    assert f"node n3's iptables-save could not be read (line {bad_line}: unexpected line)" in shared.notes
    assert any("the pod IPs on node n0 (2 pods)" in e for e in shared.evidence)
