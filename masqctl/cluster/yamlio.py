"""Reading and writing the YAML and JSON files of a bundle, safely.

Reading builds plain values (dicts, lists, str, int, float, bool, None) from the YAML parser's
event stream, without recursion, so that:

* a document nested deeper than ``MAX_DEPTH`` levels is refused (libyaml's own composer
  recurses in C and can crash the interpreter on such input);
* anchors and aliases are refused (``kubectl`` and ``az`` never write them; a YAML bomb is
  made of them);
* timestamps and other YAML 1.1 specials stay strings, as they do when Kubernetes reads YAML
  as JSON.

Errors are ``InputError`` E321 naming the file (and the line where the parser knows it).

The regular block style kubectl writes is read line by line first (``_load_block``, several
times faster on a large ``pods.yaml``); whatever it is not sure of, and every error, is left to
the events reader, so the values and the errors are the events reader's.
"""

from __future__ import annotations

import gc
import json
import re
from itertools import islice
from typing import Any

import yaml

from masqctl.errors import InputError
from masqctl.textinput import Codes, decode

E_PARSE = "E321"
MAX_DEPTH = 200
BUNDLE_TEXT = Codes(open="E320", binary=E_PARSE, size="E324")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_resolver = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()
_TAG = "tag:yaml.org,2002:"


def decode_text(name: str, data: bytes) -> str:
    """``data`` as UTF-8 text; binary content or invalid UTF-8 is an ``InputError`` E321."""
    return decode(name, data, what="", codes=BUNDLE_TEXT,
                  binary_hint="bundle files are the text output of kubectl, az, iptables-save and ip")


def _scalar(event: yaml.ScalarEvent) -> Any:
    value = event.value
    tag = event.tag
    if tag in (None, "!"):
        if not event.implicit[0]:
            return value  # quoted: a string
        return _plain(value)
    return _tagged(tag, value)


# a bundle repeats the same plain scalars (keys, phases, "True") hundreds of thousands of times:
# their meaning is resolved once each (the values are immutable, so sharing them is safe)
_PLAIN_CACHE: dict[str, Any] = {}
_PLAIN_CACHE_MAX = 1 << 16


# a plain scalar whose first character starts none of the resolver's patterns is a string
_RESOLVED_FIRST = frozenset(k for k in _resolver.yaml_implicit_resolvers if k)
_ANY_FIRST = None in _resolver.yaml_implicit_resolvers or bool(_resolver.yaml_path_resolvers)


def _plain(value: str) -> Any:
    try:
        return _PLAIN_CACHE[value]
    except KeyError:
        pass
    if value and value[0] not in _RESOLVED_FIRST and not _ANY_FIRST:
        return value
    result = _tagged(_resolver.resolve(yaml.ScalarNode, value, (True, False)), value)
    if len(_PLAIN_CACHE) < _PLAIN_CACHE_MAX and len(value) <= 64:
        _PLAIN_CACHE[value] = result
    return result


def _tagged(tag: str, value: str) -> Any:
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        return _constructor.construct_yaml_bool(yaml.ScalarNode(tag, value))
    if tag == _TAG + "int":
        return _constructor.construct_yaml_int(yaml.ScalarNode(tag, value))
    if tag == _TAG + "float":
        return _constructor.construct_yaml_float(yaml.ScalarNode(tag, value))
    return value


