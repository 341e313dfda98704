"""explain across clusters: the path (egress, network, ingress, endpoint) and what the destination sees."""

from __future__ import annotations

import pytest
from clusterkit.seed import write_files
from fleetlab import HNODE, ING, SNODE, SPOD
from kubeproxy_rules import service_nat
from test_fleet_kernel import HUB_NODE, NAME, SPOKE_NODE, hub_bundle, spoke_bundle

from masqctl.analysis.explain_cluster import ClusterRequest
from masqctl.analysis.explain_path import explain_path
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions
from masqctl.errors import UsageError

HUB_ADDR = f"2: eth0    inet {HNODE}/24 brd 10.42.0.255 scope global eth0\\       valid_lft forever\n"
SPOKE_ADDR = f"2: eth0    inet {SNODE}/17 brd 10.40.127.255 scope global eth0\\       valid_lft forever\n"


def _clusters(tmp_path, *, policy="Cluster", fix=False, hub_capture=True, services=True):
    spoke, hub = tmp_path / "spoke1", tmp_path / "hub"
    spoke_bundle(spoke, fix)
    hub_bundle(hub, policy if services else None)
    snap = gather(GatherOptions(bundle=str(spoke)))
    from masqctl.analysis.agentconfig import primary_agent
    rules = primary_agent(snap).rules().ipv4
    nat = rules.payload().replace("COMMIT", "") + rules.jump.text.replace("-I POSTROUTING", "-A POSTROUTING")
    nat = nat.replace(":POSTROUTING", ":POSTROUTING") + "\nCOMMIT\n"
    write_files(spoke, {f"nodes/{SPOKE_NODE}/iptables-save.txt": nat, f"nodes/{SPOKE_NODE}/ip-addr.txt": SPOKE_ADDR})
    if hub_capture:
        hub_nat = service_nat(name=NAME, cluster_ip="10.0.77.7", lb_ip="10.42.0.100", port=443, node_port=31443,
                              endpoints=[(ING, 443, True)], policy=policy, cluster_cidr="10.42.0.0/16",
                              agent=["10.42.0.0/16"])
        write_files(hub, {f"nodes/{HUB_NODE}/iptables-save.txt": hub_nat, f"nodes/{HUB_NODE}/ip-addr.txt": HUB_ADDR})
    return [("spoke1", gather(GatherOptions(bundle=str(spoke)))), ("hub", gather(GatherOptions(bundle=str(hub))))]


@pytest.mark.parametrize("policy,fix,want", [("Cluster", False, HNODE), ("Cluster", True, HNODE),
                                             ("Local", False, SNODE), ("Local", True, SPOD)])
def test_node_port_across_clusters(tmp_path, policy, fix, want):
    r = explain_path(_clusters(tmp_path, policy=policy, fix=fix), ClusterRequest("shop/orders-api", f"{HNODE}:31443"))
    doc = r.to_dict()
    assert [h["stage"] for h in doc["path"]] == ["egress", "network", "ingress", "endpoint"]
    assert set(doc["path"][0]) == {"stage", "cluster", "node", "src", "dst", "masqueraded", "deciding_rule", "notes"}
    egress, network, ingress, endpoint = doc["path"]
    assert egress["cluster"] == "spoke1" and egress["src"] == SPOD and egress["masqueraded"] is (not fix)
    assert network["src"] == (SPOD if fix else SNODE)
    assert ingress["cluster"] == "hub" and ingress["node"] == HUB_NODE
    assert ingress["masqueraded"] is (policy == "Cluster")
    assert endpoint["src"] == want and endpoint["dst"] == f"{ING}:443"
    seen = doc["seen_by_destination"]
    assert seen == {"ip": want, "cluster": "hub", "endpoint": "ingress-nginx/ingress-nginx-controller-0",
                    "why": seen["why"], "candidates": [{"node": HUB_NODE, "ip": want,
                                                        "endpoint": "ingress-nginx/ingress-nginx-controller-0"}]}
    # today's fields keep their meaning: the egress hop
    assert doc["source_ip_seen"] == (SPOD if fix else SNODE)


def test_a_pod_of_another_cluster(tmp_path):
    r = explain_path(_clusters(tmp_path, fix=True), ClusterRequest("shop/orders-api",
                                                                   "ingress-nginx/ingress-nginx-controller-0"))
    assert r.target.kind == "pod" and r.target.cluster == "hub"
    assert r.seen.ip == SPOD and r.seen.endpoint == "ingress-nginx/ingress-nginx-controller-0"


def test_no_capture_of_the_receiving_node_is_undecided(tmp_path):
    r = explain_path(_clusters(tmp_path, hub_capture=False), ClusterRequest("shop/orders-api", f"{HNODE}:31443"))
    assert r.seen.ip is None and "no capture of node" in r.seen.why
    assert r.seen.candidates == [{"node": HUB_NODE, "ip": None, "endpoint": None}]


def test_an_address_outside_every_cluster_is_todays_answer(tmp_path):
    r = explain_path(_clusters(tmp_path), ClusterRequest("shop/orders-api", "203.0.113.9:443"))
    assert [h.stage for h in r.path] == ["egress", "network"]
    assert r.seen.ip == r.egress.base.evaluation.source_ip_seen == SNODE and r.seen.cluster is None


