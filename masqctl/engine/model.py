"""Plain data of the engine: agent options, config provenance, the merged config.

Nothing here does I/O. Everything is immutable and turns into JSON-able dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# defined in the stdlib-only leaf that the node-agent's lean daemon reads too (one definition)
from masqctl.configfolder import (  # noqa: F401
    AZURE_CILIUM,
    AZURE_V2,
    CILIUM,
    CILIUM_FLAVORS,
    PREFIX_FLAVORS,
    DEFAULT_CHAIN,
    DEFAULT_CONFIG_DIR,
    DEFAULT_RESYNC_SECONDS,
    FLAVORS,
    TKE,
    UPSTREAM,
)

DEFAULT_CIDR_LIMIT = 64

RFC1918 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
RESERVED_RANGES = (
    "100.64.0.0/10",    # RFC 6598
    "192.0.0.0/24",     # RFC 6890
    "192.0.2.0/24",     # RFC 5737
    "192.88.99.0/24",   # RFC 7526
    "198.18.0.0/15",    # RFC 6815
    "198.51.100.0/24",  # RFC 5737
    "203.0.113.0/24",   # RFC 5737
    "240.0.0.0/4",      # RFC 5735 (former class E)
)
LINK_LOCAL_V4 = "169.254.0.0/16"
LINK_LOCAL_V6 = "fe80::/10"


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int

    @property
    def size(self) -> int:
        return max(0, self.last - self.first + 1)

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


@dataclass(frozen=True)
class AgentOptions:
    """What the agent is started with (its flags), as values."""

    flavor: str = AZURE_V2
    enable_ipv6: bool = False
    nomasq_all_reserved_ranges: bool = False
    masq_chain: str = DEFAULT_CHAIN
    random_fully: bool = True           # upstream/tke only; azure-v2 never writes it
    to_ports: tuple[PortRange, ...] = ()  # upstream/tke only
    resync_interval: float = DEFAULT_RESYNC_SECONDS  # azure-v2: the only source of the period

    def to_dict(self) -> dict:
        return {
            "flavor": self.flavor,
            "enable_ipv6": self.enable_ipv6,
            "nomasq_all_reserved_ranges": self.nomasq_all_reserved_ranges,
            "masq_chain": self.masq_chain,
            "random_fully": self.random_fully,
            "to_ports": ",".join(str(p) for p in self.to_ports),
            "resync_interval": self.resync_interval,
        }


@dataclass(frozen=True)
class Origin:
    """Where one value came from: a line of a config file, a default, or a flag."""

    kind: str                 # "file" | "default" | "flag"
    file: str | None = None   # config file name (e.g. "ip-masq-agent-reconciled")
    line: int | None = None   # 1-based line in that file, when known
    key: str | None = None    # the key as written in the file
    note: str | None = None   # for defaults and flags: why

    def describe(self) -> str:
        if self.kind == "file":
            where = self.file or "?"
            if self.line:
                where += f" line {self.line}"
            return where
        return self.note or self.kind

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        for name in ("file", "line", "key", "note"):
            value = getattr(self, name)
            if value is not None:
                d[name] = value
        return d


@dataclass(frozen=True)
class CidrEntry:
    """One non-masquerade CIDR of the merged config with every place that set it.

    ``origins[0]`` is the first occurrence in deterministic order (files by name, then
    position in the file); later ones are duplicates the agent de-duplicated.
    """

    cidr: str
    family: int  # 4 or 6
    origins: tuple[Origin, ...]

    def to_dict(self) -> dict:
        return {"cidr": self.cidr, "family": self.family,
                "origins": [o.to_dict() for o in self.origins]}


@dataclass(frozen=True)
class Setting:
    """A scalar of the merged config (a boolean, the CIDR limit, the period)."""

    value: object
    origins: tuple[Origin, ...]

    def to_dict(self) -> dict:
        return {"value": self.value, "origins": [o.to_dict() for o in self.origins]}


@dataclass(frozen=True)
class ConfigWarning:
    """Something the agent silently accepts that an operator should know about."""

    code: str     # stable: W101 unknown key, W102 duplicate key, W103 key ignored by flavour, W104-W106 (errors.md)
    file: str
    line: int | None
    key: str | None
    message: str

    def describe(self) -> str:
        where = self.file + (f" line {self.line}" if self.line else "")
        return f"{self.code} {where}: {self.message}"

    def to_dict(self) -> dict:
        return {"code": self.code, "file": self.file, "line": self.line, "key": self.key,
                "message": self.message}


@dataclass(frozen=True)
class FileReport:
    """One config file the agent read."""

    name: str
    format: str                  # "yaml" | "json"
    keys: tuple[str, ...]        # known keys it set, canonical spelling

    def to_dict(self) -> dict:
        return {"name": self.name, "format": self.format, "keys": list(self.keys)}


@dataclass(frozen=True)
class EffectiveConfig:
    """The config the agent really runs, with provenance for every piece."""

    flavor: str
    non_masquerade_cidrs: tuple[CidrEntry, ...]
    masq_link_local: Setting
    masq_link_local_ipv6: Setting
    files: tuple[FileReport, ...] = ()
    defaults_used: bool = False
    non_masquerade_src_cidrs: tuple[CidrEntry, ...] = ()   # tke only
    cidr_limit: Setting | None = None                      # upstream/tke only
    resync_interval: Setting | None = None                 # seconds
    cidrs_nil: bool = False  # upstream: the file set the list to null (Go nil slice)
    warnings: tuple[ConfigWarning, ...] = field(default=())

    def cidrs(self, family: int | None = None) -> list[str]:
        return [c.cidr for c in self.non_masquerade_cidrs if family is None or c.family == family]

    def to_dict(self) -> dict:
        d = {
            "flavor": self.flavor,
            "nonMasqueradeCIDRs": [c.to_dict() for c in self.non_masquerade_cidrs],
            "masqLinkLocal": self.masq_link_local.to_dict(),
            "masqLinkLocalIPv6": self.masq_link_local_ipv6.to_dict(),
            "files": [f.to_dict() for f in self.files],
            "defaults_used": self.defaults_used,
            "warnings": [w.to_dict() for w in self.warnings],
        }
        if self.flavor == TKE:
            d["nonMasqueradeSrcCIDRs"] = [c.to_dict() for c in self.non_masquerade_src_cidrs]
        if self.cidr_limit is not None:
            d["cidrLimit"] = self.cidr_limit.to_dict()
        if self.resync_interval is not None:
            d["resyncInterval"] = self.resync_interval.to_dict()
        return d
