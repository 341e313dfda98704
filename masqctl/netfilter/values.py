"""Values written in rules, read the way the kernel compares them.

Addresses and masks (``a/len``, ``a/dotted-mask``; parsed once and cached), interface
patterns (``eth+``), port lists (``80,8000:8080``), marks (``value/mask``), protocol names,
and the address of a ``--to-destination`` / ``--to-source``.
"""

from __future__ import annotations

import ipaddress

from masqctl.netfilter.facts import IPAddress

FULL_MASK = 0xFFFFFFFF


_NET_CACHE: dict[str, tuple | None] = {}


def parse_net(text: str):
    """``a/len`` or ``a/dotted-mask`` → (version, network int, mask int); None if unreadable."""
    hit = _NET_CACHE.get(text)
    if hit is not None or text in _NET_CACHE:
        return hit
    result = None
    addr, _, mask = text.partition("/")
    if mask.isdigit() and addr.count(".") == 3:     # fast path: a.b.c.d/len
        try:
            a, b, c, d = (int(x) for x in addr.split("."))
            plen = int(mask)
            if max(a, b, c, d) < 256 and plen <= 32:
                m = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
                result = (4, ((a << 24) | (b << 16) | (c << 8) | d) & m, m)
                _NET_CACHE[text] = result
                return result
        except ValueError:
            pass
    try:
        ip = ipaddress.ip_address(addr)
        bits = ip.max_prefixlen
        if not mask:
            m = (1 << bits) - 1
        elif mask.isdigit():
            plen = int(mask)
            if plen > bits:
                raise ValueError
            m = ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
        else:
            m = int(ipaddress.ip_address(mask))
        result = (ip.version, int(ip) & m, m)
    except ValueError:
        result = None
    if len(_NET_CACHE) > 200_000:
        _NET_CACHE.clear()
    _NET_CACHE[text] = result
    return result


def in_net(ip: IPAddress, text: str) -> bool | None:
    """Whether ``ip`` is in the network ``text``; None if ``text`` is unreadable."""
    n = parse_net(text)
    if n is None:
        return None
    if n[0] != ip.version:
        return False
    return (int(ip) & n[2]) == n[1]


def iface_match(pattern: str, name: str) -> bool:
    """``-i``/``-o`` semantics: a trailing ``+`` matches every name with that prefix."""
    if pattern.endswith("+"):
        return name.startswith(pattern[:-1])
    return name == pattern


def _ports(spec: str) -> list[tuple[int, int]]:
    out = []
    for part in spec.split(","):
        a, _, b = part.partition(":")
        lo = int(a) if a else 0
        hi = int(b) if b else (65535 if _ else lo)
        out.append((lo, hi))
    return out


def in_ports(port: int, spec: str) -> bool:
    """Raises ValueError for an unreadable port list (callers turn it into an unknown)."""
    return any(lo <= port <= hi for lo, hi in _ports(spec))


def mark_value(spec: str) -> tuple[int, int]:
    """``value[/mask]`` → (value, mask); raises ValueError if unreadable."""
    v, _, m = spec.partition("/")
    return int(v, 0), (int(m, 0) if m else FULL_MASK)


def parse_to_destination(text: str, version: int):
    """``a[-b][:p[-q]]`` or ``[v6]:p`` → (address, port or None, single); None if unreadable.

    ``single`` is False for a real range of addresses or ports: the kernel then picks one per
    connection (a hash of the tuple), so the first of the range is not the answer."""
    try:
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        elif version == 6 or text.count(":") > 1:
            host, port = text, ""
        else:
            host, _, port = text.partition(":")
        host, _, host_end = host.partition("-")
        addr = ipaddress.ip_address(host) if host else None
        if addr is None:
            return None
        single = not host_end or ipaddress.ip_address(host_end) == addr
        if port:
            first, _, last = port.partition("-")
            pnum = int(first)
            single = single and (not last or int(last) == pnum)
        else:
            pnum = None
        return addr, pnum, single
    except ValueError:
        return None


