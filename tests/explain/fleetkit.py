"""Service and EndpointSlice documents as `kubectl get svc,endpointslices -A -o yaml` prints them."""

from __future__ import annotations

import hashlib


def service(ns: str, name: str, *, cluster_ip: str, ports: list[dict], type_: str = "ClusterIP",
            policy: str | None = None, lb_ip: str | None = None) -> dict:
    """``ports``: dicts of ``name``, ``port``, ``protocol``, ``targetPort``, ``nodePort`` as in spec.ports."""
    spec = {"type": type_, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": ports,
            "selector": {"app.kubernetes.io/name": name}}
    if policy is not None:
        spec["externalTrafficPolicy"] = policy
    status = {"loadBalancer": {"ingress": [{"ip": lb_ip}]} if lb_ip else {}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec,
            "status": status}


def endpointslice(ns: str, service_name: str, endpoints: list[tuple[str, str, str]], ports: list[dict]) -> dict:
    """``endpoints``: (ip, node, pod name), all ready."""
    suffix = hashlib.sha1(f"{ns}/{service_name}".encode()).hexdigest()[:5]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{service_name}-{suffix}", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False},
                           "nodeName": node, "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}}
                          for ip, node, pod in endpoints],
            "ports": ports}
