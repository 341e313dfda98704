"""The user's config file and its ConfigMap: read what is there, write the edited text, build the object.

Pure: text in, text out. The file is decoded with the engine (Go's rules), so what masqctl
reads is what the agent reads; the new text is written in the plain YAML shape the AKS
documentation shows and is validated again by the caller (``masqctl.analysis.plan``) before
anything is written.

Editing keeps what it can of the old file: the spelling of the CIDR key, the other keys (also
keys the agent ignores, unless asked to drop them), the comments at the top of the file and
the comments after each CIDR that stays. Other comments cannot be placed in the new text;
``EditedFile.notes`` says which lines were lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from masqctl.cluster.yamlio import dump_yaml as to_yaml  # noqa: F401 - re-exported
from masqctl.engine.decode import Document, Located, Mapping, decode_document
from masqctl.engine.fields import FIELDS, go_fold

CIDR_KEY = "nonMasqueradeCIDRs"

# The labels the AKS documentation and add-on manager conventions give the user ConfigMap.
CONVENTIONAL_LABELS = {
    "component": "ip-masq-agent",
    "kubernetes.io/cluster-service": "true",
    "addonmanager.kubernetes.io/mode": "EnsureExists",
}


@dataclass(frozen=True)
class UserEntry:
    """One top-level key of the user file as written (``value`` decoded with Go's rules)."""

    key: str
    line: int | None
    value: object            # plain Python (lists, dicts, scalars); for the CIDR key: list[(text, line)]
    known: str | None        # the canonical field it sets for the flavour, None if the agent ignores it


@dataclass(frozen=True)
class EditedFile:
    text: str
    cidrs: tuple[str, ...]
    notes: tuple[str, ...]


def plain(located) -> object:
    """A decoded value (``Located``/``Mapping``) as plain Python data."""
    value = located.value if isinstance(located, Located) else located
    if isinstance(value, Mapping):
        return {e.key: plain(e.value) for e in value}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def read_entries(name: str, text: str | None, flavor: str) -> list[UserEntry]:
    """The top-level entries of a user file (raises the engine's ``ConfigError`` if it cannot be decoded)."""
    if text is None:
        return []
    doc: Document = decode_document(name, text.encode("utf-8"))
    if doc.entries is None:
        return []
    fields = FIELDS[flavor]
    by_fold = {go_fold(f): f for f in fields}
    out = []
    for e in doc.entries:
        known = e.key if e.key in fields else by_fold.get(go_fold(e.key))
        if known == CIDR_KEY and isinstance(e.value.value, list) and not isinstance(e.value.value, Mapping):
            value = [(item.value, item.line) for item in e.value.value]
        else:
            value = plain(e.value)
        out.append(UserEntry(e.key, e.line, value, known))
    return out


_ITEM_COMMENT = re.compile(r"""^\s*-\s*(?:'[^']*'|"[^"]*"|[^#'"\s]+)\s+(#.*)$""")


def _item_comment(lines: list[str], line: int | None) -> str | None:
    if not line or line > len(lines):
        return None
    m = _ITEM_COMMENT.match(lines[line - 1])
    return m.group(1).rstrip() if m else None


def _quote_if_needed(cidr: str) -> str:
    """A CIDR as a YAML scalar that reads back as the same string."""
    return yaml.safe_dump([cidr], default_flow_style=False, width=10_000).strip()[2:]


def edit_user_file(name: str, text: str | None, flavor: str, cidrs: list[str], *,
                   drop_keys: frozenset[str] = frozenset(), link_local: bool | None = None) -> EditedFile:
    """The user file ``name`` with its CIDR list replaced by ``cidrs`` (in that order).

    ``drop_keys`` are keys (as written) to leave out; ``link_local`` not None sets
    ``masqLinkLocal``. Other keys keep their values and their order after the CIDR list.
    """
    entries = read_entries(name, text, flavor)
    lines = (text or "").splitlines()
    notes: list[str] = []
    cidr_spelling = CIDR_KEY
    item_comments: dict[str, str] = {}
    kept_lines: set[int] = set()
    for e in entries:
        if e.known == CIDR_KEY and e.key not in drop_keys:
            cidr_spelling = e.key
            if isinstance(e.value, list):
                for item, line in e.value:
                    comment = _item_comment(lines, line)
                    if comment and isinstance(item, str) and item in cidrs:
                        item_comments.setdefault(item, comment)
                        kept_lines.add(line)
    first_key_line = min((e.line for e in entries if e.line), default=len(lines) + 1)
    header = [ln.rstrip() for ln in lines[:first_key_line - 1] if ln.strip().startswith("#")]
    dropped_comments = [i + 1 for i, ln in enumerate(lines)
                        if i + 1 >= first_key_line and "#" in ln and i + 1 not in kept_lines
                        and (ln.strip().startswith("#") or _item_comment(lines, i + 1))]
    if dropped_comments:
        notes.append(f"comments on line(s) {', '.join(map(str, dropped_comments))} of the old {name} "
                     "are not carried over (only the top comments and those after a kept CIDR are)")
    if text is not None and text.lstrip().startswith("{"):
        notes.append(f"the old {name} was JSON; the new one is written as YAML (the agent reads both)")

    out = list(header)
    if cidrs:
        out.append(f"{cidr_spelling}:")
        for c in cidrs:
            comment = item_comments.get(c)
            out.append(f"  - {_quote_if_needed(c)}" + (f"  {comment}" if comment else ""))
    else:
        out.append(f"{cidr_spelling}: []")
    link_local_written = False
    seen_cidr_key = False
    for e in entries:
        if e.key in drop_keys:
            continue
        if e.known == CIDR_KEY:
            if seen_cidr_key or e.key == cidr_spelling:
                seen_cidr_key = True
                continue
            # another spelling of the same field: the edited list replaces them all
            notes.append(f"key {e.key!r} (line {e.line}) sets the same field as {cidr_spelling!r}; "
                         "the new file has one list")
            continue
        value = e.value
        if e.known == "masqLinkLocal" and link_local is not None:
            if link_local_written:
                continue
            value = link_local
            link_local_written = True
        out.extend(_dump_entry(e.key, value))
    if link_local is not None and not link_local_written:
        out.extend(_dump_entry("masqLinkLocal", link_local))
    new_text = "\n".join(out) + "\n"
    return EditedFile(new_text, tuple(cidrs), tuple(notes))


def _dump_entry(key: str, value: object) -> list[str]:
    dumped = yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False, width=10_000,
                            allow_unicode=True)
    return dumped.rstrip("\n").splitlines()


# --------------------------------------------------------------------------- the ConfigMap object


def configmap_object(namespace: str, name: str, *, data: dict[str, str], labels: dict[str, str],
                     annotations: dict[str, str], binary_data: dict[str, str] | None = None) -> dict:
    """A ConfigMap as the API takes it (server-set fields left out)."""
    meta: dict = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    obj: dict = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}
    if binary_data:
        obj["binaryData"] = dict(binary_data)
    return obj


def with_conventional_labels(labels: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """``labels`` plus the conventional ones; notes name every value that changes."""
    out = dict(labels)
    notes = []
    for k, v in CONVENTIONAL_LABELS.items():
        if k in out and out[k] != v:
            notes.append(f"label {k} changes from {out[k]!r} to {v!r} (the convention for the user ConfigMap)")
        out[k] = v
    return out, notes
