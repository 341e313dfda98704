"""Apply a decoded document to the agent's config struct, like Go's ``encoding/json``.

Each flavour knows a set of keys (its struct fields). A document key matches a field
case-insensitively (Go's fold); unknown keys are ignored and reported as warnings. Values
must have the field's JSON type; ``null`` follows Go's rules (bool untouched, list nil,
list item ``""``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from masqctl.engine.decode import CODE_TYPE, Document, Located, Mapping, json_type
from masqctl.engine.godur import parse_duration
from masqctl.engine.model import AZURE_CILIUM, AZURE_V2, CILIUM, TKE, UPSTREAM, ConfigWarning
from masqctl.errors import ConfigError

CIDRS, BOOL, INT, DURATION = "[]string", "bool", "int", "Duration"

_V2_FIELDS = {
    "nonMasqueradeCIDRs": CIDRS,
    "masqLinkLocal": BOOL,
    "masqLinkLocalIPv6": BOOL,
}
_UPSTREAM_FIELDS = {
    "nonMasqueradeCIDRs": CIDRS,
    "cidrLimit": INT,
    "masqLinkLocal": BOOL,
    "masqLinkLocalIPv6": BOOL,
    "resyncInterval": DURATION,
}
FIELDS = {
    AZURE_V2: _V2_FIELDS,
    UPSTREAM: _UPSTREAM_FIELDS,
    TKE: {**_UPSTREAM_FIELDS, "nonMasqueradeSrcCIDRs": CIDRS},
    CILIUM: _V2_FIELDS,           # pkg/ipmasq config: nonMasqueradeCIDRs, masqLinkLocal, masqLinkLocalIPv6
    AZURE_CILIUM: _V2_FIELDS,     # the merger's MasqConfig: the same three
}
# Keys some other flavour knows: a warning names why this one ignores them.
_ELSEWHERE = {
    "resyncInterval": "the azure-v2 agent takes its period only from --resync-interval",
    "cidrLimit": "the azure-v2 agent's limit is fixed at 64 CIDRs per file",
    "nonMasqueradeSrcCIDRs": "only the TKE agent knows source exemptions",
}


def go_fold(name: str) -> str:
    """Go's ``encoding/json`` key folding (ASCII upper-case; Unicode simple folding)."""
    out = []
    for ch in name:
        if ch < "\x80":
            out.append(ch.upper())
        else:
            folded = ch.lower().upper()
            out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


@dataclass(frozen=True)
class FieldValue:
    """A field a file set: ``value`` typed, ``line`` where, ``key`` as spelled."""

    name: str          # canonical field name, e.g. "nonMasqueradeCIDRs"
    key: str           # as written in the file
    line: int | None
    value: Any         # list[Located[str]] | None for lists; bool; int; nanoseconds


def apply_document(file: str, doc: Document, flavor: str) -> tuple[dict[str, FieldValue], list[ConfigWarning]]:
    """The fields ``doc`` sets for ``flavor``; raise ``ConfigError`` on a type error."""
    fields = FIELDS[flavor]
    by_fold = {go_fold(name): name for name in fields}
    warnings: list[ConfigWarning] = []
    if doc.later_document is not None:
        ordinal, line = doc.later_document
        empty = doc.entries is None and doc.top_type == "null"
        warnings.append(ConfigWarning(
            "W106", file, line, None,
            f"YAML document {ordinal} (after ---) is ignored: the agent reads only the first document of a file"
            + ("; the first is empty, so no setting comes from this file" if empty else "")
            + "; put every setting in one document"))
    if doc.entries is None:
        if doc.top_type != "null":
            raise ConfigError(f"the document is a JSON {doc.top_type}, not an object of settings",
                              file=file, line=doc.top_line, code=CODE_TYPE,
                              hint="write keys such as nonMasqueradeCIDRs: at the top level")
        return {}, warnings
    manifest = _manifest_warning(file, doc, flavor, fields, by_fold)
    if manifest is not None:
        warnings.append(manifest)
    for key, lost, won in doc.duplicates:
        warnings.append(ConfigWarning("W102", file, won, key,
                                      f"key {key!r} is set twice (line {lost} and line {won}); "
                                      "the agent uses only the last"))
    result: dict[str, FieldValue] = {}
    first_error: ConfigError | None = None
    for entry in doc.entries:
        name = entry.key if entry.key in fields else by_fold.get(go_fold(entry.key))
        if name is None and manifest is not None and entry.key in _MANIFEST_KEYS:
            continue           # said once by the manifest warning, not as typos
        if name is None:
            other = next((n for n in _ELSEWHERE if go_fold(n) == go_fold(entry.key)), None)
            if other is not None:
                warnings.append(ConfigWarning("W103", file, entry.line, entry.key,
                                              f"key {entry.key!r} is ignored: {_ELSEWHERE[other]}"))
            else:
                warnings.append(ConfigWarning("W101", file, entry.line, entry.key,
                                              f"key {entry.key!r} is not known to the {flavor} agent "
                                              "and is ignored (a typo?)"))
            continue
        if name in result and result[name].key != entry.key:
            warnings.append(ConfigWarning("W102", file, entry.line, entry.key,
                                          f"key {entry.key!r} sets {name} again (also spelled "
                                          f"{result[name].key!r}); the agent uses only the last"))
        try:
            value = _typed(file, name, entry.key, fields[name], entry.value, doc.format)
        except ConfigError as exc:
            first_error = first_error or exc
            continue
        if value is _UNTOUCHED:
            continue
        result[name] = FieldValue(name, entry.key, entry.line, value)
    if first_error is not None:
        raise first_error
    return result, warnings


