"""Drift against the real kernel: the rendered rules are loaded with iptables-restore into a network
namespace, altered with iptables, dumped with iptables-save, and drift must name exactly the alteration.
And grouping: 300 identical nodes are one group (behaviour, not time)."""

from __future__ import annotations

import pytest
from clusterkit.akscal import BASE_CIDRS, NODES, base, iptables_save
from netns import NetNS, requires_netns

from masqctl.analysis.agentconfig import primary_agent
from masqctl.analysis.drift import drift_report, node_drift
from masqctl.analysis.inspect import inspect
from masqctl.cluster.gather import gather
from masqctl.cluster.model import NodeCapture
from masqctl.cluster.options import GatherOptions

CIDRS = ("10.224.0.0/16", "10.0.0.0/16", "10.224.0.0/12", "192.168.0.0/16")


def snapshot_of(tmp_path, cidrs=CIDRS, link_local=True):
    from clusterkit.akscal import reconciled_text

    b = base()
    b.set_reconciled(reconciled_text(cidrs, link_local=link_local))
    return gather(GatherOptions(bundle=b.write(str(tmp_path / "b"))))


@pytest.fixture
def node():
    ns = NetNS("node")
    yield ns
    ns.delete()


def load_rendered(ns: NetNS, view) -> None:
    fam = view.rules().ipv4
    ns.iptables_restore(fam.payload())
    ns.iptables_restore("*nat\n" + fam.jump.text + "\nCOMMIT\n")


def state_after(snap, node_name: str, text: str):
    snap.captures[node_name] = NodeCapture(node_name, text, via="bundle")
    view = primary_agent(snap)
    return node_drift(snap, node_name, view.rules()).families[0]


@requires_netns
def test_untouched_kernel_rules_are_in_sync(node, tmp_path):
    snap = snapshot_of(tmp_path)
    view = primary_agent(snap)
    load_rendered(node, view)
    st = state_after(snap, NODES[0], node.iptables_save())
    assert st.state == "in-sync", st.describe()


@requires_netns
@pytest.mark.parametrize("alter, expect", [
    (["-D", "IP-MASQ-AGENT", "-d", "10.0.0.0/16", "-m", "comment", "--comment",
      "ip-masq-agent: local traffic is not subject to MASQUERADE", "-j", "RETURN"],
     {"missing_cidrs": ("10.0.0.0/16",)}),
    (["-I", "IP-MASQ-AGENT", "1", "-d", "10.99.0.0/16", "-j", "RETURN"], {"extra_cidrs": ("10.99.0.0/16",)}),
    (["-I", "IP-MASQ-AGENT", "1", "-d", "169.254.0.0/16", "-j", "RETURN"], {"link_local": "unexpected"}),
    (["-A", "POSTROUTING", "-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", "IP-MASQ-AGENT"], {"jumps": 2}),
    (["-D", "POSTROUTING", "-m", "comment", "--comment",
      '"ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom '
      'IP-MASQ-AGENT chain"', "-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", "IP-MASQ-AGENT"], {"jumps": 0}),
    (["-R", "IP-MASQ-AGENT", "5", "-j", "MASQUERADE", "--random-fully"],
     {"final_rule": "final rule differs: live `-A IP-MASQ-AGENT -j MASQUERADE --random-fully`"}),
    (["-A", "IP-MASQ-AGENT", "-d", "10.50.0.0/16", "-j", "RETURN"], {"extra_cidrs": ("10.50.0.0/16",),
                                                                      "order": None}),
])
def test_drift_names_exactly_the_alteration(node, tmp_path, alter, expect):
    snap = snapshot_of(tmp_path)
    load_rendered(node, primary_agent(snap))
    node.run("iptables", "-w", "-t", "nat", *alter)
    st = state_after(snap, NODES[0], node.iptables_save())
    assert st.state == "drift"
    clean = {"missing_cidrs": (), "extra_cidrs": (), "link_local": None, "final_rule": None, "jumps": 1,
             "chain_absent": False, "other_missing": (), "other_extra": ()}
    clean.update(expect)
    for field, value in clean.items():
        if field == "order":
            continue
        assert getattr(st, field) == value, (field, st.describe())


@requires_netns
def test_return_order_does_not_matter_but_a_return_after_masquerade_does(node, tmp_path):
    snap = snapshot_of(tmp_path)
    view = primary_agent(snap)
    fam = view.rules().ipv4
    lines = [r.text for r in fam.rules]
    shuffled = [lines[3], lines[0], lines[2], lines[1], lines[4]]   # the Go agent's random map order
    node.iptables_restore("*nat\n:IP-MASQ-AGENT - [0:0]\n" + "\n".join(shuffled) + "\n" + fam.jump.text + "\nCOMMIT\n")
    assert state_after(snap, NODES[0], node.iptables_save()).state == "in-sync"
    late = [lines[0], lines[1], lines[2], lines[4], lines[3]]
    node.iptables_restore("*nat\n:IP-MASQ-AGENT - [0:0]\n" + "\n".join(late) + "\nCOMMIT\n")
    st = state_after(snap, NODES[0], node.iptables_save())
    assert st.state == "drift" and st.order == "rules after the final MASQUERADE (they never match)"
    assert st.missing_cidrs == () and st.extra_cidrs == ()


@requires_netns
def test_link_local_rule_missing_when_the_config_keeps_it(node, tmp_path):
    masq = snapshot_of(tmp_path / "a")
    load_rendered(node, primary_agent(masq))      # rendered with masqLinkLocal: true (no link-local RETURN)
    keep = snapshot_of(tmp_path / "b", link_local=False)
    st = state_after(keep, NODES[0], node.iptables_save())
    assert st.link_local == "missing" and st.missing_cidrs == () and st.extra_cidrs == ()


def test_300_identical_nodes_are_one_group(tmp_path):
    snap = gather(GatherOptions(bundle=base().write(str(tmp_path / "b"))))
    text = iptables_save(BASE_CIDRS)
    drifted = iptables_save(["10.224.0.0/12"])
    names = [f"aks-pool-{i:04d}" for i in range(300)]
    captures = {n: NodeCapture(n, text) for n in names}
    captures.update({f"aks-odd-{i}": NodeCapture(f"aks-odd-{i}", drifted) for i in range(2)})
    snap.captures.clear()
    snap.captures.update(captures)
    view = primary_agent(snap)
    report = drift_report(snap, sorted(captures) + ["aks-gone"], view.rules(), view.chain)
    summary = [(g.state, len(g.nodes)) for g in report.groups]
    assert summary == [("drift", 2), ("unknown", 1), ("in-sync", 300)]
    assert report.groups[0].summary == "missing RETURN for 10.0.0.0/16"


def test_inspect_groups_many_nodes_in_one_finding(tmp_path):
    b = base()
    for i in range(3, 40):
        from clusterkit.akscal import agent_pod, node as node_doc

        name = f"aks-nodepool1-36628055-vmss{i:06d}"
        b.nodes.append(node_doc(min(i, 200), name))
        b.pods.append(agent_pod(i, name))
        b.captures[name] = {"iptables-save.txt": iptables_save(["10.224.0.0/12"])}
    report = inspect(gather(GatherOptions(bundle=b.write(str(tmp_path / "b")))))
    mq004 = [f for f in report.findings if f.code == "MQ004"]
    assert len(mq004) == 1 and len(mq004[0].nodes) == 37
