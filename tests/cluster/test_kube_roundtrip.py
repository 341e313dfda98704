"""Live → bundle → snapshot: what gather_kube returns, written as a bundle and read back, builds
the same snapshot as the live documents (only ``source`` differs: it names the bundle)."""

from __future__ import annotations

import dataclasses

import pytest

from kubekit import AKS_NAT, IP_ADDR, agent_programs, gather

from clusterkit import served
from kubeapi import APIError, ExecResult, KubeAPI, Programs, forbidden_message
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle, write_bundle

N0, N1, N2 = (f"aks-nodepool1-{i:08d}" for i in range(3))


@pytest.mark.parametrize("workloads", [True, False])
def test_live_gathering_round_trips_through_a_bundle(tmp_path, workloads):
    with KubeAPI() as api:
        served.small_cluster(api, 3, windows=("akswin000000",), agent_nodes=(N0, N1),
                              user_config="nonMasqueradeCIDRs:\n  - 10.0.0.0/8\nmasqLinkLocal: true\n")
        api.add(served.configmap("ip-masq-agent", {"config": "nonMasqueradeCIDRs: []\n"}, namespace="default"))
        api.on_exec(agent_programs(ip=IP_ADDR), node=N0)
        api.on_exec(lambda req: ExecResult(stderr="error: unable to upgrade connection\n", exit_code=1), node=N1)
        api.on_exec(Programs({"iptables-save": AKS_NAT, "ip6tables-save": "", "ip": IP_ADDR}, chroot=True), node=N2)

        def no_cluster_pods(req, server):   # the optional workload read is refused: recorded as missing
            if req.verb == "list" and req.resource == "pods" and req.namespace is None:
                raise APIError(403, "Forbidden", forbidden_message("list", "pods", user=server.user))
        if not workloads:
            api.hooks.append(no_cluster_pods)
        raw = gather(api, tmp_path, debug_pod=True)

    live = build_snapshot(raw)
    assert live.captures[N0].iptables_save == AKS_NAT and live.captures[N2].via.startswith("debug-pod/")
    assert live.captures[N1].errors["node"].startswith("the capture command failed (exit 1)")
    assert [cm.ref for cm in live.configmaps] and live.configmap("azure-ip-masq-agent-config") is not None
    assert [d.name for d in live.daemonsets] == ["azure-ip-masq-agent"] and len(live.pods) == 2
    assert ("pods/workloads" in live.missing) is not workloads
    assert sum(w.namespace == "default" for w in live.workloads) == (6 if workloads else 0)

    out = tmp_path / "bundle"
    write_bundle(raw, str(out))
    back = read_bundle(str(out))
    offline = build_snapshot(back)
    assert offline.source == f"bundle {out}"
    assert dataclasses.replace(offline, source=live.source) == live
