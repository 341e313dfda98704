"""deploy/rbac.yaml: valid Kubernetes (checked offline against the client's own models), and
exactly enough: the local API server enforces its rules like RBAC does, and gathering works
with them (the optional and --debug-pod parts are optional, with the documented effect)."""

from __future__ import annotations

import copy
import os

import jsonschema
import pytest
import yaml
from kubekit import agent_programs, gather

from clusterkit import served
from kubeapi import APIError, KubeAPI, Programs, forbidden_message

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = {"Role": "V1Role", "ClusterRole": "V1ClusterRole", "RoleBinding": "V1RoleBinding",
          "ClusterRoleBinding": "V1ClusterRoleBinding"}
N0, N1 = "aks-nodepool1-00000000", "aks-nodepool1-00000001"


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    with open(os.path.join(ROOT, "deploy", "rbac.yaml")) as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


def schema_errors(doc: dict) -> list[str]:
    import kubernetes.client

    assert doc["apiVersion"] == "rbac.authorization.k8s.io/v1"
    schema = getattr(kubernetes.client, MODELS[doc["kind"]]).model_json_schema(by_alias=True)

    def leaves(error):
        if not error.context:
            yield error
            return
        for sub in error.context:
            if not (sub.validator == "type" and sub.validator_value == "null"):
                yield from leaves(sub)

    validator = jsonschema.Draft202012Validator(schema)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for top in validator.iter_errors(doc) for e in leaves(top))


def test_every_document_is_valid(docs):
    assert sorted(d["kind"] for d in docs) == ["ClusterRole"] * 3 + ["ClusterRoleBinding"] * 3 + ["Role"] * 3 + \
        ["RoleBinding"] * 3
    for doc in docs:
        assert schema_errors(doc) == [], doc["metadata"]["name"]
    broken = copy.deepcopy(next(d for d in docs if d["kind"] == "Role"))
    broken["rules"][0]["verb"] = broken["rules"][0].pop("verbs")
    assert any("'verb' was unexpected" in e or "'verbs' is a required property" in e for e in schema_errors(broken))