def _line(event) -> int | None:
    mark = getattr(event, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def load_yaml_events(name: str, text: str, depth_base: int = 0) -> list[Any]:
    """Every document of a YAML stream as plain values, built from libyaml's events in one loop
    (no recursion). This is the reference reading: ``load_yaml_documents`` gives the same values
    and the same errors. ``depth_base`` counts the containers around ``text`` when it is a piece
    of a larger document (for the depth cap)."""
    docs: list[Any] = []
    stack: list[list] = []          # [container, pending_key or _NOKEY]
    _NOKEY = _NO_KEY
    scalar_event, mapping_start, sequence_start = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
    ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    event = None
    try:
        parser = _Loader(text)
        get_event = parser.get_event
        try:
            while True:
                event = get_event()
                if event is None:
                    break
                kind = type(event)
                if kind is scalar_event:
                    if event.anchor is not None:
                        raise _alias_error(name, event)
                    tag = event.tag
                    if tag is None or tag == "!":
                        value = event.value if not event.implicit[0] else _plain(event.value)
                    else:
                        value = _tagged(tag, event.value)
                elif kind is mapping_start or kind is sequence_start:
                    if event.anchor is not None:
                        raise _alias_error(name, event)
                    if len(stack) + depth_base >= MAX_DEPTH:
                        raise InputError(f"nested more than {MAX_DEPTH} levels deep",
                                         input=f"{name} line {_line(event)}", code=E_PARSE,
                                         hint="this is not kubectl or az output")
                    stack.append([{} if kind is mapping_start else [], _NOKEY])
                    continue
                elif kind in ends:
                    value = stack.pop()[0]
                elif kind is yaml.AliasEvent:
                    raise _alias_error(name, event)
                else:
                    continue   # stream and document boundaries
                # the value goes into the container being built (or is a whole document)
                if not stack:
                    docs.append(value)
                    continue
                frame = stack[-1]
                container = frame[0]
                if container.__class__ is list:
                    container.append(value)
                elif frame[1] is _NOKEY:
                    if isinstance(value, (dict, list)):
                        raise InputError("a mapping key that is not a scalar", input=f"{name} line {_line(event)}",
                                         code=E_PARSE)
                    frame[1] = value if isinstance(value, str) else _key_text(value)
                else:
                    container[frame[1]] = value
                    frame[1] = _NOKEY
        finally:
            parser.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name} line {mark.line + 1}" if mark is not None else name
        raise InputError(f"not valid YAML: {exc.problem or exc.context}", input=where, code=E_PARSE) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", input=name, code=E_PARSE) from None
    except (ValueError, TypeError) as exc:   # a scalar the constructor refuses
        raise InputError(f"not valid YAML: {exc}", input=name, code=E_PARSE) from None
    return docs


_NO_KEY = object()


