"""examples/aks-cilium-ebpf: inspect and explain give the answers its README promises."""

from __future__ import annotations

import os

import pytest

from masqctl.analysis.explain_cluster import ClusterRequest, explain_snapshot
from masqctl.analysis.inspect import inspect
from masqctl.analysis.mode import detect_mode
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLE = os.path.join(ROOT, "examples", "aks-cilium-ebpf")
API = "orders/orders-api-7d9c6b5f4-x2klm"
N1 = "aks-nodepool1-40213780-vmss000001"


@pytest.fixture(scope="module")
def snap():
    return build_snapshot(read_bundle(BUNDLE))


def test_mode_is_cilium_bpf(snap):
    mode = detect_mode(snap)
    assert (mode.name, mode.snat_by, mode.agent_decides) == ("cilium-ebpf-host-routing", "cilium-bpf", False)
    assert any("azure-ip-masq-merger" in e for e in mode.evidence)
    assert any("cilium-config" in e for e in mode.evidence)


def test_inspect(snap):
    report = inspect(snap)
    codes = {f.code for f in report.findings}
    assert {"MQ015", "MQ024"} <= codes and not codes & {"MQ001", "MQ002", "MQ003", "MQ022"}
    mq024 = next(f for f in report.findings if f.code == "MQ024")
    assert mq024.nodes == (N1,) and "missing 172.16.4.0/24" in mq024.detail
    cfg = report.to_dict()
    assert "azure-cilium" in str(cfg)


@pytest.mark.parametrize("src,dst,masq,seen,words", [
    (API, "10.50.1.1:443", False, "192.168.0.23",
     "map entry 10.50.0.0/16 <- ip-masq-agent (merged) line 2 <- ConfigMap kube-system/azure-ip-masq-agent-config "
     "key ip-masq-agent line 2"),
    ("orders/orders-db-0", "172.16.4.9:443", True, "10.224.0.5", "a pod of this node"),
    (API, "10.224.0.5:10250", True, "10.224.0.4", "enable-remote-node-masquerade"),
    (API, "192.168.1.40:5432", False, "192.168.0.23", "ipv4-native-routing-cidr 192.168.0.0/16"),
    (API, "8.8.8.8:443", True, "10.224.0.4", "a pod of this node"),
])
def test_explain(snap, src, dst, masq, seen, words):
    ex = explain_snapshot(snap, ClusterRequest(src=src, dst=dst))
    base = ex.explanation if hasattr(ex, "explanation") else ex.base
    assert base.evaluation.masqueraded is masq
    assert base.evaluation.source_ip_seen == seen
    assert words in base.summary
    notes = " ".join(base.notes)
    assert "bypassed, not evaluated" in notes and "BPF 1." in notes
    if dst.startswith("172.16.4."):
        assert "disagree" in notes and "MQ024" in notes
