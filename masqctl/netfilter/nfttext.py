"""Read the text form of ``nft list ruleset`` into the same :class:`~masqctl.netfilter.nft.Ruleset`
as the JSON form, its statements translated into libnftables JSON statements.

The structure (tables, sets and maps with their elements, chains with type, hook, priority and
policy, one rule a line) is read strictly: anything else is an :class:`NftError` naming the line.
Inside a rule, the expressions kube-proxy, kindnet and Calico write are translated; a part this
reader does not know becomes ``{"unknown": TEXT}`` (the rest of the rule), so the evaluator names
it instead of guessing.
"""

from __future__ import annotations

from masqctl.netfilter.nft import FAMILIES, NftChain, NftError, NftRule, NftSet, NftTable, Ruleset, \
    norm_element, parse_priority

_PUNCT = "{};"


def _tokens(text: str) -> list[tuple[str, int]]:
    """Words, strings (kept with their quotes), ``{`` ``}`` ``;`` ``,`` and ``\\n`` tokens, with line numbers."""
    out: list[tuple[str, int]] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(("\n", line))
            line += 1
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        if c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c == '"':
            j = text.find('"', i + 1)
            if j < 0 or "\n" in text[i:j]:
                raise NftError("unterminated string", f"line {line}", "syntax", text[i:i + 60])
            out.append((text[i:j + 1], line))
            i = j + 1
            continue
        if c in _PUNCT:
            out.append((c, line))
            i += 1
            continue
        j = i
        while j < n and text[j] not in " \t\r\n{};\"":
            if text[j] == "," and (j + 1 >= n or text[j + 1] in " \t\r\n}"):
                break
            j += 1
        if j == i:          # a lone comma
            out.append((",", line))
            i += 1
            continue
        out.append((text[i:j], line))
        i = j
        if i < n and text[i] == ",":
            out.append((",", line))
            i += 1
    return out


class _Reader:
    def __init__(self, toks, source):
        self.t = toks
        self.i = 0
        self.source = source

    def peek(self, skip_nl=True):
        j = self.i
        while skip_nl and j < len(self.t) and self.t[j][0] in ("\n", ";"):
            j += 1
        return self.t[j] if j < len(self.t) else (None, self.t[-1][1] if self.t else 1)

    def next(self, skip_nl=True):
        while skip_nl and self.i < len(self.t) and self.t[self.i][0] in ("\n", ";"):
            self.i += 1
        if self.i >= len(self.t):
            raise NftError("unexpected end of the ruleset (a `}` missing?)", f"line {self.t[-1][1] if self.t else 1}",
                           "syntax")
        tok = self.t[self.i]
        self.i += 1
        return tok

    def expect(self, word):
        tok, line = self.next()
        if tok != word:
            raise NftError(f"expected {word!r}, found {tok!r}", f"line {line}", "syntax", tok)
        return line

    def line_tokens(self) -> list[tuple[str, int]]:
        """The tokens up to the end of the line (braces balanced across lines), not consumed ``\\n``/``;``."""
        out = []
        depth = 0
        while self.i < len(self.t):
            tok, line = self.t[self.i]
            if tok in ("\n", ";") and depth == 0:
                break
            if tok == "}" and depth == 0:
                break
            self.i += 1
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
            if tok == "\n":
                continue
            out.append((tok, line))
        return out


def parse_text(text: str, source: str) -> Ruleset:
    r = _Reader(_tokens(text), source)
    rs = Ruleset([], source, "text")
    seq = 0
    while True:
        tok, line = r.peek()
        if tok is None:
            break
        r.next()
        if tok != "table":
            raise NftError(f"expected `table`, found {tok!r} (is this `nft list ruleset` output?)", f"line {line}",
                           "syntax", tok)
        fam, _ = r.next()
        if fam not in FAMILIES:
            # `table NAME {` means family ip
            name, fam = fam, "ip"
        else:
            name, _ = r.next()
        r.expect("{")
        if rs.table(fam, name) is not None:
            raise NftError(f"table {fam} {name} listed twice", f"line {line}", "syntax")
        t = NftTable(fam, name, where=f"line {line}", seq=len(rs.tables))
        rs.tables.append(t)
        seq = _table_body(r, t, seq)
    if not rs.tables:
        raise NftError("the ruleset is empty (no tables)", None, "empty")
    return rs


