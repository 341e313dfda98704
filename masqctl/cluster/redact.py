"""``collect --redact``: replace identifiers an operator would not share, consistently.

Replaced (everywhere they occur: every document, every dump, the manifest, and mapping keys):

* subscription IDs, tenant IDs and every other GUID (principal, client and object IDs, and
  Kubernetes UIDs) → ``redacted-subscription-N``, ``redacted-tenant-N``, ``redacted-guid-N``;
* resource group names (the cluster's, the node resource group, any in an ARM ID)
  → ``redacted-rg-N``;
* the cluster name and DNS prefix → ``redacted-cluster-N``; the kubeconfig context → ``redacted-context-N``; VNet names → ``redacted-vnet-N``;
  subnet names → ``redacted-subnet-N``; peering names → ``redacted-peering-N``;
  managed identity names → ``redacted-identity-N``;
* API server FQDNs (``fqdn``, ``privateFqdn``, ``azurePortalFqdn``, any ``*.azmk8s.io`` host)
  → ``redacted-host-N.invalid``;
* admin user names → ``redacted-user-N``; SSH public keys and Azure tag values → ``redacted``.

Services and EndpointSlices are treated like the other documents (the load balancer's resource
group annotation is learnt as a resource group). Kept, because they are the evidence: IP addresses
and CIDRs, node, pod, namespace, ConfigMap and Service names, ports, ConfigMap contents, DaemonSet specs, iptables rules, connection-tracking entries (addresses
and ports).

Within one bundle the same identifier always becomes the same placeholder (matched
case-insensitively, as Azure treats them), so references between files still agree.
Identifiers are replaced as whole tokens: ``rg-prod`` is not replaced inside ``rg-prod-2``.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import replace
from typing import Any

from masqctl.cluster.raw import RawCluster

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID = re.compile(GUID)
_ARM = re.compile(r"/subscriptions/([^/\s\"']+)(?:/resourceGroups/([^/\s\"']+))?", re.IGNORECASE)
# Only inside resource IDs (after ``/providers/<namespace>``): resource types and actions such as
# ``Microsoft.Network/virtualNetworks/subnets`` or ``…/virtualNetworks/read`` name no VNet.
_VNET = re.compile(r"/providers/Microsoft\.Network/virtualNetworks/([^/\s\"']+)", re.IGNORECASE)
_SUBNET = re.compile(r"/virtualNetworks/[^/\s\"']+/subnets/([^/\s\"']+)", re.IGNORECASE)
_PEERING = re.compile(r"/virtualNetworks/[^/\s\"']+/virtualNetworkPeerings/([^/\s\"']+)", re.IGNORECASE)
_IDENTITY = re.compile(r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/([^/\s\"']+)", re.IGNORECASE)
_AZMK8S = re.compile(r"(?<![A-Za-z0-9_.-])[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*\.azmk8s\.io(?![A-Za-z0-9_-])", re.IGNORECASE)
_BEFORE = r"(?<![A-Za-z0-9_.-])"
_AFTER = r"(?![A-Za-z0-9_-]|\.[A-Za-z0-9])"


def _looks_like_address(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


class Redactor:
    """One bundle's table of identifiers and their placeholders."""

    def __init__(self) -> None:
        self.table: dict[str, str] = {}          # lower-case original → placeholder
        self.counts: dict[str, int] = {}
        self._pattern: re.Pattern | None = None

    # -- learning identifiers ------------------------------------------------------------------
    def add(self, kind: str, value: Any) -> None:
        if not isinstance(value, str):
            return
        value = value.strip()
        if len(value) < 3 or _looks_like_address(value) or value.lower() in self.table:
            return
        if value.lower().startswith("redacted-"):
            return
        n = self.counts[kind] = self.counts.get(kind, 0) + 1
        self.table[value.lower()] = f"redacted-host-{n}.invalid" if kind == "host" else f"redacted-{kind}-{n}"
        self._pattern = None

    def learn_text(self, text: str) -> None:
        for m in _ARM.finditer(text):
            self.add("subscription", m.group(1))
            if m.group(2):
                self.add("rg", m.group(2))
        for m in _VNET.finditer(text):
            self.add("vnet", m.group(1))
        for m in _SUBNET.finditer(text):
            self.add("subnet", m.group(1))
        for m in _PEERING.finditer(text):
            self.add("peering", m.group(1))
        for m in _IDENTITY.finditer(text):
            self.add("identity", m.group(1))
        for m in _AZMK8S.finditer(text):
            self.add("host", m.group(0))

    def learn_aks(self, aks: Any) -> None:
        if not isinstance(aks, dict):
            return
        flat = _flatten_ci(aks)
        self.add("rg", flat.get("resourcegroup"))
        self.add("rg", flat.get("noderesourcegroup"))
        for key in ("fqdn", "privatefqdn", "azureportalfqdn"):
            self.add("host", flat.get(key))
        self.add("cluster", flat.get("name"))
        self.add("cluster", flat.get("dnsprefix"))
        self.add("cluster", flat.get("fqdnsubdomain"))
        for key in ("identity", "aadprofile"):
            sub = _flatten_ci(flat.get(key) or {})
            self.add("tenant", sub.get("tenantid"))
        for profile in ("linuxprofile", "windowsprofile"):
            sub = _flatten_ci(flat.get(profile) or {})
            self.add("user", sub.get("adminusername"))

    def learn(self, raw: RawCluster) -> None:
        self.learn_aks(raw.aks)
        for source in (raw.source, (raw.manifest or {}).get("source") if isinstance(raw.manifest, dict) else None):
            if isinstance(source, str) and source.startswith("context "):
                self.add("context", source[len("context "):])
        for vnet in raw.vnets.values():
            if isinstance(vnet, dict):
                flat = _flatten_ci(vnet)
                self.add("rg", flat.get("resourcegroup"))
                self.add("vnet", flat.get("name"))
                for kind, key in (("subnet", "subnets"), ("peering", "virtualnetworkpeerings")):
                    for item in flat.get(key) or ():
                        if isinstance(item, dict):
                            self.add(kind, _flatten_ci(item).get("name"))
        for svc in raw.services or ():
            annotations = ((svc.get("metadata") or {}).get("annotations") or {}) if isinstance(svc, dict) else {}
            if isinstance(annotations, dict):
                self.add("rg", annotations.get("service.beta.kubernetes.io/azure-load-balancer-resource-group"))
        for value in _strings([raw.aks, raw.vnets, raw.nodes, raw.daemonsets, raw.pods, raw.configmaps, raw.manifest,
                               raw.services, raw.endpointslices, raw.source]):
            self.learn_text(value)
        for n in raw.nodes or ():
            labels = ((n.get("metadata") or {}).get("labels") or {}) if isinstance(n, dict) else {}
            if isinstance(labels, dict):
                self.add("rg", labels.get("kubernetes.azure.com/cluster"))
                self.add("subnet", labels.get("kubernetes.azure.com/network-subnet"))
                self.add("subnet", labels.get("kubernetes.azure.com/podnetwork-subnet"))
        for cap in raw.captures.values():
            for text in (cap.iptables_save, cap.ip6tables_save, cap.ip_addr, cap.conntrack, cap.nft_ruleset,
                         cap.nft_ruleset_text, cap.cilium_ipmasq, cap.cilium_status):
                if text:
                    self.learn_text(text)

    # -- replacing -------------------------------------------------------------------------------
    def _regex(self) -> re.Pattern:
        if self._pattern is None:
            literals = sorted(self.table, key=len, reverse=True)
            parts = [GUID]
            if literals:
                parts.insert(0, _BEFORE + "(?:" + "|".join(re.escape(t) for t in literals) + ")" + _AFTER)
            self._pattern = re.compile("|".join(parts), re.IGNORECASE)
        return self._pattern

    def _replace(self, m: re.Match) -> str:
        text = m.group(0)
        low = text.lower()
        found = self.table.get(low)
        if found is None:          # a GUID not learnt as a subscription or tenant
            self.add("guid", text)
            found = self.table.get(low, text)
        return found

    def text(self, value: str) -> str:
        return self._regex().sub(self._replace, value) if value else value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.value(v) for k, v in value.items()}
        return value


