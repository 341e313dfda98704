"""Decode one config file the way the Go agents do, keeping line numbers.

The agents run ``k8s.io/apimachinery/pkg/util/yaml.ToJSON`` (a document that starts with
``{`` after white space is taken as JSON as is; anything else is YAML 1.1 read by go-yaml v2
and turned into JSON) and then Go's ``encoding/json`` into a struct. What follows from that,
and is reproduced here:

* keys match struct fields case-insensitively (Go's fold: ``NonMasqueradeCIDRs`` works);
* unknown keys are ignored (reported here as warnings);
* a key given twice: the last one wins (for YAML, after go-yaml's map is re-encoded with
  sorted keys, so among case variants the byte-wise last spelling wins);
* ``null`` leaves a bool untouched, makes a list nil, and makes a list item ``""``;
* a value of the wrong JSON type is an error;
* YAML 1.1 scalars: ``y/yes/on`` are true, ``n/no/off`` false; timestamps stay strings;
* go-yaml refuses documents with excessive aliasing (a "YAML bomb");
* only a file's first YAML document is decoded: a later one (after ``---``) is never even
  parsed (``Document.later_document`` says where one starts, for a warning).

The result is a list of ``Field`` in the order ``encoding/json`` would apply them.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
import json.scanner
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml
import yaml.nodes

from masqctl.errors import ConfigError

# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Located:
    """A decoded value with the 1-based line it starts on."""

    value: Any
    line: int | None


@dataclass(frozen=True)
class Entry:
    """One key/value pair of a mapping, in the order Go applies them; ``line`` is the key's."""

    key: str
    value: Located
    line: int | None = None


class Mapping(list):
    """A decoded mapping: a list of ``Entry`` in document order."""


@dataclass(frozen=True)
class Document:
    format: str                       # "yaml" | "json"
    entries: tuple[Entry, ...] | None  # None: the document is JSON null (an empty file)
    top_type: str                      # "object", "null", "array", "string", ...
    top_line: int | None
    duplicates: tuple[tuple[str, int | None, int | None], ...] = ()  # (key, lost line, won line)
    later_document: tuple[int, int | None] | None = None  # (ordinal, line) of a later non-empty document


CODE_PARSE = "E102"
CODE_TYPE = "E103"

_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" \
            "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def decode_document(name: str, data: bytes) -> Document:
    """Decode ``data`` (the bytes of config file ``name``); raise ``ConfigError`` if Go would."""
    text = data.decode("utf-8", errors="replace") if not data.startswith(b"\xef\xbb\xbf") else None
    if text is not None and text.lstrip(_GO_SPACE).startswith("{"):
        return _decode_json(name, text)
    return _decode_yaml(name, data)


# ---------------------------------------------------------------------------- JSON


class _LineIndex:
    """Line numbers of offsets in one text, in O(log n) each."""

    def __init__(self, text: str):
        self.starts = [0]
        pos = text.find("\n")
        while pos != -1:
            self.starts.append(pos + 1)
            pos = text.find("\n", pos + 1)

    def line(self, index: int) -> int:
        return bisect.bisect_right(self.starts, index)


class _LocatingContext:
    """A context for ``json.scanner.py_make_scanner`` that wraps every value with its line."""

    def __init__(self, text: str):
        self.lines = _LineIndex(text)
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = lambda pairs: Mapping(Entry(k, v, v.line) for k, v in pairs)
        self.parse_float = float
        self.parse_int = int
        self.memo: dict = {}
        self.parse_string = json.decoder.scanstring

        def parse_constant(name):
            raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")

        self.parse_constant = parse_constant
        self.parse_object = self._parse_object
        self.parse_array = self._parse_array
        self.scan_once = json.scanner.py_make_scanner(self)

    def _wrap(self, scan_once):
        def scan(s, idx):
            value, end = scan_once(s, idx)
            return Located(value, self.lines.line(idx)), end
        return scan

    def _parse_object(self, s_and_end, strict, scan_once, object_hook, object_pairs_hook,
                      memo=None):
        return json.decoder.JSONObject(s_and_end, strict, self._wrap(scan_once), object_hook,
                                       object_pairs_hook, memo)

    def _parse_array(self, s_and_end, scan_once):
        return json.decoder.JSONArray(s_and_end, self._wrap(scan_once))


