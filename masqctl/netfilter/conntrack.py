"""Connection-tracking tables as text: ``/proc/net/nf_conntrack`` and ``conntrack -L`` output.

Three shapes are read, in any mix (outputs may be concatenated):

* ``/proc/net/nf_conntrack`` and ``conntrack -L -o extended``::

    ipv4     2 tcp      6 431999 ESTABLISHED src=10.244.1.2 dst=10.42.1.10 sport=51234 dport=443 \
        src=10.42.1.10 dst=10.40.0.4 sport=443 dport=61022 [ASSURED] mark=0 zone=0 use=2

* ``conntrack -L`` (no family column)::

    udp      17 28 src=10.244.1.2 dst=10.0.0.10 sport=40000 dport=53 [UNREPLIED] src=… mark=0 use=1

* ``conntrack -E`` event lines (``[NEW]``, ``[UPDATE]``, ``[DESTROY]`` before the protocol).

Each line is validated: family, protocol name and number, timeout, state, the two tuples
(addresses, ports or ICMP type/code/id), then flags (``[ASSURED]``, ``[UNREPLIED]``, ``[OFFLOAD]``
…) and ``key=value`` attributes (``mark``, ``zone``, ``use``, ``secctx``, ``id``, accounting).
tcp, udp, sctp, icmp and icmpv6 entries are kept; lines of other protocols (gre, dccp, udplite,
``unknown``) are checked up to the protocol and skipped. Blank lines, ``#`` comments and the
``conntrack … flow entries have been shown.`` summary are ignored. Anything else is an
``InputError`` (E318) naming the file and the line.

The same connection listed twice (``conntrack -L`` and ``conntrack -L -f ipv6`` overlap; a
table read twice) is one entry: same protocol, zone, original and reply tuple (for ICMP, with
its id). The first listing is kept.

Two readers, built for big tables (262,144 entries, ``nf_conntrack_max`` of a big node):

* ``parse_table``: every entry, one ``split`` per line, addresses checked by ``inet_pton`` once
  per distinct text;
* ``search_table``: only the entries whose reply goes to one address (what ``who`` asks). One
  regular expression of the lines the kernel and conntrack print validates the whole table
  inside the regular-expression engine, without a Python object per line; the lines it does
  not accept and the lines that mention the address are then read as ``parse_table`` reads
  them, so both give the same entries and the same error on the same line (the property tests
  hold them to it).
"""

from __future__ import annotations

import gc
import ipaddress
import socket
from typing import NamedTuple

from masqctl.errors import InputError

E_LINE = "E318"

PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58}
_PORTED = frozenset(("tcp", "udp", "sctp"))
_STATEFUL = frozenset(("tcp", "sctp"))
_OTHER_PROTOCOLS = {"gre": 47, "dccp": 33, "udplite": 136}   # plus "unknown N": skipped
_FAMILIES = {"ipv4": ("2", socket.AF_INET), "ipv6": ("10", socket.AF_INET6)}
_EVENTS = frozenset(("[NEW]", "[UPDATE]", "[DESTROY]"))
_TUPLE_KEYS = frozenset(("src", "dst", "sport", "dport", "type", "code", "id", "packets", "bytes",
                         "zone", "zone-orig", "zone-reply"))
_REQUIRED_PORTED = ("src", "dst", "sport", "dport")
_REQUIRED_ICMP = ("src", "dst", "type", "code", "id")
_NUMERIC_ATTRS = frozenset(("use", "id", "delta-time", "packets", "bytes"))


