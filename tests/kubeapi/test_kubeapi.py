"""The test API server answers the real kubernetes client the way a real API server does."""

from __future__ import annotations

import json
import time

import pytest

from clusterkit import served
from kubeapi import HANG, ExecResult, KubeAPI, Programs


def client_for(api: KubeAPI, tmp_path, **kw):
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=api.write_kubeconfig(tmp_path / "kubeconfig", **kw),
                            client_configuration=cfg, persist_config=False)
    return client.ApiClient(cfg)


@pytest.fixture
def api():
    with KubeAPI() as server:
        served.small_cluster(server, 3)
        yield server


def test_list_get_selectors_and_pagination(api, tmp_path):
    from kubernetes import client

    v1 = client.CoreV1Api(client_for(api, tmp_path))
    names = [n.metadata.name for n in v1.list_node().items]
    assert names == ["aks-nodepool1-00000000", "aks-nodepool1-00000001", "aks-nodepool1-00000002"]
    assert v1.read_node(names[1]).status.addresses[0].address == "10.224.0.5"
    on_first = v1.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={names[0]}").items
    assert sorted(p.metadata.name for p in on_first) == sorted(
        ["web-0-0", "web-0-1", served.agent_pod(names[0], "x")["metadata"]["name"]])
    agents = v1.list_namespaced_pod("kube-system", label_selector="k8s-app in (azure-ip-masq-agent),tier=node")
    assert len(agents.items) == 3
    assert v1.list_namespaced_pod("kube-system", label_selector="k8s-app!=azure-ip-masq-agent").items == []
    not_system = v1.list_pod_for_all_namespaces(field_selector="metadata.namespace!=kube-system").items
    assert {p.metadata.namespace for p in not_system} == {"default"}
    seen, cont = [], None
    while True:
        page = json.loads(v1.list_pod_for_all_namespaces(limit=4, _continue=cont, _preload_content=False).data)
        seen += [i["metadata"]["name"] for i in page["items"]]
        assert len(page["items"]) <= 4
        cont = page["metadata"].get("continue")
        if not cont:
            break
    assert len(seen) == len(set(seen)) == 9
    with pytest.raises(client.ApiException) as e:
        v1.list_pod_for_all_namespaces(field_selector="spec.nodeNmae=x")
    assert e.value.status == 400 and "field label not supported: spec.nodeNmae" in e.value.body
    assert api.count("GET", r"^/api/v1/pods$") >= 4


def test_writes_conflicts_patch_delete(api, tmp_path):
    from kubernetes import client

    v1 = client.CoreV1Api(client_for(api, tmp_path))
    body = {"metadata": {"name": "azure-ip-masq-agent-config"}, "data": {"ip-masq-agent": "a"}}
    created = v1.create_namespaced_config_map("kube-system", body)
    with pytest.raises(client.ApiException) as e:
        v1.create_namespaced_config_map("kube-system", body)
    status = json.loads(e.value.body)
    assert (e.value.status, status["reason"], status["kind"]) == (409, "AlreadyExists", "Status")
    stale = {"metadata": {"name": "azure-ip-masq-agent-config", "resourceVersion": created.metadata.resource_version},
             "data": {"ip-masq-agent": "b"}}
    api.update("configmaps", "azure-ip-masq-agent-config", "kube-system", data={"ip-masq-agent": "other writer"})
    with pytest.raises(client.ApiException) as e:
        v1.replace_namespaced_config_map("azure-ip-masq-agent-config", "kube-system", stale)
    assert e.value.status == 409 and "the object has been modified" in e.value.body
    fresh = v1.read_namespaced_config_map("azure-ip-masq-agent-config", "kube-system")
    stale["metadata"]["resourceVersion"] = fresh.metadata.resource_version
    replaced = v1.replace_namespaced_config_map("azure-ip-masq-agent-config", "kube-system", stale)
    assert replaced.data == {"ip-masq-agent": "b"}
    assert int(replaced.metadata.resource_version) > int(fresh.metadata.resource_version)
    patched = v1.patch_namespaced_config_map("azure-ip-masq-agent-config", "kube-system", {"data": {"x": "y"}})
    assert patched.data == {"ip-masq-agent": "b", "x": "y"}
    v1.delete_namespaced_config_map("azure-ip-masq-agent-config", "kube-system")
    assert [d["metadata"]["name"] for d in api.deleted] == ["azure-ip-masq-agent-config"]
    with pytest.raises(client.ApiException) as e:
        v1.delete_namespaced_config_map("azure-ip-masq-agent-config", "kube-system")
    assert e.value.status == 404
    with pytest.raises(client.ApiException) as e:
        v1.create_namespaced_config_map("nope", body)
    assert e.value.status == 404 and 'namespaces \\"nope\\" not found' in e.value.body


