"""gather_kube against the local API server with the real kubernetes client: objects, captures,
node selection, partial results, timeouts and refusals."""

from __future__ import annotations

import time

import pytest
from kubekit import AKS_NAT, IP_ADDR, agent_programs, gather, netns_exec
from netns import Topology, requires_netns

from clusterkit import served
from kubeapi import HANG, APIError, ExecResult, KubeAPI, Programs, forbidden_message
from masqctl.cluster.model import MissingKey
from masqctl.cluster.options import NodeSelection
from masqctl.errors import GatherError, UsageError

N0, N1, N2 = (f"aks-nodepool1-{i:08d}" for i in range(3))


def agent_name(node: str) -> str:
    return served.agent_pod(node, "x")["metadata"]["name"]


@pytest.fixture
def api():
    with KubeAPI() as server:
        served.small_cluster(server, 3, windows=("akswin000000",))
        server.on_exec(agent_programs())
        yield server


def test_happy_path_reads_objects_and_captures_every_linux_node(api, tmp_path):
    api.add(served.configmap("ip-masq-agent", {"config": "nonMasqueradeCIDRs: []\n"}, namespace="default"))
    api.add(served.configmap("unrelated", {"a": "b"}, namespace="default"))
    seen = []
    raw = gather(api, tmp_path, progress=lambda what, done, total: seen.append((what, done, total)))

    assert raw.source == "context test" and raw.namespace == "kube-system"
    assert raw.origin["nodes"] == "the Kubernetes API (context test)"
    assert raw.missing == {}
    assert sorted((c["metadata"]["namespace"], c["metadata"]["name"]) for c in raw.configmaps) == [
        ("default", "ip-masq-agent"), ("kube-system", "azure-ip-masq-agent-config-reconciled"),
        ("kube-system", "coredns"), ("kube-system", "kube-root-ca.crt")]
    assert [d["metadata"]["name"] for d in raw.daemonsets] == ["azure-ip-masq-agent"]
    # native JSON, as the API sent it
    ds = raw.daemonsets[0]
    assert ds["apiVersion"] == "apps/v1" and ds["kind"] == "DaemonSet"
    assert ds["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"][0]["configMap"]["items"] == [
        {"key": "ip-masq-agent", "path": "ip-masq-agent", "mode": 444}]
    assert sorted(n["metadata"]["name"] for n in raw.nodes) == [N0, N1, N2, "akswin000000"]
    agents = [p for p in raw.pods if p["metadata"]["namespace"] == "kube-system"]
    assert len(agents) == 3 and all("containerStatuses" in p["status"] for p in agents)
    workloads = [p for p in raw.pods if p["metadata"]["namespace"] == "default"]
    assert len(workloads) == 6
    assert workloads[0]["status"]["podIP"].startswith("10.100.") and workloads[0]["spec"]["nodeName"]
    assert "containerStatuses" not in workloads[0]["status"]     # trimmed to what maps IPs to nodes

    assert sorted(raw.captures) == [N0, N1, N2]                 # the Windows node is skipped
    for node in (N0, N1, N2):
        c = raw.captures[node]
        assert c.iptables_save == AKS_NAT and c.ip6tables_save == ""
        assert c.ip_addr is None and "not in the container image" in c.errors["ip-addr"]
        assert set(c.errors) == {"ip-addr"}
        assert c.backend == "nft" and c.via == f"agent-pod/{agent_name(node)}" and c.captured_at.endswith("Z")
    assert seen[-1] == ("capturing nodes", 3, 3)
    assert [d for w, d, t in seen if w == "capturing nodes"] == [0, 1, 2, 3]

    # one exec per node; other namespaces' ConfigMaps only by name, never all of them
    assert api.count("GET", r"/exec$") == 3
    cluster_cm = api.requests("GET", r"^/api/v1/configmaps$")
    assert sorted(r.param("fieldSelector") for r in cluster_cm) == [
        "metadata.name=azure-ip-masq-agent-config", "metadata.name=ip-masq-agent", "metadata.name=ip-masq-agent-config"]
    all_pods = api.requests("GET", r"^/api/v1/pods$")
    assert all(r.param("limit") == "500" and "metadata.namespace!=kube-system" in r.param("fieldSelector")
               for r in all_pods)


def test_ip_addr_is_captured_when_the_image_has_ip(api, tmp_path):
    api.on_exec(agent_programs(ip=IP_ADDR), node=N1)
    raw = gather(api, tmp_path, nodes=NodeSelection(names=(N1,)))
    assert raw.captures[N1].ip_addr == IP_ADDR and raw.captures[N1].errors == {}