class Entry(NamedTuple):
    """One tracked connection. Ports are None for ICMP (``icmp_id`` holds the original tuple's id)."""

    family: int            # 4 or 6
    proto: str             # tcp | udp | sctp | icmp | icmpv6
    timeout: int | None    # seconds left
    state: str | None      # ESTABLISHED, TIME_WAIT, … (tcp/sctp only)
    orig_src: str
    orig_dst: str
    orig_sport: int | None
    orig_dport: int | None
    reply_src: str
    reply_dst: str
    reply_sport: int | None
    reply_dport: int | None
    assured: bool
    unreplied: bool
    zone: int
    mark: int | None
    line: int              # where it was read (1-based)
    icmp_id: int | None = None

    @property
    def masqueraded(self) -> bool:
        """The reply goes to another address or port than the original source: the node
        translated the source (MASQUERADE or SNAT)."""
        return self.reply_dst != self.orig_src or self.reply_dport != self.orig_sport


class Table(NamedTuple):
    entries: list[Entry]
    duplicates: int        # entries listed more than once (collapsed)
    skipped: int           # lines of other protocols
    lines: int


class _Bad(Exception):
    pass


_ip_cache: dict[str, tuple[int, str]] = {}


def _address(text: str, family: int | None) -> tuple[int, str]:
    hit = _ip_cache.get(text)
    if hit is None:
        if ":" in text:
            try:
                packed = socket.inet_pton(socket.AF_INET6, text)
            except (OSError, ValueError):
                raise _Bad(f"{text!r} is not an IPv6 address") from None
            hit = (6, str(ipaddress.IPv6Address(packed)))     # spelled as everywhere in masqctl
        else:
            try:
                packed = socket.inet_pton(socket.AF_INET, text)
            except (OSError, ValueError):
                raise _Bad(f"{text!r} is not an IPv4 address") from None
            hit = (4, text)
        if len(_ip_cache) > 1_000_000:
            _ip_cache.clear()
        _ip_cache[text] = hit
    if family is not None and hit[0] != family:
        raise _Bad(f"{text} is not an IPv{family} address (the line says ipv{family})")
    return hit


def _check_flag(word: str) -> None:
    """A ``[FLAG]`` other than the ones read (``[ASSURED]``, ``[UNREPLIED]``) must still look like one."""
    if len(word) < 3 or word[-1] != "]" or not word[1:-1].replace("_", "").isalnum():
        raise _Bad(f"{word!r} is not a [FLAG]")


def _pair(word: str) -> tuple[str, str]:
    key, eq, value = word.partition("=")
    if not eq or not key:
        raise _Bad(f"{word!r} is neither key=value nor a [FLAG]")
    return key, value


def _after_tuples(word: str, key: str, value: str, mark, zone):
    """One ``key=value`` after both tuples (``mark=``, ``zone=``, ``use=``, …): checked, and the
    entry's ``(mark, zone)`` with it taken in."""
    if key == "src":
        raise _Bad("a third src= (an entry has two tuples)")
    if key == "mark":
        return _number(value, "mark", (1 << 32) - 1), zone
    if key == "zone":
        return mark, _number(value, "zone", 65535)
    if key in _NUMERIC_ATTRS:
        _number(value, key, 1 << 64)
    elif not key.replace("-", "").replace("_", "").isalnum():
        raise _Bad(f"{word!r} is not key=value")
    return mark, zone


def _number(text: str, what: str, high: int) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 20:
        raise _Bad(f"{what} {text!r} is not a number")
    value = int(text)
    if value > high:
        raise _Bad(f"{what} {value} is out of range (at most {high})")
    return value


def _tuple(values: dict, proto: str, which: str, family: int | None) -> tuple:
    try:
        src, dst = values["src"], values["dst"]
    except KeyError as exc:
        raise _Bad(f"the {which} tuple has no {exc.args[0]}=") from None
    fam, src = _address(src, family)
    fam2, dst = _address(dst, fam)
    if proto in _PORTED:
        try:
            sport, dport = values["sport"], values["dport"]
        except KeyError as exc:
            raise _Bad(f"the {which} tuple has no {exc.args[0]}=") from None
        return fam, src, dst, _number(sport, "sport", 65535), _number(dport, "dport", 65535), None
    for key, high in (("type", 255), ("code", 255), ("id", 65535)):
        if key not in values:
            raise _Bad(f"the {which} tuple has no {key}=")
        ident = _number(values[key], key, high)
    return fam, src, dst, None, None, ident