def test_a_source_in_no_cluster_is_E245(tmp_path):
    with pytest.raises(UsageError) as e:
        explain_path(_clusters(tmp_path), ClusterRequest("shop/nope", f"{HNODE}:31443"))
    assert e.value.code == "E245" and "spoke1" in e.value.message and "hub" in e.value.message


def test_a_service_of_another_cluster_by_name_dns_name_and_lb_ip(tmp_path):
    clusters = _clusters(tmp_path, fix=True)
    for dst in ("ingress-nginx/ingress-nginx-controller:https", "ingress-nginx/ingress-nginx-controller:443",
                "ingress-nginx-controller.ingress-nginx.svc.cluster.local:443", "ingress-nginx-controller.ingress-nginx",
                "10.42.0.100:443"):
        r = explain_path(clusters, ClusterRequest("shop/orders-api", dst, proto="tcp" if "." in dst else None))
        assert r.target.kind == "lb" and r.target.cluster == "hub" and r.target.dst == "10.42.0.100:443", dst
        assert r.seen.ip == HNODE and r.seen.endpoint == "ingress-nginx/ingress-nginx-controller-0", dst
        assert "externalTrafficPolicy Cluster" in r.seen.why


def test_local_without_endpointslices_is_undecided(tmp_path):
    clusters = _clusters(tmp_path, policy="Local", fix=True)
    import dataclasses
    hub = dataclasses.replace(clusters[1][1], endpointslices=None)
    r = explain_path([clusters[0], ("hub", hub)], ClusterRequest("shop/orders-api",
                                                                 "ingress-nginx/ingress-nginx-controller:https"))
    assert r.seen.ip is None and "EndpointSlices are not known" in r.seen.why
    assert [h.stage for h in r.path] == ["egress", "network"]


def test_each_node_of_a_cluster_policy_masquerades_to_its_own_address(tmp_path):
    clusters = _clusters(tmp_path, fix=True)
    root = tmp_path / "hub"
    second = "aks-hub-vmss000001"
    from clusterkit.seed import list_yaml, node, pod
    write_files(root, {"nodes.yaml": list_yaml([node(HUB_NODE, HNODE, {}), node(second, "10.42.0.5", {})]),
                       "pods.yaml": list_yaml([pod("ingress-nginx", "ingress-nginx-controller-0", HUB_NODE, ING)]),
                       f"nodes/{second}/iptables-save.txt": (root / f"nodes/{HUB_NODE}/iptables-save.txt").read_text(),
                       f"nodes/{second}/ip-addr.txt": HUB_ADDR.replace(HNODE, "10.42.0.5")})
    hub = gather(GatherOptions(bundle=str(root)))
    r = explain_path([clusters[0], ("hub", hub)], ClusterRequest("shop/orders-api",
                                                                 "ingress-nginx/ingress-nginx-controller:https"))
    assert r.seen.ip is None and r.seen.endpoint == "ingress-nginx/ingress-nginx-controller-0"
    assert sorted(c["ip"] for c in r.seen.candidates) == [HNODE, "10.42.0.5"]
    assert "each receiving node masquerades it to its own address" in r.seen.why
    assert [h.stage for h in r.path].count("ingress") == 2


@pytest.mark.parametrize("dst,code,words", [
    ("ingress-nginx/ingress-nginx-controller:http", "E247", "no port http"),
    ("ingress-nginx/nope:443", "E246", "no Service ingress-nginx/nope"),
    ("nope.ingress-nginx.svc.cluster.local:443", "E246", "no Service ingress-nginx/nope"),
])
def test_service_errors(tmp_path, dst, code, words):
    with pytest.raises(UsageError) as e:
        explain_path(_clusters(tmp_path), ClusterRequest("shop/orders-api", dst))
    assert e.value.code == code and words in e.value.message and e.value.input == "DST"


def test_no_services_anywhere_is_E355(tmp_path):
    from masqctl.errors import InputError
    with pytest.raises(InputError) as e:
        explain_path(_clusters(tmp_path, services=False), ClusterRequest("shop/orders-api",
                                                                         "ingress-nginx/ingress-nginx-controller:443"))
    assert e.value.code == "E355" and "services.yaml" in e.value.message and "hub" in e.value.message


@pytest.mark.parametrize("state", ["Connected", "Initiated"])
def test_the_peering_of_the_source_vnet(tmp_path, state):
    from clusterkit.seed import spoke
    clusters = _clusters(tmp_path, fix=True)
    root = tmp_path / f"seed-{state}"
    spoke(root, peering_state=state, user="nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n")
    seeded = ("spoke1", gather(GatherOptions(bundle=str(root))))
    r = explain_path([seeded, clusters[1]], ClusterRequest("shop/client-7d9f", "ingress-nginx/ingress-nginx-controller:https"))
    network = r.path[1]
    assert network.stage == "network" and "over peering spoke-to-hub" in network.notes[0]
    if state == "Connected":
        assert r.seen.ip == HNODE
    else:
        assert r.seen.ip is None and "is Initiated" in r.seen.why and "nothing arrives" in r.seen.why
