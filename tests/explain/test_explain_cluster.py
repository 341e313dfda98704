"""`masqctl explain` on a cluster bundle: SRC as pod name or IP, the node's capture, ConfigMap
provenance, what DST is, whether the reply comes back, IMDS/wireserver, what-if without a capture,
and clear errors. Bundles are written as native documents (clusterkit.seed)."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
from clusterkit.seed import KUBENET_NODES, SPOKE_NODES, kubenet, spoke
from test_explain_cli import SCHEMA
from errordoc import no_result

USER_HUB = "nonMasqueradeCIDRs:\n  - 10.42.0.0/16\n"

PLACE = {"type": "object", "required": ["kind", "label", "cidr"],
         "properties": {"kind": {"enum": ["node-subnet", "pod-subnet", "vnet", "peered-vnet", "service-cidr",
                                          "pod-cidr", "node", "pod", "imds", "wireserver", "link-local", "loopback",
                                          "private", "internet"]},
                        "label": {"type": "string"}, "cidr": {"type": ["string", "null"]}}}
CLUSTER_SCHEMA = {
    "allOf": [SCHEMA, {
        "type": "object",
        "required": ["node", "source", "what_if", "rules_from", "mode", "destination_places", "reply", "provenance"],
        "properties": {
            "node": {"type": "string"},
            "what_if": {"type": "boolean"},
            "rules_from": {"type": "string"},
            "source": {"type": "object", "required": ["ip", "kind", "node", "pod"],
                       "properties": {"kind": {"enum": ["pod", "host", "address"]}}},
            "mode": {"type": "object", "required": ["name", "snat_by", "agent_decides", "pod_ips_routable_outside",
                                                    "evidence", "missing"]},
            "destination_places": {"type": "array", "minItems": 1, "items": PLACE},
            "reply": {"type": "object", "required": ["comes_back", "to", "reason"],
                      "properties": {"comes_back": {"type": ["boolean", "null"]}, "reason": {"type": "string"}}},
            "provenance": {"type": ["object", "null"], "required": ["kind", "text", "sources"],
                           "properties": {"sources": {"type": "array", "items": {"type": "string"}}}},
        }}]}


def masqctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          timeout=60)


def as_json(*args: str) -> dict:
    r = masqctl("explain", *args, "-o", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, CLUSTER_SCHEMA)
    return doc


# --- the hub-spoke situation (seed 000) ----------------------------------------------------------------

def test_hub_spoke_before_the_user_configmap_is_masqueraded_to_the_node_ip(tmp_path):
    bundle = spoke(tmp_path / "b")
    doc = as_json("shop/client-7d9f", "10.42.1.1:443", "--bundle", bundle)
    assert doc["masqueraded"] is True and doc["source_ip_seen"] == "10.40.0.4"
    assert doc["node"] == SPOKE_NODES[0] and doc["what_if"] is False
    assert doc["source"] == {"ip": "10.40.0.12", "port": None, "kind": "pod", "node": SPOKE_NODES[0],
                             "pod": "shop/client-7d9f", "resolved": f"pod shop/client-7d9f on node {SPOKE_NODES[0]}"}
    assert doc["deciding_rule"]["chain"] == "IP-MASQ-AGENT" and doc["deciding_rule"]["index"] == 4
    assert doc["provenance"]["kind"] == "masquerade"
    assert "10.40.0.0/17, 10.0.0.0/16, 10.40.0.0/15" in doc["provenance"]["text"]
    assert doc["destination_places"][0]["kind"] == "peered-vnet"
    assert doc["destination_places"][0]["peering"]["state"] == "Connected"
    assert doc["reply"]["comes_back"] is True and doc["reply"]["to"] == "10.40.0.4"
    assert doc["mode"]["name"] == "azure-cni-node-subnet" and doc["mode"]["pod_ips_routable_outside"] is True
    # the fix the seed blog applied, named exactly
    assert any("add 10.42.0.0/16" in n and "ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent" in n
               for n in doc["notes"])


def test_hub_spoke_after_the_user_configmap_keeps_the_pod_ip_and_names_the_configmap_line(tmp_path):
    bundle = spoke(tmp_path / "b", user=USER_HUB)
    doc = as_json("shop/client-7d9f", "10.42.1.1:443", "--bundle", bundle)
    assert doc["masqueraded"] is False and doc["source_ip_seen"] == "10.40.0.12"
    assert doc["provenance"]["sources"] == ["ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 2"]
    assert doc["provenance"]["cidr"] == "10.42.0.0/16"
    assert "ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 2" in doc["summary"]
    assert doc["reply"]["comes_back"] is True and "peering" in doc["reply"]["reason"]
    # the human output says the same
    r = masqctl("explain", "shop/client-7d9f", "10.42.1.1:443", "--bundle", bundle)
    text = " ".join(r.stdout.split())
    assert r.returncode == 0 and "is not masqueraded" in text
    assert "key ip-masq-agent line 2" in text and "reply comes back" in text


def test_pod_by_ip_and_by_name_give_the_same_answer(tmp_path):
    bundle = spoke(tmp_path / "b", user=USER_HUB)
    by_name = as_json("shop/client-7d9f", "10.42.1.1", "--bundle", bundle)
    by_ip = as_json("10.40.0.12", "10.42.1.1", "--bundle", bundle)
    for key in ("masqueraded", "source_ip_seen", "deciding_rule", "node", "provenance", "reply", "destination_places"):
        assert by_name[key] == by_ip[key], key
    assert by_ip["source"]["resolved"].startswith("pod IP of shop/client-7d9f")


def test_a_disconnected_peering_means_no_reply(tmp_path):
    bundle = spoke(tmp_path / "b", user=USER_HUB, peering_state="Disconnected")
    doc = as_json("shop/client-7d9f", "10.42.1.1", "--bundle", bundle)
    assert doc["masqueraded"] is False and doc["reply"]["comes_back"] is False
    assert "Disconnected" in doc["reply"]["reason"]


def test_a_cidr_in_the_chain_but_not_in_the_config_is_drift(tmp_path):
    bundle = spoke(tmp_path / "b", node_cidrs=["10.40.0.0/17", "10.0.0.0/16", "10.40.0.0/15", "10.42.0.0/16"])
    doc = as_json("shop/client-7d9f", "10.42.1.1", "--bundle", bundle)
    assert doc["masqueraded"] is False and doc["provenance"]["kind"] == "drift"
    assert "not in the effective config" in doc["provenance"]["text"]


# --- overlay / kubenet: the reply will not come back --------------------------------------------------

@pytest.mark.parametrize("overlay", [False, True], ids=["kubenet", "overlay"])
def test_pod_cidr_seen_outside_the_cluster_gets_no_reply(tmp_path, overlay):
    # someone added the VNet space to the user ConfigMap: pod IPs leave unmasqueraded, but only the
    # cluster routes 10.244.0.0/16
    bundle = kubenet(tmp_path / "b", user="nonMasqueradeCIDRs:\n  - 10.224.0.0/12\n", overlay=overlay)
    doc = as_json("default/web-0", "10.230.0.5:5432", "--bundle", bundle)
    assert doc["masqueraded"] is False and doc["source_ip_seen"] == "10.244.0.17"
    assert doc["mode"]["name"] == ("azure-cni-overlay" if overlay else "kubenet")
    assert doc["reply"]["comes_back"] is False
    assert "the reply will not come back" in doc["reply"]["reason"]
    assert "the reply will not come back" in doc["summary"]
    assert doc["provenance"]["sources"] == ["ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 2"]
    # without the user ConfigMap the same flow is masqueraded and the reply returns to the node
    doc = as_json("default/web-0", "10.230.0.5:5432", "--bundle", kubenet(tmp_path / "c", overlay=overlay))
    assert doc["masqueraded"] is True and doc["source_ip_seen"] == "10.224.0.4"
    assert doc["reply"]["comes_back"] is True


# --- IMDS and wireserver ---------------------------------------------------------------------------

def test_imds_is_reached_masqueraded_and_refuses_a_pod_ip(tmp_path):
    doc = as_json("shop/client-7d9f", "169.254.169.254:80", "--bundle", spoke(tmp_path / "b"))
    assert doc["masqueraded"] is True and doc["source_ip_seen"] == "10.40.0.4"
    assert doc["destination_places"][0]["kind"] == "imds"
    assert doc["reply"]["comes_back"] is True and "own address" in doc["reply"]["reason"]
    assert any("IMDS" in n and "only the VM's own address" in n for n in doc["notes"])
    # a node whose chain still RETURNs link-local (stale rules from masqLinkLocal: false)
    bad = spoke(tmp_path / "c", node_cidrs=["169.254.0.0/16", "10.40.0.0/17", "10.0.0.0/16", "10.40.0.0/15"])
    doc = as_json("shop/client-7d9f", "169.254.169.254:80", "--bundle", bad)
    assert doc["masqueraded"] is False and doc["reply"]["comes_back"] is False
    assert "IMDS refuses it" in doc["summary"]
    assert doc["provenance"]["kind"] == "drift"


def test_wireserver(tmp_path):
    doc = as_json("default/web-0", "168.63.129.16:53", "--proto", "udp", "--bundle", kubenet(tmp_path / "b"))
    assert doc["masqueraded"] is True and doc["destination_places"][0]["kind"] == "wireserver"
    assert doc["reply"]["comes_back"] is True
    assert any("168.63.129.16 is Azure DNS" in n for n in doc["notes"])
    bad = kubenet(tmp_path / "c", user="nonMasqueradeCIDRs:\n  - 168.63.129.16/32\n")
    doc = as_json("default/web-0", "168.63.129.16:53", "--proto", "udp", "--bundle", bad)
    assert doc["masqueraded"] is False and doc["reply"]["comes_back"] is False
    assert "VNet addresses only" in doc["reply"]["reason"]


# --- what-if, hosts, services ----------------------------------------------------------------------

def test_a_node_without_capture_is_a_labelled_what_if(tmp_path):
    bundle = spoke(tmp_path / "b", user=USER_HUB)
    doc = as_json("shop/cart-5c6b", "10.42.1.1", "--bundle", bundle)
    assert doc["node"] == SPOKE_NODES[1] and doc["what_if"] is True
    assert doc["rules_from"].startswith("what-if")
    assert doc["summary"].startswith("WHAT-IF (no capture of the node)")
    assert any(n.startswith("WHAT-IF") and SPOKE_NODES[1] in n for n in doc["notes"])
    assert doc["masqueraded"] is False and doc["source_ip_seen"] == "10.40.0.40"
    assert doc["deciding_rule"]["origin"]["source"] == ("ConfigMap kube-system/azure-ip-masq-agent-config key "
                                                        "ip-masq-agent line 2")
    assert doc["provenance"]["sources"] == ["ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 2"]
    r = masqctl("explain", "shop/cart-5c6b", "10.42.1.1", "--bundle", bundle)
    assert "WHAT-IF" in r.stdout
    # once the node is captured, the same question is answered from its rules
    doc = as_json("shop/cart-5c6b", "10.42.1.1", "--bundle", spoke(tmp_path / "c", user=USER_HUB,
                                                                     capture_second=True))
    assert doc["what_if"] is False and doc["deciding_rule"].get("origin") is None


def test_host_network_source_walks_nat_output(tmp_path):
    doc = as_json("kube-system/azure-ip-masq-agent-x1", "10.42.1.1", "--bundle", spoke(tmp_path / "b"))
    assert doc["from_host"] is True and doc["source"]["kind"] == "host"
    assert doc["trace"][0]["hook"] == "OUTPUT"
    # the node's own address is from the host too
    doc = as_json("10.40.0.4", "8.8.8.8", "--bundle", spoke(tmp_path / "c"))
    assert doc["from_host"] is True and doc["reply"]["comes_back"] is True


def test_destination_as_a_pod_and_the_service_cidr(tmp_path):
    bundle = spoke(tmp_path / "b")
    doc = as_json("shop/client-7d9f", "shop/cart-5c6b", "--bundle", bundle)
    assert doc["dst"] == "10.40.0.40" and doc["masqueraded"] is False
    assert doc["destination_places"][0]["kind"] == "pod"
    doc = as_json("shop/client-7d9f", "10.0.0.10:53", "--bundle", bundle)
    assert doc["destination_places"][0]["kind"] == "service-cidr" and doc["masqueraded"] is False


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, code, words", [
    (["shop/nosuch", "10.42.1.1"], "E217", ["shop/nosuch", "not in the snapshot"]),
    (["shop/", "10.42.1.1"], "E217", ["SRC"]),
    (["203.0.113.77", "10.42.1.1"], "E219", ["203.0.113.77", "--node"]),
    (["shop/client-7d9f", "10.42.1.1", "--node", "aks-nope"], "E221", ["aks-nope"]),
    (["shop/client-7d9f", "10.42.1.1", "--iptables", "/dev/null"], "E226", ["--iptables"]),
    (["shop/client-7d9f", "nope"], "E210", ["DST"]),
    (["shop/client-7d9f", "fd00::1"], "E218", ["IPv6"]),
])
def test_errors_name_the_input(tmp_path, args, code, words):
    r = masqctl("explain", *args, "--bundle", spoke(tmp_path / "b"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert code in r.stderr and "Traceback" not in r.stderr and no_result(r)
    for w in words:
        assert w in r.stderr


def test_no_capture_and_no_agent_has_nothing_to_evaluate(tmp_path):
    bundle = spoke(tmp_path / "b")
    (tmp_path / "b" / "daemonsets.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n")
    r = masqctl("explain", "shop/cart-5c6b", "10.42.1.1", "--bundle", bundle)
    assert r.returncode == 2 and "E223" in r.stderr and SPOKE_NODES[1] in r.stderr


def test_src_ip_in_a_node_pod_cidr_finds_the_node(tmp_path):
    # a pod the bundle does not list (pods.yaml limited), in node 1's pod CIDR: evaluated there (what-if)
    doc = as_json("10.244.1.77", "8.8.8.8", "--bundle", kubenet(tmp_path / "b"))
    assert doc["node"] == KUBENET_NODES[1] and "pod CIDR" in doc["source"]["resolved"]