def parse_line(line: str, lineno: int = 0) -> Entry | None:
    """One line; None for a line that carries no entry of a kept protocol. Raises ``_Bad``."""
    words = line.split()
    if not words:
        return None
    first = words[0]
    if first[0] == "#":
        return None
    i = 0
    if first in _EVENTS:
        i = 1
        if len(words) < 2:
            raise _Bad("an event with no entry")
    family = None
    if words[i] in _FAMILIES:
        number, _af = _FAMILIES[words[i]]
        if len(words) < i + 2 or words[i + 1] != number:
            raise _Bad(f"family {words[i]} is followed by {words[i + 1] if len(words) > i + 1 else 'nothing'!r}, "
                       f"not its number {number}")
        family = 4 if number == "2" else 6
        i += 2
    if len(words) < i + 3:
        if first == "conntrack" and "entries" in words and "shown." in words[-1]:
            return None
        raise _Bad("too short for a conntrack entry (protocol, number, timeout, tuples)")
    proto, pnum = words[i], words[i + 1]
    want = PROTOCOLS.get(proto)
    if want is None:
        if first == "conntrack" and words[-1] == "shown.":
            return None     # conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.
        other = _OTHER_PROTOCOLS.get(proto)
        if other is None and proto != "unknown":
            raise _Bad(f"{proto!r} is not a protocol conntrack prints")
        n = _number(pnum, "protocol number", 255)
        if other is not None and n != other:
            raise _Bad(f"protocol {proto} has number {other}, not {n}")
        return None
    if pnum != str(want):
        raise _Bad(f"protocol {proto} has number {want}, not {pnum!r}")
    if family is not None and proto in ("icmp", "icmpv6") and (proto == "icmpv6") != (family == 6):
        raise _Bad(f"{proto} in an ipv{family} line")
    i += 2
    w = words[i]
    timeout = None
    if w.isdigit():
        timeout = _number(w, "timeout", 1 << 32)
        i += 1
    elif "=" not in w and not w.startswith("["):
        raise _Bad(f"timeout {w!r} is not a number")
    state = None
    if i < len(words):
        w = words[i]
        if "=" not in w and not w.startswith("["):
            bare = w.replace("_", "")
            if not (bare.isalnum() and bare.isupper() and bare.isascii()):
                raise _Bad(f"state {w!r} is not a connection state")
            if proto not in _STATEFUL:
                raise _Bad(f"a {proto} entry has no state, got {w!r}")
            state = w
            i += 1
    orig: dict = {}
    reply: dict = {}
    current = orig
    phase = 0          # 0 before the original tuple, 1 in it, 2 in the reply tuple, 3 attributes after it
    required = _REQUIRED_PORTED if proto in _PORTED else _REQUIRED_ICMP
    assured = unreplied = False
    zone = 0
    mark = None
    n = len(words)
    while i < n:
        w = words[i]
        i += 1
        if w[0] == "[":
            if w == "[ASSURED]":
                assured = True
            elif w == "[UNREPLIED]":
                unreplied = True
            else:
                _check_flag(w)
            continue
        key, value = _pair(w)
        if key == "src" and phase < 2:
            phase += 1
            current = orig if phase == 1 else reply
        elif phase == 0:
            raise _Bad(f"{w!r} before the original tuple (src=)")
        if phase == 3:
            mark, zone = _after_tuples(w, key, value, mark, zone)
            continue
        if key in current:
            raise _Bad(f"{key}= twice in the {'original' if phase == 1 else 'reply'} tuple")
        if key not in _TUPLE_KEYS:
            raise _Bad(f"{w!r} inside the {'original' if phase == 1 else 'reply'} tuple")
        current[key] = value
        if key[:4] == "zone":
            _number(value, key, 65535)
        if phase == 2 and all(k in reply for k in required):
            phase = 3
    if phase == 1:
        raise _Bad("the reply tuple (the second src=) is missing")
    if phase == 0:
        raise _Bad("no tuples (src= dst= …)")
    of, osrc, odst, osport, odport, ident = _tuple(orig, proto, "original", family)
    _rf, rsrc, rdst, rsport, rdport, _ident = _tuple(reply, proto, "reply", of)
    return Entry(of, proto, timeout, state, osrc, odst, osport, odport, rsrc, rdst, rsport, rdport,
                 assured, unreplied, zone, mark, lineno, ident)


