"""apply planning on Cilium eBPF (examples/aks-cilium-ebpf): the user ConfigMap is planned for the
merger (flavour azure-cilium); the effective config is Cilium's map, and the verdict table follows
Cilium's BPF decision, not iptables rules (there are none)."""

from __future__ import annotations

import os

from masqctl.analysis.plan import ApplyRequest, plan_apply
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle

BUNDLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "examples", "aks-cilium-ebpf")


def test_add_a_cidr_for_cilium():
    snap = build_snapshot(read_bundle(BUNDLE))
    plan = plan_apply(snap, ApplyRequest(add=("8.8.8.0/24",)))
    assert plan.before.options.flavor == "azure-cilium"
    assert "8.8.8.0/24" in plan.after.config.cidrs() and "8.8.8.0/24" not in plan.before.config.cidrs()
    assert plan.rules_before() is None and plan.rules_after() is None
    internet = next(f for f in plan.flows if f.dst == "8.8.8.8")
    assert (internet.before, internet.after) == (True, False)
    service = next(f for f in plan.flows if f.kind == "service-cidr")
    assert service.before is None and "backend" in (service.before_rule or "")