_UNTOUCHED = object()

# The top-level keys of a Kubernetes object or List, as kubectl writes them.
_MANIFEST_KEYS = ("apiVersion", "kind", "metadata", "data", "binaryData", "immutable", "items")


def _manifest_warning(file: str, doc: Document, flavor: str, fields, by_fold) -> ConfigWarning | None:
    """W105 when the document is a Kubernetes manifest (``kubectl get configmap … -o yaml`` saved
    as the file, or pasted into the data key) rather than the agent's settings: the agent
    ignores its keys as it ignores any unknown key."""
    top = {e.key: e for e in doc.entries}

    def text(key: str) -> str | None:
        e = top.get(key)
        return e.value.value if e is not None and isinstance(e.value.value, str) else None

    kind, api = text("kind"), text("apiVersion")
    if not (kind in ("ConfigMap", "ConfigMapList", "List")
            or (api is not None and (kind is not None or "data" in top or "items" in top))):
        return None
    at = top.get("kind") or top.get("apiVersion") or top.get("data") or top.get("items")
    what = f"a Kubernetes {kind} manifest" if kind else "a Kubernetes manifest"
    ignored = [k for k in _MANIFEST_KEYS if k in top]
    sets_nothing = not any(e.key in fields or go_fold(e.key) in by_fold for e in doc.entries)
    effect = ""
    if sets_nothing:
        effect = ("; no setting comes from this file, and since it exists the defaults do not apply either"
                  if flavor == AZURE_V2 else "; the agent runs its defaults")
    data = top.get("data")
    keys = [e.key for e in data.value.value] if data is not None and isinstance(data.value.value, Mapping) else []
    meta = top.get("metadata")
    meta_text = {e.key: e.value.value for e in meta.value.value if isinstance(e.value.value, str)} \
        if meta is not None and isinstance(meta.value.value, Mapping) else {}
    name = meta_text.get("name")
    ns = f"-n {meta_text['namespace']} " if meta_text.get("namespace") else ""
    if keys:
        key = next((k for k in keys if k.startswith("ip-masq")), keys[0])
        fix = (f"; the agent's file is the value of one data key: save data key {key!r} as the file "
               f"(kubectl {ns}get configmap {name or 'NAME'} -o jsonpath='{{.data.{key.replace('.', chr(92) + '.')}}}')")
    else:
        fix = "; the agent's file is the value of a ConfigMap data key, not the manifest: save that value as the file"
    return ConfigWarning("W105", file, at.line, at.key,
                         f"the file is {what}, not agent settings: the {flavor} agent ignores its keys "
                         + ", ".join(ignored) + effect + fix)


def _type_error(file: str, key: str, line: int | None, what: str, want: str, value: Any) -> ConfigError:
    shown = _show(value)
    return ConfigError(f"{what} is a {json_type(value)}{shown}, the agent needs {want}",
                       file=file, line=line, key=key, value=value if not isinstance(value, list) else None,
                       code=CODE_TYPE)


def _show(value: Any) -> str:
    if isinstance(value, (str, int, float, bool)) and not isinstance(value, list):
        text = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        return f" ({text[:60]})"
    return ""


def _typed(file: str, name: str, key: str, kind: str, located: Located, fmt: str) -> Any:
    value = located.value
    if kind == CIDRS:
        if value is None:
            return None  # Go: null makes the slice nil
        if not isinstance(value, list) or isinstance(value, Mapping):
            raise _type_error(file, key, located.line, f"{key}", "a list of CIDR strings", value)
        items = []
        for i, item in enumerate(value, 1):
            if item.value is None:
                items.append(Located("", item.line))  # Go: null item leaves ""
            elif isinstance(item.value, str):
                items.append(item)
            else:
                raise _type_error(file, key, item.line, f"{key} item {i}", "a string", item.value)
        return items
    if kind == BOOL:
        if value is None:
            return _UNTOUCHED
        if not isinstance(value, bool):
            raise _type_error(file, key, located.line, key, "true or false", value)
        return value
    if kind == INT:
        if value is None:
            return _UNTOUCHED
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(file, key, located.line, key, "an integer", value)
        if isinstance(value, float):
            # JSON 64.0 is refused by Go; YAML 64.0 is re-encoded as 64 and accepted.
            if fmt == "json" or not value.is_integer():
                raise _type_error(file, key, located.line, key, "an integer", value)
            value = int(value)
        if not -(1 << 63) <= value < (1 << 63):
            raise _type_error(file, key, located.line, key, "a 64-bit integer", value)
        return value
    if kind == DURATION:
        text = "" if value is None else value
        if not isinstance(text, str):
            raise _type_error(file, key, located.line, key, 'a duration string such as "60s"', value)
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise ConfigError(f"{key} is not a duration: {exc}", file=file, line=located.line, key=key,
                              value=text, code="E108",
                              hint='write a Go duration such as "60s" or "1m0s"') from None
    raise AssertionError(kind)
