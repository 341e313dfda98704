"""Cilium's BPF masquerade as AKS runs it (Azure CNI powered by Cilium): what the snapshot says.

Evidence, all optional (``CiliumFacts.missing`` says what was not seen):

* the ``cilium-config`` ConfigMap: ``enable-bpf-masquerade``, ``enable-ipv4-masquerade``,
  ``enable-ipv6-masquerade``, ``enable-ip-masq-agent``, ``ipv4-native-routing-cidr``,
  ``enable-remote-node-masquerade``, ``routing-mode`` (``native``/``tunnel``), ``bpf-lb-…``;
* the ``cilium`` DaemonSet's ``azure-ip-masq-merger`` sidecar and what its ``/etc/config/``
  projects (overlay / node subnet: both ConfigMaps, merged), or a cilium-agent ``/etc/config``
  that projects the AKS-owned ``azure-dns-imds-ip-masq-agent-config`` directly (pod subnet: the
  user ConfigMap is not mounted at all).

What AKS writes (Azure/azure-container-networking ``test/integration/manifests/cilium/v1.18``):
without eBPF host routing ``enable-ipv4-masquerade: "false"`` (the iptables agent decides); with
it ``enable-bpf-masquerade``, ``enable-ip-masq-agent`` and ``enable-ipv4-masquerade`` all
``"true"``, overlay adds ``ipv4-native-routing-cidr`` (the pod CIDR) and
``enable-remote-node-masquerade: "true"``.

``effective_map`` turns that into the map Cilium loads, with provenance down to the ConfigMap
line: map entry ← merged file line ← ``ip-masq*`` file line ← ConfigMap key.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from masqctl.cluster.model import AgentDaemonSet, ClusterSnapshot, MissingKey
from masqctl.engine import ConfigSource, Origin
from masqctl.engine.cilium import CiliumMap, MapEntry, load
from masqctl.engine.ciliumdbg import parse_ipmasq_list
from masqctl.engine.merger import MERGED_FILE, MERGER, MergedConfig, merge
from masqctl.errors import ConfigError

CILIUM_CONFIG = "cilium-config"
DNS_IMDS_CONFIGMAP = "azure-dns-imds-ip-masq-agent-config"
USER_CONFIGMAP = "azure-ip-masq-agent-config"
USER_KEY = "ip-masq-agent"

# strconv.ParseBool, which Cilium's option parsing uses
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")

KEYS = ("enable-bpf-masquerade", "enable-ip-masq-agent", "enable-ipv4-masquerade", "enable-ipv6-masquerade",
        "ipv4-native-routing-cidr", "enable-remote-node-masquerade", "routing-mode", "tunnel-protocol",
        "kube-proxy-replacement", "enable-host-legacy-routing")


def parse_bool(text: str | None) -> bool | None:
    if text is None:
        return None
    text = text.strip()
    return True if text in _TRUE else False if text in _FALSE else None


@dataclass(frozen=True)
class CiliumFacts:
    """Cilium's masquerade settings as the snapshot shows them (None: not shown)."""

    config_ref: str | None = None
    bpf_masquerade: bool | None = None
    ip_masq_agent: bool | None = None
    ipv4_masquerade: bool | None = None
    ipv6_masquerade: bool | None = None
    native_routing_cidr: str | None = None
    remote_node_masquerade: bool | None = None
    routing_mode: str | None = None          # native | tunnel
    merger: AgentDaemonSet | None = None     # the DaemonSet running azure-ip-masq-merger
    direct: AgentDaemonSet | None = None     # a cilium DaemonSet mounting the DNS/IMDS ConfigMap itself
    values: dict = field(default_factory=dict)   # the cilium-config keys read, as written
    notes: tuple[str, ...] = ()

    @property
    def present(self) -> bool:
        return self.config_ref is not None or self.merger is not None or self.direct is not None

    @property
    def bpf_decides(self) -> bool | None:
        """Cilium's BPF masquerade SNATs pod IPv4 traffic (True), not at all (False), or unknown."""
        if self.config_ref is None:
            return None
        if self.ipv4_masquerade is False or self.bpf_masquerade is False:
            return False
        if self.ipv4_masquerade and self.bpf_masquerade:
            return True
        return None

    @property
    def source(self) -> str | None:
        """Where Cilium's ip-masq-agent file comes from: ``merger``, ``dns-imds`` or None."""
        if self.merger is not None:
            return "merger"
        if self.direct is not None:
            return "dns-imds"
        return None

    def evidence(self) -> list[str]:
        out = []
        if self.config_ref:
            shown = ", ".join(f"{k}={v}" for k, v in self.values.items() if k.startswith(("enable-", "ipv4-",
                                                                                           "routing")))
            out.append(f"ConfigMap {self.config_ref}: {shown or 'no masquerade keys'}")
            lb = {k: v for k, v in self.values.items() if k.startswith("bpf-lb-") or k == "kube-proxy-replacement"}
            if lb:
                line = (f"ConfigMap {self.config_ref}: " + ", ".join(f"{k}={v}" for k, v in lb.items())
                        + ": Cilium's load balancer")
                mode = (lb.get("bpf-lb-mode") or "").strip().lower()
                kpr = (lb.get("kube-proxy-replacement") or "").strip().lower() in ("true", "strict")
                if not kpr:
                    line += (" settings; kube-proxy-replacement is not on, so Cilium does not forward NodePort "
                             "traffic and bpf-lb-mode does not apply")
                elif mode in ("snat", "hybrid"):
                    line += (" SNATs NodePort/LoadBalancer traffic it forwards to a backend on another node to this "
                             f"node's address{' (UDP; TCP keeps the client address, DSR)' if mode == 'hybrid' else ''}"
                             ", apart from the ip-masq-agent map")
                elif mode == "dsr":
                    line += " forwards NodePort/LoadBalancer traffic with the client address kept (DSR)"
                else:
                    line += " settings (services are translated to a backend before the masquerade decision)"
                out.append(line)
        if self.merger is not None:
            out.append(f"DaemonSet {self.merger.ref} runs the {MERGER} sidecar (merges /etc/config/ip-masq* into "
                       "cilium-agent's /etc/config/ip-masq-agent)")
        if self.direct is not None:
            out.append(f"DaemonSet {self.direct.ref} mounts ConfigMap {DNS_IMDS_CONFIGMAP} as cilium-agent's "
                       "/etc/config (pod subnet: the user ConfigMap is not mounted)")
        return out

    def to_dict(self) -> dict:
        return {"config": self.config_ref, "bpf_masquerade": self.bpf_masquerade,
                "ip_masq_agent": self.ip_masq_agent, "ipv4_masquerade": self.ipv4_masquerade,
                "ipv6_masquerade": self.ipv6_masquerade, "native_routing_cidr": self.native_routing_cidr,
                "remote_node_masquerade": self.remote_node_masquerade, "routing_mode": self.routing_mode,
                "config_source": self.source, "bpf_decides": self.bpf_decides, "values": dict(self.values),
                "merger": self.merger.ref if self.merger else None, "notes": list(self.notes)}


