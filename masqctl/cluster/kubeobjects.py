"""Kubernetes objects (the JSON the API server sends, ``kubectl get -o yaml``) → snapshot model.

Only the fields masqctl uses are read and type-checked; everything else in a native object is
left alone. Errors name the document and the field (``pods.yaml items[7].status.podIPs[0].ip``).
"""

from __future__ import annotations

import ipaddress
import json
import re

from masqctl.cluster.model import (
    AgentDaemonSet,
    AgentPod,
    ConfigMap,
    ConfigMapProjection,
    ConfigMount,
    KeyToPath,
    Node,
    WorkloadPod,
)
from masqctl.cluster.recognise import flavor_of, recognise
from masqctl.cluster.shape import Doc, type_name


# --------------------------------------------------------------------------- values the API server checks
#
# The API server stores only valid IP addresses (pod IPs, node InternalIP/ExternalIP) and CIDRs
# (node pod CIDRs), and never a negative restart count. A document with anything else was not
# produced by it: refused (E322) naming the file and the field, instead of being used. The rules
# are those of its validation: IPv4 dotted decimal (leading zeros, which older API servers
# accepted, are read as decimal and dropped) or IPv6 without a zone; a CIDR is an address and a
# prefix length, and a pod CIDR is a network address (no bits set after the prefix).

_SLOPPY_V4 = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)")
IP_TYPES = ("InternalIP", "ExternalIP")


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in text:                     # a zone: the API server's parser refuses it
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    m = _SLOPPY_V4.fullmatch(text)
    if m and all(int(o) <= 255 for o in m.groups()):
        return ipaddress.IPv4Address(".".join(str(int(o)) for o in m.groups()))
    return None


def parse_ip(text: str) -> str | None:
    """``text`` as the address the API server would store (leading IPv4 zeros dropped), or None."""
    addr = _address(text)
    if addr is None:
        return None
    return text if str(addr) == text or ":" in text else str(addr)


def _ip_field(doc: Doc, key: str, what: str = "") -> str | None:
    """An IP address field: None when absent or empty, E322 when it is not an address."""
    value = doc.str(key)
    if not value:
        return None
    ip = parse_ip(value)
    if ip is None:
        raise doc.fail(key, f"{json.dumps(value)} is not an IP address{what}")
    return ip


def _cidr_value(doc: Doc, key: str, value: str) -> str:
    """A pod CIDR: an address, ``/``, a prefix length of its family, with no bits set after it."""
    addr_text, slash, length = value.partition("/")
    addr = _address(addr_text) if slash else None
    if addr is None or not re.fullmatch(r"[0-9]{1,3}", length) or int(length) > addr.max_prefixlen:
        raise doc.fail(key, f"{json.dumps(value)} is not a CIDR (an IP address and a prefix length, such as "
                       "10.244.0.0/24)")
    net = ipaddress.ip_network(f"{addr}/{int(length)}", strict=False)
    if net.network_address != addr:
        raise doc.fail(key, f"{json.dumps(value)} has bits set after the /{int(length)} prefix (the network is "
                       f"{net}); a pod CIDR is a network address")
    return value if ":" in value or str(net) == value else str(net)


def items(objects: list, origin: str, kind: str) -> list[Doc]:
    """The objects of one list as ``Doc``s, each checked to be a mapping of ``kind`` with a name."""
    out = []
    for i, obj in enumerate(objects):
        path = f"items[{i}]"
        if not isinstance(obj, dict):
            raise Doc({}, origin).fail(path, f"expected a {kind} object (a mapping), got {type_name(obj)}")
        doc = Doc(obj, origin, path)
        found = doc.str("kind")
        if found is not None and found != kind:
            raise doc.fail("kind", f"expected {kind}, got {found!r} (is this the right file?)")
        meta = doc.mapping("metadata")
        if meta is None:
            raise doc.fail("metadata", "missing (every object has metadata.name)")
        meta.str("name", required=True)
        meta.str("namespace")
        out.append(doc)
    return out


