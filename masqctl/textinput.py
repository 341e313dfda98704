"""Reading a text file, or stdin, that a user names on the command line.

Every command reads its user-given text inputs (``explain --iptables/--ipset/--ip-addr``,
``apply --from-file``, ``apply --from-backup``) through ``read_bytes``/``read_text``, and every
text file of a bundle passes ``decode``, so each of them refuses the same things the same way:

* a device, socket or folder (``/dev/zero``, ``/dev/tty``) is refused before a byte is read;
  a pipe is read: stdin (``-``), ``<(iptables-save)`` and a named FIFO (whose reader waits for
  a writer, as every reader of a FIFO does);
* input is read in chunks up to a size cap (``MAX_BYTES``, 256 MiB, unless the caller sets a
  smaller one): an endless pipe ends with an error naming the input once the cap is passed,
  and memory never holds more than the cap;
* NUL bytes (binary content) are refused as soon as the chunk holding one arrives, and text
  that is not UTF-8 is refused with the offset of the first bad byte.

Each caller keeps its own stable codes (``Codes``) and error class; this module imports only
``masqctl.errors``.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from typing import BinaryIO

from masqctl.errors import InputError, MasqctlError

MAX_BYTES = 256 << 20       # 256 MiB: far above the largest iptables-save of a real node
CHUNK = 1 << 20
STDIN = "-"


@dataclass(frozen=True)
class Codes:
    """The codes one command reports its text inputs' problems with."""

    open: str = "E310"      # missing, unreadable, a folder, a device or socket
    binary: str = "E311"    # NUL bytes, or not UTF-8
    size: str = "E319"      # over the size cap
    error: type[MasqctlError] = InputError


EXPLAIN = Codes()


def _said(what: str, noun: str, rest: str) -> str:
    """``iptables-save file is binary ...``, or ``is binary ...`` when the input names itself."""
    return f"{what} {noun}{rest}" if what else rest


def _human(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} bytes"


def _kind(mode: int) -> str | None:
    """What a file that is neither regular nor a pipe is, or None when it can be read."""
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a file (give a file, a pipe or - for stdin)"
    if stat.S_ISSOCK(mode):
        return "a socket, not a file"
    return "not a regular file"


def _read(path: str, *, label: str | None = None, what: str = "input", max_bytes: int = MAX_BYTES,
          codes: Codes = EXPLAIN, stdin: BinaryIO | None = None, binary_hint: str | None = None,
          size_hint: str | None = None, stdin_ok: bool = True) -> bytes:
    """The content of ``path`` (``-``: stdin) in one buffer, refused as the module docstring says.

    ``label`` names the input in errors (default: the path, or ``stdin``); ``what`` says what
    it should hold (``iptables-save``). NUL bytes are refused here; UTF-8 is ``decode``'s job.
    With ``stdin_ok`` false, ``-`` is a file name like any other.
    """
    name = label or ("stdin" if path == STDIN and stdin_ok else path)
    err = codes.error
    if path == STDIN and stdin_ok:
        fh = stdin if stdin is not None else sys.stdin.buffer
        try:
            mode = os.fstat(fh.fileno()).st_mode
        except (OSError, AttributeError, ValueError):
            mode = None     # an in-memory stream (a test runner's): read as a pipe
        if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and not fh.isatty():
            raise err(_said(what, "input ", "(stdin) is a device, not a file or a pipe"), input=name, code=codes.open,
                      hint="pipe the text in, or give the file's path")
        return _read_all(fh, name, what, max_bytes, codes, binary_hint, size_hint)
    try:
        kind = _kind(os.stat(path).st_mode)      # before open: opening a device can itself act
    except FileNotFoundError:
        raise err(_said(what, "file ", "does not exist"), input=name, code=codes.open) from None
    except OSError as exc:
        raise err(_said(what, "file ", f"cannot be read: {exc.strerror}"), input=name, code=codes.open) from None
    if kind is not None:
        raise err(_said(what, "path ", f"is {kind}"), input=name, code=codes.open)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise err(_said(what, "file ", f"cannot be read: {exc.strerror}"), input=name, code=codes.open) from None
    with os.fdopen(fd, "rb", buffering=0) as fh:
        st = os.fstat(fd)
        kind = _kind(st.st_mode)                 # swapped for something else since the stat
        if kind is not None:
            raise err(_said(what, "path ", f"is {kind}"), input=name, code=codes.open)
        if stat.S_ISREG(st.st_mode) and st.st_size > max_bytes:
            raise _too_big(what, name, max_bytes, codes, size_hint)
        first = max(st.st_size + 1, CHUNK) if stat.S_ISREG(st.st_mode) else CHUNK   # a file whole in one read
        return _read_all(fh, name, what, max_bytes, codes, binary_hint, size_hint, first)


