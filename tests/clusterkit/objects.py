"""One builder per kind of Kubernetes/Azure document the tests use, as kubectl and az print them.

Every builder returns plain JSON-shaped data (dicts, lists, strings). The same kind appears in the
tests in a few *layouts*, which differ in which fields are present and in the order of the keys
(the order is visible in the YAML/JSON the tests write and serve, so it is kept):

* ``served``  — the object as the local test API server stores it and ``kubectl get … -o json``
  prints it from a real AKS cluster: container status with ``imageID``/``started``, owner
  references with uids, the AKS add-on fields of the agent's pod template.
* ``bundle``  — a document of a collected bundle (``kubectl get … -o yaml``) as the offline
  gathering tests write it: ``uid`` in the metadata, ``hostIP: null`` on pods.
* ``brief``   — a collected document with the fields the inspect checks read and little else.
* ``minimal`` — the smallest document the readers accept (the explain bundles).

The key order of each layout is data (the ``*_KEYS`` tables); the builders compute the values
once and emit them in that order. Presets for whole clusters live beside this module
(``served``, ``offline``, ``akscal``, ``seed``).
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

AGENT = "azure-ip-masq-agent"
AGENT_IMAGE = "mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2"
AGENT_LABELS = {"k8s-app": AGENT, "tier": "node"}
AGENT_ARGS = ("--v=2", "--resync-interval=60")
USER_CONFIGMAP = "azure-ip-masq-agent-config"
RECONCILED_CONFIGMAP = "azure-ip-masq-agent-config-reconciled"
LAYOUTS = ("served", "bundle", "brief", "minimal")


def _pick(values: dict, keys: Iterable[str]) -> dict:
    """``values`` in the order of ``keys`` (keys absent from ``values`` are left out)."""
    return {k: values[k] for k in keys if k in values}


def _check(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: one of {', '.join(LAYOUTS)}")
    return layout


def suffix(seed: str, n: int = 5) -> str:
    """A stable pseudo-random suffix (the ``-x7k2q`` of generated names)."""
    return hashlib.sha1(seed.encode()).hexdigest()[:n]


def uuid_of(seed: str) -> str:
    h = hashlib.sha1(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def image_id(image: str) -> str:
    """The ``imageID`` the kubelet reports for ``image`` (``repo@sha256:…``)."""
    return f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def vmss_provider_id(subscription: str, resource_group: str, vmss: str, instance: Any) -> str:
    """A node's ``spec.providerID`` on an AKS scale set."""
    return (f"azure:///subscriptions/{subscription}/resourceGroups/{resource_group}/providers/"
            f"Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines/{instance}")


# ---------------------------------------------------------------------------------------- Kubernetes

def namespace(name: str) -> dict:
    """A Namespace (``kubectl get namespace NAME -o json``)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "status": {"phase": "Active"}}


def kube_list(items: list, *, metadata: bool = True) -> dict:
    """A ``kind: List`` as ``kubectl get … -o yaml`` prints several objects (``metadata`` adds the
    empty ``resourceVersion`` kubectl writes)."""
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "List", "items": items}
    if metadata:
        doc["metadata"] = {"resourceVersion": ""}
    return doc


def node(name: str, ip: str = "10.224.0.4", pod_cidr: str | None = None, *, os: str = "linux",
         os_label: str | None = None, labels: dict[str, str] | None = None, provider_id: str | None = None,
         ready: bool | str = True, ready_reason: bool = False, node_info: dict | None = None) -> dict:
    """A Node (``kubectl get node NAME -o yaml``). Labels start with ``kubernetes.io/os`` (``os_label``,
    default ``os``) followed by ``labels``; ``ready`` is a bool or the condition's status string;
    ``ready_reason`` adds the kubelet's reason; ``node_info`` follows ``operatingSystem``."""
    spec: dict[str, Any] = {}
    if provider_id:
        spec["providerID"] = provider_id
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    status = ready if isinstance(ready, str) else ("True" if ready else "False")
    condition = {"type": "Ready", "status": status}
    if ready_reason:
        condition["reason"] = "KubeletReady" if status == "True" else "KubeletNotReady"
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/os": os_label or os, **(labels or {})}},
            "spec": spec,
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                       "conditions": [condition],
                       "nodeInfo": {"operatingSystem": os, **(node_info or {})}}}


