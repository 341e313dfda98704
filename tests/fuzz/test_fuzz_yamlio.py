"""The block-style reader of ``yamlio.load_yaml_documents`` against the events reader
(``load_yaml_events``, libyaml's events): for YAML written the way kubectl writes it, by PyYAML
in several styles, and for that text damaged line by line, both give the same values (same
types, same key order) or the same ``InputError`` (code, input, message)."""

from __future__ import annotations

import os
import random

import pytest
import yaml
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from masqctl.cluster import yamlio
from masqctl.cluster.yamlio import MAX_DEPTH, dump_yaml, load_yaml_documents, load_yaml_events
from masqctl.errors import InputError

# MASQCTL_FUZZ_EXAMPLES=5000 searches harder
EXAMPLES = int(os.environ.get("MASQCTL_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def canon(value):
    """``value`` with its types and key order made explicit (``True == 1``, ``nan != nan``)."""
    if isinstance(value, dict):
        return ("map", tuple((type(k).__name__, k, canon(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("seq", tuple(canon(v) for v in value))
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def outcome(read, text: str):
    try:
        return ("values", canon(read("pods.yaml", text)))
    except InputError as exc:
        return ("error", exc.code, exc.input, exc.message)


def assert_same(text: str) -> None:
    expected = outcome(load_yaml_events, text)
    got = outcome(load_yaml_documents, text)
    assert got == expected, text
    block = yamlio._load_block("pods.yaml", text)
    if currently_in_test_context():
        event("block reader" if block is not None else "events reader")
    if block is not None:   # whatever the block reader gives is what the events reader gives
        assert expected[0] == "values" and canon(block) == expected[1]


# --------------------------------------------------------------------------- values

TRICKY = [
    "", " ", "a ", " a", "yes", "No", "on", "OFF", "y", "n", "~", "null", "Null", "true", "False",
    "0777", "0o17", "0x1F", "0b101", "0b_", "0x_", "+12", "-3", "1_000", "1:20", "-1:30:00", "1e3",
    "1.5", ".5", "-.inf", ".NaN", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "=", "<<", "- a",
    "-a", "--port=8080", "a: b", "a:b", "a:", ":a", "a #b", "a#b", "#a", "?a", "? a", "'", "''",
    '"', "\\", "|", ">", "{}", "[]", "{a: 1}", "[1, 2]", "@x", "`x", "%x", "&a", "*a", "!x", "!!str",
    "---", "...", "--- a", "é", "ünïcödé 東京", "\t", "a\tb", "\x85", "\u2028", "\ufeff", "\x00",
    "\x7f", "\x1b", "\ud7ff", "\ue000", "\U0001f600", "a\nb", "a\n", "a\n\n", "\nb", " a\n b",
    "a \nb", "line1\nline2\n\nline4\n", "x" * 90, "word " * 30, "k8s.io/name: v", "10.224.0.4",
    "10.0.0.0/8", "2026-11-01T08:00:00Z", "True", "0", "00", "-0", "0.0", "1,000", "a, b",
]

ALPHABET = st.sampled_from(list("abcxyz019 -:#'\"\\|>{}[],&*!?%@`~.=\t\n\xa0é東\U0001f600\x85\u2028"))
strings = st.one_of(st.sampled_from(TRICKY), st.text(ALPHABET, max_size=24),
                    st.text(max_size=12))
scalars = st.one_of(strings, st.integers(-10**20, 10**20), st.booleans(), st.none(),
                    st.floats(allow_nan=True, allow_infinity=True))
keys = st.one_of(st.sampled_from(["name", "apiVersion", "k8s-app", "kubernetes.io/os", "a b",
                                  "1", "true", "null", "~", "<<", "- k", "a: b", "'q'", "#k", "k#",
                                  "", " k", "x" * 1100]),
                 st.text(ALPHABET, max_size=10), st.integers(-5, 5), st.booleans())
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(keys, inner, max_size=5)),
                      max_leaves=25)


def kube_list(items, meta=None):
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": meta or {"resourceVersion": ""}}


DUMP_STYLES = st.fixed_dictionaries({
    "indent": st.sampled_from([2, 4]),
    "width": st.sampled_from([20, 80, 1 << 16]),
    "allow_unicode": st.booleans(),
    "default_flow_style": st.sampled_from([False, False, None]),
})


def safe_dump(value, style) -> str:
    try:
        return yaml.safe_dump(value, sort_keys=False, **style)
    except yaml.YAMLError:   # a key PyYAML cannot write (it is still a value to compare)
        return yaml.safe_dump(str(value), **style)


# --------------------------------------------------------------------------- kubectl-like text


def _scalar_text(value) -> list[str] | str:
    """A scalar as kubectl (go-yaml) writes it: a literal block for multi-line text, else one line."""
    if isinstance(value, str) and "\n" in value and value.strip("\n") and " \n" not in value \
            and not value.startswith((" ", "\n")) and all(line.isprintable() for line in value.split("\n")):
        body = value[:-1] if value.endswith("\n") else value
        if "\n\n" not in body and not value.endswith("\n\n"):
            return ["|" if value.endswith("\n") else "|-"] + body.split("\n")
    text = yaml.safe_dump(value, width=1 << 16, allow_unicode=True, default_flow_style=False)
    text = text.removesuffix("\n...\n").removesuffix("\n")
    return text


def kube_lines(value, indent: int, indented_seqs: bool) -> list[str]:
    """``value`` (a mapping or sequence) as block lines starting at column ``indent``."""
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            key = _scalar_text(k if isinstance(k, str) else str(k))
            if isinstance(key, list) or "\n" in key:
                key = "'" + str(k).replace("'", "''").replace("\n", " ") + "'"
            if isinstance(v, dict) and v:
                out.append(f"{pad}{key}:")
                out += kube_lines(v, indent + 2, indented_seqs)
            elif isinstance(v, list) and v:
                out.append(f"{pad}{key}:")
                out += kube_lines(v, indent + (2 if indented_seqs else 0), indented_seqs)
            else:
                out += _entry_lines(f"{pad}{key}: ", v, indent)
        return out
    for v in value:
        if isinstance(v, dict) and v:
            inner = kube_lines(v, indent + 2, indented_seqs)
            out.append(f"{pad}- {inner[0][indent + 2:]}")
            out += inner[1:]
        elif isinstance(v, list) and v:
            inner = kube_lines(v, indent + 2, indented_seqs)
            out.append(f"{pad}- {inner[0][indent + 2:]}")
            out += inner[1:]
        else:
            out += _entry_lines(f"{pad}- ", v, indent)
    return out


def _entry_lines(head: str, v, indent: int) -> list[str]:
    if isinstance(v, dict):
        return [head + "{}"]
    if isinstance(v, list):
        return [head + "[]"]
    text = _scalar_text(v)
    if isinstance(text, list):
        body = " " * (indent + 2)
        return [head + text[0]] + [(body + line) if line else "" for line in text[1:]]
    lines = text.split("\n")
    return [head + lines[0]] + lines[1:]


MUTATIONS = ["comment", "tab", "blank", "spaces", "dup", "drop", "shift", "doc", "anchor",
             "alias", "tag", "cut", "flow", "trailing", "cr", "nel", "key", "deep", "colon"]


def mutate(text: str, rnd: random.Random, count: int) -> str:
    lines = text.split("\n")
    for _ in range(count):
        if not lines:
            break
        i = rnd.randrange(len(lines))
        kind = rnd.choice(MUTATIONS)
        line = lines[i]
        stripped = line.lstrip(" ")
        pad = line[:len(line) - len(stripped)]
        if kind == "comment":
            lines.insert(i, pad + "# a comment")
        elif kind == "tab":
            lines[i] = line.replace(" ", "\t", 1)
        elif kind == "blank":
            lines.insert(i, "")
        elif kind == "spaces":
            lines.insert(i, " " * rnd.randrange(1, 8))
        elif kind == "dup":
            lines.insert(i, line)
        elif kind == "drop":
            del lines[i]
        elif kind == "shift":
            lines[i] = " " * rnd.choice([1, 2, 3, 4]) + line if rnd.random() < 0.6 else line[rnd.randrange(1, 3):]
        elif kind == "doc":
            lines.insert(i, rnd.choice(["---", "...", "--- # x", "%YAML 1.1"]))
        elif kind == "anchor":
            lines[i] = line.replace(": ", ": &a ", 1)
        elif kind == "alias":
            lines[i] = line.replace(": ", ": *a ", 1) if ": " in line else line + " *a"
        elif kind == "tag":
            lines[i] = line.replace(": ", ": !!str ", 1)
        elif kind == "cut":
            lines[i] = line[:rnd.randrange(len(line) + 1)]
        elif kind == "flow":
            lines[i] = (line + " [1,") if rnd.random() < 0.5 else line.replace(": ", ": {a: 1, b: [2]}", 1)
        elif kind == "trailing":
            lines[i] = line + " "
        elif kind == "cr":
            lines[i] = line + "\r"
        elif kind == "nel":
            lines[i] = line + "\x85x"
        elif kind == "key":
            lines[i] = pad + rnd.choice(["? a", ": b", "- - x", "-x: 1", "'k': ", '"k":v', "a:  b"])
        elif kind == "deep":
            depth = rnd.choice([MAX_DEPTH - 3, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 2])
            lines[i:i + 1] = [pad + "  " * d + f"k{d}:" for d in range(depth)] + [pad + "  " * depth + "v: 1"]
        elif kind == "colon":
            lines[i] = line + ": x"
    return "\n".join(lines)


# --------------------------------------------------------------------------- properties


@FUZZ
@given(value=values, style=DUMP_STYLES, wrap=st.booleans())
def test_pyyaml_dumps_read_alike(value, style, wrap):
    """Random values dumped by PyYAML in several styles (narrow widths fold long scalars)."""
    assert_same(safe_dump(kube_list([value, value]) if wrap else value, style))


@FUZZ
@given(items=st.lists(st.dictionaries(keys, values, max_size=5), max_size=4),
       indented=st.booleans(), final_break=st.booleans())
def test_kubectl_style_reads_alike(items, indented, final_break):
    """Hand-written kubectl-style lists: indentless or indented sequences, literal blocks."""
    text = "\n".join(kube_lines(kube_list(items), 0, indented))
    assert_same(text + "\n" if final_break else text)
    assert_same(dump_yaml(kube_list(items)))


@FUZZ
@given(items=st.lists(st.dictionaries(keys, values, max_size=4), min_size=1, max_size=4),
       indented=st.booleans(), seed=st.integers(0, 2**32), count=st.integers(1, 3))
def test_damaged_text_reads_alike(items, indented, seed, count):
    """kubectl-style text with lines damaged (comments, tabs, markers, anchors, shifts, cuts):
    the same values, or the same error with the same line."""
    text = "\n".join(kube_lines(kube_list(items), 0, indented)) + "\n"
    assert_same(mutate(text, random.Random(seed), count))


# --------------------------------------------------------------------------- files and cases


def _yaml_files():
    found = []
    for top in ("examples", "tests"):
        for folder, _dirs, files in os.walk(os.path.join(ROOT, top)):
            found += [os.path.join(folder, f) for f in files if f.endswith((".yaml", ".yml"))]
    return sorted(found)


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_project_files_read_alike(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    assert_same(text)


def test_example_bundles_take_the_block_reader():
    paths = [p for p in _yaml_files() if "/examples/" in p]
    assert paths
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            assert yamlio._load_block(path, fh.read()) is not None, path


def _pod(i: int, extra: str = "") -> str:
    return (f"- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: web-{i}\n    labels:\n      app: web\n"
            f"  spec:\n    nodeName: n1\n    containers:\n    - name: c\n      args:\n      - --port=80\n"
            f"{extra}  status:\n    phase: Running\n    podIP: 10.224.0.{i}\n")


def _pods(odd: dict[int, str]) -> str:
    return "apiVersion: v1\nitems:\n" + "".join(_pod(i, odd.get(i, "")) for i in range(6)) + \
        "kind: List\nmetadata:\n  resourceVersion: ''\n"


def test_an_odd_item_alone_goes_to_the_events_reader(monkeypatch):
    """A folded scalar in one pod: only that pod's lines are handed to the events reader."""
    pieces = []
    real = yamlio.load_yaml_events

    def spy(name, text, depth_base=0):
        pieces.append(text)
        return real(name, text, depth_base)

    text = _pods({2: "    description: a long\n      folded line\n", 4: "    # a comment\n"})
    expected = outcome(real, text)
    monkeypatch.setattr(yamlio, "load_yaml_events", spy)
    assert outcome(load_yaml_documents, text) == expected
    assert [p.split("\n", 4)[3] for p in pieces] == ["    name: web-2", "    name: web-4"]
    monkeypatch.undo()
    pods = load_yaml_documents("pods.yaml", text)[0]["items"]
    assert [p["metadata"]["name"] for p in pods] == [f"web-{i}" for i in range(6)]
    assert pods[2]["spec"]["description"] == "a long folded line"


@pytest.mark.parametrize("odd, line", [
    ({3: "    bad: [1, 2\n"}, None),                    # an unclosed flow sequence
    ({0: "   x: 1\n"}, None),                           # a wrong indent in the first pod
    ({5: "    a: &x 1\n"}, None),                       # an anchor
    ({1: "    p: |\n\t tab\n"}, None),                  # a tab where indentation is expected
])
def test_an_error_in_an_item_is_the_events_readers(odd, line):
    text = _pods(odd)
    expected = outcome(load_yaml_events, text)
    assert expected[0] == "error" and expected[1] == "E321"
    assert outcome(load_yaml_documents, text) == expected


def test_depth_cap_inside_an_item():
    for depth in (MAX_DEPTH - 4, MAX_DEPTH - 3, MAX_DEPTH - 2, MAX_DEPTH + 5):
        nest = "".join("    " + "  " * d + f"k{d}:\n" for d in range(depth)) + "    " + "  " * depth + "v: 1\n"
        text = _pods({2: nest})
        assert_same(text)
    assert outcome(load_yaml_documents, _pods({2: nest}))[0] == "error"
