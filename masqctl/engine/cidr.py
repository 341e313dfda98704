"""CIDR checks exactly as the agents make them (Go's ``net.ParseCIDR`` plus alignment)."""

from __future__ import annotations

import ipaddress
import re

_PREFIX = re.compile(r"[0-9]+")


class CidrProblem(ValueError):
    """Why a CIDR is refused; ``kind`` is "parse", "align" or "mapped"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Parse and check one CIDR; raise ``CidrProblem`` when the agent would refuse it.

    Go accepts ``a.b.c.d/n`` and IPv6 ``x::/n`` with a decimal prefix length; it refuses
    leading zeros in IPv4 octets, zones (``%eth0``), dotted masks, and host bits set
    ("not aligned"). An IPv4-mapped IPv6 CIDR (``::ffff:10.0.0.0/104``) passes the agent's
    checks but is written into the IPv4 table, where ``iptables-restore`` rejects it, so
    the agent fails later; it is refused here with that reason.
    """
    if not isinstance(text, str) or "/" not in text:
        raise CidrProblem("parse", f"CIDR {text!r} could not be parsed: invalid CIDR address")
    addr, _, prefix = text.partition("/")
    if "%" in addr or not _PREFIX.fullmatch(prefix) or len(prefix) > 7:
        raise CidrProblem("parse", f"CIDR {text!r} could not be parsed: invalid CIDR address")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise CidrProblem("parse", f"CIDR {text!r} could not be parsed: invalid CIDR address") from None
    bits = 32 if ip.version == 4 else 128
    length = int(prefix)
    if length > bits:
        raise CidrProblem("parse", f"CIDR {text!r} could not be parsed: prefix /{length} is longer "
                                   f"than {bits} bits")
    network = ipaddress.ip_network(f"{ip}/{length}", strict=False)
    if network.network_address != ip:
        raise CidrProblem("align", f"CIDR {text!r} is not aligned to a CIDR block: the address "
                                   f"must be the network address, {network}")
    if ip.version == 6 and ip.ipv4_mapped is not None:
        raise CidrProblem("mapped", f"CIDR {text!r} is an IPv4-mapped IPv6 range: the agent writes it "
                                    "into the IPv4 table, where iptables-restore rejects it")
    return network


def family(text: str) -> int:
    """4 or 6 for a CIDR that ``parse_cidr`` accepted."""
    return 6 if ":" in text else 4
