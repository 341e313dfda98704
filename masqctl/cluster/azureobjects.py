"""Azure JSON (``az aks show``, ``az network vnet show``) → ``AzureFacts``.

Two shapes are accepted, keys matched case-insensitively:

* the ``az`` CLI shape: camelCase, ``properties`` flattened into the object
  (``networkProfile``, ``agentPoolProfiles[].vnetSubnetId``, ``subnets[].addressPrefix``);
* the ARM REST shape: the same fields nested under ``properties``
  (``properties.agentPoolProfiles[].vnetSubnetID``).

Subnet prefixes are the union of ``addressPrefix`` and ``addressPrefixes``. Enum values
(``peeringState``, ``networkPlugin``…) are kept exactly as returned; compare them
case-insensitively.
"""

from __future__ import annotations

from typing import Any

from masqctl.cluster.model import (
    AgentPool,
    AzureFacts,
    ManagedCluster,
    NetworkProfile,
    Peering,
    Subnet,
    VirtualNetwork,
)
from masqctl.cluster.shape import Doc, type_name


class ADoc(Doc):
    """A ``Doc`` whose keys are looked up case-insensitively, and inside ``properties`` too."""

    __slots__ = ()

    def _find(self, key: str) -> tuple[str, Any] | None:
        data = self.data
        if key in data:
            return key, data[key]
        low = key.lower()
        for k, v in data.items():
            if isinstance(k, str) and k.lower() == low:
                return k, v
        props = None
        for k, v in data.items():
            if isinstance(k, str) and k.lower() == "properties" and isinstance(v, dict):
                props = (k, v)
                break
        if props is not None:
            for k, v in props[1].items():
                if isinstance(k, str) and k.lower() == low:
                    return f"{props[0]}.{k}", v
        return None

    def _resolve(self, key: str) -> tuple[str, Any]:
        found = self._find(key)
        return found if found is not None else (key, None)

    def raw(self, key: str) -> Any:
        return self._resolve(key)[1]

    def _typed(self, method: str, key: str, *args, **kw):
        real, value = self._resolve(key)
        holder = ADoc({real: value}, self.origin, self.path)
        return getattr(Doc, method)(holder, real, *args, **kw)

    def mapping(self, key: str) -> ADoc | None:
        doc = self._typed("mapping", key)
        return None if doc is None else ADoc(doc.data, doc.origin, doc.path)

    def mapping_or_empty(self, key: str) -> ADoc:
        return self.mapping(key) or ADoc({}, self.origin, self.at(key))

    def list(self, key: str) -> list[Any]:
        return self._typed("list", key)

    def mappings(self, key: str) -> list[ADoc]:
        return [ADoc(d.data, d.origin, d.path) for d in self._typed("mappings", key)]

    def str(self, key: str, *, required: bool = False) -> str | None:
        return self._typed("str", key, required=required)

    def strs(self, key: str) -> tuple[str, ...]:
        return self._typed("strs", key)

    def int(self, key: str) -> int | None:
        return self._typed("int", key)

    def bool(self, key: str) -> bool | None:
        return self._typed("bool", key)


def _id_part(resource_id: str | None, name: str) -> str | None:
    """A segment of an ARM id: ``_id_part(id, "resourceGroups")`` → the resource group."""
    if not resource_id:
        return None
    parts = resource_id.strip("/").split("/")
    for i in range(len(parts) - 1):
        if parts[i].lower() == name.lower():
            return parts[i + 1]
    return None


def subscription_of(resource_id: str | None) -> str | None:
    return _id_part(resource_id, "subscriptions")


def resource_group_of(resource_id: str | None) -> str | None:
    return _id_part(resource_id, "resourceGroups")


def vnet_id_of_subnet(subnet_id: str | None) -> str | None:
    """``…/virtualNetworks/V/subnets/S`` → ``…/virtualNetworks/V``."""
    if not subnet_id:
        return None
    parts = subnet_id.rstrip("/").split("/")
    low = [p.lower() for p in parts]
    if "subnets" in low:
        return "/".join(parts[:low.index("subnets")])
    return None


def _list_or_single(doc: ADoc, plural: str, single: str) -> tuple[str, ...]:
    out = list(doc.strs(plural))
    one = doc.str(single)
    if one and one not in out:
        out.insert(0, one)
    return tuple(out)


def _prefixes(doc: ADoc, key: str) -> tuple[str, ...]:
    space = doc.mapping(key)
    return space.strs("addressPrefixes") if space is not None else ()


# --------------------------------------------------------------------------- az aks show


def network_profile(doc: ADoc | None) -> NetworkProfile:
    if doc is None:
        return NetworkProfile()
    accel = None
    adv = doc.mapping("advancedNetworking")
    if adv is not None:
        perf = adv.mapping("performance")
        if perf is not None:
            accel = perf.str("accelerationMode")
    return NetworkProfile(
        network_plugin=doc.str("networkPlugin"),
        network_plugin_mode=doc.str("networkPluginMode"),
        network_dataplane=doc.str("networkDataplane"),
        network_policy=doc.str("networkPolicy"),
        network_mode=doc.str("networkMode"),
        pod_cidrs=_list_or_single(doc, "podCidrs", "podCidr"),
        service_cidrs=_list_or_single(doc, "serviceCidrs", "serviceCidr"),
        dns_service_ip=doc.str("dnsServiceIP"),
        ip_families=doc.strs("ipFamilies"),
        outbound_type=doc.str("outboundType"),
        acceleration_mode=accel,
    )