_TCP_STATES = frozenset(("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
                         "TIME_WAIT", "CLOSE", "SYN_SENT2", "LISTEN"))
_SCTP_STATES = frozenset(("NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT",
                          "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT", "HEARTBEAT_ACKED"))
_FAST_PROTOS = {"tcp": ("6", _TCP_STATES), "udp": ("17", frozenset()), "sctp": ("132", _SCTP_STATES)}
_FAST_FAMILIES = {"ipv4": ("2", 4), "ipv6": ("10", 6)}
_tail_cache: dict[tuple, tuple[bool, int, int | None]] = {}


def _tail(tail: tuple) -> tuple[bool, int, int | None]:
    """(assured, zone, mark) of the words after the reply tuple; ``_Bad`` when malformed."""
    hit = _tail_cache.get(tail)
    if hit is None:
        assured = False
        zone = 0
        mark = None
        for w in tail:
            if w[0] == "[":
                if w == "[ASSURED]":
                    assured = True
                else:
                    _check_flag(w)
                continue
            key, value = _pair(w)
            mark, zone = _after_tuples(w, key, value, mark, zone)
        hit = (assured, zone, mark)
        if len(_tail_cache) > 100_000:
            _tail_cache.clear()
        _tail_cache[tail] = hit
    return hit


# Caches of the fast path, keyed by the word as written ("src=10.0.0.1", "sport=443", "431999"):
# one dictionary lookup checks a word's key and value together. A miss is checked once by the
# helpers below and remembered; a word they refuse sends the line to ``parse_line``.
_SRC: dict[str, tuple[int, str]] = {}
_DST: dict[str, tuple[int, str]] = {}
_SPORT: dict[str, int] = {}
_DPORT: dict[str, int] = {}
_TIMEOUTS: dict[str, int] = {}
_HEADS4 = {(fam, number, proto, pnum): (fam_n, proto, states, 4)
           for fam, (number, fam_n) in _FAST_FAMILIES.items()
           for proto, (pnum, states) in _FAST_PROTOS.items()}
_HEADS2 = {(proto, pnum): (None, proto, states, 2) for proto, (pnum, states) in _FAST_PROTOS.items()}
_CACHE_LIMIT = 1_000_000


def _learn_address(word: str, prefix: str, cache: dict) -> tuple[int, str] | None:
    if word[:4] != prefix:
        return None
    try:
        hit = _address(word[4:], None)
    except _Bad:
        return None
    if len(cache) > _CACHE_LIMIT:
        cache.clear()
    cache[word] = hit
    return hit


def _learn_timeout(word: str) -> int | None:
    if not word.isdigit() or not word.isascii() or len(word) > 10:
        return None
    value = int(word)
    if value > 1 << 32:
        return None
    if len(_TIMEOUTS) > _CACHE_LIMIT:
        _TIMEOUTS.clear()
    _TIMEOUTS[word] = value
    return value


def _ports() -> None:
    if not _SPORT:
        _SPORT.update((f"sport={n}", n) for n in range(65536))
        _DPORT.update((f"dport={n}", n) for n in range(65536))


