"""A guard for property tests: fail instead of hanging (a FIFO opened for reading blocks for ever, a
walk over cyclic jumps might never end)."""

from __future__ import annotations

import signal
from contextlib import contextmanager


@contextmanager
def time_limit(seconds: int, what: str):
    """Raise AssertionError naming ``what`` when the block runs longer than ``seconds`` (SIGALRM)."""
    def expired(signum, frame):
        raise AssertionError(f"{what} took more than {seconds} s (a hang?)")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
