"""inspect with several clusters: the fleet section (connections both ways, MQ018–MQ020), the
names and exit status, the JSON document, and the shipped example examples/hub-spoke-fleet."""

from __future__ import annotations

import json
import os

import pytest
from clusterkit import fleet
from clusterkit.bundle import EXAMPLES, run_cli

from masqctl.analysis.fleet import inspect_fleet
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle
from masqctl.cluster.options import GatherOptions
from masqctl.ops.fleet import gather_clusters
from masqctl.ops.inspect import inspect_clusters

SPOKE1 = os.path.join(EXAMPLES, "hub-spoke-fleet", "spoke1")
HUB = os.path.join(EXAMPLES, "hub-spoke-fleet", "hub")


def run(*folders, only=None):
    return inspect_clusters([GatherOptions(bundle=f) for f in folders], only=only)


def codes(report):
    return [(f.code, f.clusters) for f in report.findings]


def hub_and_spoke(tmp_path, *, policy="Cluster", spoke_user=None, back="Connected", hub_services=True):
    spoke = fleet.cluster("spoke1", "10.40.0.0/16", user_cidrs=spoke_user)
    hub = fleet.cluster("hub", "10.42.0.0/16", services=hub_services)
    fleet.peer(spoke, hub)
    if back is not None:
        fleet.peer(hub, spoke, state=back)
    lb = fleet.ingress(hub, policy) if hub_services else None
    return fleet.write(tmp_path, spoke, hub), lb


# --------------------------------------------------------------------------- the shipped example


def test_the_example_shows_the_spoke_fix_undone_by_the_hub():
    report = run(SPOKE1, HUB)
    assert report.names == ("aks-spoke1", "aks-hub")
    assert [(c.source, c.target, c.state) for c in report.connections] == [
        ("aks-spoke1", "aks-hub", "Connected"), ("aks-hub", "aks-spoke1", "Connected")]
    assert codes(report) == [("MQ018", ("aks-spoke1", "aks-hub"))]
    f = report.findings[0].finding
    assert "ingress-nginx/ingress-nginx-controller (10.42.1.10:80, 10.42.1.10:443)" in f.detail
    assert "10.0.0.0/8 (ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 2)" in f.detail
    assert "aks-hub node IPs (10.42.0.4, 10.42.0.35)" in f.detail
    assert "externalTrafficPolicy\":\"Local\"" in f.fix
    assert report.exit_code == 0 and report.not_checked == ()


def test_the_example_bundles_hold_the_hub_service_and_its_endpoints():
    hub = build_snapshot(read_bundle(HUB))
    from masqctl.cluster.services import ServiceIndex

    index = ServiceIndex.of(hub)
    (svc,) = index.by_lb_ip("10.42.1.10")
    assert (svc.ref, svc.type, svc.external_traffic_policy) == (
        "ingress-nginx/ingress-nginx-controller", "LoadBalancer", "Cluster")
    assert [p.node_port for p in svc.ports] == [30412, 31785]
    assert sorted(e.node_name for e in index.endpoints_of(svc)) == [n.name for n in hub.nodes]
    nat = hub.captures[hub.nodes[0].name].iptables_save
    assert "-d 10.42.1.10/32 -p tcp -m comment --comment \"ingress-nginx/ingress-nginx-controller:https loadbalancer IP\"" in nat
    assert "masquerade traffic for ingress-nginx/ingress-nginx-controller:https external destinations" in nat