def parse_table(text: str, name: str) -> Table:
    """Every entry of ``text`` (tcp/udp/sctp/icmp), duplicates collapsed. A malformed line is
    E318 naming ``name`` and the line.

    The common tcp/udp/sctp line is read inline by position (this loop runs 262,144 times on a
    full table); anything else, and any line the fast path does not accept, is read by
    ``parse_line``, which also names what is wrong.

    The cyclic garbage collector is paused meanwhile: the entries are tuples of strings and
    numbers (no cycles), and a full table allocates half a million of them, which would make
    it walk every object again and again (it took about 40 % of the time)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse_table(text, name)
    finally:
        if paused:
            gc.enable()


def _parse_table(text: str, name: str) -> Table:
    entries: list[Entry] = []
    append = entries.append
    seen: set = set()
    add = seen.add
    duplicates = 0
    counts = [0, 0]
    lines = text.splitlines()
    for entry in _read(enumerate(lines, start=1), name, counts):
        key = (entry[1], entry[14], entry[17]) + entry[4:12]   # protocol, zone, both tuples
        if key in seen:
            duplicates += 1
            continue
        add(key)
        append(entry)
    return Table(entries, duplicates, counts[1], len(lines))


def _read(numbered, name: str, counts: list[int]):
    """The entries of ``(line number, line)`` pairs, in order; ``counts`` gets the lines that
    hold none (blank, comments, summaries, other protocols) and, of them, the other protocols'."""
    _ports()
    srcs, dsts, sports, dports, timeouts = _SRC, _DST, _SPORT, _DPORT, _TIMEOUTS
    heads4, heads2, tails = _HEADS4, _HEADS2, _tail_cache
    new = tuple.__new__
    for lineno, line in numbered:
        w = line.split()
        n = len(w)
        entry = None
        if n > 10:
            h = heads4.get((w[0], w[1], w[2], w[3])) if n > 12 else None
            if h is None:
                h = heads2.get((w[0], w[1]))
            if h is not None:
                family, proto, states, k = h
                t = timeouts.get(w[k])
                if t is None:
                    t = _learn_timeout(w[k])
                j = k + 1
                state = w[j]
                if state in states:
                    j += 1
                else:
                    state = None
                a = srcs.get(w[j])
                if a is None:
                    a = _learn_address(w[j], "src=", srcs)
                b = dsts.get(w[j + 1])
                if b is None:
                    b = _learn_address(w[j + 1], "dst=", dsts)
                osp = sports.get(w[j + 2])
                odp = dports.get(w[j + 3])
                j += 4
                unreplied = w[j] == "[UNREPLIED]"
                if unreplied:
                    j += 1
                if n >= j + 4 and t is not None:
                    c = srcs.get(w[j])
                    if c is None:
                        c = _learn_address(w[j], "src=", srcs)
                    d = dsts.get(w[j + 1])
                    if d is None:
                        d = _learn_address(w[j + 1], "dst=", dsts)
                    rsp = sports.get(w[j + 2])
                    rdp = dports.get(w[j + 3])
                    if a is not None and b is not None and c is not None and d is not None and osp is not None \
                            and odp is not None and rsp is not None and rdp is not None:
                        of = a[0]
                        if b[0] == of and c[0] == of and d[0] == of and (family is None or of == family):
                            tail = tuple(w[j + 4:])
                            flags = tails.get(tail)
                            if flags is None:
                                try:
                                    flags = _tail(tail)
                                except _Bad:
                                    flags = None
                            if flags is not None:
                                entry = new(Entry, (of, proto, t, state, a[1], b[1], osp, odp, c[1], d[1], rsp,
                                                    rdp, flags[0], unreplied, flags[1], flags[2], lineno, None))
        if entry is None:
            try:
                entry = parse_line(line, lineno)
            except _Bad as exc:
                raise _line_error(exc, line, name, lineno) from None
            if entry is None:
                counts[0] += 1
                if line.strip() and not line.lstrip().startswith("#") and "shown." not in line:
                    counts[1] += 1
                continue
        yield entry


