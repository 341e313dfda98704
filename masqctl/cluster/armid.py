"""Azure Resource Manager resource IDs: their parts, and a file stem per VNet. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class ResourceId:
    """``/subscriptions/S/resourceGroups/RG/providers/NS/type1/name1[/type2/name2…]``."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[tuple[str, str], ...]     # ((type, name), …), outermost first

    def is_type(self, namespace: str, *types: str) -> bool:
        return (self.namespace.lower() == namespace.lower() and len(self.types) == len(types)
                and all(t.lower() == want.lower() for (t, _), want in zip(self.types, types)))

    @property
    def name(self) -> str:
        return self.types[-1][1]

    def parent(self) -> "ResourceId":
        return ResourceId(self.subscription, self.resource_group, self.namespace, self.types[:-1])

    @property
    def text(self) -> str:
        rest = "/".join(f"{t}/{n}" for t, n in self.types)
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"{self.namespace}/{rest}")


def parse_resource_id(text: str | None) -> ResourceId | None:
    """The parts of a resource ID (keywords matched case-insensitively); ``None`` if it is not one."""
    if not text or not isinstance(text, str):
        return None
    parts = text.strip().strip("/").split("/")
    if len(parts) < 8 or len(parts) % 2 != 0 or any(not p for p in parts):
        return None
    if (parts[0].lower(), parts[2].lower(), parts[4].lower()) != ("subscriptions", "resourcegroups", "providers"):
        return None
    rest = parts[6:]
    types = tuple((rest[i], rest[i + 1]) for i in range(0, len(rest), 2))
    return ResourceId(parts[1], parts[3], parts[5], types)


def subnet_parts(text: str | None) -> ResourceId | None:
    """A ``Microsoft.Network/virtualNetworks/V/subnets/S`` ID, else ``None``."""
    rid = parse_resource_id(text)
    if rid is None or not rid.is_type("Microsoft.Network", "virtualNetworks", "subnets"):
        return None
    return rid


def cluster_parts(text: str | None) -> ResourceId | None:
    rid = parse_resource_id(text)
    if rid is None or not rid.is_type("Microsoft.ContainerService", "managedClusters"):
        return None
    return rid


def resource_group_of(text: str | None) -> str | None:
    rid = parse_resource_id(text)
    return rid.resource_group if rid else None


_STEM_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def vnet_stems(ids: Iterable[str]) -> dict[str, str]:
    """A bundle file stem per VNet ID (lower-cased ID → stem): the VNet name, unless two VNets
    share it; then ``<resource group>.<name>``, and if that is still shared,
    ``<subscription>.<resource group>.<name>``. Only ``[A-Za-z0-9._-]`` are kept."""
    parsed = {}
    for i in ids:
        rid = parse_resource_id(i)
        if rid is not None:
            parsed[i.lower()] = rid

    def clean(s: str) -> str:
        return _STEM_UNSAFE.sub("_", s).strip(".") or "vnet"

    def level(rid: ResourceId, n: int) -> str:
        return clean(".".join([rid.subscription, rid.resource_group, rid.name][3 - n:]))

    out: dict[str, str] = {}
    for key, rid in parsed.items():
        for n in (1, 2, 3):
            mine = level(rid, n)
            if sum(1 for other in parsed.values() if level(other, n).lower() == mine.lower()) == 1:
                out[key] = mine
                break
        else:
            out[key] = level(rid, 3)
    return out