def _table_body(r: _Reader, t: NftTable, seq: int) -> int:
    while True:
        tok, line = r.next()
        if tok == "}":
            return seq
        if tok in ("comment", "flags"):
            r.line_tokens()
            continue
        if tok in ("set", "map"):
            name, _ = r.next()
            r.expect("{")
            s = _set_body(r, t, name, tok, line)
            if s.name in t.sets:
                raise NftError(f"{tok} {name} listed twice", f"line {line}", "syntax")
            t.sets[s.name] = s
            continue
        if tok == "chain":
            name, _ = r.next()
            r.expect("{")
            c = NftChain(t.family, t.name, name, where=f"line {line}", lineno=line, seq=seq)
            seq += 1
            if name in t.chains:
                raise NftError(f"chain {name} listed twice", f"line {line}", "syntax")
            t.chains[name] = c
            _chain_body(r, c)
            continue
        if tok in ("flowtable", "counter", "quota", "ct", "secmark", "synproxy", "limit"):
            _skip_block(r)
            continue
        raise NftError(f"unexpected {tok!r} in table {t.family} {t.name}", f"line {line}", "syntax", tok)


def _skip_block(r: _Reader) -> None:
    depth = 0
    while True:
        tok, line = r.next(skip_nl=False)
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth <= 0:
                return


def _set_body(r: _Reader, t: NftTable, name: str, kind: str, line: int) -> NftSet:
    s = NftSet(t.family, t.name, name, [], where=f"line {line}")
    while True:
        tok, ln = r.next()
        if tok == "}":
            break
        rest = r.line_tokens()
        words = [w for w, _ in rest]
        if tok == "type":
            if ":" in words:
                k = words.index(":")
                s.data_type = " ".join(words[k + 1:])
                words = words[:k]
            s.key_types = [w for w in words if w != "."]
            if not s.key_types:
                raise NftError(f"{kind} {name}: a type with no name", f"line {ln}", "syntax")
        elif tok == "typeof":
            s.key_types = ["typeof"]
            if ":" in words:
                s.data_type = " ".join(words[words.index(":") + 1:])
            s.unreadable = "declared with typeof"
        elif tok == "flags":
            s.flags = [f for w in words for f in w.split(",") if f]
        elif tok == "elements":
            if not words or words[0] != "=" or len(words) < 3 or words[1] != "{" or words[-1] != "}":
                raise NftError(f"{kind} {name}: elements = {{ … }} expected", f"line {ln}", "syntax")
            for item in _split_items(words[2:-1]):
                key, data = _element_of(item)
                try:
                    s.elements.append((norm_element(key, f"line {ln}"), data))
                except NftError as exc:
                    s.unreadable = s.unreadable or f"{exc.message} (line {ln})"
        elif tok in ("size", "timeout", "gc-interval", "comment", "policy", "auto-merge", "counter"):
            continue
        else:
            raise NftError(f"unexpected {tok!r} in {kind} {name}", f"line {ln}", "syntax", tok)
    if not s.key_types:
        raise NftError(f"{kind} {name} has no type", f"line {line}", "syntax")
    if kind == "map" and s.data_type is None:
        raise NftError(f"map {name} has no data type", f"line {line}", "syntax")
    return s


def _split_items(words: list[str]) -> list[list[str]]:
    items, cur, depth = [], [], 0
    for w in words:
        if w == "{":
            depth += 1
        elif w == "}":
            depth -= 1
        if w == "," and depth == 0:
            if cur:
                items.append(cur)
            cur = []
            continue
        cur.append(w)
    if cur:
        items.append(cur)
    return items