# Key order of a pod's parts, per layout.
POD_STATUS_KEYS = {"served": ("phase", "conditions", "containerStatuses", "hostIP", "hostIPs", "podIP", "podIPs"),
                   "bundle": ("phase", "conditions", "containerStatuses", "hostIP", "podIP", "podIPs"),
                   "brief": ("phase", "podIP", "podIPs", "conditions", "containerStatuses"),
                   "minimal": ("phase", "podIP", "podIPs", "hostIP")}
OWNER_KEYS = {"served": ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"),
              "bundle": ("apiVersion", "kind", "name", "controller", "blockOwnerDeletion", "uid"),
              "brief": ("apiVersion", "kind", "name", "controller", "uid")}
CONTAINER_STATUS_KEYS = {"served": ("name", "image", "imageID", "ready", "restartCount", "started", "state",
                                    "lastState"),
                         "bundle": ("name", "image", "ready", "restartCount", "started", "state", "lastState"),
                         "brief": ("name", "image", "ready", "restartCount", "state", "lastState")}
STARTED_AT = {"served": "2026-11-01T10:00:00Z", "bundle": "2025-09-19T20:00:00Z", "brief": "2025-09-19T20:00:00Z"}


def pod(name: str, *, node: str | None, namespace: str = "default", ip: str | None = "10.244.1.10",
        host_ip: str | None = None, host_network: bool = False, phase: str = "Running", ready: bool = True,
        image: str = "nginx:1.27", container: str = "main", labels: dict[str, str] | None = None,
        owner: tuple[str, str] | None = None, owner_uid: str | None = None, restarts: int = 0,
        waiting: str | None = None, last_terminated: dict | None = None, layout: str = "served") -> dict:
    """A Pod (``kubectl get pod NAME -o yaml``). ``owner`` is (kind, name), e.g. ("DaemonSet",
    "azure-ip-masq-agent"); its uid is ``owner_uid`` or one derived from the name. ``waiting`` is the
    container's waiting reason, ``last_terminated`` its ``lastState.terminated``.

    Layouts: ``served`` leaves out ``nodeName``/``hostNetwork``/``hostIP`` that are not set and gives
    a running state only to a Running pod; ``bundle`` adds ``metadata.uid`` and ``hostIP`` (null
    unless given); ``brief`` has neither ``started`` nor ``hostIP``; ``minimal`` has no conditions or
    container status."""
    _check(layout)
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if layout == "bundle":
        meta["uid"] = f"uid-{name}"
    if owner:
        uid = owner_uid or ("0000" + suffix(owner[1], 4) if layout == "served" else f"uid-{owner[1]}")
        meta["ownerReferences"] = [_pick({"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": uid,
                                          "controller": True, "blockOwnerDeletion": True}, OWNER_KEYS[layout])]
    containers = [{"name": container, "image": image}]
    if layout == "served":
        spec: dict[str, Any] = {"containers": containers}
        if node:
            spec["nodeName"] = node
        if host_network:
            spec["hostNetwork"] = True
    else:
        spec = {"nodeName": node, "hostNetwork": host_network, "containers": containers}
    status: dict[str, Any] = {"phase": phase}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    if host_ip or layout in ("bundle", "minimal"):
        status["hostIP"] = host_ip
        if host_ip and layout == "served":
            status["hostIPs"] = [{"ip": host_ip}]
    if layout != "minimal":
        cs: dict[str, Any] = {"name": container, "image": image, "imageID": image_id(image), "ready": ready,
                              "restartCount": restarts, "started": phase == "Running" if layout == "served" else ready}
        if waiting:
            cs["state"] = {"waiting": {"reason": waiting}}
        elif layout != "served" or phase == "Running":
            cs["state"] = {"running": {"startedAt": STARTED_AT[layout]}}
        if last_terminated:
            cs["lastState"] = {"terminated": last_terminated}
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
        status["containerStatuses"] = [_pick(cs, CONTAINER_STATUS_KEYS[layout])]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": _pick(status, POD_STATUS_KEYS[layout])}


