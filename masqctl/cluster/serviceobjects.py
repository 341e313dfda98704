"""Service and EndpointSlice objects (``kubectl get svc|endpointslices -A -o yaml``) → ``cluster.services``.

Only the fields kube-proxy acts on are read and type-checked; an address the API server would not
store (not an IP), or a port outside 1–65535, is refused (E322) naming the document and the field,
as for the other Kubernetes objects (``cluster.kubeobjects``).
"""

from __future__ import annotations

import json

from masqctl.cluster.kubeobjects import parse_ip
from masqctl.cluster.services import SERVICE_NAME_LABEL, Endpoint, EndpointSlice, Service, ServicePort
from masqctl.cluster.shape import Doc

_PROTOCOLS = ("TCP", "UDP", "SCTP")


def _ip(doc: Doc, key: str, value: str) -> str:
    ip = parse_ip(value)
    if ip is None:
        raise doc.fail(key, f"{json.dumps(value)} is not an IP address")
    return ip


def _port(doc: Doc, key: str, *, required: bool = False) -> int | None:
    value = doc.int(key)
    if value is None:
        if required:
            raise doc.fail(key, "missing (a port number is required)")
        return None
    if not 1 <= value <= 65535:
        raise doc.fail(key, f"{value} is not a port number (1-65535)")
    return value


def _protocol(doc: Doc) -> str:
    value = doc.str("protocol") or "TCP"
    if value not in _PROTOCOLS:
        raise doc.fail("protocol", f"{json.dumps(value)} is not a protocol (TCP, UDP or SCTP)")
    return value


def _service_port(p: Doc) -> ServicePort:
    raw_target = p.raw("targetPort")
    target: int | str | None
    if raw_target is None:
        target = None
    elif isinstance(raw_target, bool) or not isinstance(raw_target, (int, str)):
        raise p.fail("targetPort", "expected a port number or a port name")
    elif isinstance(raw_target, int):
        target = _port(p, "targetPort")
    else:
        target = int(raw_target) if raw_target.isdigit() else raw_target
    return ServicePort(name=p.str("name") or None, protocol=_protocol(p), port=_port(p, "port", required=True),
                       target_port=target, node_port=_port(p, "nodePort"))


def service(doc: Doc, default_namespace: str = "default") -> Service:
    meta = doc.mapping_or_empty("metadata")
    spec = doc.mapping_or_empty("spec")
    status = doc.mapping_or_empty("status")
    kind = spec.str("type") or "ClusterIP"
    ips: list[str] = []
    for i, value in enumerate(spec.strs("clusterIPs")):
        if value != "None":
            ips.append(_ip(spec, f"clusterIPs[{i}]", value))
    single = spec.str("clusterIP")
    if single and single != "None":
        single = _ip(spec, "clusterIP", single)
        if single not in ips:
            ips.insert(0, single)
    lb: list[str] = []
    for entry in status.mapping_or_empty("loadBalancer").mappings("ingress"):
        value = entry.str("ip")
        if value:
            lb.append(_ip(entry, "ip", value))
    external = [_ip(spec, f"externalIPs[{i}]", v) for i, v in enumerate(spec.strs("externalIPs"))]
    selector = spec.str_map("selector") if spec.raw("selector") is not None else None
    return Service(
        namespace=meta.str("namespace") or default_namespace,
        name=meta.str("name", required=True),
        type=kind,
        cluster_ips=tuple(ips),
        ports=tuple(_service_port(p) for p in spec.mappings("ports")),
        external_traffic_policy=spec.str("externalTrafficPolicy"),
        internal_traffic_policy=spec.str("internalTrafficPolicy"),
        health_check_node_port=_port(spec, "healthCheckNodePort"),
        lb_ingress_ips=tuple(lb),
        external_ips=tuple(external),
        selector=selector,
        annotations=meta.str_map("annotations"),
    )


def _endpoint(e: Doc, address_type: str) -> Endpoint:
    addresses = e.strs("addresses")
    if address_type in ("IPv4", "IPv6"):
        addresses = tuple(_ip(e, f"addresses[{i}]", a) for i, a in enumerate(addresses))
    cond = e.mapping_or_empty("conditions")
    ref = e.mapping("targetRef")
    pod = None
    if ref is not None and (ref.str("kind") or "Pod") == "Pod" and ref.str("name"):
        pod = f"{ref.str('namespace') or ''}/{ref.str('name')}"
    return Endpoint(addresses=addresses, ready=cond.bool("ready"), serving=cond.bool("serving"),
                    terminating=cond.bool("terminating"), node_name=e.str("nodeName"), target_pod=pod)


def endpointslice(doc: Doc, default_namespace: str = "default") -> EndpointSlice:
    meta = doc.mapping_or_empty("metadata")
    namespace = meta.str("namespace") or default_namespace
    address_type = doc.str("addressType") or "IPv4"
    ports = []
    for p in doc.mappings("ports"):
        ports.append((p.str("name") or "", _port(p, "port"), _protocol(p)))
    endpoints = []
    for e in doc.mappings("endpoints"):
        ep = _endpoint(e, address_type)
        if ep.target_pod is not None and ep.target_pod.startswith("/"):
            ep = Endpoint(ep.addresses, ep.ready, ep.serving, ep.terminating, ep.node_name,
                          f"{namespace}{ep.target_pod}")
        endpoints.append(ep)
    return EndpointSlice(namespace=namespace, name=meta.str("name", required=True),
                         service=meta.str_map("labels").get(SERVICE_NAME_LABEL), address_type=address_type,
                         ports=tuple(ports), endpoints=tuple(endpoints))


__all__ = ["endpointslice", "service"]
