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
"""

from __future__ import annotations

import json
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


def _plain(value: str) -> Any:
    try:
        return _PLAIN_CACHE[value]
    except KeyError:
        pass
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


def load_yaml_documents(name: str, text: str) -> list[Any]:
    """Every document of a YAML stream as plain values (one loop over the parser's events, no
    recursion; the hot path of reading a large ``pods.yaml``)."""
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
                    if len(stack) >= MAX_DEPTH:
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
    text = decode_text(name, data)
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
