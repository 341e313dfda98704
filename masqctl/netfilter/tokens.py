"""Split and quote iptables arguments the way iptables itself does.

Reading (``iptables-restore``, ``add_param_to_argv``): only double quotes group words; a
backslash escapes the next character only inside double quotes; quotes may start or end in
the middle of a word; single quotes are ordinary characters. A ``!`` that was quoted is a
literal, not a negation. Python's ``shlex`` differs on ``\\'`` inside double quotes, so it
is not used.

Writing (``iptables-save``, ``xtables_save_string``): a value made only of letters, digits,
``_`` and ``-`` is printed bare; anything else is wrapped in double quotes with ``"``,
``\\`` and ``'`` escaped by a backslash.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Word(NamedTuple):
    text: str
    quoted: bool  # some part of the word was inside double quotes


class TokenizeError(ValueError):
    """A line iptables would refuse to split (an unterminated quote)."""


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def split_words(line: str) -> list[Word]:
    """Split one rule line into words, keeping whether each was quoted."""
    words: list[Word] = []
    buf: list[str] = []
    in_word = quoted = in_quotes = escaped = False
    for ch in line:
        if in_quotes:
            if escaped:
                buf.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
            else:
                buf.append(ch)
            continue
        if ch == '"':
            in_quotes = in_word = quoted = True
        elif ch in " \t\r\n":
            if in_word:
                words.append(Word("".join(buf), quoted))
                buf, in_word, quoted = [], False, False
        else:
            buf.append(ch)
            in_word = True
    if in_quotes:
        raise TokenizeError("unterminated double quote")
    if in_word:
        words.append(Word("".join(buf), quoted))
    return words


def split_args(line: str) -> list[str]:
    """Split one rule line into plain argument strings."""
    return [w.text for w in split_words(line)]


def quote(value: str) -> str:
    """Quote one argument exactly as ``iptables-save`` prints it."""
    if _BARE.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")
    return f'"{escaped}"'


def join_args(args: list[str] | tuple[str, ...]) -> str:
    """Join arguments into one line that ``iptables-restore`` splits back into ``args``."""
    return " ".join(a if a == "!" else quote(a) for a in args)

