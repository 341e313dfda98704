"""What the node knows that its ``iptables-save`` does not: addresses, interfaces, ipsets.

* ``parse_ip_addr(text)`` reads ``ip -o addr`` output (the bundle's ``ip-addr.txt``).
* ``parse_ipset_save(text)`` reads ``ipset save`` / ``ipset list -o save`` output.
* :class:`NodeFacts` holds them plus the query's own facts (egress interface, node IP).

A fact that is not given stays unknown: the evaluator then branches instead of guessing.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FactError(ValueError):
    def __init__(self, message: str, lineno: int | None = None, text: str | None = None):
        super().__init__(message)
        self.message = message
        self.lineno = lineno
        self.text = text


@dataclass(frozen=True)
class Address:
    """One address of the node: ``interface`` may be None (device unknown)."""

    ip: IPAddress
    network: IPNetwork | None = None       # the connected subnet (None: host address only)
    interface: str | None = None

    def describe(self) -> str:
        text = str(self.ip) + (f"/{self.network.prefixlen}" if self.network is not None else "")
        return text + (f"@{self.interface}" if self.interface else "")


def parse_address_fact(text: str) -> Address:
    """``IP``, ``IP/LEN`` or either with ``@DEV`` (as given to ``--local-address``)."""
    value, _, dev = text.partition("@")
    if "@" in text and not dev:
        raise FactError(f"{text!r}: empty interface name after @")
    try:
        if "/" in value:
            iface = ipaddress.ip_interface(value)
            net = iface.network if iface.network.prefixlen < iface.max_prefixlen else None
            return Address(iface.ip, net, dev or None)
        return Address(ipaddress.ip_address(value), None, dev or None)
    except ValueError:
        raise FactError(f"{text!r} is not an IP address (IP, IP/LEN, optionally @DEVICE)") from None


_IP_ADDR_LINE = re.compile(r"^\s*\d+:\s+(\S+)\s+(inet6?)\s+(\S+)(?:\s+peer\s+(\S+))?")


def parse_ip_addr(text: str) -> list[Address]:
    """Addresses from ``ip -o addr`` (or ``ip -o -4 addr``) output."""
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = _IP_ADDR_LINE.match(line)
        if not m:
            if re.match(r"^\s*\d+:\s+\S+\s+(link/|mtu)", line) or line.startswith(" "):
                continue  # ip -o link lines and continuation lines carry no address
            raise FactError("not an `ip -o addr` line", lineno, line)
        dev = m.group(1).split("@", 1)[0]
        try:
            iface = ipaddress.ip_interface(m.group(3))
        except ValueError:
            raise FactError(f"bad address {m.group(3)!r}", lineno, line) from None
        net = iface.network if iface.network.prefixlen < iface.max_prefixlen else None
        if m.group(4):
            net = None  # point-to-point: the peer is not a connected subnet of ours
        out.append(Address(iface.ip, net, dev))
    return out


@dataclass
class IpSet:
    name: str
    type: str                                   # hash:ip, hash:net, hash:ip,port, ...
    family: int = 4
    members: list[tuple] = field(default_factory=list)   # parsed per type
    nomatch: list[tuple] = field(default_factory=list)
    supported: bool = True

    def dimensions(self) -> list[str]:
        return self.type.split(":", 1)[1].split(",") if ":" in self.type else []


_DIMENSIONS = {"ip", "net", "port"}    # what set_member can compare


class _Unsupported(ValueError):
    """A valid member masqctl does not compare (an ICMP type in a port dimension)."""


def _parse_member(kind: str, text: str):
    if kind == "ip" or kind == "net":
        if "-" in text and "/" not in text:
            a, b = text.split("-", 1)
            return ("range", int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b)))
        net = ipaddress.ip_network(text, strict=False)
        return ("net", net)
    if kind == "port":
        proto, _, port = text.rpartition(":")
        proto = proto or "tcp"
        if proto in ("icmp", "icmpv6", "ipv6-icmp") and not port.replace("/", "").isdigit():
            raise _Unsupported(text)
        if "-" in port:
            a, b = port.split("-", 1)
            return ("port", proto, int(a), int(b))
        return ("port", proto, int(port), int(port))
    if kind == "mark":
        return ("mark", int(text, 0))
    raise ValueError(kind)


def parse_ipset_save(text: str) -> dict[str, IpSet]:
    """Sets from ``ipset save`` output (``create`` and ``add`` lines)."""
    sets: dict[str, IpSet] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if parts[0] in ("create", "-N", "-exist") and len(parts) >= 3:
            fam = 6 if "inet6" in parts[3:] else 4
            s = IpSet(parts[1], parts[2], fam)
            s.supported = parts[2] == "list:set" or (
                parts[2].startswith("hash:") and set(s.dimensions()) <= _DIMENSIONS)
            sets[s.name] = s
            continue
        if parts[0] in ("add", "-A") and len(parts) >= 3:
            s = sets.get(parts[1])
            if s is None:
                raise FactError(f"add to set {parts[1]!r} before its create line", lineno, raw)
            if not s.supported:
                continue
            if s.type == "list:set":
                s.members.append((parts[2],))
                continue
            values = parts[2].split(",")
            dims = s.dimensions()
            if len(values) != len(dims):
                raise FactError(f"member {parts[2]!r} does not fit set type {s.type}", lineno, raw)
            try:
                member = tuple(_parse_member(d, v) for d, v in zip(dims, values))
            except _Unsupported:
                s.supported = False     # membership in it stays unknown
                continue
            except ValueError:
                raise FactError(f"member {parts[2]!r} cannot be read as {s.type}", lineno, raw) from None
            (s.nomatch if "nomatch" in parts[3:] else s.members).append(member)
            continue
        if parts[0] in ("flush", "destroy", "swap", "rename", "del", "-F", "-X", "-D", "COMMIT"):
            continue
        raise FactError("not an `ipset save` line (create/add)", lineno, raw)
    return sets


@dataclass
class NodeFacts:
    """Node facts an evaluation may use. Unknown facts make matches that need them unknown."""

    addresses: list[Address] = field(default_factory=list)   # the node's own addresses
    node_ip: IPAddress | None = None           # the address MASQUERADE picks on the default route
    out_interface: str | None = None           # egress interface of the default route
    in_interface: str | None = None            # where the packet enters (pod's host-side interface)
    ipsets: dict[str, IpSet] | None = None     # None: no ipset contents given
    bridged: bool | None = None                # bridged frame with br_netfilter (physdev)
    mangle_marks: bool = False                 # the dump's mangle/raw tables set marks
    remote_assumed: bool = False               # no address is the node's own but 127/8 (a what-if's stated assumption)

    def knows_locals(self, version: int) -> bool:
        """Whether the node's addresses of IP ``version`` were given (one family says nothing
        about the other)."""
        return self.remote_assumed or any(a.ip.version == version for a in self.addresses) or (
            self.node_ip is not None and self.node_ip.version == version)

    def is_local(self, ip: IPAddress) -> bool | None:
        """True/False when the node's address list decides; None when no address of that family
        is given."""
        if ip.is_loopback:
            return True
        if any(a.ip == ip for a in self.addresses) or ip == self.node_ip:
            return True
        return False if self.knows_locals(ip.version) else None

    def _node_ip(self, version: int | None) -> IPAddress | None:
        if self.node_ip is not None and version in (None, self.node_ip.version):
            return self.node_ip
        return None

    def default_interface(self, version: int | None = None) -> str | None:
        if self.out_interface:
            return self.out_interface
        node_ip = self._node_ip(version)
        if node_ip is not None:
            for a in self.addresses:
                if a.ip == node_ip and a.interface:
                    return a.interface
        return None

    def default_source(self, version: int | None = None) -> IPAddress | None:
        """The address MASQUERADE picks on the default route for a packet of IP ``version``."""
        node_ip = self._node_ip(version)
        if node_ip is not None:
            return node_ip
        ours = [a for a in self.addresses if version in (None, a.ip.version)]
        if self.out_interface:
            cands = [a.ip for a in ours if a.interface == self.out_interface]
            if cands:
                return cands[0]
        cands = [a.ip for a in ours if not a.ip.is_loopback and not a.ip.is_link_local]
        return cands[0] if len(cands) == 1 else None
