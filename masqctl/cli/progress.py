"""Progress of long gatherings on stderr, for ``inspect``, ``collect``, ``explain`` and ``apply``.

Domain code reports ``progress(what, done, total)`` (``masqctl.cluster.options.Progress``);
this module draws it:

* stderr is a terminal: a rich progress bar per phase of more than a few steps (``capturing
  nodes`` of more than ``FEW`` nodes, …), removed when every phase is complete, so the report
  that follows starts on a clean screen;
* stderr is not a terminal (CI logs, ``2>file``), or ``-q`` / ``-o json|yaml`` (``quiet``): no
  bar; with ``-v`` one plain line per phase each time another 10 % is done (``capturing nodes:
  50/500 (10%)``).

stdout is never written, so ``-o json`` output stays one clean document.
"""

from __future__ import annotations

import atexit
import sys
from typing import IO, Callable

from masqctl.cli.output import console as make_console

Callback = Callable[[str, int, int], None]


FEW = 3      # a phase of at most this many steps (a capture of 3 nodes) draws no bar


def progress_callback(*, verbose: int = 0, stream: IO[str] | None = None,
                      terminal: bool | None = None, quiet: bool = False) -> Callback | None:
    """The callback to hand to gathering, or None when nothing is to be shown.

    ``terminal`` overrides the ``isatty`` check of ``stream`` (default: stderr); ``quiet`` (``-q``,
    ``-o json``/``yaml``) turns the bar off (``-v``'s plain lines stay)."""
    stream = stream or sys.stderr
    is_tty = terminal if terminal is not None else bool(getattr(stream, "isatty", lambda: False)())
    if is_tty and not quiet:
        return _RichBar(stream)
    if verbose >= 1:
        return _PlainLines(stream)
    return None


def stderr_progress() -> Callback:
    """A callback that always accepts calls (it draws only where ``progress_callback`` would)."""
    cb = progress_callback()
    return cb if cb is not None else (lambda what, done, total: None)


class _PlainLines:
    """One line each time a phase crosses another 10 % (and when it completes)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.shown: dict[str, int] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if total <= 0:
            return
        step = min(10, done * 10 // total)
        if self.shown.get(what, -1) >= step:
            return
        self.shown[what] = step
        self.stream.write(f"{what}: {done}/{total} ({done * 100 // total}%)\n")
        self.stream.flush()


class _RichBar:
    """Rich bars, started at the first call and stopped when every phase is complete."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.progress = None
        self.tasks: dict[str, int] = {}
        self.totals: dict[str, tuple[int, int]] = {}

    def _start(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = make_console(file=self.stream, force_terminal=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.progress.start()
        atexit.register(self.stop)

    def __call__(self, what: str, done: int, total: int) -> None:
        if total <= FEW and what not in self.tasks:
            return                      # over before a bar would be read
        if self.progress is None:
            self._start()
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(what, total=max(total, 1))
        self.progress.update(self.tasks[what], completed=done, total=max(total, 1))
        self.totals[what] = (done, total)
        if all(d >= t for d, t in self.totals.values()):
            self.stop()

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.tasks.clear()
            self.totals.clear()