def test_the_example_on_the_command_line_json_and_human(tmp_path):
    proc = run_cli("inspect", "--bundle", "examples/hub-spoke-fleet/spoke1", "--bundle", "examples/hub-spoke-fleet/hub",
                   "-o", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    import jsonschema

    jsonschema.validate(doc, json.load(open(os.path.join(EXAMPLES, "..", "docs", "inspect.schema.json"))))
    assert set(doc) == {"schema", "clusters", "fleet"}
    assert [c["cluster"] for c in doc["clusters"]] == ["aks-spoke1", "aks-hub"]
    assert {"findings", "not_checked", "summary", "config", "mode"} <= set(doc["clusters"][0])
    assert [f["code"] for f in doc["fleet"]["findings"]] == ["MQ018"]
    assert doc["fleet"]["findings"][0]["clusters"] == ["aks-spoke1", "aks-hub"]
    assert set(doc["fleet"]["findings"][0]) >= {"code", "severity", "title", "detail", "fix", "nodes", "evidence"}
    assert [(c["from"], c["to"], c["state"], c["peering"]["name"]) for c in doc["fleet"]["connections"]] == [
        ("aks-spoke1", "aks-hub", "Connected", "peer-spoke1-to-hub"),
        ("aks-hub", "aks-spoke1", "Connected", "peer-hub-to-spoke1")]
    human = run_cli("inspect", "--bundle", "examples/hub-spoke-fleet/spoke1", "--bundle", "examples/hub-spoke-fleet/hub")
    assert human.returncode == 0
    for text in ("cluster aks-spoke1", "cluster aks-hub", "fleet", "peer-spoke1-to-hub", "MQ018"):
        assert text in human.stdout


def test_one_cluster_keeps_todays_document():
    one = json.loads(run_cli("inspect", "--bundle", "examples/hub-spoke", "-o", "json").stdout)
    assert one["schema"] == 1 and "clusters" not in one and "fleet" not in one
    assert one["cluster"] == "aks-spoke1" and "MQ008" in [f["code"] for f in one["findings"]]
    assert not any("services" in n for n in one["notes"])


# --------------------------------------------------------------------------- the findings on test fleets


def test_mq019_the_hub_keeps_client_ips_and_the_spoke_masquerades(tmp_path):
    folders, lb = hub_and_spoke(tmp_path, policy="Local")
    report = run(*folders)
    assert codes(report) == [("MQ019", ("aks-spoke1", "aks-hub"))]
    f = report.findings[0].finding
    assert f"{lb}:443" in f.detail and "logs aks-spoke1's node IPs" in f.detail
    assert f.command == f"masqctl apply --goal preserve-source-ip --bundle {folders[0]}"
    assert f"masqctl who NODE_IP:PORT --to {lb}:80 --bundle {folders[0]}" in f.fix


def test_no_finding_when_both_ends_agree(tmp_path):
    folders, _ = hub_and_spoke(tmp_path, policy="Local", spoke_user=["10.42.0.0/16"])
    assert codes(run(*folders)) == []           # pod IPs kept, and the Service keeps them
    folders, _ = hub_and_spoke(tmp_path / "m", policy="Cluster")
    assert codes(run(*folders)) == []           # masqueraded both ways: nothing is lost twice


def test_mq018_on_a_test_fleet(tmp_path):
    folders, lb = hub_and_spoke(tmp_path, policy="Cluster", spoke_user=["10.0.0.0/8"])
    report = run(*folders)
    assert codes(report) == [("MQ018", ("aks-spoke1", "aks-hub"))]
    assert f"{lb}:80" in report.findings[0].finding.detail


@pytest.mark.parametrize("back", [None, "Initiated", "Disconnected"])
def test_mq020_the_hub_does_not_route_back(tmp_path, back):
    folders, _ = hub_and_spoke(tmp_path, policy="Local", spoke_user=["10.42.0.0/16"], back=back)
    report = run(*folders)
    assert ("MQ020", ("aks-spoke1", "aks-hub")) in codes(report)
    f = next(f.finding for f in report.findings if f.code == "MQ020")
    assert f.severity == "error" and "no Connected peering back to aks-spoke1" in f.detail
    assert report.exit_code == 1
    assert any(c.source == "aks-hub" and c.target == "aks-spoke1" and c.state == (back or "not peered")
               for c in report.connections)


def test_mq020_overlapping_spokes_the_hub_cannot_tell_apart(tmp_path):
    a = fleet.cluster("spoke1", "10.40.0.0/16", user_cidrs=["10.42.0.0/16"])
    b = fleet.cluster("spoke2", "10.40.0.0/16")
    hub = fleet.cluster("hub", "10.42.0.0/16")
    for s in (a, b):
        fleet.peer(s, hub)
        fleet.peer(hub, s)
    report = run(*fleet.write(tmp_path, a, b, hub))
    (f,) = [f.finding for f in report.findings if f.code == "MQ020"]
    assert "aks-spoke1 and aks-spoke2 use overlapping address space (10.40.0.0/16)" in f.detail
    assert len(report.connections) == 6


def test_mq020_a_peering_that_does_not_route_the_caller(tmp_path):
    spoke = fleet.cluster("spoke1", "10.40.0.0/16", user_cidrs=["10.42.0.0/16"])
    hub = fleet.cluster("hub", "10.42.0.0/16")
    fleet.peer(spoke, hub)
    fleet.peer(hub, spoke, space=["10.41.0.0/16"])      # stale: not in sync with the spoke's space
    (f,) = [f.finding for f in run(*fleet.write(tmp_path, spoke, hub)).findings]
    assert f.code == "MQ020" and "does not route 10.40.0.0/16 of aks-spoke1" in f.detail


def test_overlay_callers_are_pointed_at_who_not_apply(tmp_path):
    spoke = fleet.cluster("spoke1", "10.40.0.0/16", plugin_mode="overlay")
    hub = fleet.cluster("hub", "10.42.0.0/16")
    fleet.peer(spoke, hub)
    fleet.peer(hub, spoke)
    fleet.ingress(hub, "Local")
    report = run(*fleet.write(tmp_path, spoke, hub))
    (f,) = [f.finding for f in report.findings]
    assert f.code == "MQ019" and f.command == "" and "not routable" in f.fix and "masqctl who" in f.fix


def test_old_bundles_without_services_say_what_is_missing(tmp_path):
    folders, _ = hub_and_spoke(tmp_path, hub_services=False)
    report = run(*folders)
    assert codes(report) == []
    reasons = {(n.code, n.reason) for n in report.not_checked}
    assert ("MQ018", "aks-hub: its Services are not known (services.yaml is not in the bundle), so what it does "
            "to traffic arriving from other clusters is not known") in reasons
    assert {c for c, _ in reasons} == {"MQ018", "MQ019"}
    # the same bundles alone: today's document, no word about Services
    assert not any("services" in n for n in run(folders[1]).notes)


def test_only_selects_fleet_codes(tmp_path):
    report = run(SPOKE1, HUB, only={"MQ008"})
    assert report.findings == () and all(r.findings == () or r.findings[0].code == "MQ008" for r in report.reports)
    assert codes(run(SPOKE1, HUB, only={"MQ018"})) == [("MQ018", ("aks-spoke1", "aks-hub"))]


def test_clusters_without_azure_facts_leave_the_connections_unknown(tmp_path):
    spoke = fleet.cluster("spoke1", "10.40.0.0/16", user_cidrs=["10.0.0.0/8"])
    hub = fleet.cluster("hub", "10.42.0.0/16")
    fleet.ingress(hub)
    spoke.vnets = {}
    report = run(*fleet.write(tmp_path, spoke, hub))
    assert codes(report) == []
    assert report.connections[0].state is None and "its VNets are not known" in report.connections[0].notes[0]
    assert any(n.code == "MQ018" and "aks-spoke1's VNets are not known" in n.reason for n in report.not_checked)


# --------------------------------------------------------------------------- names, errors, exit


def test_names_come_from_aks_else_the_folder(tmp_path):
    spoke = fleet.cluster("spoke1", "10.40.0.0/16")
    hub = fleet.cluster("hub", "10.42.0.0/16")
    hub.aks = None
    folders = fleet.write(tmp_path, spoke, hub)
    assert [c.name for c in gather_clusters([GatherOptions(bundle=f) for f in folders])] == ["aks-spoke1", "hub"]


def test_two_clusters_of_one_name_are_refused(tmp_path):
    proc = run_cli("inspect", "--bundle", "examples/hub-spoke", "--bundle", "examples/hub-spoke-fleet/spoke1")
    assert proc.returncode == 2 and "E405" in proc.stderr and "'aks-spoke1'" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("args, code", [
    (["collect", "-o", "out", "--bundle", "examples/hub-spoke", "--bundle", "examples/aks-kubenet"], "E263"),
    (["inspect", "--context", "a", "--context", "b", "--azure", "a=rg-a"], "E264"),
    (["inspect", "--context", "a", "--context", "b", "--azure", "c=rg/aks"], "E265"),
    (["inspect", "--context", "a", "--context", "b", "-g", "rg"], "E266"),
    (["inspect", "--bundle", "examples/hub-spoke", "--bundle", "examples/aks-kubenet", "--nodes", "n1,n2"], "E267"),
])
def test_usage_errors(args, code, tmp_path):
    proc = run_cli(*args, cwd=None)
    assert proc.returncode == 2 and code in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_exit_status_is_over_all_clusters(tmp_path):
    folders, _ = hub_and_spoke(tmp_path)
    bad = fleet.cluster("bad", "10.50.0.0/16", user_cidrs=["8.8.8.0/24"])     # MQ009 error in one cluster
    folders.append(bad.write(os.path.join(str(tmp_path), "bad")))
    report = run(*folders)
    assert [r.exit_code for r in report.reports] == [0, 0, 1] and report.exit_code == 1
    assert run_cli("inspect", *[a for f in folders for a in ("--bundle", f)], "-q").returncode == 1


def test_inspect_fleet_is_pure_over_snapshots():
    snaps = [("a", build_snapshot(read_bundle(SPOKE1))), ("b", build_snapshot(read_bundle(HUB)))]
    report = inspect_fleet(snaps)
    assert report.names == ("a", "b") and codes(report) == [("MQ018", ("a", "b"))]