def test_created_pods_run_and_daemonsets_list(api, tmp_path):
    from kubernetes import client

    ac = client_for(api, tmp_path)
    v1 = client.CoreV1Api(ac)
    pod = v1.create_namespaced_pod("kube-system", {
        "metadata": {"generateName": "masqctl-debug-"},
        "spec": {"nodeName": "aks-nodepool1-00000001", "hostNetwork": True,
                 "containers": [{"name": "debug", "image": "busybox"}]}})
    assert pod.metadata.name.startswith("masqctl-debug-")
    assert pod.status.phase == "Running" and pod.status.pod_ip == "10.224.0.5"
    api.pod_startup = "pending"
    pending = v1.create_namespaced_pod("kube-system", {"metadata": {"name": "p2"}, "spec": {
        "nodeName": "aks-nodepool1-00000001", "containers": [{"name": "c", "image": "busybox"}]}})
    assert pending.status.phase == "Pending"
    ds = client.AppsV1Api(ac).list_namespaced_daemon_set("kube-system").items
    assert [d.metadata.name for d in ds] == ["azure-ip-masq-agent"]


def _exec(ac, pod, command, timeout=5.0):
    from kubernetes import client
    from kubernetes.stream import stream

    ws = stream(client.CoreV1Api(ac).connect_get_namespaced_pod_exec, pod, "kube-system", command=command,
                stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False)
    ws.run_forever(timeout=timeout)
    out, err, status = ws.read_channel(1), ws.read_channel(2), ws.read_channel(3)
    ws.close()
    return out, err, json.loads(status) if status else None


def test_exec_runs_a_real_shell_over_fake_programs(api, tmp_path):
    ac = client_for(api, tmp_path)
    node = "aks-nodepool1-00000000"
    progs = Programs({"iptables-save": "*nat\nCOMMIT\n", "ip": ExecResult(stderr="ip: boom\n", exit_code=3)})
    api.on_exec(progs, node=node)
    pod = served.agent_pod(node, "x")["metadata"]["name"]
    out, err, status = _exec(ac, pod, ["sh", "-c", "iptables-save; echo rc=$?; ip -o addr; echo rc=$?; "
                                                   "ip6tables-save; echo rc=$?"])
    assert out.startswith("*nat\nCOMMIT\nrc=0\nrc=3\nrc=127\n")
    assert "ip: boom" in err and "ip6tables-save" in err
    assert status == {"metadata": {}, "status": "Success"}
    out, err, status = _exec(ac, pod, ["ip", "-o", "addr"])
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"][0]["message"] == "3"
    out, err, status = _exec(ac, pod, ["ip6tables-save"])
    assert status["reason"] == "InternalError" and "executable file not found" in status["message"]
    assert progs.calls[1] == ("ip", "-o", "addr")


def test_exec_hang_and_rbac_denial(api, tmp_path):
    from kubernetes import client

    ac = client_for(api, tmp_path)
    pod = served.agent_pod("aks-nodepool1-00000001", "x")["metadata"]["name"]
    api.on_exec(Programs({"iptables-save": HANG}), pod=pod)
    t0 = time.monotonic()
    out, err, status = _exec(ac, pod, ["iptables-save"], timeout=0.5)
    assert status is None and time.monotonic() - t0 < 3
    api.deny("create", "pods/exec", namespace="kube-system")
    with pytest.raises(client.ApiException) as e:
        _exec(ac, pod, ["iptables-save"])
    body = json.loads(e.value.__context__.resp_body)
    assert body["code"] == 403 and body["message"] == (
        f'pods "{pod}" is forbidden: User "system:serviceaccount:default:masqctl" cannot create resource '
        '"pods/exec" in API group "" in the namespace "kube-system"')