SERVED_AGENT_POD_LABELS = {**AGENT_LABELS, "kubernetes.azure.com/managedby": "aks",
                           "controller-revision-hash": "694d4d7dcd", "pod-template-generation": "1"}


def agent_pod(node_name: str, node_ip: str, *, name: str | None = None, daemonset: str = AGENT,
              image: str = AGENT_IMAGE, layout: str = "served", **kw: Any) -> dict:
    """A pod of the agent DaemonSet on ``node_name`` (host network: its IP is the node's), named
    ``<daemonset>-<suffix of the node>`` unless ``name`` is given. ``served``: AKS's pod labels,
    container named after the DaemonSet; other layouts: the DaemonSet's selector labels, container
    ``azure-ip-masq-agent``. Other keywords go to ``pod``."""
    served = layout == "served"
    kw.setdefault("labels", SERVED_AGENT_POD_LABELS if served else AGENT_LABELS)
    return pod(name or f"{daemonset}-{suffix(node_name)}", node=node_name, namespace="kube-system", ip=node_ip,
               host_ip=node_ip if served else None, host_network=True, image=image,
               container=daemonset if served else AGENT, owner=("DaemonSet", daemonset), layout=layout, **kw)


def configmap(name: str, data: dict | None, namespace: str = "kube-system", *, labels: dict | None = None,
              resource_version: str | None = None, data_first: bool = False, **meta: Any) -> dict:
    """A ConfigMap (``kubectl get configmap NAME -o yaml``). Metadata: name, namespace, then
    ``resourceVersion``, ``labels`` and ``meta`` when given; ``data`` (left out when None) follows the
    metadata, or precedes it with ``data_first``."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    if labels is not None:
        metadata["labels"] = dict(labels)
    metadata.update(meta)
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap"}
    if data_first and data is not None:
        doc["data"] = dict(data)
    doc["metadata"] = metadata
    if not data_first and data is not None:
        doc["data"] = dict(data)
    return doc


def reconciled_text(cidrs: Iterable[str], link_local: bool = True, extra: str = "") -> str:
    """The ``ip-masq-agent-reconciled`` text AKS writes (camelCase keys, indented list)."""
    return "nonMasqueradeCIDRs:\n" + "".join(f"  - {c}\n" for c in cidrs) + \
        f"masqLinkLocal: {str(link_local).lower()}\n" + extra


RECONCILED_V4 = reconciled_text(["10.224.0.0/16", "10.0.0.0/16", "10.224.0.0/12"])
RECONCILED_LABELS = {"addonmanager.kubernetes.io/mode": "Reconcile", "component": "ip-masq-agent",
                     "kubernetes.io/cluster-service": "true"}


def reconciled_configmap(text: str = RECONCILED_V4, *, labels: dict | None = None, **kw: Any) -> dict:
    """AKS's ``azure-ip-masq-agent-config-reconciled`` ConfigMap holding ``text``; other keywords go to
    ``configmap``."""
    return configmap(RECONCILED_CONFIGMAP, {"ip-masq-agent-reconciled": text},
                     labels=dict(RECONCILED_LABELS) if labels is None else labels, **kw)


# Key order of a DaemonSet's parts, per layout.
DS_POD_SPEC_KEYS = {"served": ("hostNetwork", "automountServiceAccountToken", "priorityClassName", "nodeSelector",
                               "tolerations", "containers", "volumes"),
                    "bundle": ("hostNetwork", "containers", "volumes", "nodeSelector"),
                    "brief": ("hostNetwork", "nodeSelector", "containers", "volumes"),
                    "minimal": ("hostNetwork", "containers", "volumes")}
DS_CONTAINER_KEYS = {"served": ("name", "image", "args", "securityContext", "volumeMounts"),
                     "bundle": ("name", "image", "args", "volumeMounts", "securityContext"),
                     "brief": ("name", "image", "args", "volumeMounts"),
                     "minimal": ("name", "image", "args", "volumeMounts")}
DS_STATUS_KEYS = {"served": ("desiredNumberScheduled", "currentNumberScheduled", "numberReady", "numberAvailable",
                             "updatedNumberScheduled", "numberMisscheduled", "observedGeneration"),
                  "bundle": ("desiredNumberScheduled", "numberReady", "currentNumberScheduled"),
                  "brief": ("desiredNumberScheduled", "numberReady", "currentNumberScheduled"),
                  "minimal": ("desiredNumberScheduled", "numberReady")}


def config_projection(*, mode_before_path: bool = False) -> list[dict]:
    """The sources of AKS's projected config volume: the user ConfigMap and the reconciled one,
    both optional, each key as a file of mode 0444."""
    def item(key: str) -> dict:
        return {"key": key, "mode": 444, "path": key} if mode_before_path else {"key": key, "path": key, "mode": 444}
    return [{"configMap": {"name": USER_CONFIGMAP, "optional": True, "items": [item("ip-masq-agent")]}},
            {"configMap": {"name": RECONCILED_CONFIGMAP, "optional": True,
                           "items": [item("ip-masq-agent-reconciled")]}}]


XTABLES_LOCK_VOLUME = {"name": "iptableslock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}}


def daemonset(name: str = AGENT, image: str = AGENT_IMAGE, *, namespace: str = "kube-system",
              container: str | None = None, args: Iterable[str] | None = AGENT_ARGS, volumes: list | None = None,
              mounts: list | None = None, selector: dict | None = None, extra_containers: list | None = None,
              desired: int = 3, ready: int | None = None, layout: str = "served") -> dict:
    """The agent's DaemonSet (``kubectl get daemonset NAME -o yaml``): host network, Linux nodes, the
    projected volume of the two ConfigMaps on /etc/config and the xtables lock. ``volumes``/``mounts``
    replace those; ``ready`` defaults to ``desired``.

    Layouts: ``served`` is AKS's add-on object (Reconcile label, tolerations, priority class, an
    unprivileged container with NET_ADMIN/NET_RAW) whose pod template keeps AKS's names whatever
    ``name`` is; ``bundle`` names the labels, container and volume after ``name``, has
    ``generation: 1`` and NET_ADMIN/NET_RAW; ``brief`` and ``minimal`` are AKS's labels with the
    fields the readers use (``minimal`` without nodeSelector)."""
    _check(layout)
    served = layout == "served"
    base = AGENT if served else name
    if served:
        labels = {**AGENT_LABELS, "addonmanager.kubernetes.io/mode": "Reconcile"}
    elif layout == "bundle":
        labels = {"component": name, "tier": "node"}
    else:
        labels = {"component": name, "kubernetes.azure.com/managedby": "aks", "tier": "node"}
    selector = dict(AGENT_LABELS if served else selector or {"k8s-app": name, "tier": "node"})
    template_labels = {**selector, "kubernetes.azure.com/managedby": "aks"} if served else dict(selector)
    volume = f"{base}-config-volume"
    if volumes is None:
        volumes = [{"name": volume, "projected": {"defaultMode": 420,
                                                  "sources": config_projection(mode_before_path=layout == "brief")}},
                   dict(XTABLES_LOCK_VOLUME, hostPath=dict(XTABLES_LOCK_VOLUME["hostPath"]))]
    if mounts is None:
        pairs = ((volume, "/etc/config"), ("iptableslock", "/run/xtables.lock"))
        mounts = [{"name": n, "mountPath": p} if served else {"mountPath": p, "name": n} for n, p in pairs]
    caps = {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}
    c = _pick({"name": container or base, "image": image, "args": list(AGENT_ARGS if args is None else args), "volumeMounts": mounts,
               "securityContext": {"privileged": False, **caps} if served else caps}, DS_CONTAINER_KEYS[layout])
    pod_spec = _pick({"hostNetwork": True, "automountServiceAccountToken": False,
                      "priorityClassName": "system-node-critical", "nodeSelector": {"kubernetes.io/os": "linux"},
                      "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                      {"operator": "Exists", "effect": "NoExecute"},
                                      {"operator": "Exists", "effect": "NoSchedule"}],
                      "containers": [c, *(extra_containers or [])], "volumes": volumes}, DS_POD_SPEC_KEYS[layout])
    ready = desired if ready is None else ready
    status = _pick({"desiredNumberScheduled": desired, "currentNumberScheduled": desired, "numberReady": ready,
                    "numberAvailable": ready, "updatedNumberScheduled": desired, "numberMisscheduled": 0,
                    "observedGeneration": 1}, DS_STATUS_KEYS[layout])
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if layout == "bundle":
        metadata["generation"] = 1
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": metadata,
            "spec": {"selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": template_labels}, "spec": pod_spec}},
            "status": status}


# --------------------------------------------------------------------------------------------- Azure

AKS_KEYS = ("id", "name", "resourceGroup", "location", "nodeResourceGroup", "kubernetesVersion", "networkProfile",
            "agentPoolProfiles")
NETWORK_KEYS = ("networkPlugin", "networkPluginMode", "networkPolicy", "networkDataplane", "podCidr", "podCidrs",
                "serviceCidr", "serviceCidrs", "dnsServiceIp", "ipFamilies", "outboundType")
POOL_KEYS = ("name", "count", "osType", "mode", "vnetSubnetId", "podSubnetId")


def agent_pool(name: str = "nodepool1", *, count: int = 3, os_type: str = "Linux", mode: str = "System",
               vnet_subnet_id: str | None = None, pod_subnet_id: str | None = None,
               keys: Iterable[str] = POOL_KEYS[:5]) -> dict:
    """One of ``agentPoolProfiles`` in ``az aks show``, with the fields ``keys`` (in that order)."""
    return _pick({"name": name, "count": count, "osType": os_type, "mode": mode, "vnetSubnetId": vnet_subnet_id,
                  "podSubnetId": pod_subnet_id}, keys)


def aks(name: str, *, resource_group: str, node_resource_group: str, id: str | None = None,  # noqa: A002
        location: str = "westeurope", kubernetes_version: str = "1.31.2", plugin: str = "azure",
        plugin_mode: str | None = None, policy: str | None = None, dataplane: str = "azure",
        pod_cidr: str | None = None, service_cidr: str = "10.0.0.0/16", dns_service_ip: str = "10.0.0.10",
        ip_families: Iterable[str] = ("IPv4",), outbound: str = "loadBalancer", pools: list[dict] | None = None,
        keys: Iterable[str] = AKS_KEYS, network_keys: Iterable[str] = NETWORK_KEYS) -> dict:
    """A managed cluster as ``az aks show -o json`` prints it (the aks.json of a bundle), with the
    top-level fields ``keys`` and the network profile fields ``network_keys`` (in those orders)."""
    network = _pick({"networkPlugin": plugin, "networkPluginMode": plugin_mode, "networkPolicy": policy,
                     "networkDataplane": dataplane, "podCidr": pod_cidr, "podCidrs": [pod_cidr] if pod_cidr else None,
                     "serviceCidr": service_cidr, "serviceCidrs": [service_cidr], "dnsServiceIp": dns_service_ip,
                     "ipFamilies": list(ip_families), "outboundType": outbound}, network_keys)
    return _pick({"id": id, "name": name, "resourceGroup": resource_group, "location": location,
                  "nodeResourceGroup": node_resource_group, "kubernetesVersion": kubernetes_version,
                  "networkProfile": network, "agentPoolProfiles": pools if pools is not None else [agent_pool()]},
                 keys)


def vnet_id(subscription: str, resource_group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Network/virtualNetworks/{name}"


VNET_KEYS = ("name", "id", "resourceGroup", "location", "addressSpace", "subnets", "virtualNetworkPeerings")


def subnet(vnet: str, name: str, prefix: str, *, id_first: bool = False) -> dict:
    """A subnet of ``az network vnet show`` (``vnet`` is the network's id)."""
    sid = f"{vnet}/subnets/{name}"
    return {"id": sid, "name": name, "addressPrefix": prefix} if id_first else \
        {"name": name, "id": sid, "addressPrefix": prefix}


def vnet(name: str, id: str, *, resource_group: str, prefixes: Iterable[str], subnets: list[dict],  # noqa: A002
         peerings: Iterable[dict] = (), location: str | None = None, keys: Iterable[str] = VNET_KEYS) -> dict:
    """A virtual network as ``az network vnet show -o json`` prints it (a bundle's vnets/NAME.json),
    with the fields ``keys`` (in that order; ``location`` only when given)."""
    values = {"name": name, "id": id, "resourceGroup": resource_group, "addressSpace": {"addressPrefixes": list(prefixes)},
              "subnets": subnets, "virtualNetworkPeerings": list(peerings)}
    if location is not None:
        values["location"] = location
    return _pick(values, keys)


PEERING_KEYS = ("name", "peeringState", "peeringSyncLevel", "remoteVirtualNetwork", "remoteAddressSpace",
                "remoteVirtualNetworkAddressSpace", "allowForwardedTraffic", "allowGatewayTransit", "useRemoteGateways")


def peering(name: str, remote_id: str, prefixes: Iterable[str], *, state: str = "Connected",
            sync: str = "FullyInSync", forwarded: bool = False, gateway_transit: bool = False,
            remote_gateways: bool = False, keys: Iterable[str] = PEERING_KEYS) -> dict:
    """One of a vnet's ``virtualNetworkPeerings`` to the network ``remote_id`` whose address space
    is ``prefixes``, with the fields ``keys`` (in that order)."""
    return _pick({"name": name, "peeringState": state, "peeringSyncLevel": sync,
                  "remoteVirtualNetwork": {"id": remote_id}, "remoteAddressSpace": {"addressPrefixes": list(prefixes)},
                  "remoteVirtualNetworkAddressSpace": {"addressPrefixes": list(prefixes)},
                  "allowForwardedTraffic": forwarded, "allowGatewayTransit": gateway_transit,
                  "useRemoteGateways": remote_gateways}, keys)


# ------------------------------------------------------------------------------------ Services

def service(name: str, namespace: str = "default", *, type: str = "ClusterIP", cluster_ip: str = "10.0.100.10",  # noqa: A002
            ports: Iterable[tuple] = (("http", "TCP", 80, 8080, None),), selector: dict | None = None,
            external_traffic_policy: str | None = None, health_check_node_port: int | None = None,
            lb_ips: Iterable[str] = (), annotations: dict | None = None) -> dict:
    """A Service as ``kubectl get svc -o yaml`` prints it; ``ports`` are (name, protocol, port,
    targetPort, nodePort). ``externalTrafficPolicy`` defaults to ``Cluster`` on NodePort and
    LoadBalancer Services, as the API server writes it."""
    spec: dict = {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip]}
    if type in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = external_traffic_policy or "Cluster"
        if health_check_node_port is not None:
            spec["healthCheckNodePort"] = health_check_node_port
    spec.update({"internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"})
    out_ports = []
    for pname, proto, port, target, node_port in ports:
        p = {"name": pname} if pname else {}
        p.update({"port": port, "protocol": proto, "targetPort": target})
        if node_port is not None:
            p["nodePort"] = node_port
        out_ports.append(p)
    spec["ports"] = out_ports
    spec["selector"] = selector if selector is not None else {"app": name}
    spec.update({"sessionAffinity": "None", "type": type})
    meta: dict = {"name": name, "namespace": namespace, "uid": uuid_of(f"svc/{namespace}/{name}")}
    if annotations:
        meta["annotations"] = dict(annotations)
    status = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in lb_ips]} if lb_ips else {}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec, "status": status}