def _decode_json(name: str, text: str) -> Document:
    ctx = _LocatingContext(text)
    line_of = ctx.lines.line
    start = len(text) - len(text.lstrip(_GO_SPACE))
    try:
        value, end = ctx.scan_once(text, start)
    except StopIteration as exc:
        raise ConfigError(f"not valid JSON: unexpected input at line {line_of(exc.value)}",
                          file=name, line=line_of(exc.value), code=CODE_PARSE,
                          hint="fix the JSON syntax, or write the file as YAML") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", file=name, line=exc.lineno,
                          code=CODE_PARSE, hint="fix the JSON syntax, or write the file as YAML") from None
    except ValueError as exc:
        raise ConfigError(f"not valid JSON: {exc}", file=name, code=CODE_PARSE) from None
    except RecursionError:
        raise ConfigError("not valid JSON: nested too deeply", file=name, code=CODE_PARSE) from None
    rest = text[end:].strip(_GO_SPACE)
    if rest:
        line = line_of(end + (len(text[end:]) - len(text[end:].lstrip(_GO_SPACE))))
        raise ConfigError(f"not valid JSON: invalid character {rest[0]!r} after top-level value",
                          file=name, line=line, code=CODE_PARSE) from None
    top_line = line_of(start)
    if not isinstance(value, Mapping):  # cannot happen: the text starts with "{"
        return Document("json", None, json_type(value), top_line)
    # Go applies an object's keys in document order.
    entries = tuple(value)
    return Document("json", entries, "object", top_line, _duplicates(entries))


def _duplicates(entries: tuple[Entry, ...]) -> tuple:
    seen: dict[str, Entry] = {}
    dups = []
    for e in entries:
        if e.key in seen:
            dups.append((e.key, seen[e.key].line, e.line))
        seen[e.key] = e
    return tuple(dups)


# ---------------------------------------------------------------------------- YAML

_PLAIN = "!masqctl/plain"
_TAG = "tag:yaml.org,2002:"

