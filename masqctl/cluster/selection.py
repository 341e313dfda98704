"""Which nodes ``--nodes`` selects: one pure implementation for live gathering and for snapshots.

``--nodes`` is names (``a,b``), a Kubernetes label selector (``agentpool=sys``), or a sample of
N nodes (``5``); without it, every Linux node. Live, the selector is sent to the API server;
on a bundle it is evaluated here, with the API server's own grammar and matching rules, so the
same text selects the same nodes either way and a selector the API server would refuse is
refused here (before anything is read) with the same reason.

Label selector grammar (``k8s.io/apimachinery/pkg/labels``), requirements joined by ``,`` (AND):

* ``k=v``, ``k==v`` (the label exists with this value), ``k!=v`` (absent, or another value);
* ``k in (a,b)`` (exists with one of the values), ``k notin (a,b)`` (absent, or none of them);
* ``k`` (exists), ``!k`` (absent);
* ``k>N``, ``k<N`` (exists and is an integer greater/less than N).

A key is a qualified name (``[DNS-subdomain/]name``, name at most 63 characters of
``[A-Za-z0-9_.-]`` starting and ending alphanumeric); a value is empty or at most 63 such
characters. Blanks (space, tab, CR, LF) separate tokens and are otherwise ignored. An empty value
is allowed (``k=``, ``k in ()``, ``k in (a,)``). ``in`` and ``notin`` are operators only after a
key; elsewhere they are plain words (``in in (in)`` is valid).

The sample is deterministic: nodes sorted by name, grouped by node pool (label
``kubernetes.azure.com/agentpool``, else ``agentpool``), then taken round-robin over the pools in
pool-name order, so every pool is represented before any pool gets a second node.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Collection, Iterable, Mapping, Sequence

from masqctl.errors import UsageError

if TYPE_CHECKING:   # only for annotations: the snapshot model is not needed to select nodes
    from masqctl.cluster.model import ClusterSnapshot

E_USAGE = "E208"      # --nodes cannot be used (empty, a sample under 1, a malformed selector)
E_NODES = "E619"      # --nodes names a node the cluster (or snapshot) does not have
E_NONE = "E209"       # --nodes is a label selector that matches no Linux node
SHOWN_NODES = 10      # known node names listed in an E619 message

POOL_LABELS = ("kubernetes.azure.com/agentpool", "agentpool")


# --------------------------------------------------------------------------- label selectors


class SelectorError(ValueError):
    """A label selector the API server would refuse; the message says why (its own words)."""


# Label key and value validation (k8s.io/apimachinery/pkg/util/validation).
_QNAME = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_INT = re.compile(r"[+-]?[0-9]+")
QNAME_MAX = 63
VALUE_MAX = 63
SUBDOMAIN_MAX = 253
_QNAME_RULE = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
               "alphanumeric character")


def label_key_errors(key: str) -> list[str]:
    """Why ``key`` is not a valid label key (empty list: it is one)."""
    errs: list[str] = []
    parts = key.split("/")
    if len(parts) > 2:
        return [f"a qualified name {_QNAME_RULE}, with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix) > SUBDOMAIN_MAX:
                errs.append(f"prefix part must be no more than {SUBDOMAIN_MAX} characters")
            if not _DNS1123_SUBDOMAIN.fullmatch(prefix):
                errs.append("prefix part must be a lowercase DNS subdomain (lower case alphanumeric characters, "
                            "'-' or '.', starting and ending with an alphanumeric character)")
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QNAME_MAX:
        errs.append(f"name part must be no more than {QNAME_MAX} characters")
    if not _QNAME.fullmatch(name):
        errs.append(f"name part {_QNAME_RULE}")
    return errs


def label_value_errors(value: str) -> list[str]:
    """Why ``value`` is not a valid label value (empty list: it is one; the empty string is)."""
    errs: list[str] = []
    if len(value) > VALUE_MAX:
        errs.append(f"must be no more than {VALUE_MAX} characters")
    if value and not _QNAME.fullmatch(value):
        errs.append("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                    "'.', and must start and end with an alphanumeric character")
    return errs


def parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``: the integer, or None when it fails."""
    if not _INT.fullmatch(text):
        return None
    n = int(text)
    return n if -(1 << 63) <= n < (1 << 63) else None


