"""Compare iptables rules by meaning, not by text.

``iptables-save`` prints a rule in its own canonical order (``-d X -m comment ...``), adds
``/32`` to host addresses, and keeps target options together, while agents write them in
other orders (upstream even writes ``-j MASQUERADE --random-fully -p tcp -m statistic ...
--to-ports X``). ``rule_key`` turns the argument words of a rule into a key that is equal
for two spellings of the same rule.

Protocol matches may be implicit: in ``-p udp --dport 53`` no ``-m udp`` is written, and
iptables loads the match named after the protocol when it meets an option no loaded match or
target knows (``iptables-save`` then prints ``-p udp -m udp --dport 53``). ``rule_key`` does
the same, so both spellings get one key. Protocol matches of one name are merged (the nft
backend prints ``-m tcp --dport 1 -m tcp --sport 2`` as one ``-m tcp``; legacy keeps two),
and their values are normalised the way iptables prints them (``--syn``, ``--tcp-flags``
lists, ``53:53``, open port ranges, ``--destination-port``).
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from masqctl.netfilter.vocabulary import BASIC_OPTIONS, MODULE_OPTIONS, proto_name

_BASIC = {**BASIC_OPTIONS, "-f": "-f", "--fragment": "-f"}

# The match iptables loads by itself for ``-p PROTO`` (libxtables names ipv6-icmp's "icmp6").
PROTOCOL_MATCHES = {"tcp": "tcp", "udp": "udp", "sctp": "sctp", "icmp": "icmp", "ipv6-icmp": "icmp6"}
# Options of every match and target module masqctl knows, the protocol matches included.
MATCH_OPTIONS = {**MODULE_OPTIONS, "icmp": {"--icmp-type"}, "icmp6": {"--icmpv6-type"}}
_PORT_ALIASES = {"--destination-port": "--dport", "--source-port": "--sport"}
_TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")   # the order iptables prints them in


def implicit_match(protocol: str | None, option: str) -> str | None:
    """The match iptables loads implicitly for ``option`` in a rule with ``-p protocol`` when no
    match or target already given knows the option; None if there is none. ``protocol`` is a
    name or number as written (``udp``, ``17``, ``icmpv6``). iptables does this after ``! -p``
    too (the nft backend keeps ``! -p udp -m udp --dport 53``, a rule that never matches; the
    legacy kernel refuses it)."""
    if not protocol:
        return None
    module = PROTOCOL_MATCHES.get(proto_name(protocol))
    if module is None or option not in MATCH_OPTIONS[module]:
        return None
    return module


class RuleKey(NamedTuple):
    basic: tuple        # ((negated, option, value), ...) sorted
    matches: tuple      # ((negated_module?, module, ((negated, option, values), ...)), ...) sorted
    target: tuple       # (kind "-j"/"-g"/"", name, ((option, values), ...) sorted)


class RuleSyntaxError(ValueError):
    pass


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return value


def _probability(text: str) -> str:
    """statistic stores the probability as a 31-bit fraction and prints it with 11 decimals."""
    try:
        return "%.11f" % (round(float(text) * 0x80000000) / 0x80000000)
    except ValueError:
        return text


def _tcp_flags(text: str) -> str:
    names = {f.upper() for f in text.split(",") if f}
    if "ALL" in names:
        names = set(_TCP_FLAGS)
    names.discard("NONE")
    return ",".join(f for f in _TCP_FLAGS if f in names) or "NONE"


def _ports(text: str) -> str:
    """``53:53`` → ``53``, ``1000:`` → ``1000:65535``, ``:80`` → ``0:80`` (as iptables prints them)."""
    if ":" not in text:
        return text
    lo, _, hi = text.partition(":")
    lo, hi = lo or "0", hi or "65535"
    return lo if lo == hi else f"{lo}:{hi}"


def _protocol_option(word: str, vals: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """One option of a tcp/udp/sctp/icmp match as iptables prints it back."""
    word = _PORT_ALIASES.get(word, word)
    if word == "--syn":
        return "--tcp-flags", ("FIN,SYN,RST,ACK", "SYN")
    if word == "--tcp-flags" and len(vals) == 2:
        return word, (_tcp_flags(vals[0]), _tcp_flags(vals[1]))
    if word in ("--dport", "--sport") and len(vals) == 1:
        return word, (_ports(vals[0]),)
    return word, vals


def _match_key(groups: list[list]) -> tuple:
    """The sorted matches; protocol matches of one name merged, empty ones dropped."""
    merged: dict[str, list] = {}
    out = []
    for neg, name, opts in groups:
        if name in PROTOCOL_MATCHES.values():
            if not opts:
                continue          # "-p tcp -m tcp" means "-p tcp"
            if not neg:
                merged.setdefault(name, []).extend((o[0], *_protocol_option(o[1], o[2])) for o in opts)
                continue
        out.append((neg, name, tuple(sorted(opts))))
    out += [(False, name, tuple(sorted(opts))) for name, opts in merged.items()]
    return tuple(sorted(out))


def rule_key(args: list[str]) -> RuleKey:
    """The meaning of one rule's argument words (without ``-A CHAIN``)."""
    basic = []
    groups: list[list] = []   # [negated, name, options list]
    target: list | None = None
    negate = False
    protocol: str | None = None   # the -p value: its match may be loaded implicitly
    i = 0
    n = len(args)

    def values_from(j: int) -> tuple[tuple[str, ...], int]:
        vals = []
        while j < n and not args[j].startswith("-") and args[j] != "!":
            vals.append(args[j])
            j += 1
        # option values that look like negative numbers or ranges are rare; accept "-" tails
        return tuple(vals), j

    while i < n:
        word = args[i]
        i += 1
        if word == "!":
            negate = True
            continue
        if word in _BASIC:
            if i >= n:
                raise RuleSyntaxError(f"option {word} needs a value")
            opt = _BASIC[word]
            if opt == "-f":
                basic.append((negate, opt, ""))
            else:
                value = args[i]
                i += 1
                if opt in ("-s", "-d"):
                    value = _address(value)
                    if value in ("0.0.0.0/0", "::/0") and not negate:
                        continue  # "any": iptables-save omits it
                elif opt == "-p":
                    value = proto_name(value)
                    protocol = value   # iptables loads its match even after "! -p" (the kernel may refuse it)
                basic.append((negate, opt, value))
            negate = False
            continue
        if word in ("-m", "--match"):
            if i >= n:
                raise RuleSyntaxError("-m needs a module name")
            groups.append([negate, args[i], []])
            i += 1
            negate = False
            continue
        if word in ("-j", "--jump", "-g", "--goto"):
            if i >= n:
                raise RuleSyntaxError(f"{word} needs a target")
            target = ["-g" if word in ("-g", "--goto") else "-j", args[i], []]
            i += 1
            continue
        if word in ("-c", "--set-counters"):
            i += 2
            continue
        if word.startswith("--"):
            vals, i = values_from(i)
            owner = None
            candidates = ([target] if target else []) + list(reversed(groups))
            for g in candidates:
                if word in MATCH_OPTIONS.get(g[1], ()):
                    owner = g
                    break
            if owner is None:
                implicit = implicit_match(protocol, word)
                if implicit is not None:
                    owner = [False, implicit, []]
                    groups.append(owner)
                    protocol = None   # iptables loads the protocol's match once
            if owner is None:
                owner = target if target is not None and not groups else (groups[-1] if groups else target)
            if owner is None:
                raise RuleSyntaxError(f"option {word} outside any match or target")
            if word == "--probability" and len(vals) == 1:
                vals = (_probability(vals[0]),)
            if owner is target:
                owner[2].append((word, vals))
            else:
                owner[2].append((negate, word, vals))
            negate = False
            continue
        raise RuleSyntaxError(f"unexpected word {word!r}")
    matches = _match_key(groups)
    tgt = (target[0], target[1], tuple(sorted(target[2]))) if target else ("", "", ())
    return RuleKey(tuple(sorted(basic)), matches, tgt)


def is_masq_jump(args: list[str], chain: str) -> bool:
    """True for a POSTROUTING rule that sends non-LOCAL destinations to ``chain`` (any comment)."""
    try:
        key = rule_key(args)
    except RuleSyntaxError:
        return False
    if key.target[:2] != ("-j", chain) or key.basic:
        return False
    others = [m for m in key.matches if m[1] != "comment"]
    return others == [(False, "addrtype", ((True, "--dst-type", ("LOCAL",)),))]