def test_without_a_shell_each_command_is_its_own_exec(api, tmp_path):
    progs = Programs({"iptables-save": AKS_NAT, "ip": IP_ADDR}, shell=False)
    api.on_exec(progs, node=N0)
    raw = gather(api, tmp_path, nodes=NodeSelection(names=(N0,)))
    c = raw.captures[N0]
    assert c.iptables_save == AKS_NAT and c.ip_addr == IP_ADDR and c.backend == "nft"
    assert c.errors == {"ip6tables-save": "ip6tables-save is not in the container image; IPv6 rules not captured"}
    assert [cmd[0] for cmd in progs.calls] == ["sh", "iptables-save", "ip6tables-save", "ip"]
    assert api.count("GET", r"/exec$") == 4


def test_a_node_whose_exec_fails_is_recorded_and_the_rest_continue(api, tmp_path):
    api.on_exec(lambda req: ExecResult(stderr="OCI runtime exec failed: container is restarting\n", exit_code=1),
                node=N1)
    api.on_exec(agent_programs(table="", **{"iptables-save": ExecResult(
        stderr="iptables-save v1.8.7 (nf_tables): Could not fetch rule set generation id: Permission denied\n",
        exit_code=4)}), node=N2)
    raw = gather(api, tmp_path)
    assert raw.captures[N0].iptables_save == AKS_NAT
    assert raw.captures[N1].iptables_save is None
    assert raw.captures[N1].errors == {
        "node": "the capture command failed (exit 1): OCI runtime exec failed: container is restarting"}
    assert raw.captures[N2].iptables_save is None
    assert raw.captures[N2].errors["iptables-save"] == (
        "iptables-save failed (exit 4): iptables-save v1.8.7 (nf_tables): Could not fetch rule set generation id: "
        "Permission denied")


def test_exec_forbidden_names_pods_exec(api, tmp_path):
    api.deny("create", "pods/exec", namespace="kube-system")
    raw = gather(api, tmp_path)
    for node in (N0, N1, N2):
        err = raw.captures[node].errors["node"]
        assert err.startswith("E616 the Kubernetes API (context test): forbidden: cannot create pods/exec in "
                              "kube-system (pods \""), err
        assert 'cannot create resource "pods/exec" in API group "" in the namespace "kube-system"' in err
        assert "grant `create` on pods/exec in namespace kube-system" in err
    assert raw.configmaps and raw.nodes           # everything else was still read


def test_a_hanging_exec_is_cut_at_the_node_timeout(api, tmp_path):
    api.on_exec(agent_programs(**{"iptables-save": HANG}), node=N1)
    t0 = time.monotonic()
    raw = gather(api, tmp_path, node_timeout=1.0)
    assert time.monotonic() - t0 < 6
    assert raw.captures[N1].errors == {"node": "timed out after 1 s (--node-timeout) while running the capture in "
                                               f"pod kube-system/{agent_name(N1)}"}
    assert raw.captures[N0].iptables_save == AKS_NAT and raw.captures[N2].iptables_save == AKS_NAT


def test_an_exec_handshake_that_never_answers_is_abandoned_by_the_watchdog(api, tmp_path):
    api.fault(rf"/pods/{agent_name(N2)}/exec$", hang=True)
    t0 = time.monotonic()
    raw = gather(api, tmp_path, node_timeout=0.5)
    assert time.monotonic() - t0 < 8
    assert raw.captures[N2].errors == {"node": "timed out after 0.5 s (--node-timeout); the API server did not "
                                               "complete the call"}
    assert raw.captures[N0].iptables_save == AKS_NAT