def _namespace(meta: Doc, default: str) -> str:
    return meta.str("namespace") or default


# --------------------------------------------------------------------------- ConfigMaps


def configmap(doc: Doc, default_namespace: str) -> ConfigMap:
    meta = doc.mapping_or_empty("metadata")
    binary = doc.mapping("binaryData")
    return ConfigMap(
        namespace=_namespace(meta, default_namespace),
        name=meta.str("name", required=True),
        data=doc.str_map("data"),
        labels=meta.str_map("labels"),
        annotations=meta.str_map("annotations"),
        resource_version=meta.str("resourceVersion"),
        binary_keys=tuple(sorted(binary.data)) if binary is not None else (),
    )


def relates_to_masq(cm: ConfigMap) -> bool:
    """A ConfigMap whose name says masq, or which has a data key starting with ip-masq, or Cilium's
    ``cilium-config`` (whether Cilium's BPF masquerade is on, its native routing CIDR)."""
    return ("masq" in cm.name.lower() or cm.name == "cilium-config"
            or any(k.lower().startswith("ip-masq") for k in cm.data))


# --------------------------------------------------------------------------- DaemonSets


def _key_to_paths(src: Doc) -> tuple[KeyToPath, ...] | None:
    if src.raw("items") is None:
        return None
    out = []
    for item in src.mappings("items"):
        out.append(KeyToPath(key=item.str("key", required=True), path=item.str("path", required=True),
                             mode=item.int("mode")))
    return tuple(out)


def _configmap_sources(volume: Doc) -> tuple[ConfigMapProjection, ...]:
    """The ConfigMaps a volume puts into its folder (plain ``configMap`` or ``projected``)."""
    out = []
    plain = volume.mapping("configMap")
    if plain is not None and volume.raw("projected") is not None:
        raise volume.fail("projected", "a volume with both configMap and projected: a volume has exactly one "
                          "source (the API server refuses this), so which files the agent sees is unknown",
                          hint="use the DaemonSet exactly as kubectl get -o yaml prints it")
    if plain is not None:
        out.append(ConfigMapProjection(configmap=plain.str("name", required=True), items=_key_to_paths(plain),
                                       optional=bool(plain.bool("optional"))))
    projected = volume.mapping("projected")
    if projected is not None:
        paths: dict[str, str] = {}
        for n, source in enumerate(projected.mappings("sources")):
            cm = source.mapping("configMap")
            if cm is None:
                continue   # secret, downwardAPI, serviceAccountToken, clusterTrustBundle
            items = _key_to_paths(cm)
            for i, item in enumerate(items or ()):
                where = f"sources[{n}].configMap.items[{i}].path"
                if item.path in paths:
                    raise projected.fail(where, f"{item.path!r} is projected twice (also at {paths[item.path]}): the "
                                         "API server refuses conflicting paths in one projected volume, so which "
                                         "ConfigMap's text the agent reads there is unknown")
                paths[item.path] = where
            out.append(ConfigMapProjection(configmap=cm.str("name", required=True), items=items,
                                           optional=bool(cm.bool("optional"))))
    return tuple(out)


def _mounts(container: Doc, volumes: dict[str, Doc]) -> tuple[ConfigMount, ...]:
    out = []
    for mount in container.mappings("volumeMounts"):
        name = mount.str("name", required=True)
        path = mount.str("mountPath", required=True)
        volume = volumes.get(name)
        if volume is None:
            continue
        sources = _configmap_sources(volume)
        if not sources:
            continue
        out.append(ConfigMount(volume=name, mount_path=path, sub_path=mount.str("subPath") or None,
                               sources=sources))
    return tuple(out)


def _str_list(doc: Doc, key: str) -> tuple[str, ...]:
    return doc.strs(key)