# go-yaml v2's resolve table (YAML 1.1), not PyYAML's: "y"/"n" are booleans too.
_BOOLS = {**{w: True for w in ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")},
          **{w: False for w in ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")}}
_NULLS = {"", "~", "null", "Null", "NULL"}
_INT = re.compile(r"[-+]?(0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)")
_OCTAL = re.compile(r"[-+]?0[0-7_]+")  # go-yaml: a leading 0 means octal
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {".inf": math.inf, ".Inf": math.inf, ".INF": math.inf, "+.inf": math.inf,
                   "+.Inf": math.inf, "+.INF": math.inf, "-.inf": -math.inf, "-.Inf": -math.inf,
                   "-.INF": -math.inf, ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan}


class _Resolver(yaml.resolver.BaseResolver):
    """Mark plain scalars so they are resolved with go-yaml's rules, not PyYAML's."""

    def resolve(self, kind, value, implicit):
        if kind is yaml.nodes.ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)


try:  # libyaml parses a 10 MB file in a fraction of the time
    from yaml.cyaml import CParser as _Parser

    class _Loader(_Parser, yaml.constructor.BaseConstructor, _Resolver):
        def __init__(self, stream):
            _Parser.__init__(self, stream)
            yaml.constructor.BaseConstructor.__init__(self)
            _Resolver.__init__(self)
except ImportError:  # pragma: no cover - pure-Python PyYAML
    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,  # type: ignore[no-redef]
                  yaml.composer.Composer, yaml.constructor.BaseConstructor, _Resolver):
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.BaseConstructor.__init__(self)
            _Resolver.__init__(self)


def _scalar(node: yaml.nodes.ScalarNode) -> Any:
    """Resolve a scalar as go-yaml v2 does when decoding into interface{}."""
    value, tag = node.value, node.tag
    if tag == _PLAIN:
        if value in _BOOLS:
            return _BOOLS[value]
        if value in _NULLS:
            return None
        if _INT.fullmatch(value):
            try:
                digits = value.replace("_", "")
                return int(digits, 8) if _OCTAL.fullmatch(value) else int(digits, 0)
            except ValueError:
                pass
        if _FLOAT.fullmatch(value):
            try:
                return float(value.replace("_", ""))
            except ValueError:
                pass
        if value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
        return value  # timestamps stay strings in go-yaml v2 for interface{} targets
    if tag in (_TAG + "str", "?"):
        return value
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        if value in _BOOLS:
            return _BOOLS[value]
        raise _TypeProblem(f"cannot decode {value!r} as !!bool", node)
    if tag == _TAG + "int":
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            raise _TypeProblem(f"cannot decode {value!r} as !!int", node) from None
    if tag == _TAG + "float":
        try:
            return float(value.replace("_", ""))
        except ValueError:
            raise _TypeProblem(f"cannot decode {value!r} as !!float", node) from None
    return value  # other tags: go-yaml keeps the text


class _TypeProblem(Exception):
    def __init__(self, message, node):
        super().__init__(message)
        self.node = node


def _line(node) -> int | None:
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else None


# go-yaml v2 refuses a document whose decoding is mostly alias expansion.
def _allowed_alias_ratio(decode_count: int) -> float:
    low, high = 400_000, 4_000_000
    if decode_count <= low:
        return 0.99
    if decode_count >= high:
        return 0.10
    return 0.99 - 0.89 * (decode_count - low) / (high - low)


def _check_aliasing(name: str, root) -> None:
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def children(n):
        if isinstance(n, yaml.nodes.MappingNode):
            for k, v in n.value:
                yield k
                yield v
        elif isinstance(n, yaml.nodes.SequenceNode):
            yield from n.value

    def size(n) -> int:  # nodes go-yaml decodes for n, aliases expanded
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise ConfigError("not valid YAML: an anchor's value contains itself", file=name,
                              line=_line(n), code=CODE_PARSE)
        in_progress.add(key)
        total = 1 + sum(size(child) for child in children(n))
        in_progress.discard(key)
        sizes[key] = total
        return total

    def excessive() -> bool:
        return alias > 100 and decode > 1000 and alias / decode > _allowed_alias_ratio(decode)

    decode = alias = 0
    seen: set[int] = set()
    work = [root]
    while work and not excessive():
        n = work.pop()
        if id(n) in seen:      # a later occurrence of an anchored node: an alias
            decode += 1 + size(n)
            alias += size(n)
            continue
        seen.add(id(n))
        decode += 1
        work.extend(reversed(list(children(n))))
    if excessive():
        raise ConfigError("not valid YAML: document contains excessive aliasing "
                          f"({decode} nodes once aliases are expanded)", file=name,
                          code=CODE_PARSE, hint="remove the anchors and aliases (a YAML bomb?)")


def _to_value(node, name: str) -> Any:
    """A YAML node as the JSON-able value go-yaml + sigs.k8s.io/yaml produce (lines dropped)."""
    if isinstance(node, yaml.nodes.ScalarNode):
        v = _scalar(node)
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            raise _TypeProblem(f"{node.value} cannot be represented in JSON", node)
        return v
    if isinstance(node, yaml.nodes.SequenceNode):
        return [Located(_to_value(item, name), _line(item)) for item in node.value]
    return Mapping(Entry(_key_text(k), Located(_to_value(v, name), _line(v)), _line(k))
                   for k, v in _mapping_pairs(node))


def _key_text(node) -> str:
    if not isinstance(node, yaml.nodes.ScalarNode):
        raise _TypeProblem("a mapping key must be a scalar", node)
    v = _scalar(node)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _mapping_pairs(node: yaml.nodes.MappingNode):
    """Pairs in document order with ``<<`` merge keys expanded in place (go-yaml v2 order)."""
    for k, v in node.value:
        if isinstance(k, yaml.nodes.ScalarNode) and k.value == "<<" and k.tag in (_PLAIN, _TAG + "merge"):
            sources = v.value if isinstance(v, yaml.nodes.SequenceNode) else [v]
            for src in sources:
                if not isinstance(src, yaml.nodes.MappingNode):
                    raise _TypeProblem("map merge requires map or sequence of maps as the value", src)
                yield from _mapping_pairs(src)
            continue
        yield k, v


_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _last_line(data: bytes) -> int:
    """The number of the file's last line. libyaml puts the end of a stream that does not end
    with a line break on a line of its own, one past the file: an error "at the end" is
    named by the last line instead."""
    text = data.decode("utf-8", "replace")
    breaks = len(_YAML_BREAK.findall(text))
    ends_with_break = text.endswith(("\r", "\n", "\x85", "\u2028", "\u2029"))
    return max(1, breaks if ends_with_break else breaks + 1)


def _decode_yaml(name: str, data: bytes) -> Document:
    try:
        return _decode_yaml_checked(name, data)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = min(mark.line + 1, _last_line(data)) if mark is not None else None
        raise ConfigError(f"not valid YAML: {exc.problem or exc.context}", file=name, line=line,
                          code=CODE_PARSE, hint="fix the YAML syntax (indentation, quotes, colons)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=name, code=CODE_PARSE,
                          hint="the file must be UTF-8 text in YAML or JSON") from None
    except _TypeProblem as exc:
        raise ConfigError(f"not valid YAML for JSON: {exc}", file=name, line=_line(exc.node),
                          code=CODE_PARSE) from None
    except RecursionError:
        raise ConfigError("not valid YAML: nested too deeply", file=name, code=CODE_PARSE) from None


def _decode_yaml_checked(name: str, data: bytes) -> Document:
    loader = _Loader(data)
    try:
        node = _first_node(loader)
        later = _later_document(loader) if not getattr(loader, "stream_ended", False) else None
    finally:
        loader.dispose()
    if node is None:
        return Document("yaml", None, "null", None, later_document=later)
    if getattr(loader, "saw_alias", False):
        _check_aliasing(name, node)
    if isinstance(node, yaml.nodes.SequenceNode):
        return Document("yaml", None, "array", _line(node), later_document=later)
    if isinstance(node, yaml.nodes.ScalarNode):
        return Document("yaml", None, json_type(_scalar(node)), _line(node), later_document=later)
    entries = _to_value(node, name)
    # go-yaml keeps the last of equal keys; sigs.k8s.io/yaml re-encodes the map sorted by key.
    last = {e.key: e for e in entries}
    ordered = tuple(last[k] for k in sorted(last, key=lambda s: s.encode("utf-8", "surrogatepass")))
    return Document("yaml", ordered, "object", _line(node), _duplicates(tuple(entries)), later)


def _later_document(loader) -> tuple[int, int | None] | None:
    """``(ordinal, line)`` of the first document after the first that holds anything, or None.

    go-yaml's ``Unmarshal`` stops after the first document, so whatever follows is lost without
    an error, even text that is not valid YAML; documents that are empty (a trailing ``---``,
    comments only, a bare ``null``) lose nothing. Read as parser events, without building nodes.
    """
    ev = yaml.events
    ordinal, line = 1, None
    try:
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, ev.StreamEndEvent):
                return None
            if isinstance(event, ev.DocumentStartEvent):
                ordinal += 1
                line = event.start_mark.line + 1
                continue
            if isinstance(event, ev.DocumentEndEvent):
                continue
            if (isinstance(event, ev.ScalarEvent) and event.anchor is None and event.tag is None
                    and event.implicit[0] and not event.style and event.value in _NULLS):
                continue       # the whole document is one null scalar
            return ordinal, line if line is not None else event.start_mark.line + 1
    except yaml.YAMLError as exc:  # not even valid YAML: the agent never parses it either
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if line is None and mark is not None:
            line = mark.line + 1
        return max(ordinal, 2), line


