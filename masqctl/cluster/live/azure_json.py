"""Azure SDK models → the JSON ``az`` prints. Pure: no Azure import (resource IDs: ``cluster.armid``).

``serialise_cluster`` and ``serialise_vnet`` read the SDK models by **attribute** (the style that
works on both the msrest models of azure-mgmt-containerservice 40.x / azure-mgmt-network 30.x
and the hybrid models of 41.x / 31.x+), never ``as_dict()`` (whose keys differ between those
styles). They write the shape of ``az aks show -o json`` and ``az network vnet show -o json``:
camelCase keys, ``properties`` flattened, ``null`` for what ARM left unset, and only the fields
masqctl reads (plus ``id``, ``name``, ``type``), so bundles from ``collect`` are stable and a
hand-made bundle from ``az`` parses the same way. Enum values are written as ARM returned them
(compare them case-insensitively).
"""

from __future__ import annotations

import enum
from typing import Any, Iterable

from masqctl.cluster.armid import resource_group_of

# --------------------------------------------------------------------------- values


def enum_text(value: Any) -> str | None:
    """An SDK enum member (41.x) or a plain string (40.x, or a value the SDK does not know) as
    the string ARM sent."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    return value if isinstance(value, str) else str(value)


def same(value: Any, want: str) -> bool:
    """Case-insensitive enum comparison."""
    text = enum_text(value)
    return text is not None and text.lower() == want.lower()


def _get(obj: Any, attr: str) -> Any:
    return getattr(obj, attr, None) if obj is not None else None


def _strs(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [enum_text(v) for v in value]


def _prefix_space(space: Any) -> dict | None:
    if space is None:
        return None
    return {"addressPrefixes": _strs(_get(space, "address_prefixes"))}


# --------------------------------------------------------------------------- az aks show


def is_windows(pool: Any) -> bool:
    return same(_get(pool, "os_type"), "Windows")


def serialise_network_profile(np: Any) -> dict | None:
    if np is None:
        return None
    adv = _get(np, "advanced_networking")
    perf = _get(adv, "performance")
    return {
        "networkPlugin": enum_text(_get(np, "network_plugin")),
        "networkPluginMode": enum_text(_get(np, "network_plugin_mode")),
        "networkDataplane": enum_text(_get(np, "network_dataplane")),
        "networkPolicy": enum_text(_get(np, "network_policy")),
        "networkMode": enum_text(_get(np, "network_mode")),
        "podCidr": _get(np, "pod_cidr"),
        "podCidrs": _strs(_get(np, "pod_cidrs")),
        "serviceCidr": _get(np, "service_cidr"),
        "serviceCidrs": _strs(_get(np, "service_cidrs")),
        "dnsServiceIp": _get(np, "dns_service_ip"),
        "ipFamilies": _strs(_get(np, "ip_families")),
        "outboundType": enum_text(_get(np, "outbound_type")),
        "advancedNetworking": None if adv is None else {
            "performance": None if perf is None else {
                "accelerationMode": enum_text(_get(perf, "acceleration_mode"))}},
    }


def serialise_pool(pool: Any) -> dict:
    return {
        "name": _get(pool, "name"),
        "osType": enum_text(_get(pool, "os_type")),
        "mode": enum_text(_get(pool, "mode")),
        "count": _get(pool, "count"),
        "vnetSubnetId": _get(pool, "vnet_subnet_id"),
        "podSubnetId": _get(pool, "pod_subnet_id"),
        "podIpAllocationMode": enum_text(_get(pool, "pod_ip_allocation_mode")),
    }


def serialise_cluster(mc: Any) -> dict:
    """``az aks show`` JSON for a ``ManagedCluster`` model. Windows agent pools are left out:
    no masquerade agent runs on them."""
    pools = [serialise_pool(p) for p in (_get(mc, "agent_pool_profiles") or []) if not is_windows(p)]
    return {
        "id": _get(mc, "id"),
        "name": _get(mc, "name"),
        "type": _get(mc, "type"),
        "location": _get(mc, "location"),
        "resourceGroup": resource_group_of(_get(mc, "id")),
        "nodeResourceGroup": _get(mc, "node_resource_group"),
        "kubernetesVersion": _get(mc, "kubernetes_version"),
        "currentKubernetesVersion": _get(mc, "current_kubernetes_version"),
        "networkProfile": serialise_network_profile(_get(mc, "network_profile")),
        "agentPoolProfiles": pools,
    }


# --------------------------------------------------------------------------- az network vnet show


def serialise_subnet(s: Any) -> dict:
    delegations = _get(s, "delegations")
    return {
        "id": _get(s, "id"),
        "name": _get(s, "name"),
        "type": _get(s, "type"),
        "addressPrefix": _get(s, "address_prefix"),
        "addressPrefixes": _strs(_get(s, "address_prefixes")),
        "delegations": None if delegations is None else [
            {"id": _get(d, "id"), "name": _get(d, "name"), "type": _get(d, "type"),
             "serviceName": _get(d, "service_name")} for d in delegations],
    }


def serialise_peering(p: Any) -> dict:
    remote = _get(p, "remote_virtual_network")
    return {
        "id": _get(p, "id"),
        "name": _get(p, "name"),
        "type": _get(p, "type"),
        "peeringState": enum_text(_get(p, "peering_state")),
        "peeringSyncLevel": enum_text(_get(p, "peering_sync_level")),
        "remoteVirtualNetwork": None if remote is None else {"id": _get(remote, "id")},
        "remoteAddressSpace": _prefix_space(_get(p, "remote_address_space")),
        "remoteVirtualNetworkAddressSpace": _prefix_space(_get(p, "remote_virtual_network_address_space")),
        "allowForwardedTraffic": _get(p, "allow_forwarded_traffic"),
        "allowGatewayTransit": _get(p, "allow_gateway_transit"),
        "useRemoteGateways": _get(p, "use_remote_gateways"),
        "peerCompleteVnets": _get(p, "peer_complete_vnets"),
        "localSubnetNames": _strs(_get(p, "local_subnet_names")),
        "remoteSubnetNames": _strs(_get(p, "remote_subnet_names")),
    }


def peering_lacks_details(p: Any) -> bool:
    """An embedded peering without its state or remote address space (read the list instead)."""
    return _get(p, "peering_state") is None or (
        _get(p, "remote_address_space") is None and _get(p, "remote_virtual_network_address_space") is None)


def serialise_vnet(vnet: Any, subnets: Iterable[Any] | None, peerings: Iterable[Any] | None) -> dict:
    """``az network vnet show`` JSON; ``subnets``/``peerings`` are the models to embed (``None``:
    not read, written as ``null``)."""
    return {
        "id": _get(vnet, "id"),
        "name": _get(vnet, "name"),
        "type": _get(vnet, "type"),
        "location": _get(vnet, "location"),
        "resourceGroup": resource_group_of(_get(vnet, "id")),
        "addressSpace": _prefix_space(_get(vnet, "address_space")),
        "subnets": None if subnets is None else [serialise_subnet(s) for s in subnets],
        "virtualNetworkPeerings": None if peerings is None else [serialise_peering(p) for p in peerings],
    }