def daemonset(doc: Doc, default_namespace: str) -> AgentDaemonSet | None:
    """The agent a DaemonSet runs, or None when none of its containers looks like one."""
    meta = doc.mapping_or_empty("metadata")
    spec = doc.mapping_or_empty("spec")
    template = spec.mapping_or_empty("template")
    pod_spec = template.mapping_or_empty("spec")
    volumes: dict[str, Doc] = {}
    for volume in pod_spec.mappings("volumes"):
        volumes[volume.str("name", required=True)] = volume
    found: list[tuple[str, Doc, tuple[ConfigMount, ...]]] = []
    for container in pod_spec.mappings("containers"):
        name = container.str("name") or ""
        image = container.str("image") or ""
        mounts = _mounts(container, volumes)
        projected = [(s.configmap, tuple(i.key for i in s.items) if s.items is not None else None)
                     for m in mounts for s in m.sources]
        kind = recognise(name, image, projected, _str_list(container, "command"), _str_list(container, "args"))
        if kind is not None:
            found.append((kind, container, mounts))
    if not found:
        return None
    # an iptables agent wins over Cilium's merger or agent, and a known kind over an unknown look-alike
    found.sort(key=lambda f: (f[0] == "unknown", f[0] in ("azure-ip-masq-merger", "cilium-agent")))
    kind, container, mounts = found[0]
    selector = spec.mapping_or_empty("selector")
    status = doc.mapping_or_empty("status")
    return AgentDaemonSet(
        namespace=_namespace(meta, default_namespace),
        name=meta.str("name", required=True),
        kind=kind,
        flavor=flavor_of(kind, _str_list(container, "command"), _str_list(container, "args")),
        container=container.str("name") or "",
        image=container.str("image") or "",
        command=_str_list(container, "command"),
        args=_str_list(container, "args"),
        mounts=mounts,
        selector=selector.str_map("matchLabels"),
        node_selector=pod_spec.str_map("nodeSelector"),
        host_network=bool(pod_spec.bool("hostNetwork")),
        desired=status.int("desiredNumberScheduled"),
        ready=status.int("numberReady"),
        labels=meta.str_map("labels"),
    )


# --------------------------------------------------------------------------- Pods


def _owner_daemonset(meta: Doc) -> str | None:
    for ref in meta.mappings("ownerReferences"):
        if ref.str("kind") == "DaemonSet":
            return ref.str("name")
    return None


def owned_by(doc: Doc, ds: AgentDaemonSet, default_namespace: str) -> bool:
    """The pod belongs to ``ds``: its owner reference says so, or its labels match the selector."""
    meta = doc.mapping_or_empty("metadata")
    if _namespace(meta, default_namespace) != ds.namespace:
        return False
    owner = _owner_daemonset(meta)
    if owner is not None:
        return owner == ds.name
    if not ds.selector:
        return False
    labels = meta.str_map("labels")
    return all(labels.get(k) == v for k, v in ds.selector.items())


def agent_pod(doc: Doc, ds: AgentDaemonSet, default_namespace: str) -> AgentPod:
    meta = doc.mapping_or_empty("metadata")
    spec = doc.mapping_or_empty("spec")
    status = doc.mapping_or_empty("status")
    containers = spec.mappings("containers")
    chosen = next((c for c in containers if c.str("name") == ds.container), containers[0] if containers else None)
    cname = chosen.str("name") if chosen is not None else None
    cstatus = None
    for cs in status.mappings("containerStatuses"):
        if cs.str("name") == cname:
            cstatus = cs
            break
    ready = False
    for cond in status.mappings("conditions"):
        if cond.str("type") == "Ready":
            ready = cond.str("status") == "True"
            break
    else:
        if cstatus is not None:
            ready = bool(cstatus.bool("ready"))
    restarts = 0
    waiting = last_reason = last_message = None
    last_code = None
    if cstatus is not None:
        restarts = cstatus.int("restartCount") or 0
        if restarts < 0:
            raise cstatus.fail("restartCount", f"{restarts} is negative; a container's restart count is 0 or more")
        state = cstatus.mapping_or_empty("state")
        w = state.mapping("waiting")
        if w is not None:
            waiting = w.str("reason")
        last = cstatus.mapping_or_empty("lastState").mapping("terminated")
        if last is not None:
            last_reason = last.str("reason")
            last_message = last.str("message")
            last_code = last.int("exitCode")
    return AgentPod(
        namespace=_namespace(meta, default_namespace),
        name=meta.str("name", required=True),
        node=spec.str("nodeName"),
        daemonset=_owner_daemonset(meta) or ds.name,
        phase=status.str("phase"),
        ready=ready,
        restarts=restarts,
        waiting_reason=waiting,
        last_termination_reason=last_reason,
        last_termination_message=last_message,
        last_termination_exit_code=last_code,
        container=cname,
        image=chosen.str("image") if chosen is not None else None,
        host_network=bool(spec.bool("hostNetwork")),
    )


