"""Cilium's ip-masq-agent (``pkg/ipmasq``): one config file → the ``cilium_ipmasq_v4/v6`` LPM maps.

cilium-agent with ``enable-ip-masq-agent: "true"`` reads the single file
``ip-masq-agent-config-path`` (default ``/etc/config/ip-masq-agent``) on start and on every
change of its folder, and syncs the BPF maps to it. Read in cilium/cilium ``pkg/ipmasq/ipmasq.go``
(``readConfig``, ``Update``, ``parseCIDR``, ``Ipnet.UnmarshalJSON``, ``defaultNonMasqCIDRs``) and
``pkg/maps/ipmasq/ipmasq.go`` (``Update``, ``Dump``):

* absent file or a file of zero bytes: Cilium's 11 default ranges (RFC 1918 and reserved);
  any other content — an empty list, ``nonMasqueradeCIDRs: null``, only ``masqLinkLocal``, a
  comment, a newline — replaces them (then only link-local stays exempt);
* decoding is ``yaml.ToJSON`` + ``encoding/json`` (keys match case-insensitively, so the
  merger's lower-case ``nonmasqueradecidrs`` is read);
* a CIDR is parsed with ``netip.ParsePrefix`` and **masked** (``10.0.0.1/8`` → ``10.0.0.0/8``),
  not refused; an item that is not a string (a number, ``null``) or does not parse is an error;
* ``169.254.0.0/16`` is added unless ``masqLinkLocal: true``, ``fe80::/10`` unless
  ``masqLinkLocalIPv6: true``;
* an entry goes into the IPv4 map only when IPv4 masquerade is on, into the IPv6 map only when
  IPv6 masquerade is on; otherwise it is dropped without a word (no IPv6 error as in v2);
* no entry limit beyond the map's 16 384;
* on an error the update stops before the map is touched: Cilium keeps the map it has (the map
  is pinned, so it survives agent restarts; a fresh node has an empty map).

``cilium-dbg bpf ipmasq list`` prints the map's prefixes (``netip.Prefix.String()``) in Go map
order, which is random; masqctl lists them sorted (IPv4 first, then by address and length).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from masqctl.engine.decode import decode_document
from masqctl.engine.fields import apply_document
from masqctl.engine.merger import merge
from masqctl.engine.model import (AZURE_CILIUM, AZURE_V2, CidrEntry, ConfigWarning, EffectiveConfig, FileReport,
                                  Origin, Setting)
from masqctl.errors import ConfigError

CONFIG_PATH = "/etc/config/ip-masq-agent"
CONFIG_FILE = "ip-masq-agent"
MAP_MAX_ENTRIES = 16384

# pkg/ipmasq/ipmasq.go defaultNonMasqCIDRs (kubernetes-sigs/ip-masq-agent's reserved ranges)
DEFAULT_NON_MASQ = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24",
                    "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
                    "240.0.0.0/4")
LINK_LOCAL_V4 = "169.254.0.0/16"
LINK_LOCAL_V6 = "fe80::/10"

E_CIDR = "E332"     # a nonMasqueradeCIDRs item Cilium refuses (not a string, does not parse)

KEEPS = ("Cilium refuses the whole file and keeps the ip-masq-agent map it has (pinned: it survives agent "
         "restarts; a node that never loaded one has an empty map, so nothing is exempt)")

_BITS = re.compile(r"0|[1-9][0-9]{0,5}")
_V4 = re.compile(r"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})")


class PrefixProblem(ValueError):
    pass


def _go_addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``netip.ParseAddr`` (without zones, which a prefix may not carry)."""
    if "%" in text:
        raise PrefixProblem("a zone (%…) is not allowed in a prefix")
    if ":" not in text:
        m = _V4.fullmatch(text)
        if m is None or any(int(o) > 255 for o in m.groups()):
            raise PrefixProblem(f"ParseAddr({text!r}): not an IPv4 address (four decimal octets, no leading zeros)")
        return ipaddress.IPv4Address(text)
    tail = text.rsplit(":", 1)[-1]
    if "." in tail and (_V4.fullmatch(tail) is None or any(int(o) > 255 for o in _V4.fullmatch(tail).groups())):
        raise PrefixProblem(f"ParseAddr({text!r}): bad embedded IPv4 address")
    try:
        return ipaddress.IPv6Address(text)
    except ValueError as exc:
        raise PrefixProblem(f"ParseAddr({text!r}): {exc}") from None