def read_line(line: str, name: str, lineno: int) -> Entry | None:
    """One line (of a ``conntrack -E`` stream, say): its entry, None for a line that holds none,
    or E318 naming ``name`` and ``lineno``."""
    try:
        return parse_line(line, lineno)
    except _Bad as exc:
        raise _line_error(exc, line, name, lineno) from None


def _line_error(exc: _Bad, line: str, name: str, lineno: int) -> InputError:
    shown = line.strip()
    shown = shown if len(shown) <= 160 else shown[:157] + "..."
    return InputError(f"{exc}: {shown!r}", input=f"{name} line {lineno}", code=E_LINE,
                      hint="give /proc/net/nf_conntrack or conntrack -L [-o extended] output")


# --------------------------------------------------------------------------- searching a table

# The lines the kernel and conntrack-tools print, as one regular expression: every field of a
# tcp, udp, sctp, icmp or icmpv6 entry in the order they are printed, numbers in range, IPv4
# addresses as inet_pton reads them, IPv6 addresses in full or shortened form, the family's
# addresses only. It accepts a subset of what ``parse_line`` accepts (a line it refuses is read
# by ``parse_line``, which accepts it or names what is wrong), so the whole table is validated
# inside the regular-expression engine, line after line, without one Python object per line.
def _numbers(high: int) -> str:
    """A decimal 0..high without a leading zero, as a regular expression that never backtracks:
    a tree on the digits of ``high``, each branch told apart by its first digit, possessive
    quantifiers (what follows a number in a conntrack line is never a digit)."""
    top = str(high)
    size = len(top)

    def digits(most: int) -> str:
        return f"[0-9]{{0,{most}}}+" if most > 0 else ""

    def after(i: int) -> str:        # top[:i] matched; what may follow, if anything
        if i == size:
            return ""
        d = int(top[i])
        alts = []
        if d > 0:
            alts.append(("0" if d == 1 else f"[0-{d - 1}]") + digits(size - i - 1))
        alts.append(f"{d}{after(i + 1)}")
        if d < 9 and size - i - 2 >= 0:
            alts.append(("9" if d == 8 else f"[{d + 1}-9]") + digits(size - i - 2))
        return "(?:" + "|".join(alts) + ")?+"

    d = int(top[0])
    alts = []
    if d > 1:
        alts.append(("1" if d == 2 else f"[1-{d - 1}]") + digits(size - 1))
    alts.append(f"{d}{after(1)}")
    if d < 9 and size >= 2:
        alts.append(("9" if d == 8 else f"[{d + 1}-9]") + digits(size - 2))
    return "(?:" + "|".join(alts) + "|0)"


def _grammar() -> str:
    octet = _numbers(255)
    v4 = rf"{octet}\.{octet}\.{octet}\.{octet}"
    h = "[0-9a-fA-F]{1,4}"
    v6 = ("(?:" + "|".join([
        rf"(?:{h}:){{7}}{h}", rf"(?:{h}:){{1,7}}:", rf"(?:{h}:){{1,6}}:{h}", rf"(?:{h}:){{1,5}}(?::{h}){{1,2}}",
        rf"(?:{h}:){{1,4}}(?::{h}){{1,3}}", rf"(?:{h}:){{1,3}}(?::{h}){{1,4}}", rf"(?:{h}:){{1,2}}(?::{h}){{1,5}}",
        rf"{h}:(?::{h}){{1,6}}", rf":(?::{h}){{1,7}}", "::"]) + ")")
    port, n8, n32, n64 = _numbers(65535), _numbers(255), _numbers((1 << 32) - 1), "[0-9]{1,19}+"
    acct = f"(?:packets={n64} bytes={n64} )?"
    state = "[A-Z][A-Z0-9_]*+"       # as parse_line takes a state: upper case, digits, _
    tail = (rf"(?:\[(?:ASSURED|OFFLOAD|HW_OFFLOAD)\] )?(?:mark={n32} )?(?:secctx=[!-~]++ )?(?:zone={port} )?"
            rf"(?:delta-time={n64} )?(?:use={n64})? *+")

    def body(addr: str, icmp: str) -> str:
        one = rf"src={addr} dst={addr} sport={port} dport={port} {acct}"       # written out twice: faster
        ported = rf"{one}(?:\[UNREPLIED\] )?{one}"                             # than a {{2}} repeat
        one = rf"src={addr} dst={addr} type={n8} code={n8} id={port} {acct}"
        pinged = rf"{one}(?:\[UNREPLIED\] )?{one}"
        return (rf"(?:(?:tcp +6 +{n32} +{state}|udp +17 +{n32}|sctp +132 +{n32} +{state}) +{ported}"
                rf"|{icmp} +{n32} +{pinged}){tail}")

    return rf"(?:(?:ipv4 +2 +)?{body(v4, 'icmp +1')}|(?:ipv6 +10 +)?{body(v6, 'icmpv6 +58')})(?=\n|\Z)"