def test_faults_latency_hooks_and_auth(api, tmp_path):
    from kubernetes import client

    v1 = client.CoreV1Api(client_for(api, tmp_path))
    api.fault(r"^/api/v1/nodes$", status=500, message="etcdserver: request timed out", times=1)
    with pytest.raises(client.ApiException) as e:
        v1.list_node()
    assert e.value.status == 500 and "etcdserver" in e.value.body
    assert len(v1.list_node().items) == 3          # times=1: the second call passes
    api.fault(r"/configmaps$", hang=True)
    with pytest.raises(Exception):
        v1.list_namespaced_config_map("kube-system", _request_timeout=0.3)
    api.after(2, lambda s: s.update("nodes", "aks-nodepool1-00000000", metadata={"labels": {"changed": "yes"}}),
              method="GET", pattern=r"/nodes/aks-nodepool1-00000000$")
    first = v1.read_node("aks-nodepool1-00000000").metadata.labels
    second = v1.read_node("aks-nodepool1-00000000").metadata.labels
    assert "changed" not in first and second["changed"] == "yes"
    api.latency = 0.2
    t0 = time.monotonic()
    v1.read_node("aks-nodepool1-00000000")
    assert time.monotonic() - t0 >= 0.2
    api.latency = 0
    bad = client.CoreV1Api(client_for(api, tmp_path / "bad", token="wrong"))
    with pytest.raises(client.ApiException) as e:
        bad.list_node()
    assert e.value.status == 401


def test_tls_with_a_throwaway_ca(tmp_path):
    from kubernetes import client

    with KubeAPI(tls=True) as api:
        api.add(served.node("n1"))
        assert api.url.startswith("https://")
        v1 = client.CoreV1Api(client_for(api, tmp_path))
        assert [n.metadata.name for n in v1.list_node().items] == ["n1"]
        api.add(served.agent_pod("n1", "10.224.0.4"))
        api.on_exec(Programs({"iptables-save": "*nat\nCOMMIT\n"}))
        out, _, status = _exec(v1.api_client, served.agent_pod("n1", "x")["metadata"]["name"], ["iptables-save"])
        assert out == "*nat\nCOMMIT\n" and status["status"] == "Success"


@pytest.mark.parametrize("build, model", [
    (lambda: served.node("n1"), "V1Node"),
    (lambda: served.node("w1", os="windows"), "V1Node"),
    (lambda: served.agent_pod("n1", "10.224.0.4", restarts=3, waiting="CrashLoopBackOff",
                               last_terminated={"exitCode": 255, "reason": "Error"}), "V1Pod"),
    (lambda: served.pod("web", node="n1"), "V1Pod"),
    (lambda: served.agent_daemonset(), "V1DaemonSet"),
    (lambda: served.reconciled_configmap(), "V1ConfigMap"),
])
def test_builders_make_objects_the_client_models_accept(build, model):
    import kubernetes.client

    kubernetes.client.ApiClient().deserialize(json.dumps(build()), model, "application/json")


def test_delete_preconditions(api, tmp_path):
    from kubernetes import client

    v1 = client.CoreV1Api(client_for(api, tmp_path))
    cm = v1.create_namespaced_config_map("kube-system", {"metadata": {"name": "c"}, "data": {}})
    with pytest.raises(client.ApiException) as e:
        v1.delete_namespaced_config_map("c", "kube-system", body={"preconditions": {"resourceVersion": "1"}})
    assert e.value.status == 409 and "Precondition failed: ResourceVersion in precondition: 1" in e.value.body
    v1.delete_namespaced_config_map("c", "kube-system",
                                    body={"preconditions": {"resourceVersion": cm.metadata.resource_version}})
    assert api.get("configmaps", "c", "kube-system") is None
