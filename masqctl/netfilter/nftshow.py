"""Print nftables statements (libnftables JSON form) as `nft list ruleset` writes them, near
enough that a reader recognises the rule in their own listing. Used for the trace and for rules
read from JSON; a rule read from text keeps its own text."""

from __future__ import annotations

import json

_VERDICTS = ("accept", "drop", "return", "continue", "queue")


def show_rule(rule) -> str:
    parts = [show_stmt(s) for s in rule.exprs]
    if rule.comment:
        parts.append(f'comment "{rule.comment}"')
    return " ".join(p for p in parts if p)


def show_stmt(s: dict) -> str:
    if not isinstance(s, dict) or len(s) != 1:
        return _raw(s)
    (k, v), = s.items()
    try:
        if k == "match":
            op = v.get("op", "==")
            left, right = show_expr(v.get("left")), show_expr(v.get("right"))
            if op == "in" or (op == "==" and not (isinstance(v.get("left"), dict) and
                                                  set(v["left"]) & {"&", "|", "^"})):
                return f"{left} {right}"
            return f"{left} {op} {right}"
        if k in _VERDICTS:
            return k
        if k in ("jump", "goto"):
            return f"{k} {v.get('target')}"
        if k == "counter":
            return "counter" if not isinstance(v, dict) else f"counter packets {v.get('packets', 0)} bytes {v.get('bytes', 0)}"
        if k == "log":
            return "log" + (f' prefix "{v.get("prefix")}"' if isinstance(v, dict) and v.get("prefix") else "")
        if k == "reject":
            return "reject"
        if k == "masquerade":
            return "masquerade" + _nat_tail(v)
        if k in ("snat", "dnat"):
            return f"{k} to {_nat_to(v)}" + _flags(v)
        if k == "redirect":
            return "redirect" + _nat_tail(v)
        if k == "mangle":
            return f"{show_expr(v.get('key'))} set {show_expr(v.get('value'))}"
        if k == "vmap":
            return f"{show_expr(v.get('key'))} vmap {show_expr(v.get('data'))}"
        if k == "set":
            return f"{v.get('op')} {v.get('set')} {{ {show_expr(v.get('elem'))} }}"
        if k == "notrack":
            return "notrack"
        if k == "xt":
            return f"xt {v.get('type', '')} {v.get('name', '')}".strip()
        if k == "unknown":
            return str(v)
        if k == "limit":
            return f"limit rate {v.get('rate')}/{v.get('per')}"
    except AttributeError:
        pass
    return _raw(s)


def _nat_tail(v) -> str:
    if not isinstance(v, dict):
        return ""
    port = v.get("port")
    return (f" to :{show_expr(port)}" if port is not None else "") + _flags(v)


def _flags(v) -> str:
    if not isinstance(v, dict) or not v.get("flags"):
        return ""
    f = v["flags"]
    return " " + (",".join(str(x) for x in f) if isinstance(f, list) else str(f))


def _nat_to(v) -> str:
    if not isinstance(v, dict):
        return "?"
    addr = v.get("addr")
    port = v.get("port")
    a = show_expr(addr) if addr is not None else ""
    if port is not None:
        host = f"[{a}]" if ":" in a else a
        return f"{host}:{show_expr(port)}"
    return a


def show_expr(e) -> str:
    if isinstance(e, bool):
        return str(e).lower()
    if isinstance(e, (int, str)):
        return str(e)
    if isinstance(e, list):
        return ",".join(show_expr(x) for x in e)
    if not isinstance(e, dict) or len(e) != 1:
        return _raw(e)
    (k, v), = e.items()
    try:
        if k == "payload":
            return f"{v.get('protocol')} {v.get('field')}"
        if k == "meta":
            return f"meta {v.get('key')}"
        if k == "ct":
            return f"ct {v.get('dir') + ' ' if v.get('dir') else ''}{v.get('key')}"
        if k == "fib":
            flags = v.get("flags") or []
            return f"fib {' . '.join(flags if isinstance(flags, list) else [flags])} {v.get('result')}"
        if k == "prefix":
            return f"{v.get('addr')}/{v.get('len')}"
        if k == "range":
            return f"{show_expr(v[0])}-{show_expr(v[1])}"
        if k == "concat":
            return " . ".join(show_expr(x) for x in v)
        if k == "set":
            items = v if isinstance(v, list) else [v]
            return "{ " + ", ".join(_show_item(x) for x in items) + " }"
        if k in ("&", "|", "^", "<<", ">>"):
            return f"{show_expr(v[0])} {k} {show_expr(v[1])}"
        if k == "numgen":
            return f"numgen {v.get('mode')} mod {v.get('mod')}" + (f" offset {v['offset']}" if v.get("offset") else "")
        if k == "elem":
            return show_expr(v.get("val"))
        if k in _VERDICTS:
            return k
        if k in ("jump", "goto"):
            return f"{k} {v.get('target')}"
        if k == "map":
            return f"{show_expr(v.get('key'))} map {show_expr(v.get('data'))}"
        if k == "symhash" or k == "jhash":
            return k
        if isinstance(v, dict) and isinstance(v.get("key"), str):
            # the other keyed expressions (rt, socket, osf, ...): "rt mtu", "rt ip nexthop", as nft lists them
            fam = v.get("family")
            return f"{k} {fam + ' ' if isinstance(fam, str) else ''}{v['key']}"
    except (AttributeError, IndexError, TypeError, KeyError):
        pass
    return _raw(e)


def _show_item(x) -> str:
    if isinstance(x, list) and len(x) == 2:
        return f"{show_expr(x[0])} : {show_expr(x[1])}"
    return show_expr(x)


def _raw(x) -> str:
    try:
        return json.dumps(x, sort_keys=True)[:200]
    except (TypeError, ValueError):
        return repr(x)[:200]