def _element_of(item: list[str]):
    """(key as JSON value, data as JSON value or None) of one ``a . b : verdict`` element."""
    data = None
    if ":" in item:
        k = item.index(":")
        data = _verdict_of(item[k + 1:])
        item = item[:k]
    clean = []
    skip = 0
    for w in item:
        if skip:
            skip -= 1
            continue
        if w in ("comment", "timeout", "expires"):
            skip = 1
            continue
        if w == "counter":
            continue
        clean.append(w)
    parts = [w for w in clean if w != "."]
    vals = [_word_value(w) for w in parts]
    key = vals[0] if len(vals) == 1 else {"concat": vals}
    return key, data


def _verdict_of(words: list[str]):
    if not words:
        return None
    if words[0] in ("jump", "goto") and len(words) > 1:
        return {words[0]: {"target": words[1]}}
    if words[0] in ("accept", "drop", "return", "continue", "reject"):
        return {words[0]: None}
    return {"unknown": " ".join(words)}


def _word_value(w: str):
    if w.startswith('"') and w.endswith('"'):
        return w[1:-1]
    if "," in w:
        return [_word_value(x) for x in w.split(",") if x]
    if "/" in w:
        a, _, b = w.partition("/")
        if b.isdigit():
            return {"prefix": {"addr": a, "len": int(b)}}
    if w.isdigit():
        return int(w)
    if w.startswith("0x"):
        try:
            return int(w, 16)
        except ValueError:
            return w
    if "-" in w and not w.startswith("-"):
        a, _, b = w.partition("-")
        va, vb = _word_value(a), _word_value(b)
        if (isinstance(va, int) and isinstance(vb, int)) or (_is_ip(a) and _is_ip(b)):
            return {"range": [va, vb]}
    return w


def _is_ip(s: str) -> bool:
    import ipaddress
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def _chain_body(r: _Reader, c: NftChain) -> None:
    while True:
        tok, line = r.peek()
        if tok is None:
            raise NftError(f"chain {c.name} is not closed", f"line {line}", "syntax")
        if tok == "}":
            r.next()
            return
        toks = []
        while True:
            r.peek()
            rest = r.line_tokens()
            toks += rest
            nxt = r.t[r.i][0] if r.i < len(r.t) else None
            after = r.t[r.i + 1][0] if r.i + 1 < len(r.t) else None
            # `type … priority P; policy accept;` is one statement as nft prints it; a rule after
            # the `;` (a ruleset written on one line: `…priority srcnat; masquerade; }`) is not
            if nxt == ";" and toks and toks[0][0] == "type" and after in ("policy", "comment"):
                r.i += 1
                continue
            break
        if r.i < len(r.t) and r.t[r.i][0] in ("\n", ";"):
            r.i += 1
        if not toks:
            continue
        words = [w for w, _ in toks]
        lineno = toks[0][1]
        if words[0] == "type":
            _base_chain(c, words, lineno)
            continue
        if words[0] == "policy" and len(words) == 2:
            c.policy = words[1]
            continue
        if words[0] == "comment" and len(words) == 2 and not c.rules:
            continue
        exprs, comment = parse_statements(words)
        text = " ".join(words)
        c.rules.append(NftRule(c.family, c.table, c.name, len(c.rules) + 1, exprs, text, f"line {lineno}",
                               lineno=lineno, comment=comment))


def _base_chain(c: NftChain, words: list[str], lineno: int) -> None:
    where = f"line {lineno}"
    try:
        c.type = words[1]
        h = words.index("hook")
        c.hook = words[h + 1]
        p = words.index("priority")
    except (ValueError, IndexError):
        raise NftError("a base chain line is `type T hook H priority P; policy X;`", where, "syntax",
                       " ".join(words)) from None
    end = words.index("policy") if "policy" in words else len(words)
    prio = [w for w in words[p + 1:end] if w != "device"]
    if "device" in words[p + 1:end]:
        prio = words[p + 1:end][:words[p + 1:end].index("device")]
    c.prio_text = " ".join(prio)
    c.prio = parse_priority(c.prio_text, where)
    c.policy = words[end + 1] if end + 1 < len(words) else "accept"
    if c.policy not in ("accept", "drop"):
        raise NftError(f"policy {c.policy!r} (accept or drop)", where, "syntax")


