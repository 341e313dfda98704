"""Compare iptables rules by meaning, not by text.

``iptables-save`` prints a rule in its own canonical order (``-d X -m comment ...``), adds
``/32`` to host addresses, and keeps target options together, while agents write them in
other orders (upstream even writes ``-j MASQUERADE --random-fully -p tcp -m statistic ...
--to-ports X``). ``rule_key`` turns the argument words of a rule into a key that is equal
for two spellings of the same rule.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from masqctl.netfilter.vocabulary import BASIC_OPTIONS, MODULE_OPTIONS, proto_name

_BASIC = {**BASIC_OPTIONS, "-f": "-f", "--fragment": "-f"}


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


def rule_key(args: list[str]) -> RuleKey:
    """The meaning of one rule's argument words (without ``-A CHAIN``)."""
    basic = []
    groups: list[list] = []   # [negated, name, options list]
    target: list | None = None
    negate = False
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
                if word in MODULE_OPTIONS.get(g[1], ()):
                    owner = g
                    break
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
    matches = tuple(sorted((g[0], g[1], tuple(sorted(g[2]))) for g in groups
                           if not (g[1] in ("tcp", "udp", "sctp") and not g[2])))
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
