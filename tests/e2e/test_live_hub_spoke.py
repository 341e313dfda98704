"""End to end: the hub-spoke example estate served LIVE by both local servers at once (Kubernetes
API with exec over WebSocket, Azure Resource Manager over HTTPS), read by the real CLI as a
subprocess through the real kubernetes client and Azure SDK. See ``e2e_estate.py``.

The bundle ``examples/hub-spoke`` is the reference: what masqctl says about the live estate must
be what it says about the bundle the estate was built from.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import e2e_estate as es
import pytest
import yaml
from errordoc import no_result

NS = "kube-system"
CIDR = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}\b")
SP_CLIENT, SP_SECRET = "5b1c2d3e-0000-4000-8000-00000000c11e", "not-a-real-secret"
CONVENTIONAL_LABELS = {"component": "ip-masq-agent", "kubernetes.io/cluster-service": "true",
                       "addonmanager.kubernetes.io/mode": "EnsureExists"}


# ------------------------------------------------------------------------------ helpers


def json_of(r) -> dict:
    assert "Traceback" not in r.stderr, r.stderr
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise AssertionError(f"stdout is not one JSON document (exit {r.returncode}):\n{r.stdout}\n{r.stderr}") from None


def findings(doc: dict) -> list[tuple]:
    """What a finding says, without where the evidence was read from (``ARM …`` live, ``aks.json …``
    from a bundle: the same fact)."""
    out = []
    for f in doc["findings"]:
        evidence = [re.sub(r"^(ARM|aks\.json) ", "<azure> ", e) for e in f["evidence"]]
        out.append((f["code"], f["severity"], f["title"], f["detail"], f["fix"], tuple(f["nodes"]), tuple(evidence)))
    return out


def codes(doc: dict) -> list[str]:
    return [f["code"] for f in doc["findings"]]


def cidrs_of(doc: dict) -> dict[str, set[str]]:
    return {f["code"]: set(CIDR.findall(" ".join([f["detail"], f["fix"] or "", *f["evidence"]])))
            for f in doc["findings"]}


def effective(doc: dict) -> list[tuple]:
    return [(c["cidr"], tuple(c["sources"])) for c in doc["config"]["nonMasqueradeCIDRs"]]


def node_states(doc: dict) -> dict[str, str]:
    return {n: g["state"] for g in doc["nodes"]["groups"] for n in g["nodes"]}


@pytest.fixture(scope="module")
def bundle_report(tmp_path_factory) -> dict:
    """``inspect --bundle examples/hub-spoke -o json``: the reference the live runs must match."""
    out = es.masqctl("inspect", "--bundle", str(es.BUNDLE), "-o", "json",
                     env=es.base_env(tmp_path_factory.mktemp("home"), "/usr/bin:/bin"))
    assert out.returncode == 0, out.stderr
    doc = json_of(out)
    assert codes(doc) == ["MQ008", "MQ011"], codes(doc)      # the example's story (examples/hub-spoke/README.md)
    return doc


def parallel(*calls):
    """Run independent CLI invocations at the same time (each is its own process); results in order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


def writes(api) -> list:
    return [r for r in api.log if r.method in ("POST", "PUT", "PATCH", "DELETE") and "/configmaps" in r.path]


# ------------------------------------------------------------------------------ 1 and 2. inspect and collect live


def test_live_inspect_reports_what_the_bundle_reports_and_collect_round_trips(estate, tmp_path, bundle_report):
    out = tmp_path / "bundle"
    inspected, collected = parallel(lambda: estate.masqctl("inspect", *estate.live_args(), "-o", "json"),
                                    lambda: estate.masqctl("collect", "-o", str(out), *estate.live_args()))
    # 1. live inspect says what inspect --bundle examples/hub-spoke says
    doc = json_of(inspected)
    assert inspected.returncode == doc["summary"]["exit_code"] == 0, inspected.stderr
    assert doc["source"] == f"context {es.CONTEXT}" and doc["cluster"] == es.CLUSTER
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["collected_at"] or ""), doc["collected_at"]  # when read
    assert findings(doc) == findings(bundle_report)
    [mq008] = [f for f in doc["findings"] if f["code"] == "MQ008"]
    assert es.HUB_RANGE in mq008["detail"] and mq008["severity"] == "warning"
    assert doc["mode"]["name"] == bundle_report["mode"]["name"] == "azure-cni-node-subnet"
    assert effective(doc) == effective(bundle_report)
    assert node_states(doc) == node_states(bundle_report) == {n: "in-sync" for n in es.NODES}
    assert doc["not_checked"] == bundle_report["not_checked"] == []
    # it really went through both servers: each node exec'd once per run, the cluster and its VNet read from ARM
    assert estate.exec_calls() == {n: 2 for n in es.NODES}
    assert len(estate.arm.requests(r"/managedClusters/aks-spoke1$")) == 2
    assert len(estate.arm.requests(r"/virtualNetworks/vnet-spoke1$")) == 2
    # 2. collect wrote a bundle of what it read; inspect --bundle on it equals live inspect
    assert collected.returncode == 0, collected.stderr
    assert collected.stdout == f"{out}\n"
    assert (out / "aks.json").is_file() and (out / "vnets" / "vnet-spoke1.json").is_file()
    for n in es.NODES:
        assert (out / "nodes" / n / "iptables-save.txt").read_text() == es.node_file(n, "iptables-save.txt")
    offline = json_of(estate.masqctl("inspect", "--bundle", str(out), "-o", "json"))
    assert findings(offline) == findings(doc)
    assert effective(offline) == effective(doc) and node_states(offline) == node_states(doc)
    assert [offline["mode"][k] for k in ("name", "snat_by", "agent_decides")] == \
        [doc["mode"][k] for k in ("name", "snat_by", "agent_decides")]
    assert offline["not_checked"] == doc["not_checked"]