# --- statements ----------------------------------------------------------------------------------------

_PAYLOAD_PROTOS = ("ip", "ip6", "tcp", "udp", "sctp", "th", "udplite", "dccp")
_META_BARE = ("mark", "iifname", "oifname", "iif", "oif", "l4proto", "nfproto", "skuid", "skgid", "pkttype")
_OPS = ("==", "!=", "<", ">", "<=", ">=")


class _Unknown(Exception):
    pass


def parse_statements(words: list[str]) -> tuple[list, str | None]:
    """A rule's words as JSON statements (and its comment). What is not understood ends the rule as
    ``{"unknown": TEXT}``."""
    out: list = []
    comment = None
    i = 0
    n = len(words)
    while i < n:
        w = words[i]
        try:
            if w in ("accept", "drop", "return", "continue"):
                out.append({w: None})
                i += 1
            elif w in ("jump", "goto"):
                out.append({w: {"target": words[i + 1]}})
                i += 2
            elif w == "counter":
                i += 1
                if i + 3 < n + 1 and i < n and words[i] == "packets":
                    i += 4
                out.append({"counter": None})
            elif w == "comment":
                comment = _word_value(words[i + 1]) if i + 1 < n else ""
                i += 2
            elif w == "log":
                i += 1
                while i < n and words[i] in ("prefix", "level", "flags", "group", "snaplen", "queue-threshold"):
                    i += 2
                out.append({"log": None})
            elif w == "reject":
                i += 1
                if i < n and words[i] == "with":
                    i += 1
                    while i < n and words[i] in ("icmp", "icmpv6", "icmpx", "tcp", "type", "reset", "port-unreachable",
                                                 "host-unreachable", "admin-prohibited", "net-unreachable",
                                                 "prot-unreachable", "no-route"):
                        i += 1
                out.append({"reject": None})
            elif w == "notrack":
                out.append({"notrack": None})
                i += 1
            elif w == "masquerade":
                body, i = _nat_opts(words, i + 1, with_addr=False)
                out.append({"masquerade": body})
            elif w in ("snat", "dnat"):
                body, i = _nat_opts(words, i + 1, with_addr=True)
                out.append({w: body})
            elif w == "redirect":
                body, i = _nat_opts(words, i + 1, with_addr=False)
                out.append({"redirect": body})
            elif w in ("update", "add") and i + 1 < n and words[i + 1].startswith("@"):
                j = i + 2
                if j < n and words[j] == "{":
                    while j < n and words[j] != "}":
                        j += 1
                    j += 1
                out.append({"set": {"op": w, "set": words[i + 1], "elem": None}})
                i = j
            elif w == "limit":
                out.append({"limit": {}})
                i = n
            else:
                stmt, i = _expr_stmt(words, i)
                out.append(stmt)
        except (_Unknown, IndexError, ValueError):
            out.append({"unknown": " ".join(words[i:])})
            break
    return out, comment


def _nat_opts(words, i, with_addr):
    body: dict = {}
    n = len(words)
    if i < n and words[i] in ("ip", "ip6") and with_addr:
        body["family"] = words[i]
        i += 1
    if i < n and words[i] == "to":
        target = words[i + 1]
        i += 2
        if with_addr:
            addr, port = _split_host_port(target)
            if addr is None:
                raise _Unknown
            body["addr"] = addr
            if port is not None:
                body["port"] = port
        else:
            if not target.startswith(":"):
                raise _Unknown
            body["port"] = _word_value(target[1:])
    flags = []
    while i < n and all(f in ("random", "fully-random", "persistent") for f in words[i].split(",")):
        flags += words[i].split(",")
        i += 1
    if flags:
        body["flags"] = flags if len(flags) > 1 else flags[0]
    return body, i


