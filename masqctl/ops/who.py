"""``who`` on a cluster or a bundle: gather the snapshot (with the connection-tracking tables), then answer."""

from __future__ import annotations

import os
import select
import stat
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable

from masqctl.analysis.who import (Match, Watch, WhoRequest, WhoResult, node_of_observed, read_conntrack_file, who,
                                  who_in_table, who_on_snapshot)
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions, NodeSelection
from masqctl.errors import InputError

OnNew = Callable[[WhoResult, Match, str], None]     # (the reading, a new match, when: RFC 3339 UTC)


def who_on_cluster(options: GatherOptions, request: WhoRequest,
                   log: Callable[[str], None] | None = None) -> WhoResult:
    """A bundle is read as a whole (its ``nodes/<node>/conntrack.txt`` files are the tables).

    Live, the node is not known before the nodes and pods are listed: a first pass reads them
    (no exec, no Azure) and finds the node that owns OBSERVED; a second pass reads that node's
    table through the agent pod (or, with ``--debug-pod``, a debug pod), the same exec that
    reads ``iptables-save``. ``--nodes`` skips the first pass. When no node owns OBSERVED, the
    selected nodes (all by default) are read. Azure is never needed."""
    say = log or (lambda text: None)
    if options.bundle is not None:
        say(f"who: reading {options.bundle}")
        return who_on_snapshot(gather(options), request)
    return who_on_snapshot(gather(_live_options(options, request, say)), request)


def _live_options(options: GatherOptions, request: WhoRequest, say: Callable[[str], None]) -> GatherOptions:
    options = replace(options, azure=False, conntrack=True)
    if options.nodes.all and options.capture:
        say("who: listing nodes and pods to find the node of " + request.observed.ip)
        first = gather(replace(options, capture=False))
        node, how = node_of_observed(first, request.observed.ip)
        if node is not None:
            say(f"who: {request.observed.ip} is {how}: reading node {node}'s table")
            options = replace(options, nodes=NodeSelection(names=(node,)))
    return options


# --------------------------------------------------------------------------- --watch


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Clock:
    """The optional bound of a watch (``--for SECONDS``)."""

    def __init__(self, until: float | None):
        self.deadline = None if until is None else time.monotonic() + until

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def nap(self, interval: float) -> bool:
        """Sleep until the next reading; False when the bound comes first."""
        left = self.left()
        if left is not None and left <= interval:
            time.sleep(max(0.0, left))
            return False
        time.sleep(interval)
        return True


def watch_on_cluster(options: GatherOptions, request: WhoRequest, *, interval: float, until: float | None,
                     on_new: OnNew, log: Callable[[str], None] | None = None) -> Watch:
    """Live ``--watch``: the node's table is read again every ``interval`` seconds through the
    same exec as ``who`` (the agent pod, or ``--debug-pod``), and each connection not seen
    before is handed to ``on_new``; until ``until`` seconds have passed (None: until
    interrupted)."""
    say = log or (lambda text: None)
    watch = Watch()
    clock = _Clock(until)
    options = _live_options(options, request, say)
    told: set[str] = set()
    while True:
        result = who_on_snapshot(gather(options), request)
        for note in result.notes:
            if not result.searched and note not in told:    # a table that could not be read: said once
                told.add(note)
                say(f"who: {note}")
        for m in watch.fresh(result.matches):
            on_new(result, m, _now())
        if not clock.nap(interval):
            return watch


def watch_file(path: str, request: WhoRequest, *, interval: float, until: float | None, on_new: OnNew) -> Watch:
    """Offline ``--watch`` of ``--conntrack FILE``: a regular file is read again every
    ``interval`` seconds (a last line without its newline waits for the next reading: the
    writer is still at it); stdin (``-``) and a named pipe are followed line by line as they
    come (``conntrack -E | masqctl who … --conntrack - --watch 1``), to their end."""
    watch = Watch()
    clock = _Clock(until)
    label = "stdin" if path == "-" else path
    if path != "-":
        try:
            fifo = stat.S_ISFIFO(os.stat(path).st_mode)
        except OSError:
            fifo = False           # read_conntrack_file names the problem
    if path == "-" or fifo:
        _follow(path, label, request, watch, clock, on_new)
        return watch
    while True:
        data = read_conntrack_file(path)
        cut = data.rfind(b"\n" if isinstance(data, bytes) else "\n") + 1
        result = who_in_table(data[:cut], label, request)
        for m in watch.fresh(result.matches):
            on_new(result, m, _now())
        if not clock.nap(interval):
            return watch


def _follow(path: str, label: str, request: WhoRequest, watch: Watch, clock: _Clock, on_new: OnNew) -> None:
    from masqctl.netfilter.conntrack import read_line

    fd = sys.stdin.fileno() if path == "-" else os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    pending = b""
    lineno = 0

    def take(raw: bytes) -> None:
        nonlocal lineno
        lineno += 1
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"is not UTF-8 text (line {lineno}, byte {exc.start})", input=label,
                             code="E311") from None
        if "\x00" in line:
            raise InputError(f"is binary, not text (a NUL byte in line {lineno})", input=label, code="E311")
        entry = read_line(line, label, lineno)
        if entry is None:
            return
        result = who([entry], request, table=label)
        for m in watch.fresh(result.matches):
            on_new(result, m, _now())

    try:
        while True:
            left = clock.left()
            if left is not None and left <= 0:
                return
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return          # the bound came first
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                if pending:
                    take(pending)
                return          # the writer is done
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                take(raw)
    finally:
        if path != "-":
            os.close(fd)
