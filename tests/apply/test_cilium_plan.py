"""apply planning on Cilium eBPF (examples/aks-cilium-ebpf): the user ConfigMap is planned for the
merger (flavour azure-cilium); the effective config is Cilium's map, and the verdict table follows
Cilium's BPF decision, not iptables rules (there are none)."""

from __future__ import annotations

import os

from clusterkit.cilium import PODSUBNET_DS

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


def test_pod_subnet_ebpf_refuses_to_write_the_aks_owned_config(tmp_path):
    # a plan must neither edit the AKS-owned ConfigMap nor pretend the user one (not mounted) matters
    import pytest
    from clusterkit.akscal import aks, base, configmap

    from masqctl.cluster.gather import gather
    from masqctl.cluster.options import GatherOptions
    from masqctl.errors import ApplyError

    b = base()
    b.aks = aks(pod_subnet=True)
    b.aks["networkProfile"].update({"networkDataplane": "cilium",
                                    "advancedNetworking": {"performance": {"accelerationMode": "BpfVeth"}}})
    b.configmaps.append(configmap("cilium-config", {
        "enable-bpf-masquerade": "true", "enable-ip-masq-agent": "true", "enable-ipv4-masquerade": "true",
        "routing-mode": "native", "ipv4-native-routing-cidr": "10.225.0.0/16"}, labels={"app": "cilium"}))
    b.configmaps.append(configmap("azure-dns-imds-ip-masq-agent-config", {
        "ip-masq-agent": "nonMasqueradeCIDRs:\n- 0.0.0.0/1\n- 128.0.0.0/3\nmasqLinkLocal: true\n"},
        labels={"app": "cilium"}))
    b.daemonsets = [PODSUBNET_DS]
    b.add_user("nonMasqueradeCIDRs:\n  - 10.40.0.0/16\n")
    snap = gather(GatherOptions(bundle=b.write(str(tmp_path / "b"))))
    for request in (ApplyRequest(add=("8.8.8.0/24",)), ApplyRequest(remove=("0.0.0.0/1",)), ApplyRequest(goal="fix")):
        with pytest.raises(ApplyError) as err:
            plan_apply(snap, request)
        assert err.value.code == "E709" and "azure-dns-imds-ip-masq-agent-config" in err.value.message
        assert "not mounted" in err.value.message
