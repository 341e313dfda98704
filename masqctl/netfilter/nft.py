"""An nftables ruleset as plain values: ``nft -j list ruleset`` (primary) and ``nft list ruleset``.

:func:`~masqctl.netfilter.nftread.parse_ruleset` takes either form and gives a :class:`Ruleset`: tables in listing order
(which is creation order), each with its chains (base chains carry type, hook, priority and
policy), rules and named sets and maps. Rules keep their statements in the JSON form of
libnftables (``{"match": …}``, ``{"jump": …}``, ``{"masquerade": …}``); the text form is
translated into the same statements by :mod:`~masqctl.netfilter.nfttext`, and what that reader
does not know stays in the rule as ``{"unknown": TEXT}``, so the evaluator names it instead of
guessing.

A ruleset that cannot be read is an :class:`NftError` naming the place: a JSON path
(``nftables[12].rule.expr[3]``) or a line of the text.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

#: named priorities (nft(8) "PRIORITY"), per hook for the ip/ip6/inet families
PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
NAT_HOOKS = ("prerouting", "output", "postrouting", "input")
FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")


class NftError(ValueError):
    """A ruleset that cannot be read. ``where``: ``line N`` or a JSON path; ``kind``: what failed."""

    def __init__(self, message: str, where: str | None = None, kind: str = "structure", text: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.kind = kind          # json | structure | syntax | empty
        self.text = text


@dataclass
class NftRule:
    family: str
    table: str
    chain: str
    index: int                       # 1-based within the chain
    exprs: list                      # statements, libnftables JSON form
    text: str                        # as `nft list ruleset` would print it (near enough to recognise)
    where: str                       # "line N" or "nftables[K]"
    lineno: int | None = None
    handle: int | None = None
    comment: str | None = None


@dataclass
class NftChain:
    family: str
    table: str
    name: str
    type: str | None = None          # filter | nat | route (None: a regular chain)
    hook: str | None = None
    prio: int | None = None
    prio_text: str | None = None     # as written (`srcnat`, `dstnat - 10`, `100`)
    policy: str | None = None        # accept | drop (base chains)
    rules: list[NftRule] = field(default_factory=list)
    where: str = ""
    lineno: int | None = None
    handle: int | None = None
    seq: int = 0                     # listing position in the whole ruleset

    @property
    def base(self) -> bool:
        return self.hook is not None

    def label(self) -> str:
        return f"{self.family} {self.table} {self.name}"


@dataclass
class NftSet:
    family: str
    table: str
    name: str
    key_types: list[str]             # ["ipv4_addr", "inet_proto", "inet_service"]
    data_type: str | None = None     # maps: "verdict", "ipv4_addr", …; None for a set
    flags: list[str] = field(default_factory=list)
    elements: list = field(default_factory=list)   # [(key, data or None)], key as read (see norm_element)
    where: str = ""
    unreadable: str | None = None    # an element masqctl cannot compare (the set's lookups are unknown)

    @property
    def dynamic(self) -> bool:
        return "dynamic" in self.flags or "timeout" in self.flags


@dataclass
class NftTable:
    family: str
    name: str
    chains: dict[str, NftChain] = field(default_factory=dict)
    sets: dict[str, NftSet] = field(default_factory=dict)
    where: str = ""
    seq: int = 0
    handle: int | None = None
    flags: list[str] = field(default_factory=list)

    def label(self) -> str:
        return f"{self.family} {self.name}"


@dataclass
class Ruleset:
    tables: list[NftTable]
    source: str
    form: str                        # json | text
    version: str | None = None

    def table(self, family: str, name: str) -> NftTable | None:
        for t in self.tables:
            if t.family == family and t.name == name:
                return t
        return None

    def base_chains(self) -> list[NftChain]:
        return [c for t in self.tables for c in t.chains.values() if c.base]

    def nat_chains(self) -> list[NftChain]:
        return [c for c in self.base_chains() if c.type == "nat" and c.hook in NAT_HOOKS]

    def rule_count(self) -> int:
        return sum(len(c.rules) for t in self.tables for c in t.chains.values())


# --- values ------------------------------------------------------------------------------------------

def parse_priority(value, where: str) -> int:
    """A base chain's priority: an integer, a name, or ``NAME +|- N``."""
    if isinstance(value, bool):
        raise NftError(f"priority {value!r} is not a number or a priority name", where)
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise NftError(f"priority {value!r} is not a number or a priority name", where)
    text = value.strip()
    for op in ("+", "-"):
        name, sep, num = text.partition(f" {op} ")
        if sep:
            base = parse_priority(name, where)
            if not num.strip().isdigit():
                raise NftError(f"priority {value!r}: {num!r} is not a number", where)
            return base + int(num) if op == "+" else base - int(num)
    if text in PRIORITY_NAMES:
        return PRIORITY_NAMES[text]
    try:
        return int(text, 0)
    except ValueError:
        raise NftError(f"priority {value!r} is not a number or a priority name "
                       f"({', '.join(PRIORITY_NAMES)})", where) from None