def _is_merger(ds: AgentDaemonSet) -> bool:
    return MERGER in ds.container.lower() or MERGER in ds.image.lower()


def cilium_facts(snapshot: ClusterSnapshot) -> CiliumFacts:
    """What the snapshot says about Cilium's masquerade (``present`` False: nothing)."""
    notes: list[str] = []
    cm = snapshot.configmap(CILIUM_CONFIG)
    values: dict = {}
    kw: dict = {}
    if cm is not None:
        values = {k: cm.data[k] for k in KEYS if k in cm.data}
        values.update({k: v for k, v in sorted(cm.data.items()) if k.startswith("bpf-lb-")})
        for key, attr in (("enable-bpf-masquerade", "bpf_masquerade"), ("enable-ip-masq-agent", "ip_masq_agent"),
                          ("enable-ipv4-masquerade", "ipv4_masquerade"), ("enable-ipv6-masquerade", "ipv6_masquerade"),
                          ("enable-remote-node-masquerade", "remote_node_masquerade")):
            raw = cm.data.get(key)
            value = parse_bool(raw)
            if raw is not None and value is None:
                notes.append(f"ConfigMap {cm.ref} key {key}: {raw!r} is not a boolean Cilium reads; taken as unknown")
            kw[attr] = value
        cidr = cm.data.get("ipv4-native-routing-cidr")
        if cidr:
            try:
                kw["native_routing_cidr"] = str(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError:
                notes.append(f"ConfigMap {cm.ref} key ipv4-native-routing-cidr: {cidr!r} is not a CIDR; taken as unknown")
        mode = (cm.data.get("routing-mode") or "").strip().lower()
        kw["routing_mode"] = mode if mode in ("native", "tunnel") else None
        if not mode and cm.data.get("tunnel-protocol") is None and "tunnel" not in cm.data:
            notes.append(f"ConfigMap {cm.ref} has no routing-mode: Cilium's default is tunnel")
            kw["routing_mode"] = "tunnel"
    merger = next((ds for ds in snapshot.daemonsets if _is_merger(ds)), None)
    direct = None
    if merger is None:
        direct = next((ds for ds in snapshot.daemonsets for m in ds.mounts for s in m.sources
                       if s.configmap == DNS_IMDS_CONFIGMAP), None)
    return CiliumFacts(config_ref=cm.ref if cm is not None else None, merger=merger, direct=direct, values=values,
                       notes=tuple(notes), **kw)


@dataclass(frozen=True)
class EffectiveMap:
    """The ip-masq-agent map Cilium would load, with the files it came from."""

    facts: CiliumFacts
    loaded: CiliumMap | None
    merged: MergedConfig | None = None
    files: tuple[tuple[str, str, str], ...] = ()   # (file in the folder, ConfigMap ref, key)
    texts: dict = field(default_factory=dict)       # file -> text (for line citations)
    error: ConfigError | None = None
    notes: tuple[str, ...] = ()

    def source_of(self, origin: Origin) -> str:
        """Where a config line lives: ``ConfigMap kube-system/NAME key K line N``."""
        for f, ref, key in self.files:
            if f == origin.file:
                return f"ConfigMap {ref} key {key}" + (f" line {origin.line}" if origin.line else "")
        return origin.describe()

    def chain_of(self, prefix: str) -> str:
        """map entry ← merged file ← ConfigMap line, for one map prefix."""
        entry = next((e for e in self.loaded.entries if e.prefix == prefix), None) if self.loaded else None
        if entry is None:
            return f"map entry {prefix}"
        parts = [f"map entry {prefix}"]
        if entry.written:
            parts[0] += f" (written {', '.join(entry.written)}; Cilium masks it)"
        if entry.why != "config":
            return parts[0] + f" <- {entry.origins[0].describe()}"
        if self.merged is not None:
            written = entry.written[0] if entry.written else prefix
            line = self.merged.line_of(written)
            parts.append(f"{MERGED_FILE} (merged) line {line}" if line else f"{MERGED_FILE} (merged)")
            cidr = next((c for c in self.merged.non_masquerade_cidrs if c.cidr == written), None)
            if cidr is not None:
                parts += [self.source_of(o) for o in cidr.origins]
        else:
            parts += [self.source_of(o) for o in entry.origins]
        return " <- ".join(parts)

    def to_dict(self) -> dict:
        return {"cilium": self.facts.to_dict(), "map": self.loaded.to_dict() if self.loaded else None,
                "listing": self.loaded.listing() if self.loaded else None,
                "merged": self.merged.to_dict() if self.merged else None,
                "files": [{"file": f, "configmap": r, "key": k} for f, r, k in self.files],
                "error": self.error.one_line() if self.error else None, "notes": list(self.notes)}


def _project(snapshot: ClusterSnapshot, ds: AgentDaemonSet, path: str) -> tuple[list, list[str]]:
    """(file, ConfigMap ref, key, text) the mount at ``path`` puts there; notes."""
    out, notes = [], []
    for m in ds.mounts:
        if m.mount_path.rstrip("/") != path.rstrip("/") or m.sub_path:
            continue
        for src in m.sources:
            cm = snapshot.configmap(src.configmap, ds.namespace)
            ref = f"{ds.namespace}/{src.configmap}"
            if cm is None and MissingKey.CONFIGMAPS in snapshot.missing:
                notes.append(f"ConfigMap {ref} cannot be checked: ConfigMaps were not gathered")
            pairs = ([(i.key, i.path) for i in src.items] if src.items is not None
                     else [(k, k) for k in sorted(cm.data)] if cm is not None else [])
            for key, file in pairs:
                text = cm.data.get(key) if cm is not None else None
                if text is not None:
                    out.append((file, ref, key, text))
    return out, notes


def effective_map(snapshot: ClusterSnapshot, facts: CiliumFacts | None = None) -> EffectiveMap | None:
    """The map Cilium loads from what the snapshot projects; None when Cilium's ip-masq-agent is not
    in play (no merger or DNS/IMDS mount seen). A refused file gives ``error`` and no map."""
    facts = facts or cilium_facts(snapshot)
    v4 = facts.ipv4_masquerade is not False
    v6 = bool(facts.ipv6_masquerade)
    notes = list(facts.notes)
    if facts.ip_masq_agent is False:
        notes.append(f"{facts.config_ref}: enable-ip-masq-agent is false: Cilium has no ip-masq-agent map (only the "
                     "native routing CIDR is exempt)")
    if facts.merger is not None:
        files, pnotes = _project(snapshot, facts.merger, "/etc/config")
        notes += pnotes
        sources = [ConfigSource(f, t.encode()) for f, _, _, t in files]
        texts = {f: t for f, _, _, t in files}
        refs = tuple((f, r, k) for f, r, k, _ in files)
        try:
            merged = merge(sources)
        except ConfigError as exc:
            return EffectiveMap(facts, None, None, refs, texts, exc, tuple(notes))
        text = merged.text()
        try:
            loaded = load(None if text is None else text.encode(), file=f"{MERGED_FILE} (merged)", ipv4=v4, ipv6=v6)
        except ConfigError as exc:
            return EffectiveMap(facts, None, merged, refs, texts, exc, tuple(notes))
        return EffectiveMap(facts, loaded, merged, refs, texts, None, tuple(notes))
    if facts.direct is not None:
        files, pnotes = _project(snapshot, facts.direct, "/etc/config")
        notes += pnotes
        refs = tuple((f, r, k) for f, r, k, _ in files)
        texts = {f: t for f, _, _, t in files}
        data = texts.get("ip-masq-agent")
        try:
            loaded = load(None if data is None else data.encode(), ipv4=v4, ipv6=v6)
        except ConfigError as exc:
            return EffectiveMap(facts, None, None, refs, texts, exc, tuple(notes))
        return EffectiveMap(facts, loaded, None, refs, texts, None, tuple(notes))
    return None




@dataclass(frozen=True)
class BpfContext:
    """The Cilium facts of one node a decision needs (None: unknown)."""

    node_ip: str | None
    src_local_endpoint: bool | None       # SRC is a pod (endpoint) of this node
    src_host_endpoint: bool = False       # SRC is the host endpoint (host traffic)
    native_routing_cidr: str | None = None    # IPV4_SNAT_EXCLUSION_DST_CIDR (else the node's pod CIDR)
    local_pod_cidr: str | None = None
    routing_mode: str | None = None           # native | tunnel
    remote_node_masquerade: bool | None = False
    dst_remote_node: bool | None = None
    egress_gateway: bool | None = False       # an egress-gateway policy selects the packet
    ip_masq_agent: bool | None = True
    lookup: object | None = None               # ip -> MapEntry | None (the LPM lookup)
    chain_of: object | None = None             # prefix -> provenance text
    effective_lookup: object | None = None     # the effective config's lookup, when ``lookup`` is a node's loaded map
    map_source: str = "the effective config"   # what ``lookup`` is
    bypassed_chains: tuple[str, ...] = ()


def bpf_context(snapshot: ClusterSnapshot, node: str, src_ip: str, src_kind: str, src_node: str | None,
                dst_ip: str):
    """The facts ``bpf_decision`` needs for SRC → DST leaving ``node`` (None where unknown)."""
    facts = cilium_facts(snapshot)
    eff = effective_map(snapshot, facts)
    n = snapshot.node(node)
    node_ip = n.internal_ip if n is not None else None
    local = None
    if src_kind == "pod":
        local = src_node == node if src_node is not None else None
    elif src_kind in ("host", "address"):
        local = False if snapshot.workloads else None
    node_ips = {a for x in snapshot.nodes for t, a in x.addresses if t == "InternalIP"} | {
        x.internal_ip for x in snapshot.nodes if x.internal_ip}
    remote = None
    if snapshot.nodes:
        remote = dst_ip in node_ips and dst_ip != node_ip
    egw = parse_bool(snapshot.configmap(CILIUM_CONFIG).data.get("enable-ipv4-egress-gateway")) \
        if facts.config_ref else None
    lookup = eff.loaded.lookup if eff is not None and eff.loaded is not None else None
    chain_of = eff.chain_of if eff is not None and eff.loaded is not None else None
    effective_lookup, map_source = None, "the effective config"
    cap = snapshot.captures.get(node)
    if cap is not None and cap.cilium_ipmasq is not None:
        # what BPF really looks up: the map loaded on the node (cilium-dbg bpf ipmasq list)
        loaded = parse_ipmasq_list(cap.cilium_ipmasq, f"nodes/{node}/cilium-ipmasq.txt")
        effective = set(eff.loaded.prefixes()) if eff is not None and eff.loaded is not None else None
        lookup = _lookup_in(loaded)
        effective_lookup = eff.loaded.lookup if eff is not None and eff.loaded is not None else None
        map_source = f"the map loaded on node {node}"

        def chain_of(prefix: str, _eff=eff, _effective=effective) -> str:
            where = f"loaded on node {node} (nodes/{node}/cilium-ipmasq.txt)"
            if _effective is not None and prefix in _effective:
                return _eff.chain_of(prefix) + f"; {where}"
            return (f"map entry {prefix} {where}, which the effective config does not hold: a stale map "
                    "(Cilium keeps its last map when it refuses a file; MQ024)")
    return BpfContext(node_ip=node_ip, src_local_endpoint=local, src_host_endpoint=src_kind == "host",
                      native_routing_cidr=facts.native_routing_cidr,
                      local_pod_cidr=n.pod_cidrs[0] if n is not None and n.pod_cidrs else None,
                      routing_mode=facts.routing_mode, remote_node_masquerade=facts.remote_node_masquerade,
                      dst_remote_node=remote, egress_gateway=None if egw else False,
                      ip_masq_agent=facts.ip_masq_agent is not False, lookup=lookup,
                      chain_of=chain_of, effective_lookup=effective_lookup, map_source=map_source)


def _lookup_in(prefixes):
    """The LPM lookup over a loaded map's prefixes: ip -> MapEntry | None."""
    nets = [ipaddress.ip_network(p) for p in prefixes]

    def lookup(ip: str):
        addr = ipaddress.ip_address(ip)
        best = max((n for n in nets if n.version == addr.version and addr in n), key=lambda n: n.prefixlen,
                   default=None)
        return None if best is None else MapEntry(str(best), best.version, "loaded")
    return lookup


__all__ = ["BpfContext", "CiliumFacts", "EffectiveMap", "bpf_context", "cilium_facts", "effective_map",
           "parse_bool"]