def test_live_collect_redact_keeps_the_findings_and_hides_every_identifier(estate, tmp_path, bundle_report):
    live = bundle_report      # = live inspect (test_live_inspect_reports_what_the_bundle_reports_and_collect_...)
    out = tmp_path / "redacted"
    r = estate.masqctl("collect", "-o", str(out), "--redact", *estate.live_args())
    assert r.returncode == 0, r.stderr
    redacted = json_of(estate.masqctl("inspect", "--bundle", str(out), "-o", "json"))
    assert codes(redacted) == codes(live) == ["MQ008", "MQ011"]
    assert cidrs_of(redacted) == cidrs_of(live) and es.HUB_RANGE in cidrs_of(redacted)["MQ008"]
    assert effective(redacted) == effective(live)
    assert redacted["mode"]["name"] == live["mode"]["name"]
    identifiers = [es.SUBSCRIPTION, es.HUB_SUBSCRIPTION, es.TENANT,                     # subscriptions, tenant
                   es.RESOURCE_GROUP, "rg-spoke1-network", "rg-hub-network",             # resource groups
                   "MC_rg-spoke1_aks-spoke1_westeurope",                                 # node resource group
                   es.CLUSTER, "aks-spoke1-rg-spoke1-a3cdb2",                             # cluster name, DNS prefix
                   "azmk8s.io"]                                                          # API server hosts
    leaks = {}
    for path in sorted(p for p in out.rglob("*")):
        text = path.name + (path.read_text(errors="replace") if path.is_file() else "")
        found = [i for i in identifiers if i.lower() in text.lower()]
        if found:
            leaks[str(path.relative_to(out))] = found
    assert leaks == {}
    assert json.loads((out / "manifest.json").read_text())["redacted"] is True


def test_collect_redact_of_the_example_keeps_the_vnet_link(tmp_path, bundle_report):
    """Regression: redaction took resource *types* (``Microsoft.Network/virtualNetworks/subnets``,
    ``…/virtualNetworkPeerings``) for VNet names and replaced the word ``subnets`` in every ARM ID,
    so the node pool's subnet no longer named a subnet and MQ008 vanished from the redacted bundle."""
    env = es.base_env(tmp_path, "/usr/bin:/bin")
    out = tmp_path / "r"
    r = es.masqctl("collect", "--bundle", str(es.BUNDLE), "-o", str(out), "--redact", env=env)
    assert r.returncode == 0, r.stderr
    aks = json.loads((out / "aks.json").read_text())
    subnet_id = aks["agentPoolProfiles"][0]["vnetSubnetId"]
    assert re.fullmatch(r"/subscriptions/redacted-subscription-\d+/resourceGroups/redacted-rg-\d+/providers/"
                        r"Microsoft\.Network/virtualNetworks/redacted-vnet-\d+/subnets/redacted-subnet-\d+", subnet_id), subnet_id
    [vnet_file] = (out / "vnets").glob("*.json")
    vnet = json.loads(vnet_file.read_text())
    assert vnet["virtualNetworkPeerings"][0]["id"].split("/")[-2] == "virtualNetworkPeerings"
    assert re.fullmatch(r"redacted-peering-\d+", vnet["virtualNetworkPeerings"][0]["name"])       # hidden too
    assert "snet-aks-nodes" not in json.dumps(vnet) and "peer-spoke1-to-hub" not in json.dumps(vnet)
    doc = json_of(es.masqctl("inspect", "--bundle", str(out), "-o", "json", env=env))
    assert codes(doc) == codes(bundle_report) and cidrs_of(doc) == cidrs_of(bundle_report)