def norm_element(e, where: str):
    """One set element (or one component of a concatenation) as a comparable value:
    ``("ip", addr)``, ``("net", network)``, ``("range", lo, hi)``, ``("int", n)``, ``("sym", s)``,
    or a tuple of those for a concatenation."""
    if isinstance(e, bool):
        raise NftError(f"element {e!r} is not a value", where)
    if isinstance(e, int):
        return ("int", e)
    if isinstance(e, str):
        return _norm_str(e, where)
    if isinstance(e, dict) and len(e) >= 1:
        if "elem" in e and isinstance(e["elem"], dict) and "val" in e["elem"]:
            return norm_element(e["elem"]["val"], where)
        if "prefix" in e and isinstance(e["prefix"], dict):
            p = e["prefix"]
            try:
                return ("net", ipaddress.ip_network(f"{p.get('addr')}/{p.get('len')}", strict=False))
            except (ValueError, TypeError):
                raise NftError(f"prefix {p!r} is not an address and a length", where) from None
        if "range" in e and isinstance(e["range"], list) and len(e["range"]) == 2:
            lo, hi = (norm_element(x, where) for x in e["range"])
            if lo[0] != hi[0] or lo[0] not in ("ip", "int"):
                raise NftError(f"range {e['range']!r} mixes kinds of value", where)
            return ("range", lo, hi)
        if "concat" in e and isinstance(e["concat"], list) and e["concat"]:
            return tuple(norm_element(x, where) for x in e["concat"])
    raise NftError(f"element {json.dumps(e)[:80]} is not a value masqctl can read", where)


def _norm_str(s: str, where: str):
    if "/" in s:
        try:
            return ("net", ipaddress.ip_network(s, strict=False))
        except ValueError:
            pass
    try:
        return ("ip", ipaddress.ip_address(s))
    except ValueError:
        pass
    if s.startswith("0x"):
        try:
            return ("int", int(s, 16))
        except ValueError:
            pass
    if s.isdigit():
        return ("int", int(s))
    if "-" in s:
        a, _, b = s.partition("-")
        try:
            lo, hi = _norm_str(a, where), _norm_str(b, where)
        except NftError:
            lo = hi = None
        if lo is not None and lo[0] == hi[0] and lo[0] in ("ip", "int"):
            return ("range", lo, hi)
    if not s:
        raise NftError("an empty value", where)
    return ("sym", s)


# --- JSON --------------------------------------------------------------------------------------------

