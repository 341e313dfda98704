"""--debug-pod: a short-lived capture pod on nodes without a usable agent pod, always deleted —
after a capture, after a failed capture, when it cannot start, and when the run is interrupted
(SIGINT or SIGTERM to a real process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from kubekit import AKS_NAT, IP_ADDR, agent_programs, gather

from clusterkit import served
from kubeapi import HANG, ExecResult, KubeAPI, Programs
from masqctl.cluster.options import NodeSelection

N0, N1 = "aks-nodepool1-00000000", "aks-nodepool1-00000001"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def api():
    """Two nodes; only N0 has an agent pod. On N1 the host (through chroot) has the full tools."""
    with KubeAPI() as server:
        served.small_cluster(server, 2, workloads_per_node=0, agent_nodes=(N0,))
        server.on_exec(agent_programs(), node=N0)
        yield server


def host_programs(**overrides) -> Programs:
    return Programs({"iptables-save": AKS_NAT.replace("(nf_tables) ", ""), "ip6tables-save": "", "ip": IP_ADDR,
                     **overrides}, chroot=True)


def debug_pods(api: KubeAPI) -> list[dict]:
    return [p for p in api.objects("pods", "kube-system") if p["metadata"]["name"].startswith("masqctl-capture-")]


def test_debug_pod_captures_and_is_deleted(api, tmp_path):
    host = host_programs()
    api.on_exec(host, node=N1)
    raw = gather(api, tmp_path, debug_pod=True, debug_image="busybox:1.36")
    assert raw.captures[N0].via.startswith("agent-pod/")
    c = raw.captures[N1]
    assert c.errors == {} and c.ip_addr == IP_ADDR and c.backend == "legacy"
    assert c.iptables_save == AKS_NAT.replace("(nf_tables) ", "")
    (created,) = [r.body for r in api.requests("POST", r"/namespaces/kube-system/pods$")]
    name = created["metadata"]["name"]
    assert c.via == f"debug-pod/{name}" and name.startswith("masqctl-capture-")
    spec = created["spec"]
    assert spec["nodeName"] == N1 and spec["hostNetwork"] is True and spec["hostPID"] is True
    assert spec["tolerations"] == [{"operator": "Exists"}] and spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 90
    (container,) = spec["containers"]
    assert container["image"] == "busybox:1.36" and container["securityContext"] == {"privileged": True}
    assert spec["volumes"] == [{"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}}]
    assert container["volumeMounts"] == [{"name": "host-root", "mountPath": "/host", "readOnly": True}]
    assert host.calls[0][:4] == ("chroot", "/host", "sh", "-c")
    assert [d["metadata"]["name"] for d in api.deleted] == [name] and debug_pods(api) == []
    assert api.requests("DELETE")[0].param("gracePeriodSeconds") == "0"


def test_the_debug_pod_is_validated_by_the_client_models(api, tmp_path):
    import json

    import kubernetes.client

    api.on_exec(host_programs(), node=N1)
    gather(api, tmp_path, debug_pod=True)
    (created,) = [r.body for r in api.requests("POST", r"/pods$")]
    kubernetes.client.ApiClient().deserialize(json.dumps(created), "V1Pod", "application/json")


def test_a_failed_capture_still_deletes_the_pod(api, tmp_path):
    api.on_exec(lambda req: ExecResult(stderr="chroot: can't execute 'sh': No such file or directory\n",
                                       exit_code=127), node=N1)
    raw = gather(api, tmp_path, debug_pod=True)
    assert raw.captures[N1].errors == {
        "node": "the capture command failed (exit 127): chroot: can't execute 'sh': No such file or directory"}
    assert len(api.deleted) == 1 and debug_pods(api) == []


def test_a_pod_that_cannot_start_is_reported_and_deleted(api, tmp_path):
    def pull_fails(pod):
        pod["status"] = {"phase": "Pending", "containerStatuses": [{
            "name": "capture", "image": pod["spec"]["containers"][0]["image"], "imageID": "", "ready": False,
            "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff",
                                                     "message": 'Back-off pulling image "nope:1"'}}}]}
    api.pod_startup = pull_fails
    raw = gather(api, tmp_path, debug_pod=True, debug_image="nope:1")
    err = raw.captures[N1].errors["node"]
    assert "cannot start: ImagePullBackOff (nope:1) Back-off pulling image" in err
    assert len(api.deleted) == 1 and debug_pods(api) == []


def test_a_pod_that_never_runs_times_out_and_is_deleted(api, tmp_path):
    api.pod_startup = "pending"
    t0 = time.monotonic()
    raw = gather(api, tmp_path, debug_pod=True, node_timeout=1.0)
    assert time.monotonic() - t0 < 6
    assert "did not start within 1 s (--node-timeout)" in raw.captures[N1].errors["node"]
    assert len(api.deleted) == 1 and debug_pods(api) == []


def test_a_hanging_capture_in_the_debug_pod_is_cut_and_the_pod_deleted(api, tmp_path):
    api.on_exec(host_programs(**{"iptables-save": HANG}), node=N1)
    raw = gather(api, tmp_path, debug_pod=True, node_timeout=1.0)
    assert "timed out after 1 s (--node-timeout)" in raw.captures[N1].errors["node"]
    assert len(api.deleted) == 1 and debug_pods(api) == []


def test_a_pod_that_cannot_be_deleted_is_reported(api, tmp_path):
    api.on_exec(host_programs(), node=N1)
    api.deny("delete", "pods", namespace="kube-system")
    raw = gather(api, tmp_path, debug_pod=True)
    c = raw.captures[N1]
    assert c.iptables_save is not None
    (name,) = [p["metadata"]["name"] for p in debug_pods(api)]
    assert c.errors["debug-pod"].startswith(f"debug pod kube-system/{name} could not be deleted (E616 ")
    assert c.errors["debug-pod"].endswith(f"delete it with kubectl -n kube-system delete pod {name}")
    assert raw.missing["captures/debug-pods"].startswith(f"debug pods may be left in kube-system: {name}")


def test_without_debug_pod_nothing_is_created(api, tmp_path):
    raw = gather(api, tmp_path, nodes=NodeSelection(names=(N1,)))
    assert "rerun with --debug-pod" in raw.captures[N1].errors["node"]
    assert api.count("POST") == 0


CHILD = textwrap.dedent("""
    import sys
    from masqctl.cluster.live.kube import gather_kube
    from masqctl.cluster.options import GatherOptions
    try:
        gather_kube(GatherOptions(kubeconfig=sys.argv[1], debug_pod=True, node_timeout=60), None,
                    environ={"HOME": sys.argv[2]})
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    print("finished", flush=True)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_deletes_every_debug_pod_it_created(api, tmp_path, sig):
    """A real masqctl process is stopped while its debug pods hang in their capture."""
    for i in range(2, 5):                     # three more nodes without agent pods
        api.add(served.node(f"aks-nodepool1-{i:08d}", ip=f"10.224.0.{4 + i}"))
    api.on_exec(agent_programs(**{"iptables-save": HANG}), node=N0)
    api.on_exec(host_programs(**{"iptables-save": HANG}))
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, kubeconfig, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    try:
        deadline = time.monotonic() + 30
        while api.count("GET", r"/masqctl-capture-[^/]+/exec$") < 4:   # every debug pod is capturing
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the debug pods did not start"
            time.sleep(0.05)
        created = {r.body["metadata"]["name"] for r in api.requests("POST", r"/pods$")}
        assert len(created) == 4 and len(debug_pods(api)) == 4
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and out.strip() == "interrupted", (out, err)
    assert debug_pods(api) == []
    assert {d["metadata"]["name"] for d in api.deleted} == created