def _flatten_ci(obj: dict) -> dict:
    """Top-level and ``properties`` keys, lower-cased (az and ARM shapes alike)."""
    out: dict = {}
    if not isinstance(obj, dict):
        return out
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == "properties" and isinstance(v, dict):
            for pk, pv in v.items():
                if isinstance(pk, str):
                    out.setdefault(pk.lower(), pv)
    for k, v in obj.items():
        if isinstance(k, str):
            out[k.lower()] = v
    return out


def _strings(value: Any):
    work = [value]
    while work:
        v = work.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            work.extend(k for k in v if isinstance(k, str))
            work.extend(v.values())
        elif isinstance(v, (list, tuple)):
            work.extend(v)


def _scrub_azure(doc: Any) -> Any:
    """SSH keys and tag values: not identifiers to map, just not to share."""
    if isinstance(doc, list):
        return [_scrub_azure(v) for v in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    for k, v in doc.items():
        low = k.lower() if isinstance(k, str) else k
        if low == "keydata" and isinstance(v, str):
            out[k] = "redacted"
        elif low == "tags" and isinstance(v, dict):
            out[k] = {tk: "redacted" for tk in v}
        else:
            out[k] = _scrub_azure(v)
    return out


def redact_raw(raw: RawCluster, redactor: Redactor | None = None) -> RawCluster:
    """A redacted copy of ``raw`` (``raw`` itself is not changed)."""
    r = redactor or Redactor()
    r.learn(raw)
    out = RawCluster(
        configmaps=r.value(copy.deepcopy(raw.configmaps)),
        daemonsets=r.value(copy.deepcopy(raw.daemonsets)),
        pods=r.value(copy.deepcopy(raw.pods)),
        nodes=r.value(copy.deepcopy(raw.nodes)),
        services=r.value(copy.deepcopy(raw.services)),
        endpointslices=r.value(copy.deepcopy(raw.endpointslices)),
        aks=r.value(_scrub_azure(raw.aks)) if raw.aks is not None else None,
        vnets={r.text(stem): r.value(_scrub_azure(v)) for stem, v in raw.vnets.items()},
        captures={},
        manifest=r.value(copy.deepcopy(raw.manifest)),
        missing={r.text(k): r.text(v) for k, v in raw.missing.items()},
        origin={k: r.text(v) for k, v in raw.origin.items()},
        source=r.text(raw.source),
        namespace=raw.namespace,
    )
    for node, cap in raw.captures.items():
        out.captures[node] = replace(
            cap,
            iptables_save=r.text(cap.iptables_save) if cap.iptables_save else cap.iptables_save,
            ip6tables_save=r.text(cap.ip6tables_save) if cap.ip6tables_save else cap.ip6tables_save,
            ip_addr=r.text(cap.ip_addr) if cap.ip_addr else cap.ip_addr,
            conntrack=r.text(cap.conntrack) if cap.conntrack else cap.conntrack,
            nft_ruleset=r.text(cap.nft_ruleset) if cap.nft_ruleset else cap.nft_ruleset,
            nft_ruleset_text=r.text(cap.nft_ruleset_text) if cap.nft_ruleset_text else cap.nft_ruleset_text,
            cilium_ipmasq=r.text(cap.cilium_ipmasq) if cap.cilium_ipmasq else cap.cilium_ipmasq,
            cilium_status=r.text(cap.cilium_status) if cap.cilium_status else cap.cilium_status,
            errors={k: r.text(v) for k, v in cap.errors.items()},
            absent={k: r.text(v) for k, v in cap.absent.items()},
            via=r.text(cap.via) if cap.via else cap.via,
        )
    if isinstance(out.manifest, dict):
        out.manifest["redaction"] = {"replaced": dict(sorted(r.counts.items()))}
    return out