def test_live_inspect_finds_the_cluster_from_a_kubeconfig_in_kubeconfig_env(estate, tmp_path):
    """Regression: Kubernetes gathering read the kubeconfig listed in ``KUBECONFIG``, but matching the
    context to an AKS cluster read ``~/.kube/config`` instead; with a renamed context the cluster was
    not found and MQ008 became "not checked". The kubeconfig is as ``az aks get-credentials --file``
    writes it (user ``clusterUser_<rg>_<name>``), its context renamed by the operator."""
    kc = yaml.safe_load(Path(estate.kubeconfig).read_text())
    user = f"clusterUser_{es.RESOURCE_GROUP}_{es.CLUSTER}"
    kc["users"][0]["name"] = kc["contexts"][0]["context"]["user"] = user
    kc["contexts"][0]["name"] = kc["current-context"] = "prod"
    path = tmp_path / "elsewhere" / "spoke1.kubeconfig"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(kc))
    env = dict(estate.env, KUBECONFIG=os.pathsep.join([str(tmp_path / "missing.kubeconfig"), str(path)]))
    r = es.masqctl("inspect", "--subscription", es.SUBSCRIPTION, "-o", "json", env=env)
    doc = json_of(r)
    assert r.returncode == 0, r.stderr
    assert doc["source"] == "context prod" and doc["cluster"] == es.CLUSTER
    assert codes(doc) == ["MQ008", "MQ011"], doc["notes"]
    assert estate.arm.requests(r"/subscriptions/[^/]+/providers/Microsoft.ContainerService/managedClusters$")


# ------------------------------------------------------------------------------ 3. apply live


def _apply(estate, tmp_path, *extra: str):
    return estate.masqctl("apply", *extra, "--yes", "--poll-interval", "0.2", "--timeout", "120",
                          "--backup-dir", str(tmp_path / "backups"), *estate.live_args())


def test_live_apply_preserve_source_ip_writes_verifies_and_fixes_mq008(slow_estate, tmp_path):
    estate = slow_estate
    at_write: dict[str, int] = {}

    def remember(req, api):      # exec counts when the ConfigMap is created
        if req.method == "POST" and req.path.endswith("/configmaps") and not at_write:
            at_write.update(estate.exec_calls())
    estate.api.hooks.append(remember)

    r = _apply(estate, tmp_path, "--goal", "preserve-source-ip")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    cm = estate.api.get("configmaps", es.USER_CM, NS)
    assert cm is not None, "the user ConfigMap was not created"
    assert yaml.safe_load(cm["data"]["ip-masq-agent"]) == {"nonMasqueradeCIDRs": [es.HUB_RANGE]}
    assert CONVENTIONAL_LABELS.items() <= cm["metadata"]["labels"].items()
    assert [w.method for w in writes(estate.api)] == ["POST"]
    # the backup and how to restore it
    [backup] = list((tmp_path / "backups").iterdir())
    assert f"backup of {NS}/{es.USER_CM} saved to {backup}" in r.stderr
    assert "to restore:" in r.stderr and f"kubectl -n {NS} delete configmap {es.USER_CM}" in r.stderr
    assert f"masqctl apply --from-backup {backup}" in r.stderr
    # verify waited for the nodes: each showed the new chain only after 3 polls following the write
    assert f"created ConfigMap {NS}/{es.USER_CM}" in r.stdout and "verified:" in r.stdout
    assert set(at_write) == set(es.NODES)
    for n, node in estate.nodes.items():
        assert node.converged_at_call is not None, f"{n} never showed the new chain: verify did not wait for it"
        assert node.converged_at_call - at_write[n] == estate.nodes[n].converge_after + 1
        assert f"-d {es.HUB_RANGE} -j RETURN" in node.dump
    # inspect live: MQ008 is gone; the user ConfigMap is reported as an overlay migration blocker
    inspected, explained = parallel(
        lambda: estate.masqctl("inspect", *estate.live_args(), "-o", "json"),
        lambda: estate.masqctl("explain", "orders/orders-api-5b7c9d8f6-kq2xv", "10.42.1.10:443",
                               *estate.live_args(), "-o", "json"))
    doc = json_of(inspected)
    assert "MQ008" not in codes(doc) and "MQ016" in codes(doc)
    assert {f["code"]: f["severity"] for f in doc["findings"]}["MQ016"] == "info"
    assert node_states(doc) == {n: "in-sync" for n in es.NODES} and doc["summary"]["exit_code"] == 0
    assert (es.HUB_RANGE, (f"ConfigMap {NS}/{es.USER_CM} key ip-masq-agent line 2",)) in effective(doc)
    # and the orders pod now reaches the hub with its own IP
    ex = json_of(explained)
    assert ex["masqueraded"] is False and ex["source_ip_seen"] == "10.40.0.9"

    # a second apply while someone else edits the ConfigMap between the plan and the write
    edit = "nonMasqueradeCIDRs:\n  - 10.42.0.0/15\n  - 172.16.0.0/12   # another operator\n"
    _edit_after_plan(estate, "GET", lambda api: api.update("configmaps", es.USER_CM, NS,
                                                          data={"ip-masq-agent": edit}))
    before = len(writes(estate.api))
    r = _apply(estate, tmp_path, "--add", "10.50.0.0/16")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "E701" in r.stderr and "nothing was written" in r.stderr and "Traceback" not in r.stderr
    assert writes(estate.api)[before:] == []
    assert estate.api.get("configmaps", es.USER_CM, NS)["data"] == {"ip-masq-agent": edit}
    assert len(list((tmp_path / "backups").iterdir())) == 1      # refused before the backup too


