"""explain across clusters on examples/hub-spoke-fleet's externalTrafficPolicy Local Service
(audit/audit-api): the hub's captures hold kube-proxy's Local rules as it writes them today
(KUBE-EXT → KUBE-SVL on the node with the endpoint; on the other node no KUBE-SVL, and filter
KUBE-EXTERNAL-SERVICES drops the load-balancer IP and the node port, "… has no local endpoints":
kubernetes/kubernetes pkg/proxy/iptables/proxier.go, syncProxyRules, hasExternalEndpoints and
externalTrafficFilterTarget), so the answer is exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLEET = os.path.join(ROOT, "examples", "hub-spoke-fleet")
POD = "orders/orders-api-5b7c9d8f6-kq2xv"
HUB0, HUB1 = "aks-system-38217465-vmss000000", "aks-system-38217465-vmss000001"


def explain(dst: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "explain", POD, dst, "--bundle",
                        os.path.join(FLEET, "spoke1"), "--bundle", os.path.join(FLEET, "hub"), "-o", "json"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_local_service_keeps_the_spoke_pod_ip_on_the_node_with_its_endpoint():
    doc = explain("audit/audit-api:https")
    assert doc["destination"]["kind"] == "lb" and doc["destination"]["dst"] == "10.42.1.11:443"
    stages = [(h["stage"], h["node"]) for h in doc["path"]]
    assert stages == [("egress", "aks-system-20931744-vmss000000"), ("network", None), ("ingress", HUB1),
                      ("endpoint", HUB1)]
    ingress = doc["path"][2]
    assert ingress["masqueraded"] is False
    assert any("only the nodes with a ready endpoint of audit/audit-api" in n for n in ingress["notes"])
    seen = doc["seen_by_destination"]
    assert seen["ip"] == "10.40.0.9" and seen["endpoint"] == "audit/audit-api-5f7b9c6d8-q4wzn"
    assert doc["path"][3]["dst"] == "10.42.0.42:8443"


def test_the_node_port_on_a_node_without_an_endpoint_is_dropped():
    doc = explain("10.42.0.4:31226")          # node 0: no local endpoint of audit/audit-api
    ingress = [h for h in doc["path"] if h["stage"] == "ingress"]
    assert [h["node"] for h in ingress] == [HUB0]
    assert not [h for h in doc["path"] if h["stage"] == "endpoint"]
    seen = doc["seen_by_destination"]
    assert seen["ip"] is None and seen["candidates"] == []
    assert "nothing arrives" in seen["why"] and "dropped by KUBE-EXTERNAL-SERVICES rule 2" in seen["why"]


def test_the_node_port_on_the_node_with_the_endpoint_keeps_the_source():
    doc = explain("10.42.0.35:31226")
    assert doc["seen_by_destination"]["ip"] == "10.40.0.9"
    assert doc["seen_by_destination"]["endpoint"] == "audit/audit-api-5f7b9c6d8-q4wzn"
