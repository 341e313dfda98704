"""Values the API server never stores are refused (E322, naming the file and the field) instead of
being used: pod IPs that are not addresses, pod CIDRs that are not (aligned) CIDRs, node
InternalIP/ExternalIP addresses that are not addresses, a negative restart count. Values the API
server does store (including forms older API servers accepted) still load, live and from a bundle."""

from __future__ import annotations

import json
import os

import pytest
import qakit

from clusterkit import served
from kubeapi import KubeAPI, Programs
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle
from masqctl.cluster.live.kube import gather_kube
from masqctl.cluster.options import GatherOptions, NodeSelection
from masqctl.errors import InputError
from errordoc import no_result

AGENT = 2        # pods.yaml: azure-ip-masq-agent-hm4n2
WORKLOAD = 13    # pods.yaml: default/web-7d9f8b6c5-2lq8d (10.244.0.3)


def _pod(i, fn):
    def edit(b):
        path = os.path.join(b, "pods.yaml")
        doc = qakit.load_yaml(path)
        fn(doc["items"][i])
        qakit.dump_yaml(path, doc)
    return edit


def _node(i, fn):
    def edit(b):
        path = os.path.join(b, "nodes.yaml")
        doc = qakit.load_yaml(path)
        fn(doc["items"][i])
        qakit.dump_yaml(path, doc)
    return edit


def _set(*path_and_value):
    *path, value = path_and_value

    def fn(obj):
        cur = obj
        for p in path[:-1]:
            cur = cur[p]
        cur[path[-1]] = value
    return fn


def _restarts(v):
    return _set("status", "containerStatuses", 0, "restartCount", v)


def _address(j, kind, address):
    return _set("status", "addresses", j, {"type": kind, "address": address})


REFUSED = [
    # (edit, field named, message)
    (_pod(AGENT, _restarts(-5)), f"pods.yaml items[{AGENT}].status.containerStatuses[0].restartCount",
     "-5 is negative; a container's restart count is 0 or more"),
    (_pod(AGENT, _restarts("5")), f"pods.yaml items[{AGENT}].status.containerStatuses[0].restartCount",
     "expected an integer, got string"),
    (_pod(WORKLOAD, _set("status", "podIP", "not-an-ip")), f"pods.yaml items[{WORKLOAD}].status.podIP",
     '"not-an-ip" is not an IP address'),
    (_pod(WORKLOAD, _set("status", "podIP", "10.244.0.3/32")), f"pods.yaml items[{WORKLOAD}].status.podIP",
     '"10.244.0.3/32" is not an IP address'),
    (_pod(WORKLOAD, _set("status", "podIP", "10.244.0.256")), f"pods.yaml items[{WORKLOAD}].status.podIP",
     '"10.244.0.256" is not an IP address'),
    (_pod(WORKLOAD, _set("status", "podIP", " 10.244.0.3")), f"pods.yaml items[{WORKLOAD}].status.podIP",
     '" 10.244.0.3" is not an IP address'),
    (_pod(WORKLOAD, _set("status", "podIP", "fe80::1%eth0")), f"pods.yaml items[{WORKLOAD}].status.podIP",
     '"fe80::1%eth0" is not an IP address'),
    (_pod(WORKLOAD, _set("status", "podIPs", [{"ip": "10.244.0.3"}, {"ip": "banana"}])),
     f"pods.yaml items[{WORKLOAD}].status.podIPs[1].ip", '"banana" is not an IP address'),
    (_pod(WORKLOAD, _set("status", "podIPs", [{}])), f"pods.yaml items[{WORKLOAD}].status.podIPs[0].ip",
     "missing (each podIPs entry has an IP address)"),
    (_pod(WORKLOAD, _set("status", "podIPs", [{"ip": 10}])), f"pods.yaml items[{WORKLOAD}].status.podIPs[0].ip",
     "expected a string, got number"),
    (_pod(AGENT, _set("status", "podIP", "host")), f"pods.yaml items[{AGENT}].status.podIP",
     '"host" is not an IP address'),
    (_node(0, _set("spec", "podCIDR", "banana")), "nodes.yaml items[0].spec.podCIDR",
     '"banana" is not a CIDR (an IP address and a prefix length, such as 10.244.0.0/24)'),
    (_node(0, _set("spec", "podCIDR", "10.244.0.0")), "nodes.yaml items[0].spec.podCIDR", "is not a CIDR"),
    (_node(0, _set("spec", "podCIDR", "10.244.0.0/33")), "nodes.yaml items[0].spec.podCIDR", "is not a CIDR"),
    (_node(0, _set("spec", "podCIDR", "10.244.0.0/-1")), "nodes.yaml items[0].spec.podCIDR", "is not a CIDR"),
    (_node(0, _set("spec", "podCIDR", "10.244.0.0/ 24")), "nodes.yaml items[0].spec.podCIDR", "is not a CIDR"),
    (_node(0, _set("spec", "podCIDR", "10.244.0.1/24")), "nodes.yaml items[0].spec.podCIDR",
     '"10.244.0.1/24" has bits set after the /24 prefix (the network is 10.244.0.0/24); a pod CIDR is a network '
     'address'),
    (_node(0, _set("spec", "podCIDRs", ["10.244.0.0/24", "fd00:10:244::1/64"])), "nodes.yaml items[0].spec.podCIDRs[1]",
     "has bits set after the /64 prefix (the network is fd00:10:244::/64)"),
    (_node(1, _address(0, "InternalIP", "aks-nodepool1-10522532-vmss000001")),
     "nodes.yaml items[1].status.addresses[0].address",
     '"aks-nodepool1-10522532-vmss000001" is not an IP address (type InternalIP)'),
    (_node(1, _address(0, "ExternalIP", "1.2.3")), "nodes.yaml items[1].status.addresses[0].address",
     '"1.2.3" is not an IP address (type ExternalIP)'),
    (_node(1, _address(0, "InternalIP", "")), "nodes.yaml items[1].status.addresses[0].address",
     "missing (an address of type InternalIP is an IP address)"),
]