def endpointslice(service_name: str, namespace: str = "default", *,
                  endpoints: Iterable[tuple] = (), ports: Iterable[tuple] = (("http", 8080, "TCP"),),
                  name: str | None = None) -> dict:
    """An EndpointSlice of the endpointslice controller for ``service_name``; ``endpoints`` are
    (ip, node, pod name, ready) and ``ports`` (name, port, protocol)."""
    eps = []
    for ip, node_name, pod_name, ready in endpoints:
        ep: dict = {"addresses": [ip], "conditions": {"ready": ready, "serving": ready, "terminating": False}}
        if node_name:
            ep["nodeName"] = node_name
        if pod_name:
            ep["targetRef"] = {"kind": "Pod", "name": pod_name, "namespace": namespace,
                               "uid": uuid_of(f"pod/{namespace}/{pod_name}")}
        eps.append(ep)
    return {"addressType": "IPv4", "apiVersion": "discovery.k8s.io/v1", "endpoints": eps, "kind": "EndpointSlice",
            "metadata": {"labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                                    "kubernetes.io/service-name": service_name},
                         "name": name or f"{service_name}-{suffix(namespace + service_name)}", "namespace": namespace},
            "ports": [{"name": n, "port": port, "protocol": proto} for n, port, proto in ports]}