def to_source_address(text: str) -> IPAddress | None:
    """The address of a ``--to-source`` (``a[-b][:ports]`` or ``[v6]``); None if unreadable or a
    real range (the kernel picks one address of it per connection)."""
    host = text.split(":", 1)[0] if text.count(":") <= 1 else text.strip("[").split("]", 1)[0]
    host, _, host_end = host.partition("-")
    try:
        addr = ipaddress.ip_address(host)
        if host_end and ipaddress.ip_address(host_end) != addr:
            return None
        return addr
    except ValueError:
        return None


# What iptables-restore accepts for the nat targets (iptables 1.8.9, both backends): the options
# each one knows, the option it cannot do without. A port in a target needs "-p" on the rule.
_NAT_TARGETS = {
    "SNAT": ({"--to-source", "--random", "--random-fully", "--persistent"}, "--to-source"),
    "DNAT": ({"--to-destination", "--random", "--persistent"}, "--to-destination"),
    "MASQUERADE": ({"--to-ports", "--random", "--random-fully"}, None),
    "REDIRECT": ({"--to-ports", "--random"}, None),
}


def nat_target_refusal(target: str | None, options: dict, has_protocol: bool, version: int) -> str | None:
    """Why ``iptables-restore`` refuses a SNAT/DNAT/MASQUERADE/REDIRECT rule with these target
    ``options`` (option -> values); None when it accepts it (or the target is not one of these).
    No ``iptables-save`` prints such a rule, so a dump holding it was edited or damaged."""
    known = _NAT_TARGETS.get(target or "")
    if known is None:
        return None
    allowed, required = known
    for opt in options:
        if opt not in allowed:
            return f'{target} has no option {opt} (iptables-restore: unknown option "{opt}")'
    if required is not None and required not in options:
        return f'{target} without {required} (iptables-restore: option "{required}" must be specified)'
    if required is not None:
        value = (options[required] or ("",))[0]
        host, ports = _split_nat_address(value, version)
        try:
            for part in host.split("-", 1) if host else [""]:
                if ipaddress.ip_address(part).version != version:
                    raise ValueError
        except ValueError:
            return f'{target} {required} {value!r} cannot be read as an IPv{version} address or range ' \
                   f'(iptables-restore: Bad IP address "{host}")'
    else:
        ports = (options.get("--to-ports") or (None,))[0]
    if ports is not None:
        if not has_protocol:
            return f"{target} with a port but no -p on the rule (iptables-restore: Need TCP, UDP, SCTP or DCCP " \
                   "with port specification)"
        bounds = ports.split("-", 1)
        if not all(b.isdigit() and int(b) <= 65535 for b in bounds):
            return f"{target} port {ports!r} is not a port or port range (iptables-restore: Port not valid)"
        if required is None and len(bounds) == 2 and int(bounds[0]) > int(bounds[1]):
            return f"{target} port range {ports!r} runs backwards (iptables-restore: Port range funky)"
    return None


def _split_nat_address(value: str, version: int) -> tuple[str, str | None]:
    """``a[-b][:ports]`` (IPv4) or ``[a][-[b]][:ports]`` / ``a[-b]`` (IPv6) → (address part, ports)."""
    if version == 6:
        if value.startswith("["):
            host, _, rest = value.partition("]:")
            if rest or value.endswith("]"):
                return host.replace("[", "").replace("]", ""), rest or None
            return value, None
        return value, None
    host, sep, ports = value.partition(":")
    return host, ports if sep else None


def split_endpoint(text: str) -> tuple[str, str | None]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address, as ``(host, port text or None)``
    (the one spelling of an address with a port in masqctl). Raises ``ValueError`` when the text
    has none of these shapes; the host and port are not checked here."""
    value = text.strip()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(text)
        return host, (rest[1:] if rest else None)
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, port
    return value, None
