"""explain on one cluster to a Service: `namespace/service[:port]` and a DNS name from the bundle's services.yaml."""

from __future__ import annotations

import json
import os

import pytest
from clusterkit.bundle import run_cli
from clusterkit.seed import RECONCILED_SPOKE, configmap, daemonset, list_yaml, node, pod, write_files
from errordoc import no_result
from fleetkit import endpointslice, service
from kubeproxy_rules import service_nat

NODE, NODE_IP, POD, DNS_POD, INGRESS = "aks-spoke-vmss000000", "10.40.0.4", "10.40.0.12", "10.40.0.20", "10.40.0.30"
ADDR = f"2: eth0    inet {NODE_IP}/17 brd 10.40.127.255 scope global eth0\\       valid_lft forever\n"
AGENT = ["10.40.0.0/17", "10.0.0.0/16", "10.40.0.0/15"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("spoke")
    dns_ports = [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                 {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]
    https = [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https", "nodePort": 30443}]
    nat = service_nat(name="kube-system/kube-dns:dns", cluster_ip="10.0.0.10", lb_ip=None, port=53, node_port=None,
                      endpoints=[(DNS_POD, 53, True)], proto="udp,tcp", cluster_cidr="10.40.0.0/15", agent=AGENT)
    write_files(root, {
        "configmaps.yaml": list_yaml([configmap("azure-ip-masq-agent-config-reconciled", "ip-masq-agent-reconciled",
                                                RECONCILED_SPOKE)]),
        "daemonsets.yaml": list_yaml([daemonset()]),
        "nodes.yaml": list_yaml([node(NODE, NODE_IP, {"agentpool": "nodepool1"})]),
        "pods.yaml": list_yaml([pod("shop", "orders-api", NODE, POD), pod("kube-system", "coredns-0", NODE, DNS_POD),
                                pod("ingress-nginx", "ingress-nginx-controller-0", NODE, INGRESS)]),
        "services.yaml": list_yaml([
            service("kube-system", "kube-dns", cluster_ip="10.0.0.10", ports=dns_ports),
            service("ingress-nginx", "ingress-nginx-controller", cluster_ip="10.0.88.8", ports=https,
                    type_="LoadBalancer", policy="Cluster", lb_ip="10.40.0.200")]),
        "endpointslices.yaml": list_yaml([
            endpointslice("kube-system", "kube-dns", [(DNS_POD, NODE, "coredns-0")],
                          [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53,
                                                                            "protocol": "TCP"}])]),
        f"nodes/{NODE}/iptables-save.txt": nat,
        f"nodes/{NODE}/ip-addr.txt": ADDR,
    })
    return str(root)


def _json(*args):
    p = run_cli("explain", *args, "-o", "json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("dst,proto,port", [("kube-system/kube-dns:53", "tcp", "dns-tcp"),
                                            ("kube-system/kube-dns:dns", "udp", "dns"),
                                            ("kube-dns.kube-system.svc.cluster.local:53", "tcp", "dns-tcp"),
                                            ("kube-dns.kube-system:dns-tcp", "tcp", "dns-tcp")])
def test_a_service_of_the_same_cluster_is_its_cluster_ip(bundle, dst, proto, port):
    doc = _json("shop/orders-api", dst, "--bundle", bundle)
    assert doc["destination"]["kind"] == "service" and doc["destination"]["dst"] == "10.0.0.10:53"
    assert f"port {port} 53/{proto.upper()}" in doc["destination"]["resolved"]
    assert doc["proto"] == proto
    assert [h["stage"] for h in doc["path"]] == ["egress", "endpoint"]
    assert doc["destination_seen"] == f"{DNS_POD}:53"
    seen = doc["seen_by_destination"]
    assert seen["ip"] == POD and seen["endpoint"] == "kube-system/coredns-0" and seen["cluster"] == os.path.basename(bundle)
    assert doc["path"][1]["dst"] == f"{DNS_POD}:53"


def test_a_cluster_ip_no_rule_dnats_has_no_endpoint(bundle):
    doc = _json("shop/orders-api", "ingress-nginx-controller.ingress-nginx.svc.cluster.local:443", "--bundle", bundle)
    assert doc["destination"]["dst"] == "10.0.88.8:443"
    seen = doc["seen_by_destination"]
    assert seen["ip"] is None and seen["endpoint"] is None and "no rule on node" in seen["why"]
    assert [h["stage"] for h in doc["path"]] == ["egress"]


def test_the_human_output_draws_the_path(bundle):
    p = run_cli("explain", "shop/orders-api", "kube-system/kube-dns:53", "--bundle", bundle)
    assert p.returncode == 0, p.stderr
    out = " ".join(p.stdout.split())
    assert "path 10.40.0.12 → 10.0.0.10:53" in out and "egress" in out and "endpoint" in out
    assert "seen by the destination at kube-system/coredns-0: 10.40.0.12" in out


@pytest.mark.parametrize("dst,code,words", [
    ("kube-system/kube-dns:http", "E247", "has no port http"),
    ("kube-system/kube-dns", "E247", "has 2 ports (dns=53/UDP, dns-tcp=53/TCP): say which one"),
    ("kube-system/nope", "E217", "pod kube-system/nope is not in the snapshot"),
    ("kube-system/nope:53", "E246", "no Service kube-system/nope"),
    ("nope.kube-system.svc.cluster.local:53", "E246", "no Service kube-system/nope"),
])
def test_service_errors_are_coded(bundle, dst, code, words):
    p = run_cli("explain", "shop/orders-api", dst, "--bundle", bundle, "-o", "json")
    assert p.returncode == 2 and code in p.stderr and words in p.stderr and no_result(p)
    assert "Traceback" not in p.stderr


def test_a_service_with_several_ports_and_none_named(bundle):
    p = run_cli("explain", "shop/orders-api", "kube-system/kube-dns:", "--bundle", bundle)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "E2" in p.stderr


def test_no_services_yaml_is_E355(bundle, tmp_path):
    import shutil
    root = tmp_path / "old"
    shutil.copytree(bundle, root)
    (root / "services.yaml").unlink()
    p = run_cli("explain", "shop/orders-api", "kube-system/kube-dns:53", "--bundle", str(root))
    assert p.returncode == 2 and "E355" in p.stderr and "services.yaml" in p.stderr