MAX_DEPTH = 200


def _first_node(loader):
    """The first document's node (go-yaml v2 decodes only the first document).

    Composed here from parser events, without recursion, so that a document nested
    thousands of levels deep is refused cleanly instead of exhausting the stack.
    """
    ev = yaml.events
    anchors: dict[str, yaml.nodes.Node] = {}
    stack: list[tuple[yaml.nodes.Node, list]] = []
    root = None
    while True:
        event = loader.get_event()
        if isinstance(event, (ev.StreamStartEvent, ev.DocumentStartEvent)):
            continue
        if isinstance(event, ev.StreamEndEvent):
            loader.stream_ended = True
            return root
        if isinstance(event, ev.DocumentEndEvent):
            return root
        if isinstance(event, ev.AliasEvent):
            if event.anchor not in anchors:
                raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}",
                                                  event.start_mark)
            node = anchors[event.anchor]
            loader.saw_alias = True
        elif isinstance(event, ev.ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(yaml.nodes.ScalarNode, event.value, event.implicit)
            node = yaml.nodes.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        elif isinstance(event, (ev.SequenceStartEvent, ev.MappingStartEvent)):
            is_seq = isinstance(event, ev.SequenceStartEvent)
            kind = yaml.nodes.SequenceNode if is_seq else yaml.nodes.MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(kind, None, event.implicit)
            node = kind(tag, [], event.start_mark, event.end_mark, flow_style=event.flow_style)
            if event.anchor is not None:
                anchors[event.anchor] = node
            if len(stack) >= MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                  event.start_mark)
            _attach(stack, node)
            stack.append((node, []))
            continue
        elif isinstance(event, (ev.SequenceEndEvent, ev.MappingEndEvent)):
            node, pending = stack.pop()
            node.end_mark = event.end_mark
            if not stack:
                root = node
            continue
        else:  # pragma: no cover - no other event kinds exist
            continue
        if isinstance(event, ev.ScalarEvent) and event.anchor is not None:
            anchors[event.anchor] = node
        if not stack:
            root = node
        else:
            _attach(stack, node)


def _attach(stack, node) -> None:
    """Add ``node`` to the collection on top of ``stack`` (mappings take key, value pairs)."""
    if not stack:
        return
    parent, pending = stack[-1]
    if isinstance(parent, yaml.nodes.SequenceNode):
        parent.value.append(node)
    elif pending:
        parent.value.append((pending.pop(), node))
    else:
        pending.append(node)


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value, as Go's errors name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    return "array"
