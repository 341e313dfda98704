"""Services and EndpointSlices of a cluster, as plain data, and a lookup over them.

What kube-proxy turns into rules, kept as the API server stores it: a ``Service`` (its type,
cluster IPs, ports with their node ports, the traffic policies, the load-balancer ingress IPs)
and the ``EndpointSlice`` objects that list its endpoints (addresses, conditions, node, pod).

``ServiceIndex`` answers the questions a path walk asks: which Service is ``namespace/name``,
which owns this cluster IP, load-balancer ingress IP, external IP or node port, and which
endpoints does a Service have (from the slices labelled ``kubernetes.io/service-name``).

Nothing here imports the rest of masqctl; the snapshot (``cluster.model``) holds these values and
``cluster.serviceobjects`` builds them from native documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SERVICE_NAME_LABEL = "kubernetes.io/service-name"   # discovery.k8s.io/v1 well-known label


@dataclass(frozen=True)
class ServicePort:
    """One entry of ``spec.ports``. ``target_port`` is a number, a container port name, or None
    (not written: the API server defaults it to ``port``)."""

    name: str | None
    protocol: str
    port: int
    target_port: int | str | None
    node_port: int | None


@dataclass(frozen=True)
class Service:
    """One Service. ``type`` is ``ClusterIP``, ``NodePort``, ``LoadBalancer`` or ``ExternalName``
    as written; ``cluster_ips`` is empty for a headless Service (``clusterIP: None``) and for
    ``ExternalName``. The traffic policies are None when the document does not say (the API
    server writes ``Cluster`` for both on the types that have them)."""

    namespace: str
    name: str
    type: str
    cluster_ips: tuple[str, ...]
    ports: tuple[ServicePort, ...]
    external_traffic_policy: str | None
    internal_traffic_policy: str | None
    health_check_node_port: int | None
    lb_ingress_ips: tuple[str, ...]
    external_ips: tuple[str, ...]
    selector: dict | None
    annotations: dict

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def headless(self) -> bool:
        return not self.cluster_ips and self.type == "ClusterIP"

    @property
    def keeps_client_ip(self) -> bool | None:
        """External traffic keeps its source address: ``externalTrafficPolicy: Local``. True/False
        for the types that have the policy (NodePort, LoadBalancer); None for the others, or when
        the policy is not written."""
        if self.type not in ("NodePort", "LoadBalancer") or self.external_traffic_policy is None:
            return None
        return self.external_traffic_policy == "Local"

    def port(self, spec: int | str) -> ServicePort | None:
        """The port given by number (``443``, or ``"443"``) or by name (``"https"``); None when the
        Service has no such port, or a number matches ports of several protocols (then ask
        ``ports_numbered``)."""
        if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
            found = self.ports_numbered(int(spec))
            return found[0] if len(found) == 1 else None
        named = [p for p in self.ports if p.name == spec]
        return named[0] if len(named) == 1 else None

    def ports_numbered(self, number: int) -> tuple[ServicePort, ...]:
        return tuple(p for p in self.ports if p.port == number)


@dataclass(frozen=True)
class Endpoint:
    """One entry of an EndpointSlice's ``endpoints``. The conditions are None when not written
    (the API says: ready unknown is read as ready by consumers; masqctl keeps the None)."""

    addresses: tuple[str, ...]
    ready: bool | None
    serving: bool | None
    terminating: bool | None
    node_name: str | None
    target_pod: str | None     # "namespace/name" when targetRef is a Pod


@dataclass(frozen=True)
class EndpointSlice:
    """One EndpointSlice. ``service`` is its ``kubernetes.io/service-name`` label (None: a slice
    no Service owns). ``ports`` are ``(name, port, protocol)``: name ``""`` for an unnamed
    Service port, port None for "all ports" (a Service without ports)."""

    namespace: str
    name: str
    service: str | None
    address_type: str
    ports: tuple[tuple[str, int | None, str], ...]
    endpoints: tuple[Endpoint, ...]

    def port_for(self, service_port: ServicePort) -> int | None:
        """The endpoint port behind ``service_port`` in this slice (matched by port name, as
        kube-proxy matches them); None when this slice does not carry it."""
        want = service_port.name or ""
        for name, port, protocol in self.ports:
            if name == want and protocol == service_port.protocol:
                return port
        return None


@dataclass(frozen=True)
class ServiceIndex:
    """Lookups over one cluster's Services and EndpointSlices (either may be empty)."""

    services: tuple[Service, ...] = ()
    endpointslices: tuple[EndpointSlice, ...] = ()
    _by_ref: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_cluster_ip: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_lb_ip: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_external_ip: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_node_port: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _slices: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for s in self.services:
            self._by_ref[s.ref] = s
            for ip in s.cluster_ips:
                self._by_cluster_ip.setdefault(ip, s)
            for ip in s.lb_ingress_ips:
                self._by_lb_ip.setdefault(ip, []).append(s)
            for ip in s.external_ips:
                self._by_external_ip.setdefault(ip, []).append(s)
            for p in s.ports:
                if p.node_port is not None:
                    self._by_node_port.setdefault((p.node_port, p.protocol), (s, p))
        for sl in self.endpointslices:
            if sl.service is not None:
                self._slices.setdefault((sl.namespace, sl.service), []).append(sl)

    @classmethod
    def of(cls, snapshot) -> ServiceIndex:
        """The index of a ``ClusterSnapshot`` (its ``services``/``endpointslices``; None reads as none)."""
        return cls(tuple(snapshot.services or ()), tuple(snapshot.endpointslices or ()))

    def by_ref(self, ref: str) -> Service | None:
        """``namespace/name``."""
        return self._by_ref.get(ref)

    def by_cluster_ip(self, ip: str) -> Service | None:
        return self._by_cluster_ip.get(ip)

    def by_lb_ip(self, ip: str) -> tuple[Service, ...]:
        """Services whose ``status.loadBalancer.ingress`` holds ``ip`` (several may share one
        frontend IP on different ports)."""
        return tuple(self._by_lb_ip.get(ip, ()))

    def by_external_ip(self, ip: str) -> tuple[Service, ...]:
        return tuple(self._by_external_ip.get(ip, ()))

    def by_node_port(self, port: int, protocol: str = "TCP") -> tuple[Service, ServicePort] | None:
        return self._by_node_port.get((port, protocol))

    def slices_of(self, service: Service | str) -> tuple[EndpointSlice, ...]:
        ref = service.ref if isinstance(service, Service) else service
        ns, _, name = ref.partition("/")
        return tuple(self._slices.get((ns, name), ()))

    def endpoints_of(self, service: Service | str) -> tuple[Endpoint, ...]:
        """Every endpoint of the Service's slices, each once (a pod may appear in two slices of
        different address types or while slices are rebalanced)."""
        out: list[Endpoint] = []
        seen: set = set()
        for sl in self.slices_of(service):
            for ep in sl.endpoints:
                key = (ep.addresses, ep.target_pod, ep.node_name)
                if key not in seen:
                    seen.add(key)
                    out.append(ep)
        return tuple(out)


__all__ = ["SERVICE_NAME_LABEL", "Endpoint", "EndpointSlice", "Service", "ServiceIndex", "ServicePort"]