def read_bytes(path: str, **kw) -> bytes:
    """The bytes of ``path`` (``-``: stdin), refused as the module docstring says (``_read``'s
    keywords: ``label``, ``what``, ``max_bytes``, ``codes``, ``stdin``, ``binary_hint``,
    ``size_hint``, ``stdin_ok``)."""
    return _read(path, **kw)


def _read_all(fh: BinaryIO, name: str, what: str, max_bytes: int, codes: Codes, binary_hint: str | None,
              size_hint: str | None, first: int = CHUNK) -> bytes:
    """Chunks kept as read (never a growing buffer that is copied as it grows), joined once at the
    end: an input over the cap is refused holding at most the cap. ``first`` is the size of the
    first read (a regular file's size and one more byte: read whole, then its end confirmed)."""
    chunks: list[bytes] = []
    total = 0
    read = getattr(fh, "read1", None) or fh.read
    size = first
    while True:
        try:
            chunk = read(min(size, max_bytes + 1 - total))
            size = CHUNK
        except OSError as exc:
            raise codes.error(_said(what, "file ", f"cannot be read: {exc.strerror}"), input=name,
                              code=codes.open) from None
        if not chunk:
            break
        if b"\x00" in chunk:
            raise codes.error(_said(what, "file ", "is binary, not text (it holds NUL bytes)"), input=name,
                              code=codes.binary, hint=binary_hint)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise _too_big(what, name, max_bytes, codes, size_hint)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_big(what: str, name: str, max_bytes: int, codes: Codes, hint: str | None) -> MasqctlError:
    return codes.error(_said(what, "input ", f"is larger than the cap of {_human(max_bytes)}"), input=name,
                       code=codes.size, hint=hint)


def decode(name: str, data: bytes | bytearray, *, what: str = "input", codes: Codes = EXPLAIN,
           binary_hint: str | None = None) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped); NUL bytes or invalid UTF-8 are ``codes.binary``."""
    if b"\x00" in data:
        raise codes.error(_said(what, "file ", "is binary, not text (it holds NUL bytes)"), input=name,
                          code=codes.binary, hint=binary_hint)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise codes.error(_said(what, "file ", f"is not UTF-8 text (invalid byte at offset {exc.start})"), input=name,
                          code=codes.binary, hint=binary_hint) from None
    return text.removeprefix("\ufeff")


def read_text(path: str, *, label: str | None = None, what: str = "input", max_bytes: int = MAX_BYTES,
              codes: Codes = EXPLAIN, stdin: BinaryIO | None = None, binary_hint: str | None = None,
              size_hint: str | None = None) -> str:
    """The text of a user-given file or stdin: ``read_bytes``, then ``decode``."""
    data = _read(path, label=label, what=what, max_bytes=max_bytes, codes=codes, stdin=stdin,
                 binary_hint=binary_hint, size_hint=size_hint)
    return decode(label or ("stdin" if path == STDIN else path), data, what=what, codes=codes,
                  binary_hint=binary_hint)
