"""Agent flag values that need checking (`--to-ports`, `--masq-chain`), and the agent's own log rendering of a config."""

from __future__ import annotations

import json
import re

from masqctl.engine.godur import format_duration
from masqctl.engine.model import AZURE_V2, TKE, EffectiveConfig, PortRange
from masqctl.errors import UsageError

_RESERVED_CHAIN_NAMES = {"ACCEPT", "DROP", "QUEUE", "RETURN", "MASQUERADE", "SNAT", "DNAT", "REDIRECT",
                         "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}


def parse_to_ports(text: str) -> tuple[PortRange, ...]:
    """Parse upstream's ``--to-ports`` (``1024-29999,32768-65535``; a single port is allowed)."""
    if text == "":
        return ()
    ranges = []
    for part in text.split(","):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(re.fullmatch(r"[0-9]+", b) for b in bounds):
            raise UsageError(f"invalid port range {part!r} in {text!r}", input="--to-ports", code="E202",
                             hint="write ranges such as 1024-29999,32768-65535")
        first, last = int(bounds[0]), int(bounds[-1])
        if first > last:
            raise UsageError(f"first port is greater than last in {part!r}", input="--to-ports",
                             code="E202")
        if last > 65535:
            raise UsageError(f"port {last} in {part!r} is above 65535", input="--to-ports", code="E202")
        ranges.append(PortRange(first, last))
    return tuple(ranges)


def check_chain_name(name: str) -> str:
    """A nat chain name iptables accepts (at most 28 characters, no blanks, not a target)."""
    problem = None
    if not name:
        problem = "is empty"
    elif len(name) > 28:
        problem = f"has {len(name)} characters; iptables allows at most 28"
    elif re.search(r"[\s\"'\\]", name) or not name.isprintable():
        problem = "contains blanks, quotes or unprintable characters"
    elif name[0] in "-!":
        problem = "starts with '-' or '!'"
    elif name.upper() in _RESERVED_CHAIN_NAMES:
        problem = "is a built-in chain or target name"
    if problem:
        raise UsageError(f"chain name {name!r} {problem}", input="--masq-chain", code="E203")
    return name


def agent_config_json(config: EffectiveConfig) -> str:
    """The JSON the Go agent logs after ``using config:`` (field order as Go marshals it)."""
    cidrs = None if config.cidrs_nil else config.cidrs()
    if config.flavor == AZURE_V2:
        doc = {"nonMasqueradeCIDRs": cidrs, "masqLinkLocal": config.masq_link_local.value,
               "masqLinkLocalIPv6": config.masq_link_local_ipv6.value}
    else:
        doc = {"nonMasqueradeCIDRs": cidrs}
        if config.flavor == TKE:
            doc["nonMasqueradeSrcCIDRs"] = [c.cidr for c in config.non_masquerade_src_cidrs]
        doc.update({
            "cidrLimit": config.cidr_limit.value if config.cidr_limit else 64,
            "masqLinkLocal": config.masq_link_local.value,
            "masqLinkLocalIPv6": config.masq_link_local_ipv6.value,
            "resyncInterval": format_duration(int(round((config.resync_interval.value if config.resync_interval else 60) * 1e9))),
        })
    return json.dumps(doc, separators=(",", ":"))
