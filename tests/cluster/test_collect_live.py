"""`masqctl collect` on a live cluster: the real CLI and kubernetes client against the local API server."""

from __future__ import annotations

import json
import os

from clusterkit.bundle import run_cli
from clusterkit import served
from clusterkit.objects import endpointslice, service
from kubeapi import ExecResult, KubeAPI
from kubekit import AKS_NAT, agent_programs

from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle

N0, N1 = (f"aks-nodepool1-{i:08d}" for i in range(2))


def test_collect_writes_what_the_cluster_holds(tmp_path):
    out = tmp_path / "bundle"
    with KubeAPI() as api:
        served.small_cluster(api, 2)
        api.add(service("ingress-nginx-controller", "ingress-nginx", type="LoadBalancer", cluster_ip="10.0.12.34",
                        ports=(("https", "TCP", 443, "https", 31443),), lb_ips=("10.224.1.10",)))
        api.add(endpointslice("ingress-nginx-controller", "ingress-nginx", ports=(("https", 443, "TCP"),),
                              endpoints=(("10.100.0.10", N0, "ingress-nginx-controller-0", True),)))
        api.on_exec(agent_programs(), node=N0)
        api.on_exec(lambda req: ExecResult(stderr="error: unable to upgrade connection\n", exit_code=1), node=N1)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        r = run_cli("collect", "--kubeconfig", str(kubeconfig), "--no-azure", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{out}\n"
    assert "iptables from 1 node" in r.stderr and f"{N1} node:" in r.stderr and "azure: not gathered" in r.stderr
    snap = build_snapshot(read_bundle(str(out)))
    assert snap.captures[N0].iptables_save == AKS_NAT and snap.captures[N0].via.startswith("agent-pod/")
    assert snap.captures[N1].iptables_save is None and "exit 1" in snap.captures[N1].errors["node"]
    assert [d.name for d in snap.daemonsets] == ["azure-ip-masq-agent"] and len(snap.nodes) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["collected_at"].endswith("Z") and manifest["source"] == "context test"
    assert manifest["failed"][N1]["node"].startswith("the capture command failed")
    assert snap.missing["azure"] == "not gathered (--no-azure)"
    assert (out / "services.yaml").exists() and (out / "endpointslices.yaml").exists()
    assert [s.ref for s in snap.services if s.lb_ingress_ips] == ["ingress-nginx/ingress-nginx-controller"]
    assert snap.endpointslices[0].endpoints[0].node_name == N0
    assert manifest["collected"]["services"] == 1 and manifest["collected"]["endpointslices"] == 1


def test_collect_refuses_a_full_output_folder_before_reading_the_cluster(tmp_path):
    out = tmp_path / "full"
    out.mkdir()
    (out / "x").write_text("x")
    with KubeAPI() as api:
        served.small_cluster(api, 1)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        r = run_cli("collect", "--kubeconfig", str(kubeconfig), "--no-azure", "-o", str(out))
        assert api.count("GET", r".") == 0
    assert r.returncode == 2 and "E326" in r.stderr and os.listdir(out) == ["x"]