_FAST: dict = {}     # str or bytes: (a newline before a line it does not accept, an IPv6 dst=)


def _fast(kind: type):
    hit = _FAST.get(kind)
    if hit is None:
        import re

        pats = (rf"\n(?!{_grammar()})", r"dst=([0-9A-Fa-f.]*:[0-9A-Fa-f:.]*) ")
        hit = _FAST[kind] = tuple(re.compile(p if kind is str else p.encode(), re.ASCII) for p in pats)
    return hit


class Found(NamedTuple):
    """What ``search_table`` found: the entries that answer the question, in the order listed,
    the same connection listed twice kept once."""

    entries: list[Entry]
    listed: int            # lines that hold an entry (each one validated)
    duplicates: int        # found entries listed more than once (collapsed)
    skipped: int           # lines of other protocols
    lines: int


class Question(NamedTuple):
    """The entries wanted: the reply goes to ``reply_dst`` (as masqctl spells an address:
    ``str(ipaddress.ip_address(…))``) and port ``reply_dport`` when given; with ``peer``, the
    original destination or the reply's source is ``peer``."""

    reply_dst: str
    reply_dport: int | None = None
    peer: str | None = None

    def wants(self, e: Entry) -> bool:
        return (e.reply_dst == self.reply_dst and (self.reply_dport is None or e.reply_dport == self.reply_dport)
                and (self.peer is None or e.orig_dst == self.peer or e.reply_src == self.peer))


