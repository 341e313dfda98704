"""Property tests of the Service and EndpointSlice readers: a real ``kubectl get svc|endpointslices
-A -o yaml`` document with any field replaced by any value (or dropped), written as a bundle's
``services.yaml``/``endpointslices.yaml`` (or as damaged text), gives a snapshot whose lookups
answer, or a coded ``InputError`` naming the file — never another exception, never a hang."""

from __future__ import annotations

import copy
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from timelimit import time_limit

from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle
from masqctl.cluster.services import ServiceIndex
from masqctl.cluster.yamlio import dump_yaml
from masqctl.errors import InputError

EXAMPLES = int(os.environ.get("MASQCTL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx",
                 "annotations": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}},
    "spec": {"type": "LoadBalancer", "clusterIP": "10.0.12.34", "clusterIPs": ["10.0.12.34"],
             "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster", "externalIPs": ["10.42.9.9"],
             "healthCheckNodePort": 32000, "selector": {"app.kubernetes.io/name": "ingress-nginx"},
             "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https", "nodePort": 31443},
                       {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080}]},
    "status": {"loadBalancer": {"ingress": [{"ip": "10.42.1.10", "ipMode": "VIP"}]}},
}
SLICE = {
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
    "metadata": {"name": "ingress-nginx-controller-x7k2p", "namespace": "ingress-nginx",
                 "labels": {"kubernetes.io/service-name": "ingress-nginx-controller"}},
    "ports": [{"name": "https", "port": 443, "protocol": "TCP"}, {"name": "http", "port": 80, "protocol": "TCP"}],
    "endpoints": [{"addresses": ["10.42.0.20"], "conditions": {"ready": True, "serving": True, "terminating": False},
                   "nodeName": "aks-hub-0", "targetRef": {"kind": "Pod", "namespace": "ingress-nginx",
                                                           "name": "ingress-nginx-controller-5d8f7-abcde"}}],
}

VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-5, max_value=70000), st.text(max_size=12),
                   st.sampled_from(["None", "10.0.0.1", "::1", "fe80::1%eth0", "300.1.1.1", "010.0.0.1", "Local",
                                    "https", "FQDN", "IPv6", "SCTP", "tcp"]),
                   st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=4), st.text(max_size=4),
                                                                               max_size=2))


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, prefix + (i,))


def mutate(doc, path, value, drop):
    out = copy.deepcopy(doc)
    if not path:
        return value
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def changed(doc):
    return st.builds(lambda p, v, d: mutate(doc, p, v, d), st.sampled_from(list(paths(doc))), VALUES, st.booleans())


def outcome(folder, services_text: str, slices_text: str):
    os.makedirs(folder, exist_ok=True)
    for name, text in (("services.yaml", services_text), ("endpointslices.yaml", slices_text)):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            fh.write(text)
    with time_limit(20, "reading services"):
        try:
            snap = build_snapshot(read_bundle(folder))
        except InputError as e:
            assert e.code and e.input and e.input.split()[0].split(":")[0] in (
                folder, "services.yaml", "endpointslices.yaml"), (e.code, e.input)
            return e.code
        index = ServiceIndex.of(snap)
        for svc in snap.services or ():
            assert index.by_ref(svc.ref) is not None
            index.endpoints_of(svc)
            for p in svc.ports:
                svc.port(p.port)
                svc.port(p.name or "x")
                for sl in index.slices_of(svc):
                    sl.port_for(p)
            for ip in svc.cluster_ips + svc.lb_ingress_ips:
                index.by_cluster_ip(ip)
                index.by_lb_ip(ip)
            svc.keeps_client_ip
        return "ok"


def kube_list(*items):
    return dump_yaml({"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {"resourceVersion": ""}})


@FUZZ
@given(svc=changed(SERVICE), sl=changed(SLICE))
def test_any_field_of_any_value_gives_a_snapshot_or_a_coded_error(tmp_path_factory, svc, sl):
    outcome(str(tmp_path_factory.mktemp("b")), kube_list(svc, SERVICE), kube_list(sl))


@FUZZ
@given(cut=st.integers(min_value=0, max_value=4000), junk=st.sampled_from(["", "\t", ": :", "- [", "&a *a", "\x00"]))
def test_damaged_text_gives_a_snapshot_or_a_coded_error(tmp_path_factory, cut, junk):
    text = kube_list(SERVICE)
    text = text[:cut % (len(text) + 1)] + junk + text[cut % (len(text) + 1):]
    outcome(str(tmp_path_factory.mktemp("b")), text, kube_list(SLICE))


def test_the_unchanged_documents_read(tmp_path):
    assert outcome(str(tmp_path), kube_list(SERVICE), kube_list(SLICE)) == "ok"
    snap = build_snapshot(read_bundle(str(tmp_path)))
    index = ServiceIndex.of(snap)
    (svc,) = index.by_lb_ip("10.42.1.10")
    assert svc.keeps_client_ip is False and svc.port("https").node_port == 31443 and svc.port(80).target_port == 80
    assert index.by_node_port(30080)[1].name == "http" and index.by_cluster_ip("10.0.12.34") is svc
    assert index.by_external_ip("10.42.9.9") == (svc,)
    (ep,) = index.endpoints_of("ingress-nginx/ingress-nginx-controller")
    assert ep.ready and ep.node_name == "aks-hub-0" and ep.target_pod.startswith("ingress-nginx/")
    assert index.slices_of(svc)[0].port_for(svc.port("https")) == 443
