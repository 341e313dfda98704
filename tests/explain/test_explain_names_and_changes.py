"""explain on a cluster takes a node's name as SRC or DST (its InternalIP from nodes.yaml), and
evaluates a planned change (`--add CIDR`, `--with-change FILE`) as apply plans it: the node's
captured rules with the agent's chain as the planned config renders it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB = os.path.join(ROOT, "examples", "hub-spoke")
NODE0, NODE1 = "aks-system-20931744-vmss000000", "aks-system-20931744-vmss000001"
POD = "orders/orders-api-5b7c9d8f6-kq2xv"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False, env={**os.environ, "COLUMNS": "100"})


def as_json(*args: str) -> dict:
    r = run("explain", *args, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_node_name_is_its_internal_ip():
    by_name = as_json(POD, f"{NODE1}:10250", "--bundle", HUB)
    by_ip = as_json(POD, "10.40.0.35:10250", "--bundle", HUB)
    assert by_name["dst"] == "10.40.0.35" and by_name["dst_port"] == 10250
    for key in ("masqueraded", "source_ip_seen", "deciding_rule", "node", "reply", "destination_places"):
        assert by_name[key] == by_ip[key], key
    # the resolution is stated on the path, where the walk starts
    egress = by_name["path"][0]
    assert egress["stage"] == "egress"
    assert f"node {NODE1} resolved to its InternalIP 10.40.0.35" in egress["notes"]
    assert not any("resolved to its InternalIP" in n for n in by_ip["path"][0]["notes"])
    src = as_json(NODE0, "10.42.1.10", "--bundle", HUB)
    assert src["src"] == "10.40.0.4" and src["from_host"] is True and src["node"] == NODE0
    assert src["source"]["kind"] == "host" and src["source"]["node"] == NODE0


def test_an_unknown_name_is_still_an_input_error():
    r = run("explain", "no-such-node", "10.42.1.10", "--bundle", HUB)
    assert r.returncode == 2 and "E210" in r.stderr


def test_an_unknown_destination_name_says_which_names_are_taken():
    r = run("explain", POD, "nope.example.com", "--bundle", HUB, "-o", "json")
    doc = json.loads(r.stdout)["error"]
    assert r.returncode == 2 and doc["code"] == "E210" and doc["input"] == "DST"
    assert "nor a node, pod or Service of the snapshot" in doc["message"]
    assert "NAMESPACE/SERVICE[:PORT]" in doc["hint"] and "DNS name" in doc["hint"]


def test_offline_an_address_is_needed_and_the_hint_says_where_names_work():
    dump = os.path.join(HUB, "nodes", NODE0, "iptables-save.txt")
    r = run("explain", "10.40.0.9", "orders-api.orders", "--iptables", dump)
    assert r.returncode == 2 and "E210" in r.stderr and "--bundle" in r.stderr


def test_add_evaluates_the_planned_chain_on_the_captured_rules():
    before = as_json(POD, "10.42.1.10:443", "--bundle", HUB)
    after = as_json(POD, "10.42.1.10:443", "--bundle", HUB, "--add", "10.42.0.0/15")
    assert before["masqueraded"] is True and before["change"] is None
    assert after["masqueraded"] is False and after["source_ip_seen"] == "10.40.0.9"
    assert after["provenance"]["sources"] == ["ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent "
                                              "line 2"]
    assert after["change"]["request"] == "--add 10.42.0.0/15" and after["change"]["action"] == "create"
    assert after["summary"].startswith("WITH THE CHANGE (--add 10.42.0.0/15): ")
    # the rest of the node's rules are the captured ones: kube-proxy's chains are still walked
    assert any(s["chain"] == "KUBE-POSTROUTING" for s in after["trace"])
    human = run("explain", POD, "10.42.1.10:443", "--bundle", HUB, "--add", "10.42.0.0/15").stdout
    assert human.startswith("WITH THE CHANGE (--add 10.42.0.0/15): ")


def test_with_change_takes_the_manifest_apply_prints_or_the_config_text(tmp_path):
    manifest = run("apply", "--add", "10.42.0.0/15", "--bundle", HUB, "-o", "yaml").stdout
    (tmp_path / "cm.yaml").write_text(manifest)
    (tmp_path / "config.yaml").write_text("nonMasqueradeCIDRs:\n  - 10.42.0.0/16\n")
    a = as_json(POD, "10.42.1.10", "--bundle", HUB, "--with-change", str(tmp_path / "cm.yaml"))
    b = as_json(POD, "10.42.1.10", "--bundle", HUB, "--with-change", str(tmp_path / "config.yaml"))
    assert a["masqueraded"] is False and a["provenance"]["cidr"] == "10.42.0.0/15"
    assert b["masqueraded"] is False and b["provenance"]["cidr"] == "10.42.0.0/16"
    assert b["change"]["apply"] == f"masqctl apply --from-file {tmp_path / 'config.yaml'}"
    other = manifest.replace("name: azure-ip-masq-agent-config", "name: something-else")
    (tmp_path / "other.yaml").write_text(other)
    r = run("explain", POD, "10.42.1.10", "--bundle", HUB, "--with-change", str(tmp_path / "other.yaml"))
    assert r.returncode == 2 and "E715" in r.stderr


@pytest.mark.parametrize("args, code", [
    (["--add", "10.0.0.1/8"], "E105"),                  # the agent would refuse it, as apply says
    (["--add", "10.1.0.0/16", "--with-change", "x.yaml"], "E717"),
    (["--with-change", "/nonexistent.yaml"], "E715"),
])
def test_a_change_the_agent_or_the_flags_refuse(args, code):
    r = run("explain", POD, "10.42.1.10", "--bundle", HUB, *args)
    assert r.returncode == 2 and code in r.stderr, r.stderr


def test_a_change_needs_a_cluster():
    dump = os.path.join(HUB, "nodes", NODE0, "iptables-save.txt")
    r = run("explain", "10.40.0.9", "10.42.1.10", "--iptables", dump, "--add", "10.42.0.0/15")
    assert r.returncode == 2 and "E716" in r.stderr and "--config-dir" in r.stderr


def test_a_node_name_of_another_cluster_is_its_internal_ip():
    fleet = os.path.join(ROOT, "examples", "hub-spoke-fleet")
    hub_node = "aks-system-38217465-vmss000000"
    doc = as_json(POD, f"{hub_node}:10250", "--bundle", os.path.join(fleet, "spoke1"),
                  "--bundle", os.path.join(fleet, "hub"))
    assert doc["destination"]["kind"] == "node" and doc["destination"]["dst"] == "10.42.0.4:10250"
    assert f"node {hub_node} resolved to its InternalIP 10.42.0.4" in doc["path"][0]["notes"]