def _edit_after_plan(estate, method: str, change) -> None:
    """Run ``change(api)`` once, just before the first ``method`` on the user ConfigMap (by name, or a
    create in the namespace) that comes after every node was captured: that is, after the plan."""
    base = dict(estate.exec_calls())
    fired = []
    named = re.compile(rf"/namespaces/{NS}/configmaps/{re.escape(es.USER_CM)}$")
    create = re.compile(rf"/namespaces/{NS}/configmaps$")

    def hook(req, api):
        if fired or req.method != method:
            return
        if not (named.search(req.path) or (method == "POST" and create.search(req.path))):
            return
        if all(estate.exec_calls()[n] > base[n] for n in es.NODES):
            fired.append(req.path)
            change(api)
    estate.api.hooks.append(hook)


@pytest.mark.parametrize("race", ["update", "create"])
def test_live_apply_refuses_a_concurrent_write_at_the_moment_of_writing(estate, tmp_path, race):
    """The ConfigMap changes after apply re-read it, just as its PUT (or POST) arrives: the API
    server's optimistic concurrency refuses the write (409), and apply says E701."""
    theirs = "nonMasqueradeCIDRs:\n  - 192.168.0.0/16\n"
    if race == "update":
        estate.api.add({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": es.USER_CM, "namespace": NS, "labels": dict(CONVENTIONAL_LABELS)},
                        "data": {"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.42.0.0/15\n"}})
        _edit_after_plan(estate, "PUT", lambda api: api.update("configmaps", es.USER_CM, NS,
                                                              data={"ip-masq-agent": theirs}))
        args = ("--add", "10.50.0.0/16")
    else:
        _edit_after_plan(estate, "POST", lambda api: api.add({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": es.USER_CM, "namespace": NS},
            "data": {"ip-masq-agent": theirs}}))
        # this plan needs the peering from ARM; sign in as a service principal this time (--azure-auth
        # default → EnvironmentCredential), with no az on PATH
        estate.arm.register_client(SP_CLIENT, SP_SECRET)
        estate.env.update(PATH="/usr/bin:/bin", AZURE_TENANT_ID="adfs", AZURE_CLIENT_ID=SP_CLIENT,
                          AZURE_CLIENT_SECRET=SP_SECRET, AZURE_AUTHORITY_HOST=estate.arm.url)
        args = ("--goal", "preserve-source-ip", "--azure-auth", "default")
    r = _apply(estate, tmp_path, *args)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "E701" in r.stderr and "Traceback" not in r.stderr
    assert [w.status for w in writes(estate.api)] == [409]
    assert estate.api.get("configmaps", es.USER_CM, NS)["data"] == {"ip-masq-agent": theirs}
    if race == "create":
        assert estate.az.calls == [] and any(r.path.endswith("/adfs/oauth2/token") for r in
                                             estate.arm.requests("", method="POST"))


