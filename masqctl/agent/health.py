"""``/healthz``, ``/readyz`` and ``/metrics`` on ``--health-bind``, in one daemon thread.

A deliberately small HTTP/1.0 responder on a plain socket: ``http.server`` would double the
agent's memory for three fixed paths, and even the ``socket`` wrapper module (its enums and
``selectors``) costs more than this file; ``_socket`` is the same sockets without it. One
connection at a time, each with a short timeout, so a stuck client cannot hold the endpoint
for long; kubelet probes and Prometheus scrapes are tiny requests.
"""

from __future__ import annotations

import _socket
import threading
import time

from masqctl.agent.metrics import AgentState
from masqctl.errors import MasqctlError, UsageError

DEFAULT_BIND = "127.0.0.1:8679"
CONNECTION_TIMEOUT = 2.0  # seconds one client may hold the endpoints
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request",
            503: "Service Unavailable"}


def parse_bind(text: str) -> tuple[str, int] | None:
    """``host:port``, ``[v6]:port`` or ``:port`` (all IPv4 addresses); ``0`` or empty disables."""
    text = text.strip()
    if text in ("", "0"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep:
        raise UsageError(f"--health-bind {text!r} is not host:port", input="--health-bind", code="E205",
                         hint="e.g. 127.0.0.1:8679, :8679 or 0 to disable")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise UsageError(f"--health-bind {text!r}: port must be 1-65535", input="--health-bind",
                         code="E205", hint="e.g. 127.0.0.1:8679, :8679 or 0 to disable")
    return host, number


class HealthServer:
    def __init__(self, address: tuple[str, int], state: AgentState):
        self.state = state
        host, port = address
        family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
        if host == "":
            host = "0.0.0.0"
        self.family = family
        try:
            self.sock = _socket.socket(family, _socket.SOCK_STREAM)
            self.sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.sock.listen(16)
        except OSError as exc:
            raise MasqctlError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                               input="--health-bind", code="E501",
                               hint="pick a free port with --health-bind, or 0 to disable the endpoints") \
                from None
        self.address = self.sock.getsockname()[:2]
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        try:
            # shutdown wakes the thread blocked in accept(); close alone would not
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _serve(self) -> None:
        while True:
            try:
                fd, _ = self.sock._accept()
            except OSError:
                if self._closed:
                    return
                time.sleep(0.1)  # e.g. a connection reset before it was accepted, or no free fd
                continue
            conn = _socket.socket(self.family, _socket.SOCK_STREAM, 0, fd)
            try:
                self._handle(conn, time.monotonic() + CONNECTION_TIMEOUT)
            except OSError:
                pass
            finally:
                try:
                    conn.close()
                except OSError:
                    pass

    def _handle(self, conn, deadline: float) -> None:
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < 8192:
            # the timeout is for the whole connection, not for each read: a client sending a
            # byte now and then must not hold the (only) responder
            left = deadline - time.monotonic()
            if left <= 0:
                return
            conn.settimeout(left)
            chunk = conn.recv(2048)
            if not chunk:
                break
            data += chunk
        request_line = data.split(b"\n", 1)[0].decode("latin-1", "replace").strip()
        parts = request_line.split()
        if len(parts) < 2:
            return self._reply(conn, 400, "bad request\n", head=False)
        method, target = parts[0], parts[1]
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return self._reply(conn, 405, "only GET and HEAD\n", head=False)
        head = method == "HEAD"
        if path == "/healthz":
            ok, why = self.state.healthy()
            return self._reply(conn, 200 if ok else 503, f"{why}\n", head=head)
        if path == "/readyz":
            ok, why = self.state.ready()
            return self._reply(conn, 200 if ok else 503, f"{why}\n", head=head)
        if path == "/metrics":
            return self._reply(conn, 200, self.state.render(), head=head,
                               ctype="text/plain; version=0.0.4; charset=utf-8")
        return self._reply(conn, 404, "not found; try /healthz, /readyz or /metrics\n", head=head)

    @staticmethod
    def _reply(conn, status: int, body: str, *, head: bool,
               ctype: str = "text/plain; charset=utf-8") -> None:
        payload = body.encode("utf-8")
        header = (f"HTTP/1.0 {status} {_REASONS.get(status, 'Unknown')}\r\n"
                  f"Content-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n"
                  f"Connection: close\r\n\r\n").encode("ascii")
        conn.sendall(header if head else header + payload)