# Operators, named as the API server names them in its messages.
EXISTS, DOES_NOT_EXIST = "exists", "!"
IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GT, LT = "in", "notin", "=", "==", "!=", "gt", "lt"
_BINARY = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GT, LT)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str
    values: tuple[str, ...] = ()      # sorted, without repeats (as the API server stores them)

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        if self.op in (IN, EQUALS, DOUBLE_EQUALS):
            return has and labels[self.key] in self.values
        if self.op in (NOT_IN, NOT_EQUALS):
            return not has or labels[self.key] not in self.values
        if self.op == EXISTS:
            return has
        if self.op == DOES_NOT_EXIST:
            return not has
        if self.op in (GT, LT):
            if not has or len(self.values) != 1:
                return False
            have, want = parse_int64(labels[self.key]), parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if self.op == GT else have < want
        return False

    def __str__(self) -> str:
        if self.op == EXISTS:
            return self.key
        if self.op == DOES_NOT_EXIST:
            return f"!{self.key}"
        if self.op in (IN, NOT_IN):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        sym = {GT: ">", LT: "<"}.get(self.op, self.op)
        return f"{self.key}{sym}{self.values[0] if self.values else ''}"


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector: every requirement must match (no requirement: every node)."""

    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# Tokens of the selector lexer.
_EOS, _IDENT, _OPEN, _CLOSE, _COMMA, _NOT, _EQ, _DEQ, _NEQ, _GT, _LT, _IN, _NOTIN = range(13)
_SYMBOLS = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "<": _LT, "!=": _NEQ,
            "(": _OPEN, "in": _IN, "notin": _NOTIN}
_SPECIAL = frozenset("=!(),><")
_BLANK = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[int, str]]:
    """The selector's tokens, ending with end-of-string. A NUL ends the text, as in the Go lexer."""
    text = text.split("\0", 1)[0]
    out: list[tuple[int, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _BLANK:
            i += 1
        if i >= n:
            out.append((_EOS, ""))
            return out
        if text[i] in _SPECIAL:
            # the longest run of special characters that is still a known symbol
            j, tok = i, None
            while j < n and text[j] in _SPECIAL and text[i:j + 1] in _SYMBOLS:
                j += 1
                tok = text[i:j]
            assert tok is not None      # every single special character is a symbol
            out.append((_SYMBOLS[tok], tok))
            i = j
            continue
        j = i
        while j < n and text[j] not in _SPECIAL and text[j] not in _BLANK:
            j += 1
        word = text[i:j]
        out.append((_SYMBOLS.get(word, _IDENT), word))
        i = j


class _Parser:
    def __init__(self, text: str):
        self.items = _lex(text)
        self.pos = 0

    # In a value position, "in" and "notin" are plain words.
    def peek(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        if values and tok in (_IN, _NOTIN):
            tok = _IDENT
        return tok, lit

    def take(self, values: bool = True) -> tuple[int, str]:
        item = self.peek(values)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok == _EOS:
                return reqs
            if tok not in (_IDENT, _NOT):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except SelectorError as e:
                raise SelectorError(f"unable to parse requirement: {e}") from None
            tok, lit = self.take()
            if tok == _EOS:
                return reqs
            if tok != _COMMA:
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.peek()
            if tok not in (_IDENT, _NOT):
                raise SelectorError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        op = None
        tok, key = self.take()
        if tok == _NOT:
            op = DOES_NOT_EXIST
            tok, key = self.take()
        if tok != _IDENT:
            raise SelectorError(f"found '{key}', expected: identifier")
        _check_key(key)
        if self.peek()[0] in (_EOS, _COMMA) and op is None:
            op = EXISTS
        if op is not None:          # "!k" followed by anything but , or the end fails in parse()
            return Requirement(key, op)
        tok, lit = self.take(values=False)
        ops = {_IN: IN, _NOTIN: NOT_IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _NEQ: NOT_EQUALS, _GT: GT, _LT: LT}
        if tok not in ops:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY)}")
        op = ops[tok]
        values = self.value_set() if op in (IN, NOT_IN) else self.exact_value()
        return _requirement(key, op, values)

    def value_set(self) -> set[str]:
        tok, lit = self.take()
        if tok != _OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok == _CLOSE:            # "()": one empty value
            self.take()
            return {""}
        if tok not in (_IDENT, _COMMA):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != _CLOSE:
            raise SelectorError(f"found '{lit}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self.peek()
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:        # "(,", ",,", ",)": empty values
                if not values:
                    values.add("")
                tok2, _ = self.peek()
                if tok2 == _CLOSE:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    self.take()
                    values.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, lit = self.peek()
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.take()
        if tok == _IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def _check_key(key: str) -> None:
    errs = label_key_errors(key)
    if errs:
        raise SelectorError(f"invalid label key {key!r}: {'; '.join(errs)}")


def _requirement(key: str, op: str, values: set[str]) -> Requirement:
    problems = []
    ordered = tuple(sorted(values))
    if op in (GT, LT):
        if len(ordered) != 1:
            problems.append("for 'gt', 'lt' operators, exactly one value is required")
        for v in ordered:
            if parse_int64(v) is None:
                problems.append(f"invalid value {v!r}: for 'gt', 'lt' operators, the value must be an integer")
    for v in ordered:
        errs = label_value_errors(v)
        if errs:
            problems.append(f"invalid value {v!r} for key {key!r}: {'; '.join(errs)}")
    if problems:
        raise SelectorError(problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]")
    return Requirement(key, op, ordered)


def parse_label_selector(text: str) -> LabelSelector:
    """``text`` as the API server parses a ``labelSelector``; ``SelectorError`` when it refuses it.

    The empty text is the selector of every object (the API server's reading; ``--nodes`` refuses
    it before it gets here)."""
    reqs = _Parser(text).parse()
    reqs.sort(key=lambda r: r.key)           # stable: the API server sorts by key too
    return LabelSelector(text, tuple(reqs))


def looks_like_selector(text: str) -> bool:
    """``--nodes`` text that is a label selector rather than node names: it has an operator
    character (node names never do) or the word ``in``/``notin`` after a blank."""
    return any(c in _SPECIAL - {","} for c in text) or re.search(r"[ \t\r\n](?:in|notin)(?:[ \t\r\n]|$)",
                                                                   text) is not None


def check_selector(text: str) -> LabelSelector:
    """``--nodes SELECTOR`` parsed, or E208 naming it with the API server's reason."""
    try:
        return parse_label_selector(text)
    except SelectorError as e:
        raise UsageError(f"not a valid label selector: {e}", input=f"--nodes {shlex.quote(text)}", code=E_USAGE,
                         hint="e.g. agentpool=system, 'kubernetes.azure.com/mode in (system,user)', "
                              "!kubernetes.azure.com/spot; a comma means AND") from None


# --------------------------------------------------------------------------- --nodes


@dataclass(frozen=True)
class NodeSelection:
    """Which nodes to capture: names, a label selector, or a sample of N. Empty: all Linux nodes.

    ``choose`` applies it, the same way live and on a snapshot. A selector the API server would
    refuse, or a sample under 1, is refused here (E208)."""

    names: tuple[str, ...] = ()
    selector: str | None = None
    sample: int | None = None

    def __post_init__(self) -> None:
        if self.sample is not None and self.sample < 1:
            raise UsageError("a sample must be at least 1 node", input=f"--nodes {self.sample}", code="E208")
        if self.selector is not None:
            if not self.selector.strip():
                raise UsageError("an empty label selector selects nothing in particular; give names, a selector "
                                 "or a number", input=f"--nodes {self.selector!r}", code="E208")
            check_selector(self.selector)

    @property
    def all(self) -> bool:
        return not self.names and self.selector is None and self.sample is None


def parse_node_selection(text: str | None) -> NodeSelection:
    """``--nodes``: ``a,b`` (names), a Kubernetes label selector (``agentpool=sys``,
    ``agentpool in (a,b)``: text with one of ``= ! ( ) < >``, or the word ``in``/``notin``), or
    ``5`` (a sample of 5 nodes). ``None`` (no ``--nodes``): every Linux node. Empty or blank
    text, a sample under 1 and a malformed selector are E208."""
    if text is None:
        return NodeSelection()
    shown = text.strip()
    if not shown:
        raise UsageError("is empty; give node names (a,b), a label selector (agentpool=system) or a number, "
                         "or leave --nodes out for every Linux node", input=f"--nodes {text!r}", code="E208")
    if _INT.fullmatch(shown):
        n = int(shown)
        if n < 1:
            raise UsageError("a sample must be at least 1 node", input=f"--nodes {shown}", code="E208")
        return NodeSelection(sample=n)
    if looks_like_selector(shown):
        return NodeSelection(selector=shown)
    names = tuple(n.strip() for n in shown.split(",") if n.strip())
    if not names:
        raise UsageError("no node names given", input=f"--nodes {shown}", code="E208")
    return NodeSelection(names=names)


# --------------------------------------------------------------------------- choosing nodes


@dataclass(frozen=True)
class NodeRef:
    """What selection needs of a node. ``labels`` None: not known (no Node object)."""

    name: str
    labels: Mapping[str, str] | None = None
    os: str = "linux"

    @property
    def linux(self) -> bool:
        return self.os == "linux"

    @property
    def pool(self) -> str:
        labels = self.labels or {}
        return next((labels[k] for k in POOL_LABELS if labels.get(k)), "")


def node_ref(node: Mapping) -> NodeRef:
    """A ``NodeRef`` of a Node object as the API server sends it (OS from the ``kubernetes.io/os``
    label, then ``beta.kubernetes.io/os``, then ``status.nodeInfo.operatingSystem``; default linux)."""
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    labels = labels if isinstance(labels, dict) else {}
    info = ((node.get("status") or {}).get("nodeInfo") or {})
    os_name = labels.get("kubernetes.io/os") or labels.get("beta.kubernetes.io/os") or info.get("operatingSystem")
    return NodeRef(str(meta.get("name") or ""), labels, str(os_name or "linux").lower())


def sample(nodes: Iterable[NodeRef], n: int) -> list[str]:
    """``n`` nodes spread over the node pools (see the module doc), sorted by name. Deterministic."""
    pools: dict[str, list[str]] = {}
    for node in sorted(nodes, key=lambda x: x.name):
        pools.setdefault(node.pool, []).append(node.name)
    out: list[str] = []
    queues = [pools[p] for p in sorted(pools)]
    i = 0
    while len(out) < n and any(queues):
        q = queues[i % len(queues)]
        if q:
            out.append(q.pop(0))
        i += 1
    return sorted(out)


@dataclass(frozen=True)
class Chosen:
    """The outcome of ``--nodes``: the Linux nodes selected, named nodes that are not Linux
    (they run no masquerade agent), and notes for the report."""

    names: tuple[str, ...]
    not_linux: tuple[tuple[str, str], ...] = ()        # (name, os)
    notes: tuple[str, ...] = field(default=())


def _unknown(unknown: list[str], known: Sequence[str], where: str, selection: NodeSelection,
             extra: str = "") -> UsageError:
    shown = ", ".join(known[:SHOWN_NODES]) + (f", … ({len(known)} in all)" if len(known) > SHOWN_NODES else "")
    return UsageError(f"no node named {', '.join(unknown)} in {where}; nodes: {shown or 'none'}{extra}",
                      input=f"--nodes {','.join(selection.names)}", code=E_NODES,
                      hint="node names are as `kubectl get nodes` prints them")


def choose(nodes: Sequence[NodeRef], selection: NodeSelection | None, *, where: str = "the cluster",
           matched: Collection[str] | None = None, nodes_known: bool = True) -> Chosen:
    """The nodes ``selection`` picks among ``nodes``.

    * names: each must be a node (else E619, listing some known ones); a named node that is not
      Linux is reported in ``not_linux`` and not selected;
    * selector: the Linux nodes it matches; ``matched`` is the set the API server returned for it
      (live), else it is evaluated here on the nodes' labels (E208 when labels are unknown);
    * sample: ``sample()`` over the Linux nodes;
    * nothing: every Linux node.

    ``nodes_known`` False: ``nodes`` are only those seen in captures and pods (no Node objects);
    E619 then says so.
    """
    by_name = {n.name: n for n in nodes if n.name}
    linux = sorted(name for name, n in by_name.items() if n.linux)
    if selection is None or selection.all:
        return Chosen(tuple(linux))
    if selection.names:
        wanted = list(dict.fromkeys(selection.names))
        unknown = [n for n in wanted if n not in by_name]
        if unknown:
            extra = "" if nodes_known else " (no Node objects: only nodes with a capture or an agent pod are known)"
            raise _unknown(unknown, sorted(by_name), where, selection, extra)
        chosen = sorted(n for n in wanted if by_name[n].linux)
        others = tuple((n, by_name[n].os) for n in wanted if not by_name[n].linux)
        left_out = tuple(f"--nodes: {n} is a {os_name} node; it runs no masquerade agent and is left out"
                         for n, os_name in others)
        return Chosen(tuple(chosen), others, left_out)
    if selection.selector is not None:
        text = selection.selector
        if matched is None:
            sel = check_selector(text)
            if not nodes_known:
                raise UsageError("a label selector needs the nodes' labels, and " + where + " has no Node objects "
                                 "(nodes.yaml)", input=f"--nodes {text}", code=E_USAGE,
                                 hint="give node names instead, or add `kubectl get nodes -o yaml` as nodes.yaml")
            chosen = [n for n in linux if sel.matches(by_name[n].labels or {})]
            unlabelled = [n for n in linux if by_name[n].labels is None]
        else:
            chosen = [n for n in linux if n in set(matched)]
            unlabelled = []
        notes: tuple[str, ...] = ()
        if unlabelled:
            notes += (f"--nodes {text}: {', '.join(unlabelled[:SHOWN_NODES])} left out: no Node object, so "
                      "its labels are not known",)
        if not chosen:
            raise UsageError(f"the label selector matches no Linux node of {where}"
                             + (f" ({notes[0].split(': ', 1)[1]})" if notes else ""), input=f"--nodes {text}",
                             code=E_NONE, hint=_label_hint(text, [by_name[n] for n in linux if by_name[n].labels]))
        return Chosen(tuple(chosen), (), notes)
    if selection.sample is not None:
        if selection.sample < 1:
            raise UsageError("a sample must be at least 1 node", input=f"--nodes {selection.sample}", code=E_USAGE)
        return Chosen(tuple(sample([by_name[n] for n in linux], selection.sample)))
    return Chosen(tuple(linux))


def _label_hint(text: str, linux: Sequence[NodeRef]) -> str:
    """What the Linux nodes carry for the keys the selector names (what did not match, and what would)."""
    try:
        keys = list(dict.fromkeys(r.key for r in parse_label_selector(text).requirements))
    except SelectorError:
        keys = []
    parts = []
    for key in keys[:3]:
        values = sorted({(n.labels or {}).get(key) for n in linux if key in (n.labels or {})})
        shown = ", ".join(values[:8]) + (", …" if len(values) > 8 else "")
        parts.append(f"{key} = {shown}" if values else f"{key} on none")
    found = "; ".join(parts)
    return (f"values on the Linux nodes: {found}" if found else f"{len(linux)} Linux node(s) are known") + \
        "; `kubectl get nodes --show-labels` lists the labels"


def snapshot_refs(snapshot: ClusterSnapshot) -> tuple[list[NodeRef], bool]:
    """The snapshot's nodes for ``choose``, and whether they come from Node objects. Without Node
    objects (a bundle without nodes.yaml), the nodes are those with a capture or an agent pod,
    with unknown labels, taken as Linux (an agent ran or was captured there). A capture of a node
    the Node objects do not list (``ClusterSnapshot.unlisted_captures``) is a node the same way."""
    if snapshot.nodes:
        refs = [NodeRef(n.name, dict(n.labels), (n.os or "linux").lower()) for n in snapshot.nodes]
        return refs + [NodeRef(n) for n in snapshot.unlisted_captures()], True
    names = set(snapshot.captures) | {p.node for p in snapshot.pods if p.node}
    return [NodeRef(n) for n in sorted(names)], False


def choose_in_snapshot(snapshot: ClusterSnapshot, selection: NodeSelection | None) -> Chosen:
    """``choose`` over a snapshot (a bundle, or what a live gathering read): the same semantics
    as live gathering, with E619 for unknown names and E208 for a selector on unknown labels."""
    refs, known = snapshot_refs(snapshot)
    return choose(refs, selection, where=f"the snapshot ({snapshot.source})", nodes_known=known)


__all__ = ["NodeSelection", "parse_node_selection", "SelectorError", "Requirement", "LabelSelector", "parse_label_selector", "check_selector",
           "looks_like_selector", "label_key_errors", "label_value_errors", "NodeRef", "node_ref", "sample",
           "Chosen", "choose", "snapshot_refs", "choose_in_snapshot", "E_NODES", "E_NONE", "E_USAGE"]