def _split_host_port(text: str):
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, (_word_value(rest[1:]) if rest.startswith(":") else None)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _word_value(port)
    return text, None


def _primary(words, i):
    """One expression of the packet (``ip saddr``, ``meta mark``, ``ct state``, ``fib daddr type``…)."""
    w = words[i]
    if w in _PAYLOAD_PROTOS and i + 1 < len(words) and words[i + 1] in (
            "saddr", "daddr", "dport", "sport", "protocol", "nexthdr", "length", "ttl", "hoplimit", "flags"):
        return {"payload": {"protocol": w, "field": words[i + 1]}}, i + 2
    if w == "meta":
        return {"meta": {"key": words[i + 1]}}, i + 2
    if w in _META_BARE:
        return {"meta": {"key": w}}, i + 1
    if w == "ct":
        if words[i + 1] in ("original", "reply"):
            return {"ct": {"key": words[i + 2], "dir": words[i + 1]}}, i + 3
        return {"ct": {"key": words[i + 1]}}, i + 2
    if w == "fib":
        flags = [words[i + 1]]
        j = i + 2
        while j + 1 < len(words) and words[j] == ".":
            flags.append(words[j + 1])
            j += 2
        return {"fib": {"result": words[j], "flags": flags}}, j + 1
    if w == "numgen":
        if words[i + 1] != "random" or words[i + 2] != "mod":
            raise _Unknown
        body = {"mode": "random", "mod": int(words[i + 3]), "offset": 0}
        j = i + 4
        if j + 1 < len(words) and words[j] == "offset":
            body["offset"] = int(words[j + 1])
            j += 2
        return {"numgen": body}, j
    raise _Unknown


def _expr_stmt(words, i):
    left, i = _primary(words, i)
    parts = [left]
    while i < len(words) and words[i] == ".":
        nxt, i = _primary(words, i + 1)
        parts.append(nxt)
    if len(parts) > 1:
        left = {"concat": parts}
    while i < len(words) and words[i] in ("&", "|", "^", "and", "or", "xor"):
        op = {"and": "&", "or": "|", "xor": "^"}.get(words[i], words[i])
        left = {op: [left, _word_value(words[i + 1])]}
        i += 2
    if i < len(words) and words[i] == "set":
        value, i = _value_expr(words, i + 1)
        return {"mangle": {"key": left, "value": value}}, i
    if i < len(words) and words[i] == "vmap":
        data, i = _right(words, i + 1, is_map=True)
        return {"vmap": {"key": left, "data": data}}, i
    op = "=="
    if i < len(words) and words[i] in _OPS:
        op = words[i]
        i += 1
    right, i = _right(words, i)
    if isinstance(right, list) and op == "==":
        op = "in"
    return {"match": {"op": op, "left": left, "right": right}}, i


def _value_expr(words, i):
    """The value of a ``set`` statement: a constant or ``meta mark | 0x4000``."""
    try:
        v, j = _primary(words, i)
    except _Unknown:
        return _word_value(words[i]), i + 1
    while j < len(words) and words[j] in ("&", "|", "^", "and", "or", "xor"):
        op = {"and": "&", "or": "|", "xor": "^"}.get(words[j], words[j])
        v = {op: [v, _word_value(words[j + 1])]}
        j += 2
    return v, j


def _right(words, i, is_map=False):
    w = words[i]
    if w.startswith("@"):
        return w, i + 1
    if w == "{":
        j = i + 1
        depth = 1
        while j < len(words):
            if words[j] == "{":
                depth += 1
            elif words[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if j >= len(words):
            raise _Unknown
        items = []
        for item in _split_items(words[i + 1:j]):
            key, data = _element_of(item)
            items.append([key, data] if data is not None else key)
        return {"set": items}, j + 1
    # a concatenated constant: a . b . c
    vals = [_word_value(w)]
    j = i + 1
    while j + 1 < len(words) and words[j] == ".":
        vals.append(_word_value(words[j + 1]))
        j += 2
    if len(vals) > 1:
        return {"set": [{"concat": vals}]}, j
    return vals[0], j
