"""Go ``time.Duration`` text: parse (``time.ParseDuration``) and format (``Duration.String``)."""

from __future__ import annotations

import re

_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]+)")
_MAX = (1 << 63) - 1


def parse_duration(text: str) -> int:
    """Nanoseconds of a Go duration string; ``ValueError`` with Go's message otherwise."""
    orig = text
    if not isinstance(text, str):
        raise ValueError(f"time: invalid duration {orig!r}")
    neg = False
    if text[:1] in "+-" and text:
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ValueError(f'time: invalid duration "{orig}"')
    total = 0
    pos = 0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m or m.group(1) in ("", "."):
            raise ValueError(f'time: invalid duration "{orig}"')
        number, unit = m.group(1), m.group(2)
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{orig}"')
        whole, _, frac = number.partition(".")
        ns = int(whole or "0") * _UNITS[unit]
        if frac:
            ns += int(int(frac) * _UNITS[unit] / 10 ** len(frac))
        total += ns
        if total > _MAX:
            raise ValueError(f'time: invalid duration "{orig}"')
        pos = m.end()
    return -total if neg else total


def format_duration(ns: int) -> str:
    """Go's ``Duration.String``: ``1m0s``, ``5s``, ``1.5s``, ``500ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1)):
            if u >= size:
                return sign + _frac(u, size) + unit
    hours, rest = divmod(u, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _frac(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _frac(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