def go_prefix_string(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """``netip.Prefix.String()``: RFC 5952 for IPv6, ``::ffff:a.b.c.d`` for IPv4-mapped addresses."""
    if net.version == 6 and net.network_address.ipv4_mapped is not None:
        return f"::ffff:{net.network_address.ipv4_mapped}/{net.prefixlen}"
    return f"{net.network_address.compressed}/{net.prefixlen}"


def parse_prefix(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Cilium's ``parseCIDR``: ``netip.ParsePrefix`` then ``Masked()``; ``PrefixProblem`` when refused."""
    if not isinstance(text, str):
        raise PrefixProblem(f"{text!r} is not a string")
    addr_text, slash, bits_text = text.rpartition("/")
    if not slash:
        raise PrefixProblem(f"ParsePrefix({text!r}): no '/'")
    addr = _go_addr(addr_text)
    if not _BITS.fullmatch(bits_text):
        raise PrefixProblem(f"ParsePrefix({text!r}): bad bits after slash: {bits_text!r}")
    bits = int(bits_text)
    if bits > addr.max_prefixlen:
        raise PrefixProblem(f"ParsePrefix({text!r}): prefix length out of range")
    return ipaddress.ip_network(f"{addr}/{bits}", strict=False)


@dataclass(frozen=True)
class MapEntry:
    """One prefix Cilium loads into (or would drop from) its ip-masq-agent map."""

    prefix: str                      # as cilium-dbg prints it
    family: int
    why: str                         # "config" | "default" | "link-local"
    origins: tuple[Origin, ...] = ()  # the config lines that gave it (written forms may differ: masked)
    written: tuple[str, ...] = ()    # the CIDRs as written, when they differ from ``prefix``

    def sort_key(self):
        net = ipaddress.ip_network(self.prefix)
        return (self.family, int(net.network_address), net.prefixlen)

    def to_dict(self) -> dict:
        d = {"prefix": self.prefix, "family": self.family, "why": self.why,
             "origins": [o.to_dict() for o in self.origins]}
        if self.written:
            d["written"] = list(self.written)
        return d


@dataclass(frozen=True)
class CiliumMap:
    """The ip-masq-agent map Cilium loads from one config file, with provenance."""

    entries: tuple[MapEntry, ...]            # sorted as masqctl lists them
    defaults_used: bool
    masq_link_local: bool
    masq_link_local_ipv6: bool
    file_present: bool
    dropped: tuple[MapEntry, ...] = ()        # the family's masquerade is off: never loaded
    warnings: tuple[ConfigWarning, ...] = field(default=())

    def prefixes(self, family: int | None = None) -> list[str]:
        return [e.prefix for e in self.entries if family is None or e.family == family]

    def listing(self) -> str:
        """One prefix a line, as ``cilium-dbg bpf ipmasq list`` prints them (sorted here)."""
        return "".join(e.prefix + "\n" for e in self.entries)

    def lookup(self, ip: str) -> MapEntry | None:
        """The longest prefix that holds ``ip`` (the LPM lookup of the datapath), or None."""
        addr = ipaddress.ip_address(ip)
        best = None
        for e in self.entries:
            net = ipaddress.ip_network(e.prefix)
            if net.version == addr.version and addr in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, e)
        return best[1] if best else None

    def to_dict(self) -> dict:
        return {"entries": [e.to_dict() for e in self.entries], "defaults_used": self.defaults_used,
                "masqLinkLocal": self.masq_link_local, "masqLinkLocalIPv6": self.masq_link_local_ipv6,
                "file_present": self.file_present, "dropped": [e.to_dict() for e in self.dropped],
                "warnings": [w.to_dict() for w in self.warnings]}


def load(data: bytes | None, *, file: str = CONFIG_FILE, ipv4: bool = True, ipv6: bool = False) -> CiliumMap:
    """The map Cilium loads from ``data`` (the bytes of its config file; None: no file).

    ``ipv4``/``ipv6``: whether that family's masquerade (and so its map) is on. Raises
    ``ConfigError`` where Cilium refuses the file (it then keeps the map it has)."""
    defaults = data is None or len(data) == 0
    warnings: list[ConfigWarning] = []
    ll = ll6 = False
    found: dict[str, list[tuple[str, Origin]]] = {}
    if not defaults:
        try:
            doc = decode_document(file, data)
            fields, warnings = apply_document(file, doc, AZURE_V2)
        except ConfigError as exc:
            raise ConfigError(f"{exc.message}; {KEEPS}", file=exc.file, line=exc.line, key=exc.key,
                              value=exc.value, code=exc.code, hint=exc.hint) from None
        f = fields.get("nonMasqueradeCIDRs")
        for item in (f.value or ()) if f is not None else ():
            try:
                net = parse_prefix(item.value)
            except PrefixProblem as exc:
                raise ConfigError(f"Invalid CIDR {item.value!r}: {exc}; {KEEPS}", file=file, line=item.line,
                                  key=f.key, value=item.value, code=E_CIDR,
                                  hint="write an address and prefix length such as 10.0.0.0/8") from None
            found.setdefault(go_prefix_string(net), []).append((item.value, Origin("file", file, item.line, f.key)))
        ll = bool(fields["masqLinkLocal"].value) if "masqLinkLocal" in fields else False
        ll6 = bool(fields["masqLinkLocalIPv6"].value) if "masqLinkLocalIPv6" in fields else False
    entries: list[MapEntry] = []
    if defaults:
        note = ("default: no config file (Cilium's defaultNonMasqCIDRs)" if data is None
                else "default: the config file is empty (0 bytes)")
        entries += [MapEntry(c, 4, "default", (Origin("default", note=note),)) for c in DEFAULT_NON_MASQ]
    for prefix, pairs in found.items():
        written = tuple(dict.fromkeys(w for w, _ in pairs if w != prefix))
        entries.append(MapEntry(prefix, 6 if ":" in prefix else 4, "config", tuple(o for _, o in pairs), written))
    if not ll and LINK_LOCAL_V4 not in found:
        entries.append(MapEntry(LINK_LOCAL_V4, 4, "link-local",
                                (Origin("default", note="added because masqLinkLocal is not true"),)))
    if not ll6 and LINK_LOCAL_V6 not in found:
        entries.append(MapEntry(LINK_LOCAL_V6, 6, "link-local",
                                (Origin("default", note="added because masqLinkLocalIPv6 is not true"),)))
    on = {4: ipv4, 6: ipv6}
    kept = sorted((e for e in entries if on[e.family]), key=MapEntry.sort_key)
    dropped = tuple(sorted((e for e in entries if not on[e.family] and e.why == "config"), key=MapEntry.sort_key))
    for e in dropped:
        o = e.origins[0]
        warnings.append(ConfigWarning("W107", o.file or file, o.line, o.key,
                                      f"{e.prefix} is never loaded: IPv{e.family} masquerade is off, so Cilium has "
                                      f"no IPv{e.family} ip-masq-agent map and drops the entry without a word"))
    return CiliumMap(tuple(kept), defaults, ll, ll6, data is not None, dropped, tuple(warnings))


__all__ = ["CONFIG_FILE", "CONFIG_PATH", "DEFAULT_NON_MASQ", "CiliumMap", "MapEntry", "PrefixProblem", "load",
           "go_prefix_string", "parse_prefix"]


def effective_config(sources, options):
    """``EffectiveConfig`` of the ``cilium`` / ``azure-cilium`` flavours: the CIDRs Cilium loads into
    its ip-masq-agent map (link-local and defaults included, as the map holds them), each with the
    config lines it came from (for ``azure-cilium``, the merger's input files). ``options.enable_ipv6``
    says whether IPv6 masquerade (and so the IPv6 map) is on; IPv4 masquerade is on."""
    files: tuple = ()
    warnings: list = []
    merged = None
    if options.flavor == AZURE_CILIUM:
        merged = merge(sources)
        warnings += merged.warnings
        text = merged.text()
        data = None if text is None else text.encode()
        loaded = load(data, file=f"{CONFIG_FILE} (merged)", ipv4=True, ipv6=options.enable_ipv6)
        files = tuple(FileReport(name, "yaml", ()) for name in merged.files)
    else:
        src = next((s for s in sources if s.name == CONFIG_FILE), None)
        loaded = load(src.data if src is not None else None, ipv4=True, ipv6=options.enable_ipv6)
        if src is not None:
            files = (FileReport(src.name, "yaml", ()),)
    entries = []
    for e in loaded.entries:
        origins = e.origins
        if merged is not None and e.why == "config":
            written = e.written[0] if e.written else e.prefix
            cidr = next((c for c in merged.non_masquerade_cidrs if c.cidr == written), None)
            origins = cidr.origins if cidr is not None else origins
        entries.append(CidrEntry(e.prefix, e.family, tuple(origins)))
    if merged is not None:
        ll, ll6 = merged.masq_link_local, merged.masq_link_local_ipv6
    else:
        note = (Origin("default", note="not set (false)"),)
        ll = Setting(loaded.masq_link_local, note)
        ll6 = Setting(loaded.masq_link_local_ipv6, note)
    return EffectiveConfig(options.flavor, tuple(entries), ll, ll6, files, loaded.defaults_used,
                           warnings=tuple(warnings) + loaded.warnings)