def test_least_privilege(docs):
    roles = [d for d in docs if d["kind"] in ("Role", "ClusterRole")]
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            assert not {"secrets", "serviceaccounts/token"} & set(rule["resources"])
            assert not {"patch", "deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
    for binding in (d for d in docs if d["kind"].endswith("Binding")):
        ref = binding["roleRef"]
        assert any(r["kind"] == ref["kind"] and r["metadata"]["name"] == ref["name"] for r in roles)
        if binding["kind"] == "RoleBinding":
            assert binding["metadata"]["namespace"] == "kube-system"


def allowed(docs, roles: set[str], verb: str, resource: str, namespace: str | None, name: str | None,
            group: str = "") -> bool:
    """RBAC's decision for the union of the named roles (Roles act only in their namespace)."""
    for doc in docs:
        if doc["kind"] not in ("Role", "ClusterRole") or doc["metadata"]["name"] not in roles:
            continue
        if doc["kind"] == "Role" and doc["metadata"]["namespace"] != namespace:
            continue
        for rule in doc["rules"]:
            if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"] and \
                    (not rule.get("resourceNames") or name in rule["resourceNames"]):
                return True
    return False


def enforce(api: KubeAPI, docs, roles: set[str]) -> None:
    """Answer every request the roles do not allow with the API server's 403."""
    def hook(req, server):
        if req.resource is None:
            return
        group = req.path.split("/")[2] if req.path.startswith("/apis/") else ""
        if not allowed(docs, roles, req.verb, req.resource, req.namespace, req.name, group):
            raise APIError(403, "Forbidden", forbidden_message(req.verb, req.resource, group=group,
                                                              namespace=req.namespace, name=req.name,
                                                              user=server.user))
    api.hooks.append(hook)


@pytest.fixture
def api():
    with KubeAPI() as server:
        served.small_cluster(server, 2, agent_nodes=(N0,))
        server.add(served.configmap("ip-masq-agent", {"config": "nonMasqueradeCIDRs: []\n"}, namespace="default"))
        server.on_exec(agent_programs(), node=N0)
        server.on_exec(Programs({"iptables-save": "*nat\nCOMMIT\n", "ip6tables-save": "", "ip": ""}, chroot=True),
                       node=N1)
        yield server


ALL_READ = {"masqctl-read", "masqctl-read-nodes", "masqctl-read-workloads", "masqctl-read-services"}


def test_the_roles_cover_everything_gathering_does(api, docs, tmp_path):
    enforce(api, docs, ALL_READ | {"masqctl-debug-pod"})
    raw = gather(api, tmp_path, debug_pod=True)
    assert raw.missing == {}
    assert all(c.iptables_save is not None for c in raw.captures.values())
    assert [c.via.split("/")[0] for c in raw.captures.values()] == ["agent-pod", "debug-pod"]
    assert {r.status for r in api.requests()} <= {200, 201, 101}


def test_without_the_optional_cluster_role_only_workloads_and_other_namespaces_are_lost(api, docs, tmp_path):
    enforce(api, docs, {"masqctl-read", "masqctl-read-nodes", "masqctl-read-services"})
    raw = gather(api, tmp_path)
    assert set(raw.missing) == {"pods/workloads", "configmaps/other-namespaces"}
    assert "cannot list pods cluster-wide" in raw.missing["pods/workloads"]
    assert raw.captures[N0].iptables_save is not None
    assert {cm["metadata"]["namespace"] for cm in raw.configmaps} == {"kube-system"}


def test_without_the_services_role_services_and_endpointslices_are_none_with_the_grant(api, docs, tmp_path):
    api.add({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
             "spec": {"type": "ClusterIP", "clusterIP": "10.0.7.7", "ports": [{"port": 80, "protocol": "TCP"}]}})
    enforce(api, docs, {"masqctl-read", "masqctl-read-nodes", "masqctl-read-workloads"})
    raw = gather(api, tmp_path)
    assert set(raw.missing) == {"services", "endpointslices"}
    assert raw.services is None and raw.endpointslices is None
    assert "cannot list services cluster-wide" in raw.missing["services"]
    assert "cannot list endpointslices cluster-wide" in raw.missing["endpointslices"]
    assert raw.captures[N0].iptables_save is not None


def test_without_the_debug_role_the_debug_capture_names_the_permission(api, docs, tmp_path):
    enforce(api, docs, ALL_READ)
    raw = gather(api, tmp_path, debug_pod=True)
    err = raw.captures[N1].errors["node"]
    assert "forbidden: cannot create pods in kube-system" in err and "grant `create` on pods" in err
    assert api.count("POST") == 1 and api.count("DELETE") == 0       # nothing was created, nothing to delete
    assert raw.missing == {}


def test_without_nodes_gathering_stops_with_the_missing_grant(api, docs, tmp_path):
    from masqctl.errors import GatherError

    enforce(api, docs, {"masqctl-read"})
    with pytest.raises(GatherError) as e:
        gather(api, tmp_path)
    assert e.value.code == "E616" and e.value.message.startswith("forbidden: cannot list nodes cluster-wide")
    assert e.value.hint.startswith("grant `get,list` on nodes (a ClusterRole")


@pytest.mark.parametrize("verb, name, ok", [
    ("get", "azure-ip-masq-agent-config", True), ("update", "azure-ip-masq-agent-config", True),
    ("delete", "azure-ip-masq-agent-config", True), ("create", None, True),
    ("update", "azure-ip-masq-agent-config-reconciled", False), ("delete", "coredns", False),
])
def test_apply_may_write_only_the_user_configmap(docs, verb, name, ok):
    assert allowed(docs, {"masqctl-apply"}, verb, "configmaps", "kube-system", name) is ok
    assert not allowed(docs, {"masqctl-apply"}, verb, "configmaps", "default", name)