def workload_pod(doc: Doc, default_namespace: str) -> WorkloadPod | None:
    """Any pod with an IP; None for a pod without one (pending, or not scheduled)."""
    meta = doc.mapping_or_empty("metadata")
    spec = doc.mapping_or_empty("spec")
    status = doc.mapping_or_empty("status")
    ips = []
    for entry in status.mappings("podIPs"):
        ip = _ip_field(entry, "ip")
        if ip is None:
            raise entry.fail("ip", "missing (each podIPs entry has an IP address)")
        ips.append(ip)
    primary = _ip_field(status, "podIP")
    if primary and primary not in ips:
        ips.insert(0, primary)
    if not ips:
        return None
    refs = meta.mappings("ownerReferences")
    owner = next((r for r in refs if r.bool("controller")), refs[0] if refs else None)
    return WorkloadPod(namespace=_namespace(meta, default_namespace), name=meta.str("name", required=True),
                       node=spec.str("nodeName"), pod_ips=tuple(ips), host_network=bool(spec.bool("hostNetwork")),
                       phase=status.str("phase"),
                       owner_kind=owner.str("kind") if owner is not None else None,
                       owner_name=owner.str("name") if owner is not None else None)


# --------------------------------------------------------------------------- Nodes


def node(doc: Doc) -> Node:
    meta = doc.mapping_or_empty("metadata")
    spec = doc.mapping_or_empty("spec")
    status = doc.mapping_or_empty("status")
    labels = meta.str_map("labels")
    addresses = []
    for a in status.mappings("addresses"):
        kind = a.str("type") or ""
        if kind in IP_TYPES:
            address = _ip_field(a, "address", f" (type {kind})")
            if address is None:
                raise a.fail("address", f"missing (an address of type {kind} is an IP address)")
        else:
            address = a.str("address") or ""
        addresses.append((kind, address))
    internal = next((addr for kind, addr in addresses if kind == "InternalIP"), None)
    cidrs = [_cidr_value(spec, f"podCIDRs[{i}]", c) for i, c in enumerate(spec.strs("podCIDRs"))]
    single = spec.str("podCIDR")
    single = _cidr_value(spec, "podCIDR", single) if single else None
    if single and single not in cidrs:
        cidrs.insert(0, single)
    os_name = labels.get("kubernetes.io/os") or labels.get("beta.kubernetes.io/os")
    if not os_name:
        os_name = status.mapping_or_empty("nodeInfo").str("operatingSystem")
    ready = None
    for cond in status.mappings("conditions"):
        if cond.str("type") == "Ready":
            value = cond.str("status")
            ready = True if value == "True" else False if value == "False" else None
            break
    return Node(name=meta.str("name", required=True), internal_ip=internal, addresses=tuple(addresses),
                pod_cidrs=tuple(cidrs), os=os_name or None, ready=ready, labels=labels,
                provider_id=spec.str("providerID"))