def parse_json(text: str, source: str) -> Ruleset:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise NftError(f"not JSON: {getattr(exc, 'msg', str(exc))}", f"line {line}" if line else None, "json") from None
    except RecursionError:
        raise NftError("not JSON: nested too deeply", None, "json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
        raise NftError('not `nft -j list ruleset` output: the document has no "nftables" list', "(top)", "json")
    rs = Ruleset([], source, "json")
    tables: dict[tuple, NftTable] = {}
    seq = 0
    pending_rules: list[tuple[str, dict]] = []
    for i, item in enumerate(doc["nftables"]):
        where = f"nftables[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise NftError("each entry must be an object with one key (table, chain, rule, set, map, …)", where)
        (kind, body), = item.items()
        if kind == "metainfo":
            if isinstance(body, dict):
                rs.version = str(body.get("version")) if body.get("version") is not None else None
            continue
        if not isinstance(body, dict):
            raise NftError(f"{kind}: an object expected", f"{where}.{kind}")
        where = f"{where}.{kind}"
        if kind == "table":
            fam, name = _family(body, where), _name(body, "name", where)
            t = NftTable(fam, name, where=where, seq=len(tables), handle=_int_or_none(body.get("handle")),
                         flags=_strings(body.get("flags")))
            if (fam, name) in tables:
                raise NftError(f"table {fam} {name} listed twice", where)
            tables[(fam, name)] = t
            rs.tables.append(t)
        elif kind == "chain":
            t = _table_of(tables, body, where)
            name = _name(body, "name", where)
            c = NftChain(t.family, t.name, name, where=where, handle=_int_or_none(body.get("handle")), seq=seq)
            seq += 1
            if "hook" in body:
                c.hook = _name(body, "hook", where)
                c.type = _name(body, "type", where) if "type" in body else "filter"
                if "prio" not in body:
                    raise NftError(f"base chain {name} has no prio", where)
                c.prio = parse_priority(body["prio"], f"{where}.prio")
                c.prio_text = str(body["prio"])
                c.policy = str(body.get("policy", "accept"))
                if c.policy not in ("accept", "drop"):
                    raise NftError(f"base chain {name}: policy {c.policy!r} (accept or drop)", f"{where}.policy")
            if name in t.chains:
                raise NftError(f"chain {name} listed twice in table {t.label()}", where)
            t.chains[name] = c
        elif kind == "rule":
            pending_rules.append((where, body))
        elif kind in ("set", "map"):
            t = _table_of(tables, body, where)
            s = _set_of(t, body, kind, where)
            t.sets[s.name] = s
        elif kind in ("element",):
            t = _table_of(tables, body, where)
            s = t.sets.get(_name(body, "name", where))
            if s is None:
                raise NftError(f"element of set {body.get('name')!r} that is not listed", where)
            _add_elements(s, body.get("elem"), f"{where}.elem")
        else:
            continue   # counters, quotas, ct helpers, flowtables, limits: nothing nat decides on
    for where, body in pending_rules:
        t = _table_of(tables, body, where)
        cname = _name(body, "chain", where)
        c = t.chains.get(cname)
        if c is None:
            raise NftError(f"rule of chain {cname!r} that is not listed in table {t.label()}", where)
        exprs = body.get("expr")
        if not isinstance(exprs, list) or not all(isinstance(e, dict) for e in exprs):
            raise NftError("rule expr must be a list of statements (objects)", f"{where}.expr")
        from masqctl.netfilter.nftshow import show_rule   # one printer for both forms
        rule = NftRule(t.family, t.name, cname, len(c.rules) + 1, exprs, "", where,
                       handle=_int_or_none(body.get("handle")),
                       comment=body.get("comment") if isinstance(body.get("comment"), str) else None)
        rule.text = show_rule(rule)
        c.rules.append(rule)
    return rs


def _family(body: dict, where: str) -> str:
    fam = body.get("family")
    if fam not in FAMILIES:
        raise NftError(f"family {fam!r} (one of {', '.join(FAMILIES)})", f"{where}.family")
    return fam


def _name(body: dict, key: str, where: str) -> str:
    v = body.get(key)
    if not isinstance(v, str) or not v:
        raise NftError(f"{key} {v!r}: a non-empty string expected", f"{where}.{key}")
    return v


def _int_or_none(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _strings(v) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [x for x in v if isinstance(x, str)]
    return []


def _table_of(tables: dict, body: dict, where: str) -> NftTable:
    fam, name = _family(body, where), _name(body, "table", where)
    t = tables.get((fam, name))
    if t is None:
        raise NftError(f"table {fam} {name} is not listed before its contents", where)
    return t


def _set_of(t: NftTable, body: dict, kind: str, where: str) -> NftSet:
    name = _name(body, "name", where)
    typ = body.get("type")
    if isinstance(typ, str):
        key_types = [typ]
    elif isinstance(typ, list) and typ and all(isinstance(x, str) for x in typ):
        key_types = list(typ)
    elif isinstance(typ, dict) and "typeof" in typ:
        key_types = ["typeof"]
    else:
        raise NftError(f"{kind} {name}: type {typ!r} is not a type name or a list of them", f"{where}.type")
    data = None
    if kind == "map":
        data = body.get("map")
        if isinstance(data, list):
            data = " . ".join(str(x) for x in data)
        if not isinstance(data, str):
            raise NftError(f"map {name}: its data type {data!r} is not given", f"{where}.map")
    s = NftSet(t.family, t.name, name, key_types, data, _strings(body.get("flags")), where=where)
    if name in t.sets:
        raise NftError(f"{kind} {name} listed twice in table {t.label()}", where)
    _add_elements(s, body.get("elem"), f"{where}.elem")
    return s


def _add_elements(s: NftSet, elems, where: str) -> None:
    if elems is None:
        return
    if not isinstance(elems, list):
        raise NftError("elem must be a list", where)
    for k, e in enumerate(elems):
        w = f"{where}[{k}]"
        if s.data_type is not None:
            if not (isinstance(e, list) and len(e) == 2):
                raise NftError(f"map {s.name}: each element is [key, value]", w)
            key, data = e
            s.elements.append((_element(s, key, w), data))
        else:
            s.elements.append((_element(s, e, w), None))


def _element(s: NftSet, e, where: str):
    try:
        return norm_element(e, where)
    except NftError as exc:
        if s.unreadable is None:
            s.unreadable = f"{exc.message} ({where})"
        return None