def agent_pool(doc: ADoc) -> AgentPool:
    return AgentPool(
        name=doc.str("name", required=True),
        os_type=doc.str("osType"),
        mode=doc.str("mode"),
        count=doc.int("count"),
        vnet_subnet_id=doc.str("vnetSubnetID"),
        pod_subnet_id=doc.str("podSubnetID"),
        pod_ip_allocation_mode=doc.str("podIPAllocationMode"),
    )


def managed_cluster(data: Any, origin: str) -> ManagedCluster:
    if not isinstance(data, dict):
        raise Doc({}, origin).fail(None, f"expected the `az aks show` object (a mapping), got {type_name(data)}")
    doc = ADoc(data, origin)
    cid = doc.str("id")
    return ManagedCluster(
        id=cid,
        name=doc.str("name", required=True),
        resource_group=doc.str("resourceGroup") or resource_group_of(cid),
        location=doc.str("location"),
        node_resource_group=doc.str("nodeResourceGroup"),
        kubernetes_version=doc.str("currentKubernetesVersion") or doc.str("kubernetesVersion"),
        network_profile=network_profile(doc.mapping("networkProfile")),
        agent_pools=tuple(agent_pool(p) for p in doc.mappings("agentPoolProfiles")),
    )


# --------------------------------------------------------------------------- az network vnet show


def subnet(doc: ADoc) -> Subnet:
    prefixes = _list_or_single(doc, "addressPrefixes", "addressPrefix")
    delegations = []
    for d in doc.mappings("delegations"):
        service = d.str("serviceName")
        if service:
            delegations.append(service)
    return Subnet(name=doc.str("name", required=True), id=doc.str("id"), prefixes=prefixes,
                  delegations=tuple(delegations))


def peering(doc: ADoc) -> Peering:
    remote = doc.mapping("remoteVirtualNetwork")
    return Peering(
        name=doc.str("name", required=True),
        remote_vnet_id=remote.str("id") if remote is not None else None,
        state=doc.str("peeringState"),
        sync_level=doc.str("peeringSyncLevel"),
        remote_address_space=_prefixes(doc, "remoteAddressSpace"),
        remote_vnet_address_space=_prefixes(doc, "remoteVirtualNetworkAddressSpace"),
        allow_forwarded_traffic=doc.bool("allowForwardedTraffic"),
        allow_gateway_transit=doc.bool("allowGatewayTransit"),
        use_remote_gateways=doc.bool("useRemoteGateways"),
        peer_complete_vnets=doc.bool("peerCompleteVnets"),
        local_subnet_names=doc.strs("localSubnetNames"),
        remote_subnet_names=doc.strs("remoteSubnetNames"),
    )


def virtual_network(data: Any, origin: str, cluster: ManagedCluster | None) -> VirtualNetwork:
    if not isinstance(data, dict):
        raise Doc({}, origin).fail(None, f"expected the `az network vnet show` object (a mapping), "
                                         f"got {type_name(data)}")
    doc = ADoc(data, origin)
    vid = doc.str("id")
    rg = doc.str("resourceGroup") or resource_group_of(vid)
    return VirtualNetwork(
        id=vid,
        name=doc.str("name", required=True),
        resource_group=rg,
        address_prefixes=_prefixes(doc, "addressSpace"),
        subnets=tuple(subnet(s) for s in doc.mappings("subnets")),
        peerings=tuple(peering(p) for p in doc.mappings("virtualNetworkPeerings")),
        managed=_managed(vid, rg, cluster),
    )


def _managed(vnet_id: str | None, rg: str | None, cluster: ManagedCluster | None) -> bool | None:
    """True: in the cluster's node resource group (AKS-managed); False: a pool's subnet is in it
    and it lies elsewhere (bring your own); None: not known to be the cluster's VNet."""
    if cluster is None:
        return None
    if rg and cluster.node_resource_group and rg.lower() == cluster.node_resource_group.lower():
        return True
    if vnet_id:
        for pool in cluster.agent_pools:
            for sid in (pool.vnet_subnet_id, pool.pod_subnet_id):
                owner = vnet_id_of_subnet(sid)
                if owner and owner.lower() == vnet_id.rstrip("/").lower():
                    return False
    return None


def azure_facts(aks: Any, vnets: dict[str, Any], origins: dict[str, str]) -> AzureFacts:
    """``origins`` names each document: key ``aks`` and ``vnets/<stem>``."""
    cluster = managed_cluster(aks, origins.get("aks", "aks.json")) if aks is not None else None
    nets = tuple(virtual_network(data, origins.get(f"vnets/{stem}", f"vnets/{stem}.json"), cluster)
                 for stem, data in sorted(vnets.items()))
    subscription = subscription_of(cluster.id if cluster else None)
    if subscription is None:
        subscription = next((subscription_of(v.id) for v in nets if subscription_of(v.id)), None)
    return AzureFacts(subscription=subscription, cluster=cluster, vnets=nets)
