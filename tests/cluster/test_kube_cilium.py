"""Live capture of what Cilium loaded: ``cilium-dbg bpf ipmasq list`` and ``cilium-dbg status`` in
each node's cilium agent pod (container cilium-agent), over the real kubernetes client against the
local API server; written to nodes/<node>/cilium-ipmasq.txt and cilium-status.txt by collect."""

from __future__ import annotations

import os

import pytest
from kubekit import agent_programs, gather

from clusterkit import served
from kubeapi import ExecResult, KubeAPI, Programs
from masqctl.cluster.bundle import read_bundle, write_bundle

LIST = "IP PREFIX/ADDRESS   \n10.50.0.0/16        \n192.168.0.0/16      \n"
STATUS = "Cilium: Ok\nMasquerading:   BPF (ip-masq-agent)   [eth0]   192.168.0.0/16 [IPv4: Enabled, IPv6: Disabled]\n"


def cilium_pod(node: str, i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"cilium-{i}x", "namespace": "kube-system", "labels": {"k8s-app": "cilium"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "cilium",
                                              "uid": "c1", "controller": True}]},
            "spec": {"nodeName": node, "hostNetwork": True,
                     "containers": [{"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.18.4"},
                                    {"name": "azure-ip-masq-merger", "image": "mcr.microsoft.com/containernetworking/"
                                     "azure-ip-masq-merger:v0.0.1"}]},
            "status": {"phase": "Running", "podIP": f"10.224.0.{4 + i}", "podIPs": [{"ip": f"10.224.0.{4 + i}"}],
                       "containerStatuses": [{"name": "cilium-agent", "ready": True, "restartCount": 0,
                                              "state": {"running": {}}}]}}


@pytest.fixture
def api():
    with KubeAPI() as server:
        names = served.small_cluster(server, 2)
        server.on_exec(agent_programs())
        for i, n in enumerate(names):
            server.add(cilium_pod(n, i))
        yield server, names


def test_cilium_dbg_is_read_from_each_cilium_pod(api, tmp_path):
    server, names = api
    calls = []

    def cilium(tool_ok: bool):
        def handler(req):
            calls.append((req.pod, req.container, req.command))
            return Programs({"cilium-dbg": lambda argv: ExecResult(stdout=LIST if argv[1] == "bpf" else STATUS)},
                            shell=False).run(list(req.command)) if tool_ok else \
                Programs({"cilium": lambda argv: ExecResult(stdout=LIST if argv[1] == "bpf" else STATUS)},
                         shell=False).run(list(req.command))
        return handler

    server.on_exec(cilium(True), pod="cilium-0x")
    server.on_exec(cilium(False), pod="cilium-1x")     # an older image: the tool is `cilium`
    raw = gather(server, tmp_path)
    for n in names:
        cap = raw.captures[n]
        assert cap.cilium_ipmasq == LIST and cap.cilium_status == STATUS, cap.errors
        assert "cilium-ipmasq" not in cap.errors
    assert all(c == "cilium-agent" for _, c, _ in calls)
    assert ("cilium-0x", "cilium-agent", ("cilium-dbg", "bpf", "ipmasq", "list")) in calls
    assert ("cilium-1x", "cilium-agent", ("cilium", "status")) in calls
    out = tmp_path / "bundle"
    files = write_bundle(raw, str(out))
    assert f"nodes/{names[0]}/cilium-ipmasq.txt" in files and f"nodes/{names[1]}/cilium-status.txt" in files
    back = read_bundle(str(out))
    assert back.captures[names[0]].cilium_ipmasq == LIST
    assert os.path.exists(out / "nodes" / names[0] / "cilium-status.txt")


def test_a_failing_cilium_dbg_is_recorded_not_fatal(api, tmp_path):
    server, names = api
    server.on_exec(lambda req: ExecResult(stderr="Error: unable to open map: permission denied\n", exit_code=1),
                   pod="cilium-0x")
    raw = gather(server, tmp_path)
    cap = raw.captures[names[0]]
    assert cap.cilium_ipmasq is None and cap.iptables_save
    assert "permission denied" in cap.errors["cilium-ipmasq"] and "cilium-0x" in cap.errors["cilium-ipmasq"]


def test_redaction_keeps_the_cilium_files(tmp_path):
    from masqctl.cluster.raw import RawCluster
    from masqctl.cluster.model import NodeCapture

    raw = RawCluster(source="context x", captures={"n1": NodeCapture(node="n1", cilium_ipmasq=LIST, cilium_status=STATUS)})
    files = write_bundle(raw, str(tmp_path / "r"), redact=True)
    assert "nodes/n1/cilium-ipmasq.txt" in files
    assert read_bundle(str(tmp_path / "r")).captures["n1"].cilium_ipmasq == LIST
