"""masqctl.cli.textout, the writer of explain's answer: lines wrapped at words within the width
(leading spaces kept, no trailing ones, a long word folded and never cut, wide characters counted
as two columns), trees drawn as rich draws them, styles only on a terminal (NO_COLOR keeps bold,
a dumb terminal gets none), and control characters shown, never sent."""

from __future__ import annotations

import io

from hypothesis import given, settings, strategies as st

from masqctl.cli.textout import Node, Writer, cells, clean, wrap


def text_of(rows) -> list[str]:
    return ["".join(t for t, _ in row) for row in rows]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_words_wrap_within_the_width_and_keep_leading_spaces():
    rows = text_of(wrap("   1 ✓ -A PREROUTING -m comment --comment \"kubernetes service portals\"", 30))
    assert rows == ["   1 ✓ -A PREROUTING -m", "comment --comment \"kubernetes", "service portals\""]
    assert text_of(wrap("two  spaces kept", 80)) == ["two  spaces kept"]


def test_a_word_longer_than_the_line_is_folded_not_cut():
    assert text_of(wrap("KUBE-SVC-NPX46M4PTMTKRN6Y x", 10)) == ["KUBE-SVC-N", "PX46M4PTMT", "KRN6Y x"]
    assert text_of(wrap("ab " + "c" * 12, 5)) == ["ab", "ccccc", "ccccc", "cc"]
    assert text_of(wrap("  a", 2)) == ["a"]          # an indent that cannot hold the word is dropped
    assert text_of(wrap("  abc", 2)) == ["ab", "c"]


def test_wide_characters_take_two_columns():
    assert cells("日本") == 4 and cells("e\u0301") == 1
    assert text_of(wrap("日本語の文字列 テスト", 8)) == ["日本語の", "文字列", "テスト"]


def test_styles_follow_the_text_across_breaks():
    rows = wrap(["plain ", ("bold words here", "bold")], 11)
    assert rows == [[("plain ", ""), ("bold", "bold")], [("words here", "bold")]]


def test_control_characters_are_shown_not_sent():
    assert clean("a\x1b[31mred\x07") == "a\\x1b[31mred\\x07"
    assert clean("tab\there") == "tab here"
    out = Terminal()
    Writer(out, {"COLUMNS": "80"}).line(["comment \x1b]0;title\x07"])
    assert "\x1b]" not in out.getvalue() and "\\x1b]0;title\\x07" in out.getvalue()


def test_styles_only_on_a_terminal_and_no_color_keeps_bold():
    line = [("red and bold", "bold red")]
    pipe = io.StringIO()
    Writer(pipe, {}).line(line)
    assert pipe.getvalue() == "red and bold\n"
    term = Terminal()
    Writer(term, {"COLUMNS": "80"}).line(line)
    assert term.getvalue() == "\x1b[1;31mred and bold\x1b[0m\n"
    plain = Terminal()
    Writer(plain, {"COLUMNS": "80", "NO_COLOR": "1"}).line(line)
    assert plain.getvalue() == "\x1b[1mred and bold\x1b[0m\n"
    dumb = Terminal()
    Writer(dumb, {"COLUMNS": "80", "TERM": "dumb"}).line(line)
    assert dumb.getvalue() == "red and bold\n"
    forced = io.StringIO()
    Writer(forced, {"FORCE_COLOR": "1", "COLUMNS": "80"}).line(line)
    assert forced.getvalue().startswith("\x1b[1;31m")


def test_the_width_is_columns_else_80_for_a_pipe():
    assert Writer(io.StringIO(), {"COLUMNS": "100"}).width == 100
    assert Writer(io.StringIO(), {}).width == 80
    assert Writer(io.StringIO(), {"COLUMNS": "wide"}).width == 80


def test_a_tree_is_drawn_with_guides_and_wrapped_labels_under_them():
    root = Node([("path 10.0.0.1 → 10.0.0.2", "bold")])
    pre = root.add("nat PREROUTING")
    pre.add("   1 ✓ -A PREROUTING -j KUBE-SERVICES  → jump KUBE-SERVICES").add("… rules 1–6 did not match")
    pre.add("   - ✓ :PREROUTING ACCEPT")
    root.add("nat POSTROUTING").add("   2 ✓ -A POSTROUTING -j MASQUERADE")
    out = io.StringIO()
    Writer(out, {"COLUMNS": "40"}).tree(root)
    assert out.getvalue().splitlines() == [
        "path 10.0.0.1 → 10.0.0.2",
        "├── nat PREROUTING",
        "│   ├──    1 ✓ -A PREROUTING -j",
        "│   │   KUBE-SERVICES  → jump",
        "│   │   KUBE-SERVICES",
        "│   │   └── … rules 1–6 did not match",
        "│   └──    - ✓ :PREROUTING ACCEPT",
        "└── nat POSTROUTING",
        "    └──    2 ✓ -A POSTROUTING -j",
        "        MASQUERADE",
    ]


def test_a_field_wraps_under_its_text():
    out = io.StringIO()
    Writer(out, {"COLUMNS": "30"}).field("rule", "line 91: -A IP-MASQ-AGENT -j MASQUERADE", column=6)
    assert out.getvalue().splitlines() == ["rule   line 91: -A", "       IP-MASQ-AGENT -j", "       MASQUERADE"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab -→日\u0301 "), max_size=80), st.integers(min_value=2, max_value=40))
def test_wrapping_loses_nothing_and_never_overflows(text, width):
    rows = text_of(wrap(text, width))
    assert all(cells(r) <= width for r in rows)
    assert all(r == r.rstrip(" ") for r in rows)
    assert "".join(rows).replace(" ", "") == text.replace(" ", "")