def test_a_hanging_list_is_a_clear_error(api, tmp_path):
    api.fault(r"/namespaces/kube-system/daemonsets$", hang=True)
    t0 = time.monotonic()
    with pytest.raises(GatherError) as e:
        gather(api, tmp_path, node_timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert e.value.code == "E617"
    assert e.value.one_line() == ("E617 the Kubernetes API (context test): list daemonsets in kube-system: the API "
                                  "server did not answer within 0.5 s")


def test_server_errors_on_a_required_list_are_raised(api, tmp_path):
    api.fault(r"^/api/v1/nodes$", status=500, message="etcdserver: leader changed")
    with pytest.raises(GatherError) as e:
        gather(api, tmp_path)
    assert e.value.code == "E618" and "list nodes failed: HTTP 500: etcdserver: leader changed" in e.value.message


def test_forbidden_required_list_names_the_permission(api, tmp_path):
    api.deny("list", "configmaps", namespace="kube-system")
    with pytest.raises(GatherError) as e:
        gather(api, tmp_path)
    assert e.value.code == "E616"
    assert e.value.message.startswith("forbidden: cannot list configmaps in kube-system (configmaps is forbidden: "
                                      'User "system:serviceaccount:default:masqctl" cannot list resource')
    assert e.value.hint.startswith("grant `get,list` on configmaps in namespace kube-system (a Role")


def test_optional_reads_that_are_forbidden_are_recorded_not_fatal(api, tmp_path):
    def cluster_scope_only(req, server):   # RBAC: a Role in kube-system, no ClusterRole for pods/configmaps
        if req.verb == "list" and req.resource in ("pods", "configmaps") and req.namespace is None:
            raise APIError(403, "Forbidden", forbidden_message("list", req.resource, user=server.user))
    api.hooks.append(cluster_scope_only)
    raw = gather(api, tmp_path)
    assert "forbidden: cannot list pods cluster-wide" in raw.missing["pods/workloads"]
    assert "outside kube-system were not read" in raw.missing["configmaps/other-namespaces"]
    assert "cannot list configmaps cluster-wide" in raw.missing["configmaps/other-namespaces"]
    assert all(p["metadata"]["namespace"] == "kube-system" for p in raw.pods) and len(raw.pods) == 3
    assert sorted(raw.captures) == [N0, N1, N2]


def test_workload_pods_are_paginated(tmp_path):
    with KubeAPI() as api:
        served.small_cluster(api, 2, workloads_per_node=0)
        for i in range(1203):
            api.add(served.pod(f"w{i:05d}", node="aks-nodepool1-00000000", namespace=f"ns{i % 3}",
                                ip=f"10.100.{i // 250}.{i % 250 + 1}"))
        api.add(served.pod("done", node="aks-nodepool1-00000000", phase="Succeeded", ip=None))
        api.on_exec(agent_programs())
        raw = gather(api, tmp_path, capture=False)
        assert sum(1 for p in raw.pods if p["metadata"]["name"].startswith("w")) == 1203
        assert not any(p["metadata"]["name"] == "done" for p in raw.pods)
        pages = api.requests("GET", r"^/api/v1/pods$")
        assert len(pages) == 3 and pages[1].param("continue") and pages[2].param("continue")
        assert raw.missing == {MissingKey.CAPTURES: "not captured (--no-capture)"} and raw.captures == {}
        assert api.count("GET", r"/exec$") == 0


# --------------------------------------------------------------------------- node selection


def test_nodes_by_name_selector_and_sample(tmp_path):
    with KubeAPI() as api:
        served.small_cluster(api, 2, workloads_per_node=0, windows=("akswin000000",))
        for i in range(4):
            name = f"aks-user-{i}"
            api.add(served.node(name, ip=f"10.224.1.{i + 4}", pool="user", labels={"team": "a" if i < 2 else "b"}))
            api.add(served.agent_pod(name, f"10.224.1.{i + 4}"))
        api.on_exec(agent_programs())
        raw = gather(api, tmp_path, nodes=NodeSelection(names=("aks-user-3", "aks-user-1", "aks-user-3")))
        assert sorted(raw.captures) == ["aks-user-1", "aks-user-3"]
        raw = gather(api, tmp_path, nodes=NodeSelection(selector="team in (b),agentpool=user"))
        assert sorted(raw.captures) == ["aks-user-2", "aks-user-3"]
        # the selector goes to the server (the full node list is read in parallel, so order varies)
        assert "team in (b),agentpool=user" in [r.param("labelSelector") for r in api.requests("GET", r"^/api/v1/nodes$")]
        with pytest.raises(UsageError) as none:     # matches only a Windows node: no Linux node selected
            gather(api, tmp_path, nodes=NodeSelection(selector="kubernetes.io/os=windows"))
        assert none.value.code == "E209" and none.value.input == "--nodes kubernetes.io/os=windows"
        raw = gather(api, tmp_path, nodes=NodeSelection(sample=2))   # one per pool first
        assert sorted(raw.captures) == ["aks-nodepool1-00000000", "aks-user-0"]
        raw = gather(api, tmp_path, nodes=NodeSelection(sample=50))
        assert len(raw.captures) == 6
        raw = gather(api, tmp_path, nodes=NodeSelection(names=("akswin000000",)))
        assert raw.captures["akswin000000"].errors == {
            "node": "windows node: it runs no iptables masquerade agent; not captured"}
        with pytest.raises(UsageError) as e:
            gather(api, tmp_path, nodes=NodeSelection(names=("aks-user-1", "aks-usr-2")))
        assert e.value.code == "E619" and e.value.input == "--nodes aks-user-1,aks-usr-2"
        assert "no node named aks-usr-2 in the cluster; nodes: aks-nodepool1-00000000" in e.value.message


def test_nodes_without_a_usable_agent_pod_say_why_and_how_to_fix(tmp_path):
    with KubeAPI() as api:
        names = served.small_cluster(api, 3, workloads_per_node=0, agent_nodes=(N0,))
        api.add(served.agent_pod(N1, "10.224.0.5", phase="Running", ready=False,
                                  waiting="CrashLoopBackOff", restarts=12))
        api.on_exec(agent_programs())
        raw = gather(api, tmp_path)
        assert raw.captures[names[0]].iptables_save == AKS_NAT
        assert raw.captures[N1].errors["node"].startswith(
            f"no usable agent pod on this node (agent pod {agent_name(N1)}: container azure-ip-masq-agent is "
            "CrashLoopBackOff); rerun with --debug-pod")
        assert raw.captures[N2].errors["node"].startswith("no usable agent pod on this node (no agent pod is "
                                                          "scheduled on it); rerun with --debug-pod")


# --------------------------------------------------------------------------- real tables


@requires_netns
def test_capture_runs_the_real_script_against_real_tables_in_a_namespace(api, tmp_path):
    """The node is a network namespace: the script runs there with the host's real iptables-save,
    ip6tables-save and ip (nft backend), then with a legacy rule as well (mixed)."""
    with Topology() as topo:
        node = topo.node
        payload = "\n".join(line for line in AKS_NAT.splitlines() if not line.startswith("#")) + "\n"
        node.iptables_restore(payload, noflush=False)
        api.on_exec(netns_exec(node), node=N0)
        raw = gather(api, tmp_path, nodes=NodeSelection(names=(N0,)))
        c = raw.captures[N0]
        assert c.errors == {}, c.errors
        def rules(text):
            return [line for line in text.splitlines() if not line.startswith("#")]
        assert rules(c.iptables_save) == rules(node.run("iptables-save").stdout)
        assert "-A IP-MASQ-AGENT -d 10.224.0.0/12" in c.iptables_save
        assert "MASQUERADE" in c.iptables_save and c.iptables_save.startswith("# Generated by iptables")
        assert f"{topo.NODE_UPLINK}/24" in c.ip_addr and "eth0" in c.ip_addr
        assert c.backend == "nft"
        node.run("iptables-legacy", "-t", "nat", "-A", "POSTROUTING", "-j", "ACCEPT")
        raw = gather(api, tmp_path, nodes=NodeSelection(names=(N0,)))
        assert raw.captures[N0].backend == "mixed"


def test_services_and_endpointslices_of_every_namespace_are_read(api, tmp_path):
    from clusterkit.objects import endpointslice, service

    from masqctl.cluster.build import build_snapshot
    from masqctl.cluster.services import ServiceIndex

    api.add(service("ingress-nginx-controller", "ingress-nginx", type="LoadBalancer", cluster_ip="10.0.12.34",
                    ports=(("https", "TCP", 443, "https", 31443),), lb_ips=("10.42.1.10",),
                    external_traffic_policy="Local", health_check_node_port=32001))
    api.add(endpointslice("ingress-nginx-controller", "ingress-nginx", ports=(("https", 443, "TCP"),),
                          endpoints=(("10.100.0.10", N0, "ingress-nginx-controller-1", True),)))
    api.add(service("web", "default"))
    raw = gather(api, tmp_path)
    assert MissingKey.SERVICES not in raw.missing and MissingKey.ENDPOINTSLICES not in raw.missing
    assert sorted(s["metadata"]["name"] for s in raw.services) == ["ingress-nginx-controller", "web"]
    assert raw.endpointslices[0]["apiVersion"] == "discovery.k8s.io/v1"
    assert api.count("GET", r"^/api/v1/services$") == 1
    assert api.count("GET", r"^/apis/discovery.k8s.io/v1/endpointslices$") == 1
    index = ServiceIndex.of(build_snapshot(raw))
    (svc,) = index.by_lb_ip("10.42.1.10")
    assert svc.keeps_client_ip is True and svc.health_check_node_port == 32001
    assert [e.node_name for e in index.endpoints_of(svc)] == [N0]


def test_a_failing_service_list_is_recorded_and_the_rest_is_gathered(api, tmp_path):
    api.fault(r"^/apis/discovery.k8s.io/v1/endpointslices", status=500)
    raw = gather(api, tmp_path)
    assert raw.endpointslices is None and "HTTP 500" in raw.missing[MissingKey.ENDPOINTSLICES]
    assert raw.services is not None and MissingKey.SERVICES not in raw.missing
    assert raw.captures and raw.nodes