# splitlines() also breaks lines at these; a table that has one is read line by line as
# parse_table reads it, so that line numbers are counted the same way.
_OTHER_BREAKS = frozenset("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def search_table(text: str | bytes, name: str, question: Question) -> Found:
    """The entries of ``text`` that ``question`` wants, every line validated as ``parse_table``
    validates it (the same E318 on the first malformed line).

    One regular expression of the lines conntrack prints checks the whole table inside the
    regular-expression engine (no Python object per line); then only the lines it did not
    accept (other protocols, comments, unusual fields, errors) and the lines that mention the
    reply's address (and port) are read into entries.

    ``text`` may be the bytes of a file that is ASCII (then nothing is decoded but those lines);
    other bytes are decoded first."""
    if isinstance(text, (bytes, bytearray)) and not text.isascii():
        text = bytes(text).decode("utf-8")
    paused = gc.isenabled()
    gc.disable()
    try:
        return _search(text, name, question)
    finally:
        if paused:
            gc.enable()


class _Tally:
    """The lines a search reads, in order: each parsed (a malformed one is the error naming it),
    the entries that answer the question kept, the same connection listed twice kept once."""

    def __init__(self, question: "Question", name: str):
        self.wants, self.name = question.wants, name
        self.entries: list[Entry] = []
        self.seen: set = set()
        self.duplicates = self.skipped = self.not_entries = 0

    def take(self, line: str, lineno: int) -> None:
        try:
            entry = parse_line(line, lineno)
        except _Bad as exc:
            raise _line_error(exc, line, self.name, lineno) from None
        if entry is None:
            self.not_entries += 1
            self.skipped += bool(line.strip() and not line.lstrip().startswith("#") and "shown." not in line)
        elif self.wants(entry):
            key = (entry[1], entry[14], entry[17]) + entry[4:12]
            if key in self.seen:
                self.duplicates += 1
            else:
                self.seen.add(key)
                self.entries.append(entry)

    def found(self, lines: int) -> "Found":
        return Found(self.entries, lines - self.not_entries, self.duplicates, self.skipped, lines)


def search_lines(text: str | bytes, name: str, question: Question) -> Found:
    """``search_table`` the plain way, every line through ``parse_line``: the reference the
    fast path is tested against."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    tally = _Tally(question, name)
    lineno = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        tally.take(line, lineno)
    return tally.found(lineno)


def _spellings(text, address: str, pattern) -> list:
    """How ``address`` (IPv6) is written after ``dst=`` in ``text``: the kernel's full form,
    conntrack's short one, or any other."""
    known: dict = {}
    for word in pattern.findall(text):
        if word not in known:
            try:
                known[word] = _address(word if isinstance(word, str) else word.decode(), 6)[1] == address
            except _Bad:
                known[word] = False
    return [w for w, same in known.items() if same]


def _search(text, name: str, q: Question) -> Found:
    import re

    raw = not isinstance(text, str)
    nl = b"\n" if raw else "\n"
    bad, v6dst = _fast(bytes if raw else str)
    n = len(text)
    head = text.find(nl)
    starts = [0] if bad.match(nl + (text[:head + 1] if head >= 0 else text)) else []
    starts.extend(m.end() for m in bad.finditer(text))
    flagged: list[tuple[int, str]] = []
    for start in starts:
        if start >= n:
            continue            # after the last newline: no line
        end = text.find(nl, start)
        line = text[start:end] if end >= 0 else text[start:]
        line = line.decode() if raw else line
        if not _OTHER_BREAKS.isdisjoint(line):
            return search_lines(text, name, q)
        flagged.append((start, line))
    spelled = [q.reply_dst.encode() if raw else q.reply_dst] if ":" not in q.reply_dst else \
        _spellings(text, q.reply_dst, v6dst)
    found: list[tuple[int, str]] = []
    if spelled:
        # In a line the expression accepted, an address is followed by one space, and the reply
        # tuple's dst= by its sport= and dport=.
        alts = "|".join(re.escape(w.decode() if raw else w) for w in spelled)
        port = f"sport=[0-9]+ dport={q.reply_dport} " if q.reply_dport is not None else ""
        needle = f"dst=(?:{alts}) {port}"
        peer = None
        if q.peer is not None and ":" not in q.peer and q.reply_dport is None:
            peer = (f"dst={q.peer} ", f"src={q.peer} ")
        at = 0
        for m in re.finditer(needle.encode() if raw else needle, text, re.ASCII):
            if m.start() < at:
                continue
            start = text.rfind(nl, 0, m.start()) + 1
            end = text.find(nl, m.end())
            at = end if end >= 0 else n
            line = text[start:at].decode() if raw else text[start:at]
            if peer is not None and peer[0] not in line and peer[1] not in line:
                continue
            found.append((start, line))
    tally = _Tally(q, name)
    lineno, counted, last = 1, 0, -1
    for start, line in sorted(flagged + found):
        if start == last:
            continue
        last = start
        lineno += text.count(nl, counted, start)
        counted = start
        tally.take(line, lineno)
    return tally.found(lineno - 1 + text.count(nl, counted) + (1 if n and text[-1:] != nl else 0))


__all__ = ["E_LINE", "Entry", "Found", "PROTOCOLS", "Question", "Table", "parse_line", "parse_table", "read_line", "search_lines",
           "search_table"]
