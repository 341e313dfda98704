"""A small writer of styled text for a terminal or a pipe: lines of styled pieces wrapped at words
to the width, fields (a label column and text wrapped under it), and trees drawn with box-drawing
guides.

It is what ``explain``'s answer needs of a console, and no more: an offline ``explain`` is run in a
loop while debugging, and rich's console costs about a fifth of such a run to import. Commands
with tables and panels keep rich (``masqctl.cli.output.console``). It follows rich's conventions,
so both kinds of output behave alike: the width is ``COLUMNS`` when set, else the terminal's, else
80; styles are written only to a terminal (or with ``FORCE_COLOR``), not to a ``dumb`` one, and
``NO_COLOR`` drops the colours but keeps bold, dim, italic and reverse. Text is never interpreted:
there is no markup, and control characters (an escape sequence in an iptables comment) are shown
as escapes, never sent to the terminal.

A piece of text is ``str`` (unstyled) or ``(text, style)``, a style being words of :data:`SGR`
(``"bold red"``); a line is a list of pieces.
"""

from __future__ import annotations

import os
import sys
import unicodedata

SGR = {"bold": "1", "dim": "2", "italic": "3", "reverse": "7",
       "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
COLOURS = {"red", "green", "yellow", "cyan"}
DEFAULT_WIDTH = 80
MIN_WIDTH = 10         # text is never wrapped narrower than this (a deep tree on a narrow terminal)

# control characters (C0, DEL, C1) are shown as \xNN escapes; a tab as a space
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}
_CONTROLS[0x09] = " "


def clean(text: str) -> str:
    """``text`` safe to print: control characters as escapes (``\\x1b``), tabs as spaces."""
    return text if text.isprintable() else text.translate(_CONTROLS)


