"""klog-style log lines on stderr, with klog's ``--v`` verbosity.

A line looks like klog's text format so that the usual log tooling keeps working::

    I1122 04:13:02.123456    4233 loop.py:120] using config: {"nonMasqueradeCIDRs":[...],...}

Severity letter (I, W, E), month and day, UTC time with microseconds, the process id, the
source file and line, then the message. Info lines carry a verbosity level and are printed
only when it is at most ``--v``. The standard ``logging`` package is not used: the agent
writes a handful of lines an hour and should not carry its weight.
"""

from __future__ import annotations

import os
import sys
import threading
import time


class Logger:
    def __init__(self, verbosity: int = 0, stream=None):
        self.verbosity = verbosity
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _write(self, severity: str, message: str, depth: int) -> None:
        now = time.time()
        t = time.gmtime(now)
        micros = int((now - int(now)) * 1_000_000)
        try:
            frame = sys._getframe(depth)
            where = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        except ValueError:  # pragma: no cover - shallow stack
            where = "?:0"
        line = (f"{severity}{t.tm_mon:02d}{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}."
                f"{micros:06d} {self._pid:>7d} {where}] {message}\n")
        with self._lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must never stop the agent

    def info(self, message: str, level: int = 0) -> None:
        if level <= self.verbosity:
            self._write("I", message, 2)

    def warning(self, message: str) -> None:
        self._write("W", message, 2)

    def error(self, message: str) -> None:
        self._write("E", message, 2)