@pytest.mark.parametrize("edit,field,message", REFUSED, ids=[f"{f}: {m[:40]}" for _, f, m in REFUSED])
def test_values_the_api_server_never_stores_are_refused(tmp_path, edit, field, message):
    b = qakit.bundle(tmp_path, "aks-kubenet")
    edit(b)
    proc = qakit.run("inspect", "--bundle", b, "-o", "json")
    qakit.assert_clean(proc)
    assert proc.returncode == 2 and no_result(proc), proc.stdout[:300]
    assert f"E322 {field}: " in proc.stderr and message in proc.stderr, proc.stderr


ACCEPTED = [
    # (edit, what the snapshot holds)
    (_pod(WORKLOAD, _set("status", "podIP", "")), ("pod", ("10.244.0.3",))),       # empty: absent; podIPs used
    (_pod(WORKLOAD, _set("status", "podIP", "010.244.000.003")), ("pod", ("10.244.0.3",))),   # read as decimal
    (_pod(WORKLOAD, _set("status", "podIPs", [{"ip": "10.244.0.3"}, {"ip": "fd00:10:244::3"}])),
     ("pod", ("10.244.0.3", "fd00:10:244::3"))),
    (_pod(AGENT, _restarts(0)), ("restarts", 0)),
    (_pod(AGENT, _restarts(17)), ("restarts", 17)),
    (_node(0, _set("spec", "podCIDRs", ["10.244.0.0/24", "fd00:10:244::/64"])),
     ("cidrs", ("10.244.0.0/24", "fd00:10:244::/64"))),
    (_node(0, _set("spec", "podCIDR", "10.244.0.0/32")), ("cidrs", ("10.244.0.0/32", "10.244.0.0/24"))),
    (_node(0, _address(1, "Hostname", "not-an-ip-and-fine")), ("address", ("Hostname", "not-an-ip-and-fine"))),
    (_node(0, _address(1, "InternalDNS", "node.internal")), ("address", ("InternalDNS", "node.internal"))),
    (_node(0, _address(1, "ExternalIP", "2001:db8::4")), ("address", ("ExternalIP", "2001:db8::4"))),
]


@pytest.mark.parametrize("edit,expected", ACCEPTED, ids=[str(e) for _, e in ACCEPTED])
def test_values_the_api_server_stores_still_load(tmp_path, edit, expected):
    b = qakit.bundle(tmp_path, "aks-kubenet")
    edit(b)
    snap = build_snapshot(read_bundle(b))
    what, value = expected
    if what == "pod":
        assert next(p for p in snap.workloads if p.name == "web-7d9f8b6c5-2lq8d").pod_ips == value
    elif what == "restarts":
        assert next(p for p in snap.pods if p.name == "azure-ip-masq-agent-hm4n2").restarts == value
    elif what == "cidrs":
        assert snap.nodes[0].pod_cidrs == value
    else:
        assert value in snap.nodes[0].addresses
    proc = qakit.run("inspect", "--bundle", b, "-o", "json")
    qakit.assert_clean(proc)
    assert proc.returncode in (0, 1) and json.loads(proc.stdout)["schema"] == 1


def test_live_objects_go_through_the_same_checks(tmp_path):
    """Live gathering reads valid objects as before; an object the API server could not have
    stored (the test server stores without admission) is E322 naming the live source."""
    with KubeAPI() as api:
        served.small_cluster(api, 2, workloads_per_node=1)
        api.on_exec(Programs({"iptables-save": "*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n", "ip6tables-save": ""}))
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        options = GatherOptions(kubeconfig=kubeconfig, azure=False, nodes=NodeSelection(sample=1))
        snap = build_snapshot(gather_kube(options, environ={"HOME": str(tmp_path)}))
        assert all(n.internal_ip for n in snap.nodes) and all(p.pod_ips for p in snap.workloads)
        api.add(served.pod("broken", node="aks-nodepool1-00000000", namespace="default", ip="not-an-ip",
                            host_ip="10.224.0.4", labels={"app": "x"}, owner=("ReplicaSet", "x")))
        raw = gather_kube(options, environ={"HOME": str(tmp_path)})
    with pytest.raises(InputError) as e:
        build_snapshot(raw)
    assert e.value.code == "E322" and e.value.input.startswith("the Kubernetes API (context test) items[")
    assert e.value.input.endswith("].status.podIPs[0].ip") and e.value.message == '"not-an-ip" is not an IP address'
