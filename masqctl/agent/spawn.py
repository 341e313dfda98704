"""Run a program, feed it input, collect its output: what the agent needs of ``subprocess``.

``subprocess`` imports ``locale``, ``re`` and ``selectors``, about 1 MB of resident memory in
a process that otherwise stays near the bare interpreter. This is the small part the agent
uses, on ``os.posix_spawnp`` and ``select``: the child gets default SIGPIPE/SIGXFSZ (Python
ignores them, and ignored signals survive exec), a process group of its own (signals to the
agent's group are the agent's to handle), only its three standard descriptors (Python
opens everything else close-on-exec), and is killed and reaped on timeout or when the
wait is interrupted.
"""

from __future__ import annotations

import os
import select
import signal
import time


class Completed:
    __slots__ = ("returncode", "stdout", "stderr")

    def __init__(self, returncode: int, stdout: bytes | str, stderr: bytes | str):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class Timeout(Exception):
    pass


def run(argv: list[str], input: bytes | None = None, *, env=None, timeout: float | None = None,
        capture_stderr: bool = True, text: bool = False, blocked: tuple = (), started=None) -> Completed:
    """Run ``argv`` (looked up on ``PATH``), write ``input`` to its stdin, return its exit
    status and output (decoded as UTF-8 with ``text``). ``blocked``: signals the child starts
    with blocked (it unblocks them once it handles them); ``started(pid)`` is called once it
    runs. FileNotFoundError/PermissionError when it cannot be started;
    ``Timeout`` (after killing it) when it runs longer than ``timeout`` seconds."""
    in_r = in_w = out_r = out_w = err_r = err_w = None
    defaults = [s for s in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if s]
    try:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        if capture_stderr:
            err_r, err_w = os.pipe()
        actions = [(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1)]
        if capture_stderr:
            actions.append((os.POSIX_SPAWN_DUP2, err_w, 2))
        # its own process group: a terminal's Ctrl-C goes to the agent, which finishes the
        # sync it is in (iptables and the worker are not interrupted half-way)
        pid = os.posix_spawnp(argv[0], argv, os.environ if env is None else env, file_actions=actions,
                              setsigdef=defaults, setpgroup=0, setsigmask=blocked)
    except BaseException:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
            if fd is not None:
                os.close(fd)
        raise
    for fd in (in_r, out_w, err_w):
        if fd is not None:
            os.close(fd)
    if started is not None:
        started(pid)
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = memoryview(input or b"")
    readers = [fd for fd in (out_r, err_r) if fd is not None]
    chunks: dict[int, list[bytes]] = {fd: [] for fd in readers}
    open_fds = set(readers) | {in_w}   # each closed exactly once (fd numbers get reused)

    def close(fd: int) -> None:
        if fd in open_fds:
            open_fds.discard(fd)
            os.close(fd)

    writers = [in_w] if pending else []
    if pending:
        # select only says some room is free: a blocking write of a larger chunk would wait
        # for the child to read, past the timeout.
        os.set_blocking(in_w, False)
    else:
        close(in_w)
    status = None
    try:
        while readers or writers:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise Timeout(f"{argv[0]} did not finish within {timeout}s")
            r, w, _ = select.select(readers, writers, [], left)
            for fd in w:
                try:
                    n = os.write(fd, pending[:65536])
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    n = len(pending)  # the child stopped reading; its status tells why
                pending = pending[n:]
                if not pending:
                    writers.remove(fd)
                    close(fd)
            for fd in r:
                data = os.read(fd, 65536)
                if data:
                    chunks[fd].append(data)
                else:
                    readers.remove(fd)
                    close(fd)
        status = _wait(pid, deadline)
        if status is None:
            raise Timeout(f"{argv[0]} did not finish within {timeout}s")
    finally:
        for fd in list(open_fds):
            close(fd)
        if status is None:  # timed out or interrupted: never leave it running, nor a zombie
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    out, err = b"".join(chunks[out_r]), b"".join(chunks[err_r]) if err_r is not None else b""
    if text:
        return Completed(os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace"),
                         err.decode("utf-8", "replace"))
    return Completed(os.waitstatus_to_exitcode(status), out, err)


def _wait(pid: int, deadline: float | None) -> int | None:
    """The child's wait status, or None if it is still running at ``deadline`` (its output
    is closed, so this is usually immediate)."""
    if deadline is None:
        return os.waitpid(pid, 0)[1]
    pause = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(pause, left))
        pause = min(2 * pause, 0.05)
