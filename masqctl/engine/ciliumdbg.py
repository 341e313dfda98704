"""What ``cilium-dbg`` prints on a node, read back: the loaded ip-masq-agent map and the masquerade mode.

* ``cilium-dbg bpf ipmasq list`` (cilium/cilium ``cilium-dbg/cmd/bpf_ipmasq_list.go``): a
  tabwriter table, header ``IP PREFIX/ADDRESS`` then one ``netip.Prefix`` a line, in Go map
  order; ``No entries found.`` (on stderr) when the map is empty; ``-o json`` prints a JSON list
  of the prefixes. All three are read; any other line is E333 naming the file and line.
* ``cilium-dbg status``: the ``Masquerading:`` line, e.g. ``Masquerading: BPF (ip-masq-agent)
  [eth0] 192.168.0.0/16 [IPv4: Enabled, IPv6: Disabled]`` or ``Masquerading: IPTables [IPv4:
  Enabled, IPv6: Disabled]`` or ``Masquerading: Disabled``. A status without that line says
  nothing (``None``), never an error: the rest of the status is not read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from masqctl.engine.cilium import PrefixProblem, go_prefix_string, parse_prefix
from masqctl.errors import InputError

E_IPMASQ = "E333"    # a line of cilium-ipmasq.txt that cilium-dbg bpf ipmasq list does not print

HEADER = "IP PREFIX/ADDRESS"
EMPTY = "No entries found."


def parse_ipmasq_list(text: str, label: str = "cilium-ipmasq.txt") -> tuple[str, ...]:
    """The prefixes of a ``cilium-dbg bpf ipmasq list`` output, sorted as masqctl lists them."""
    stripped = text.strip()
    prefixes: list[str] = []
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise InputError(f"not the JSON list cilium-dbg bpf ipmasq list -o json prints ({exc})",
                             input=label, code=E_IPMASQ) from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError("expected a JSON list of prefixes (cilium-dbg bpf ipmasq list -o json)", input=label,
                             code=E_IPMASQ)
        items = [(i + 1, v) for i, v in enumerate(value)]
    else:
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            word = line.strip()
            if not word or word == EMPTY or (word.upper().startswith(HEADER)):
                continue
            items.append((n, word))
    for n, word in items:
        try:
            net = parse_prefix(word)
        except PrefixProblem as exc:
            raise InputError(f"line {n}: {word[:80]!r} is not a prefix cilium-dbg bpf ipmasq list prints ({exc})",
                             input=label, code=E_IPMASQ,
                             hint="capture it with: kubectl -n kube-system exec CILIUM_POD -c cilium-agent -- "
                                  "cilium-dbg bpf ipmasq list") from None
        prefixes.append(go_prefix_string(net))
    return tuple(sorted(set(prefixes), key=_key))


def _key(prefix: str):
    import ipaddress
    net = ipaddress.ip_network(prefix)
    return (net.version, int(net.network_address), net.prefixlen)


@dataclass(frozen=True)
class Masquerading:
    """The ``Masquerading:`` line of ``cilium-dbg status``."""

    mode: str                      # "BPF" | "IPTables" | "Disabled" | other word as printed
    ip_masq_agent: bool
    native_routing_cidr: str | None
    ipv4: bool | None
    ipv6: bool | None
    line: int
    text: str

    def to_dict(self) -> dict:
        return {"mode": self.mode, "ip_masq_agent": self.ip_masq_agent, "native_routing_cidr": self.native_routing_cidr,
                "ipv4": self.ipv4, "ipv6": self.ipv6, "line": self.line}


_MASQ = re.compile(r"^\s*Masquerading:\s*(\S+)(.*)$")
_FAMILY = re.compile(r"IPv([46]):\s*(Enabled|Disabled)", re.IGNORECASE)
_CIDR = re.compile(r"(?<![\w.:/])(\d{1,3}(?:\.\d{1,3}){3}/\d{1,2})(?![\w.])")


def parse_status(text: str) -> Masquerading | None:
    """The masquerade mode from ``cilium-dbg status`` (None: no ``Masquerading:`` line)."""
    for n, line in enumerate(text.splitlines(), 1):
        m = _MASQ.match(line)
        if m is None:
            continue
        mode, rest = m.group(1), m.group(2)
        fam = {f: s.lower() == "enabled" for f, s in _FAMILY.findall(rest)}
        cidr = _CIDR.search(rest.split("[IPv", 1)[0])
        return Masquerading(mode, "ip-masq-agent" in rest, cidr.group(1) if cidr else None, fam.get("4"),
                            fam.get("6"), n, line.strip())
    return None


__all__ = ["Masquerading", "parse_ipmasq_list", "parse_status"]