def test_live_apply_rolls_back_when_the_nodes_never_take_the_change(estate, tmp_path):
    for node in estate.nodes.values():
        node.converge_after = 10 ** 9            # the agent never picks the new config up
    r = estate.masqctl("apply", "--goal", "preserve-source-ip", "--yes", "--poll-interval", "0.2", "--timeout", "2",
                       "--rollback-on-failure", "--backup-dir", str(tmp_path / "backups"), *estate.live_args())
    assert r.returncode == 1, r.stdout + r.stderr
    assert "E710" in r.stderr and "rolled back" in r.stderr and "Traceback" not in r.stderr
    for n in es.NODES:
        assert f"not converged: {n}: missing RETURN for {es.HUB_RANGE}" in r.stdout
    assert "rolled back: deleted ConfigMap" in r.stdout
    created = [w for w in writes(estate.api) if w.method == "POST"]
    deleted = [w for w in writes(estate.api) if w.method == "DELETE"]
    assert [w.status for w in created + deleted] == [201, 200]
    [written_rv] = re.findall(rf"created ConfigMap {NS}/{es.USER_CM} \(resourceVersion (\d+)\)", r.stdout)
    assert deleted[0].body["preconditions"]["resourceVersion"] == written_rv   # only what apply itself wrote
    assert estate.api.get("configmaps", es.USER_CM, NS) is None     # back to the state before apply


# ------------------------------------------------------------------------------ 4. without Azure


@pytest.mark.parametrize("azure_flags", [False, True], ids=["no-flags", "with-flags"])
def test_inspect_without_azure_credentials_lists_what_it_could_not_check(estate_without_azure, azure_flags):
    estate = estate_without_azure
    args = estate.live_args() if azure_flags else estate.kube_args()
    r = estate.masqctl("inspect", *args, "-o", "json")
    doc = json_of(r)
    assert r.returncode == doc["summary"]["exit_code"], r.stderr
    assert r.returncode == (1 if doc["summary"]["error"] else 0)
    assert "MQ008" not in codes(doc)
    not_checked = {n["code"]: n["reason"] for n in doc["not_checked"]}
    assert {"MQ007", "MQ008"} <= set(not_checked), doc["not_checked"]
    for code in ("MQ007", "MQ008"):
        reason = not_checked[code]
        assert "Azure facts" in reason and "az" in reason, reason
    assert "VNet" in not_checked["MQ007"] and "peered VNets are not known" in not_checked["MQ008"]
    assert any(n.startswith("missing azure: ") for n in doc["notes"])
    assert estate.arm.log == []                       # nothing reached ARM
    assert estate.exec_calls() == {n: 1 for n in es.NODES}


# ------------------------------------------------------------------------------ 5. RBAC


def test_inspect_without_pods_exec_still_reports_and_says_what_to_grant(estate):
    estate.api.deny("create", "pods/exec", namespace=NS)
    r = estate.masqctl("inspect", *estate.live_args(), "-o", "json")
    doc = json_of(r)
    assert r.returncode == doc["summary"]["exit_code"] == 0, r.stderr
    assert "MQ008" in codes(doc)                      # the config and Azure facts still decide it
    groups = {n: g for g in doc["nodes"]["groups"] for n in g["nodes"]}
    assert set(groups) == set(es.NODES)
    for g in groups.values():
        assert g["state"] == "unknown", g
        assert "pods/exec" in g["summary"] and "E616" in g["summary"], g["summary"]
        assert "grant `create` on pods/exec in namespace kube-system" in g["summary"]
    assert estate.exec_calls() == {n: 0 for n in es.NODES}


def test_inspect_without_list_configmaps_fails_with_e616(estate):
    estate.api.deny("list", "configmaps", namespace=NS)
    r = estate.masqctl("inspect", *estate.live_args(), "-o", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    assert no_result(r)
    assert "Traceback" not in r.stderr
    assert "E616" in r.stderr and "list" in r.stderr and "configmaps" in r.stderr and "kube-system" in r.stderr
    assert "grant" in r.stderr


# ------------------------------------------------------------------------------ 6. explain live


def test_live_explain_from_a_pod_execs_only_its_node(estate):
    r = estate.masqctl("explain", "orders/orders-api-5b7c9d8f6-kq2xv", "10.42.1.10:443", *estate.kube_args(),
                       "-o", "json")
    doc = json_of(r)
    assert r.returncode == 0, r.stderr
    assert doc["masqueraded"] is True and doc["source_ip_seen"] == "10.40.0.4"
    assert doc["deciding_rule"]["chain"] == es.CHAIN and doc["deciding_rule"]["text"].endswith("-j MASQUERADE")
    assert estate.exec_calls() == {es.NODES[0]: 1, es.NODES[1]: 0}
    # no -g/--cluster: the cluster was found by the kubeconfig context's name among the subscription's clusters
    assert estate.arm.requests(r"/subscriptions/[^/]+/providers/Microsoft.ContainerService/managedClusters$")
    assert doc["destination_places"][0]["kind"] == "peered-vnet", doc["destination_places"]