def _key_text(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _alias_error(name: str, event) -> InputError:
    return InputError("uses YAML anchors or aliases, which kubectl and az never write (a YAML bomb?)",
                      input=f"{name} line {_line(event)}", code=E_PARSE,
                      hint="put the plain output of kubectl/az into the bundle")


# --------------------------------------------------------------------------- block-style reading
#
# ``kubectl -o yaml`` (and ``az``) print one regular block style: a key and a one-line scalar
# per line, nested blocks indented, sequences introduced by "- ", quoted scalars on one line,
# literal blocks for multi-line strings. ``load_yaml_documents`` reads that subset line by line
# (each distinct line is classified once) and leaves anything else to the events reader above:
# an item of a top-level sequence (a pod of ``items:``) on its own, or the whole text when the
# doubt is outside such an item. Every error comes from the events reader, so errors are the
# same; the values are the same by construction (tests/fuzz/test_fuzz_yamlio.py compares both).


class _Doubt(Exception):
    """A line outside the regular subset: the events reader decides."""


_K_SCALAR, _K_OPEN, _K_MAP, _K_SEQ, _K_LIT, _K_BLANK = range(6)
_BLANK = (0, 0, _K_BLANK, None, None)
_NOT_PLAIN_START = frozenset("-?:,[]{}#&*!|>'\"%@` ")
# what libyaml reads as text on a line (no control characters, line breaks or byte-order marks)
_YAML_TEXT = re.compile("[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*")
_YAML_TEXT_TAB = re.compile("[\t\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*")
_ESCAPES = {"0": "\x00", "a": "\x07", "b": "\x08", "t": "\t", "n": "\n", "v": "\x0b", "f": "\x0c",
            "r": "\r", "e": "\x1b", " ": " ", '"': '"', "\\": "\\", "N": "\x85", "_": "\xa0",
            "L": "\u2028", "P": "\u2029"}
_HEX_LEN = {"x": 2, "u": 4, "U": 8}
_HEX = frozenset("0123456789abcdefABCDEF")
_CHOMP = {"|": 1, "|-": 0, "|+": 2}
_MAX_KEY = 1000        # libyaml refuses a key longer than 1024 characters
_FAST_DEPTH = 150      # deeper nesting is left to the events reader, which enforces MAX_DEPTH


def _quoted(s: str) -> tuple[str, int]:
    """The one-line quoted scalar at the start of ``s`` and the index after its closing quote."""
    if s[0] == "'":
        j = s.find("'", 1)
        while j >= 0 and s.startswith("'", j + 1):
            j = s.find("'", j + 2)
        if j < 0:
            raise _Doubt
        return s[1:j].replace("''", "'"), j + 1
    out = []
    i = 1
    n = len(s)
    while True:
        j = s.find('"', i)
        if j < 0:
            raise _Doubt
        b = s.find("\\", i, j)
        if b < 0:
            out.append(s[i:j])
            return "".join(out), j + 1
        out.append(s[i:b])
        if b + 1 >= n:
            raise _Doubt
        c = s[b + 1]
        size = _HEX_LEN.get(c)
        if size is None:
            try:
                out.append(_ESCAPES[c])
            except KeyError:
                raise _Doubt from None
            i = b + 2
        else:
            digits = s[b + 2:b + 2 + size]
            if len(digits) != size or not _HEX.issuperset(digits):
                raise _Doubt
            code = int(digits, 16)
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise _Doubt
            out.append(chr(code))
            i = b + 2 + size


def _plain_value(v: str) -> Any:
    c = v[0]
    if c in _NOT_PLAIN_START and not (c == "-" and len(v) > 1 and v[1] != " "):
        raise _Doubt
    if v[-1] in " :" or " #" in v or ": " in v:
        raise _Doubt
    try:
        return _plain(v)
    except Exception:   # the events reader says what is wrong with it
        raise _Doubt from None


def _plain_key(k: str) -> str:
    if not k or k[0] in _NOT_PLAIN_START or k[-1] in " :" or " #" in k or len(k) > _MAX_KEY:
        raise _Doubt
    value = _plain_value(k)
    return value if value.__class__ is str else _key_text(value)


def _value(v: str) -> tuple[int, Any]:
    c = v[0]
    if c == "'" or c == '"':
        value, end = _quoted(v)
        if end != len(v):
            raise _Doubt
        return _K_SCALAR, value
    if c == "{" or c == "[" or c == "|":
        if v == "{}":
            return _K_MAP, None
        if v == "[]":
            return _K_SEQ, None
        chomp = _CHOMP.get(v)
        if chomp is None:
            raise _Doubt
        return _K_LIT, chomp
    return _K_SCALAR, _plain_value(v)


def _classify(line: str) -> tuple:
    """(indent, dashes, kind, key or None, value) of one line in the subset, else ``_Doubt``."""
    s = line.lstrip(" ")
    if not s:
        if line:
            raise _Doubt
        return _BLANK
    ind = len(line) - len(s)
    if not s.isprintable() and not _YAML_TEXT.fullmatch(s):
        raise _Doubt
    if ind == 0 and (s.startswith("---") or s.startswith("...")):
        raise _Doubt
    dashes = 0
    while s[0] == "-":
        if len(s) == 1:
            return (ind, dashes + 1, _K_OPEN, None, None)
        if s[1] != " ":
            break
        dashes += 1
        s = s[2:]
        if not s or s[0] == " ":
            raise _Doubt
    c = s[0]
    if c == "'" or c == '"':
        key, end = _quoted(s)
        if end == len(s):
            if not dashes:
                raise _Doubt
            return (ind, dashes, _K_SCALAR, None, key)
        if end > _MAX_KEY:
            raise _Doubt
        rest = s[end:]
        if rest == ":":
            return (ind, dashes, _K_OPEN, key, None)
        if not rest.startswith(": "):
            raise _Doubt
        v = rest[2:]
    else:
        p = s.find(": ")
        if p < 0:
            if s[-1] != ":":
                if not dashes:
                    raise _Doubt
                kind, value = _value(s)
                return (ind, dashes, kind, None, value)
            return (ind, dashes, _K_OPEN, _plain_key(s[:-1]), None)
        key = _plain_key(s[:p])
        v = s[p + 2:]
    if not v:
        raise _Doubt
    kind, value = _value(v)
    return (ind, dashes, kind, key, value)


def _literal(lines: list[str], i: int, owner: int, chomp: int, final_break: bool) -> tuple[str, int]:
    """The literal block whose header ends line ``i`` (its node's indicator at column ``owner``)
    and the index of the first line after it."""
    n = len(lines)
    j = i + 1
    if j >= n:
        raise _Doubt
    first = lines[j]
    t = first.lstrip(" ")
    width = len(first) - len(t)
    if not t or width <= owner:
        raise _Doubt
    pad = " " * width
    parts = []
    while j < n:
        line = lines[j]
        if line.startswith(pad):
            rest = line[width:]
            if rest:
                if not rest.lstrip(" ") or (not rest.isprintable() and not _YAML_TEXT_TAB.fullmatch(rest)):
                    raise _Doubt
            parts.append(rest)
        elif not line:
            parts.append("")
        elif not line.lstrip(" "):
            raise _Doubt
        else:
            break
        j += 1
    if j == n and not final_break:
        raise _Doubt
    trailing = 0
    while not parts[-1]:
        parts.pop()
        trailing += 1
    value = "\n".join(parts)
    if chomp == 1:
        value += "\n"
    elif chomp == 2:
        value += "\n" * (trailing + 1)
    return value, j


def _entry(line: str) -> tuple:
    """A line's cache entry: (slot, simple, key, value, shape). ``slot`` is twice the indent,
    plus one for a sequence item: it equals the slot of the container the line goes into.
    ``simple`` marks the common "key: scalar"; ``shape`` is (indent, dashes, kind)."""
    ind, dashes, kind, key, value = _classify(line)
    slot = 2 * ind + (1 if dashes else 0)
    if kind == _K_BLANK:
        slot = -2
    return (slot, not dashes and kind == _K_SCALAR, key, value, (ind, dashes, kind))


def _load_block(name: str, text: str) -> list[Any] | None:
    """The one document of ``text`` read line by line, or None when the events reader must read
    all of it (a doubt outside an item of a top-level sequence, or an error anywhere)."""
    lines = text.split("\n")
    final_break = lines[-1] == ""
    if final_break:
        lines.pop()
    n = len(lines)
    cache: dict[str, tuple] = {}
    holder: list[Any] = []
    stack: list[tuple] = []                  # (container, indent, is_map) around ``cur``
    cur, cur_ind, cur_map, cur_slot = holder, -1, False, -1
    pending = (holder, _NO_KEY, -1, False)   # a node whose value starts on a later line
    items = None                             # the sequence under a key of the root mapping
    items_ind = item_line = item_index = 0
    no_key = _NO_KEY
    k_scalar, k_open, k_map, k_seq, k_blank = _K_SCALAR, _K_OPEN, _K_MAP, _K_SEQ, _K_BLANK
    start = 0
    i = 0
    while True:
        it = enumerate(islice(lines, start, None), start)
        try:
            for i, line in it:
                try:
                    slot, simple, key, value, shape = cache[line]
                except KeyError:
                    slot, simple, key, value, shape = cache[line] = _entry(line)
                if simple and slot == cur_slot and pending is None:
                    cur[key] = value         # the common line: "key: scalar" in the open mapping
                    continue
                ind, dashes, kind = shape
                if kind == k_blank:
                    continue
                if pending is not None:
                    into, at, owner, dash = pending
                    pending = None
                    if ind > owner or (dashes and ind == owner and not dash):
                        new = [] if dashes else {}
                        if at is no_key:
                            into.append(new)
                        else:
                            into[at] = new
                        stack.append((cur, cur_ind, cur_map))
                        if len(stack) > _FAST_DEPTH:
                            raise _Doubt
                        if dashes and len(stack) == 2 and cur_map:
                            items, items_ind = new, ind
                        cur, cur_ind, cur_map, cur_slot = new, ind, not dashes, slot
                    elif at is no_key:
                        into.append(None)
                    else:
                        into[at] = None
                if slot != cur_slot:
                    while ind < cur_ind or (ind == cur_ind and not cur_map and not dashes):
                        cur, cur_ind, cur_map = stack.pop()
                    cur_slot = 2 * cur_ind + (0 if cur_map else 1)
                    if slot != cur_slot:
                        raise _Doubt
                if not dashes:
                    into = cur
                    owner = ind
                else:
                    if cur is items:
                        item_line, item_index = i, len(cur)
                    owner = ind
                    while dashes > 1:
                        new = []
                        cur.append(new)
                        stack.append((cur, cur_ind, cur_map))
                        owner += 2
                        cur, cur_ind, cur_slot = new, owner, 2 * owner + 1
                        dashes -= 1
                    if len(stack) > _FAST_DEPTH:
                        raise _Doubt
                    if key is None:
                        if kind == k_scalar:
                            cur.append(value)
                        elif kind == k_open:
                            pending = (cur, no_key, owner, True)
                        elif kind == k_map:
                            cur.append({})
                        elif kind == k_seq:
                            cur.append([])
                        else:
                            text_value, j = _literal(lines, i, owner, value, final_break)
                            cur.append(text_value)
                            next(islice(it, j - i - 2, j - i - 1), None)
                        continue
                    into = {}
                    cur.append(into)
                    stack.append((cur, cur_ind, cur_map))
                    owner += 2
                    cur, cur_ind, cur_map, cur_slot = into, owner, True, 2 * owner
                if kind == k_scalar:
                    into[key] = value
                elif kind == k_open:
                    pending = (into, key, owner, False)
                elif kind == k_map:
                    into[key] = {}
                elif kind == k_seq:
                    into[key] = []
                else:
                    into[key], j = _literal(lines, i, owner, value, final_break)
                    next(islice(it, j - i - 2, j - i - 1), None)
        except _Doubt:
            pass
        else:
            break
        # line i is outside the subset: read the item of ``items`` it belongs to with the events
        # reader, or give up on the block reading
        line = lines[i]
        s = line.lstrip(" ")
        indent = len(line) - len(s)
        dash = s == "-" or s.startswith("- ")
        active = items is not None and (cur is items or (len(stack) > 2 and stack[2][0] is items))
        if active and dash and indent == items_ind and item_line != i:
            if pending is not None:      # the item before ends with an empty value
                into, at = pending[0], pending[1]
                if at is no_key:
                    into.append(None)
                else:
                    into[at] = None
            first_line, first = i, len(items)
        elif active and (item_line == i or not s or indent > items_ind):
            first_line, first = item_line, item_index
        elif (pending is not None and len(stack) == 1 and cur_map and pending[0] is cur
              and dash and indent >= pending[2]):
            items, items_ind = [], indent
            cur[pending[1]] = items
            stack.append((cur, cur_ind, cur_map))
            first_line, first = i, 0
        else:
            return None
        end = first_line + 1
        while end < n:
            line = lines[end]
            s = line.lstrip(" ")
            if s and len(line) - len(s) <= items_ind:
                break
            end += 1
        piece = "\n".join(lines[first_line:end])
        if end < n or final_break:
            piece += "\n"
        try:
            read = load_yaml_events(name, piece, depth_base=1)
        except InputError:
            return None
        if len(read) != 1 or read[0].__class__ is not list or len(read[0]) != 1:
            return None
        del items[first:]
        items.append(read[0][0])
        del stack[2:]
        cur, cur_ind, cur_map, cur_slot = items, items_ind, False, 2 * items_ind + 1
        pending = None
        item_line, item_index = first_line, first
        start = end
    if pending is not None:
        into, at = pending[0], pending[1]
        if at is no_key:
            into.append(None)
        else:
            into[at] = None
    return holder if holder else None


def load_yaml_documents(name: str, text: str) -> list[Any]:
    """Every document of a YAML stream as plain values: kubectl's block style line by line, the
    rest (and every error) from the events reader (the hot path of reading a large ``pods.yaml``)."""
    collecting = gc.isenabled()
    if collecting:   # the values hold no cycles: a collection while building them finds nothing
        gc.disable()
    try:
        docs = _load_block(name, text)
        if docs is None:
            docs = load_yaml_events(name, text)
    finally:
        if collecting:
            gc.enable()
    return docs


def load_json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", input=f"{name} line {exc.lineno}", code=E_PARSE) from None
    except RecursionError:
        raise InputError("not valid JSON: nested too deeply", input=name, code=E_PARSE) from None


def _depth_ok(value: Any) -> bool:
    work = [(value, 0)]
    while work:
        v, d = work.pop()
        if d > MAX_DEPTH:
            return False
        if isinstance(v, dict):
            work.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            work.extend((x, d + 1) for x in v)
    return True


def load_documents(name: str, data: bytes) -> list[Any]:
    """A YAML or JSON file as its documents. JSON (what ``-o json`` prints) is read as JSON."""
    return load_text_documents(name, decode_text(name, data))


def load_text_documents(name: str, text: str) -> list[Any]:
    """:func:`load_documents` of a file's text (decoded by ``decode_text``)."""
    stripped = text.lstrip()
    if not stripped:
        return []
    if stripped[0] in "{[":
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            pass   # YAML flow style, or broken: let the YAML reader say where
        else:
            if not _depth_ok(value):
                raise InputError(f"nested more than {MAX_DEPTH} levels deep", input=name, code=E_PARSE)
            return [value]
    return load_yaml_documents(name, text)


# --------------------------------------------------------------------------- writing


class _BlockDumper(_Dumper):
    def ignore_aliases(self, data):   # never write anchors: a repeated object is written again
        return True


def _str(dumper, value: str):
    if "\n" in value:
        return dumper.represent_scalar(_TAG + "str", value, style="|")
    return dumper.represent_scalar(_TAG + "str", value)


_BlockDumper.add_representer(str, _str)


def dump_yaml(value: Any) -> str:
    """YAML as kubectl prints it: block style, multi-line strings as literal blocks."""
    return yaml.dump(value, Dumper=_BlockDumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, width=1 << 16)


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