def cells(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide (East Asian) characters two, combining ones none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def _pieces(line) -> list[tuple[str, str]]:
    if isinstance(line, str):
        line = [line]
    return [(clean(p), "") if isinstance(p, str) else (clean(p[0]), p[1] or "") for p in line]


def wrap(line, width: int) -> list[list[tuple[str, str]]]:
    """``line`` (pieces) as lines of at most ``width`` columns, broken at spaces (the spaces at a
    break dropped); a word wider than the line is folded, never cut. Leading spaces are kept."""
    pieces = _pieces(line)
    text = "".join(t for t, _ in pieces)
    return [_slice(pieces, a, b) for a, b in _breaks(text, max(width, 1))]


def _breaks(text: str, width: int) -> list[tuple[int, int]]:
    """The lines of ``text`` wrapped at ``width`` columns, as (start, end) offsets. The first line
    keeps its leading spaces; the others start at a word."""
    out: list[tuple[int, int]] = []
    start = end = used = pos = 0        # the current line, up to the end of its last word
    n = len(text)
    while True:
        stop = pos
        while stop < n and text[stop] == " ":
            stop += 1
        if stop == n:
            break
        word_end = text.find(" ", stop)
        word_end = n if word_end == -1 else word_end
        size = cells(text[stop:word_end])
        empty = end == start
        if empty and out:                   # a next line starts at its word
            start = end = stop
        need = size if empty and out else stop - pos + size
        if used + need <= width:
            end, used, pos = word_end, used + need, word_end
            continue
        if not empty:                       # the word starts the next line
            out.append((start, end))
            start = end = stop
            used = 0
            if size <= width:
                end, used, pos = word_end, size, word_end
                continue
        start = piece = stop                # wider than a whole line (with the first line's indent):
        #                                     folded at the width, from the word
        while True:
            piece += len(_fit(text[piece:word_end], width))
            if piece >= word_end:
                break
            out.append((start, piece))
            start = piece
        end, used, pos = word_end, cells(text[start:word_end]), word_end
    out.append((start, end))
    return out


def _slice(pieces: list[tuple[str, str]], a: int, b: int) -> list[tuple[str, str]]:
    """The pieces of the text between offsets ``a`` and ``b``."""
    out: list[tuple[str, str]] = []
    at = 0
    for t, s in pieces:
        lo, hi = max(a, at), min(b, at + len(t))
        if lo < hi:
            out.append((t[lo - at:hi - at], s))
        at += len(t)
        if at >= b:
            break
    return out


def _fit(text: str, room: int) -> str:
    """The longest head of ``text`` that fits ``room`` columns (at least one character)."""
    if text.isascii():
        return text[:max(room, 1)]
    used = 0
    for i, c in enumerate(text):
        used += cells(c)
        if used > room:
            return text[:max(i, 1)]
    return text


class Node:
    """A tree: a label (a line of pieces) and children, drawn as rich draws its trees."""

    __slots__ = ("label", "children")

    def __init__(self, label) -> None:
        self.label = label
        self.children: list[Node] = []

    def add(self, label) -> Node:
        child = Node(label)
        self.children.append(child)
        return child


class Writer:
    """Writes lines to ``stream`` (stdout by default), styled when it is a terminal."""

    def __init__(self, stream=None, environ=None) -> None:
        self.stream = sys.stdout if stream is None else stream
        env = os.environ if environ is None else environ
        terminal = _is_terminal(self.stream, env)
        self.styled = terminal and env.get("TERM", "").lower() not in ("dumb", "unknown")
        self.colour = self.styled and env.get("NO_COLOR", "") == ""
        self.width = _width(self.stream, env, terminal)

    def blank(self) -> None:
        self.stream.write("\n")

    def line(self, line, indent: str = "", more: str | None = None) -> None:
        """``line`` wrapped to the width after ``indent`` (the first line's prefix; ``more`` the
        next lines', ``indent`` again by default)."""
        more = indent if more is None else more
        width = max(self.width - cells(indent), MIN_WIDTH)
        for n, row in enumerate(wrap(line, width)):
            self.stream.write((indent if n == 0 else more) + self._styled(row) + "\n")

    def field(self, label: str, text: str, style: str = "", column: int = 12) -> None:
        """``label`` in bold in a column ``column`` wide, then ``text`` wrapped under itself."""
        width = max(self.width - column - 1, MIN_WIDTH * 2)
        for n, row in enumerate(wrap([(text, style)], width)):
            head = label if n == 0 else ""
            self.stream.write(self._styled([(f"{head:<{column}} ", "bold"), *row] if row else [(head, "bold")])
                              + "\n")

    def tree(self, root: Node) -> None:
        """``root``'s label, then each child under a guide (``├── ``, ``└── ``), its wrapped lines
        and its children indented under ``│   `` (``    `` below the last child)."""
        self.line(root.label)
        self._children(root, "")

    def _children(self, node: Node, guides: str) -> None:
        last = len(node.children) - 1
        for n, child in enumerate(node.children):
            branch, under = ("└── ", "    ") if n == last else ("├── ", "│   ")
            self.line(child.label, guides + branch, guides + under)
            self._children(child, guides + under)

    def _styled(self, row: list[tuple[str, str]]) -> str:
        if not self.styled:
            return "".join(t for t, _ in row)
        out = []
        for text, style in row:
            codes = [SGR[w] for w in style.split() if w in SGR and (self.colour or w not in COLOURS)]
            out.append(f"\x1b[{';'.join(codes)}m{text}\x1b[0m" if codes and text else text)
        return "".join(out)


def _is_terminal(stream, env) -> bool:
    if env.get("TTY_COMPATIBLE") in ("0", "1"):
        return env["TTY_COMPATIBLE"] == "1"
    if env.get("FORCE_COLOR", "") != "":
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:          # a closed stream
        return False


def _width(stream, env, terminal: bool) -> int:
    columns = env.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if terminal:
        for s in (stream, sys.__stdout__, sys.__stderr__, sys.__stdin__):
            try:
                return os.get_terminal_size(s.fileno()).columns or DEFAULT_WIDTH
            except (AttributeError, ValueError, OSError):
                continue
    return DEFAULT_WIDTH