# ------------------------------------------------------------------------------------ node captures

JUMP_COMMENT = ('"\\"ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom '
                'IP-MASQ-AGENT chain\\""')
RETURN_COMMENT = '"ip-masq-agent: local traffic is not subject to MASQUERADE"'
MASQ_COMMENT = '"ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)"'
JUMP_RULE = f"-A POSTROUTING -m comment --comment {JUMP_COMMENT} -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT"
SAVED_AT = ("v1.8.7", "Fri Sep 19 20:07:06 2025")


def iptables_save(cidrs: Iterable[str], *, link_local: bool = True, jump: int = 1, chain: bool = True,
                  before: str = "", legacy_warning: bool = False, extra_rules: str = "",
                  kube_proxy: str | None = "postrouting", saved: tuple[str, str] = SAVED_AT,
                  completed: bool = True) -> str:
    """An AKS node's nat table as ``iptables-save`` prints it: the agent's ``jump`` POSTROUTING jumps
    and (with ``chain``) its IP-MASQ-AGENT chain — a RETURN per CIDR (and 169.254.0.0/16 when not
    ``link_local``), then MASQUERADE. ``kube_proxy``: ``"postrouting"`` adds kube-proxy's
    KUBE-POSTROUTING chain, ``"services"`` also KUBE-SERVICES/KUBE-MARK-MASQ and their hooks, None
    neither. ``before`` goes before the jump, ``extra_rules`` before COMMIT; ``saved`` is the
    (version, time) of the header and, with ``completed``, of the footer."""
    version, when = saved
    out = [f"# Generated by iptables-save {version} (nf_tables) on {when}"]
    if legacy_warning:
        out.append("# Warning: iptables-legacy tables present, use iptables-legacy-save to see them")
    out += ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]"]
    if kube_proxy == "postrouting":
        out.append(":KUBE-POSTROUTING - [0:0]")
    if chain:
        out.append(":IP-MASQ-AGENT - [0:0]")
    if kube_proxy == "services":
        out += [":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":KUBE-SERVICES - [0:0]",
                '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES']
    if kube_proxy:
        out.append('-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING')
    if before:
        out.append(before)
    out += [JUMP_RULE] * jump
    if chain:
        if not link_local:
            out.append(f"-A IP-MASQ-AGENT -d 169.254.0.0/16 -m comment --comment {RETURN_COMMENT} -j RETURN")
        out += [f"-A IP-MASQ-AGENT -d {c} -m comment --comment {RETURN_COMMENT} -j RETURN" for c in cidrs]
        out.append(f"-A IP-MASQ-AGENT -m comment --comment {MASQ_COMMENT} -j MASQUERADE")
    if kube_proxy == "services":
        out.append("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000")
    if kube_proxy:
        out += ["-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
                "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
                '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
                "--random-fully"]
    if extra_rules:
        out.append(extra_rules)
    out.append("COMMIT")
    if completed:
        out.append(f"# Completed on {when}")
    return "\n".join(out) + "\n"


def addr_line(index: int, dev: str, cidr: str, *, brd: str | None = None, metric: int | None = None,
              scope: str = "global", valid: str = "forever preferred_lft forever") -> str:
    """One line of ``ip -o -4 addr`` (``\\`` where ip folds the lifetimes onto the same line)."""
    extra = (f" metric {metric}" if metric is not None else "") + (f" brd {brd}" if brd else "")
    return f"{index}: {dev}    inet {cidr}{extra} scope {scope} {dev}\\       valid_lft {valid}\n"


def ip_addr(ip: str, prefix: int, extra: str = "", *, brd: str = "10.255.255.255", metric: int | None = 100,
            valid: str = "forever preferred_lft forever") -> str:
    """A node's ``ip -o -4 addr``: loopback, eth0 with ``ip/prefix``, then ``extra`` lines."""
    return (addr_line(1, "lo", "127.0.0.1/8", scope="host")
            + addr_line(2, "eth0", f"{ip}/{prefix}", brd=brd, metric=metric, valid=valid) + extra)
