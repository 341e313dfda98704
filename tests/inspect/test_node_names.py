"""A capture of a node that nodes.yaml does not list (deleted, renamed, a bundle put together by
hand): reported in human and JSON output, and analysed as a node like any other."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
from clusterkit.akscal import NODES, base, iptables_save

from masqctl.analysis.explain_cluster import ClusterRequest, explain_snapshot
from masqctl.analysis.inspect import inspect
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions, NodeSelection

SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs",
                      "inspect.schema.json")
RENAMED = "aks-nodepool1-36628055-vmss00000z"


def load(bundle, tmp_path, name="b"):
    return gather(GatherOptions(bundle=bundle.write(str(tmp_path / name))))


def unlisted(tmp_path, drift: bool = True):
    """NODES[2] is captured (with a drifted chain) but gone from nodes.yaml."""
    b = base()
    b.nodes = b.nodes[:2]
    if drift:
        b.captures[NODES[2]]["iptables-save.txt"] = iptables_save(["10.224.0.0/12"])
    return b


def cli(*args):
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def test_an_unlisted_capture_is_a_node_and_its_drift_is_reported(tmp_path):
    report = inspect(load(unlisted(tmp_path), tmp_path))
    assert NODES[2] in report.nodes_in_scope
    mq004 = [f for f in report.findings if f.code == "MQ004"]
    assert mq004 and mq004[0].nodes == (NODES[2],)
    assert report.unlisted_captures == (NODES[2],) and report.uncaptured_nodes == ()
    assert any(NODES[2] in n and "nodes.yaml does not list" in n for n in report.notes)
    assert report.exit_code == 1


def test_the_mismatch_is_in_human_and_json_output(tmp_path):
    path = unlisted(tmp_path, drift=False).write(str(tmp_path / "b"))
    human = cli("inspect", "--bundle", path)
    assert human.returncode == 0, human.stderr
    text = " ".join(human.stdout.split())
    assert f"note: nodes/{NODES[2]}: a capture of a node nodes.yaml does not list" in text
    assert "3 node(s) in sync" in text
    doc = json.loads(cli("inspect", "--bundle", path, "-o", "json").stdout)
    with open(SCHEMA) as fh:
        jsonschema.validate(doc, json.load(fh))
    assert doc["node_names"]["captured_not_listed"] == [NODES[2]]
    assert doc["node_names"]["listed_not_captured"] == []
    assert doc["summary"]["nodes"] == 3
    assert any("nodes.yaml does not list" in n for n in doc["notes"])


def test_a_renamed_node_names_both_sides(tmp_path):
    b = base()
    b.nodes[2]["metadata"]["name"] = RENAMED
    report = inspect(load(b, tmp_path))
    assert set(report.nodes_in_scope) == {*NODES, RENAMED}
    in_sync = [g for g in report.drift.groups if g.state == "in-sync"][0]
    assert NODES[2] in in_sync.nodes                    # its folder is used, not "not captured"
    assert report.unlisted_captures == (NODES[2],) and report.uncaptured_nodes == (RENAMED,)
    assert any(RENAMED in n and "name its folder nodes/<name>" in n for n in report.mismatch)
    doc = report.to_dict()
    assert doc["node_names"] == {"captured_not_listed": [NODES[2]], "listed_not_captured": [RENAMED],
                                 "notes": list(report.mismatch)}


def test_no_mismatch_no_note(tmp_path):
    report = inspect(load(base(), tmp_path))
    assert report.mismatch == () and report.to_dict()["node_names"]["captured_not_listed"] == []


def test_nodes_selection_knows_the_unlisted_capture(tmp_path):
    snap = load(unlisted(tmp_path), tmp_path)
    assert inspect(snap, nodes=NodeSelection(names=(NODES[2],))).nodes_in_scope == (NODES[2],)
    by_label = inspect(snap, nodes=NodeSelection(selector="agentpool=nodepool1"))
    assert NODES[2] not in by_label.nodes_in_scope
    assert any(NODES[2] in n and "labels are not known" in n for n in by_label.notes)


def test_explain_on_the_unlisted_node_uses_its_capture_and_says_so(tmp_path):
    snap = load(unlisted(tmp_path), tmp_path)
    doc = explain_snapshot(snap, ClusterRequest(src="10.224.1.20", dst="10.1.2.3:443", node=NODES[2])).to_dict()
    assert doc["rules_from"].startswith(f"the iptables-save captured on node {NODES[2]}")
    assert any(NODES[2] in n and "nodes.yaml does not list" in n for n in doc["notes"])
    assert not any(n.startswith("WHAT-IF") for n in doc["notes"])
    assert doc["masqueraded"] is None               # its addresses are not known (no Node object): not guessed
    doc = explain_snapshot(snap, ClusterRequest(src="10.224.1.20", dst="10.1.2.3:443", node=NODES[2],
                                                local_addresses=["10.224.0.6/16@eth0"], node_ip="10.224.0.6")).to_dict()
    assert doc["masqueraded"] is True and doc["source_ip_seen"] == "10.224.0.6"
