"""A small in-memory Kubernetes API server for tests, spoken to by the real ``kubernetes`` client.

It runs in a thread on 127.0.0.1 (HTTP, or HTTPS with a throwaway CA) and implements just
enough of the API, with the API's own wire shapes, for masqctl's gathering and apply code:

* resources: core/v1 ``configmaps``, ``pods``, ``nodes``, ``namespaces``, ``services``; apps/v1
  ``daemonsets``; discovery.k8s.io/v1 ``endpointslices``;
* verbs: get, list (``labelSelector``, ``fieldSelector`` on ``metadata.name``,
  ``metadata.namespace``, ``spec.nodeName``, ``status.phase``, ``spec.hostNetwork``; ``limit`` and
  ``continue``; across namespaces), create (409 AlreadyExists; ``generateName``), update (PUT,
  optimistic concurrency on ``metadata.resourceVersion``: 409 Conflict when stale), patch
  (merge-patch and JSON patch; strategic-merge is treated as merge-patch), delete (404 when absent,
  409 when ``DeleteOptions.preconditions`` do not hold);
  every write bumps the resourceVersion;
* errors are ``Status`` objects shaped like the real API server's;
* the ``exec`` subresource over WebSocket with the channel protocol (``v4.channel.k8s.io`` by
  default; ``v5`` if enabled): stdout on channel 1, stderr on 2, and the final ``Status`` (exit
  code in ``details.causes``) on 3. What a command prints is decided by a handler the test
  registers per pod or per node (see ``ExecResult``, ``HANG``, ``Programs``).

Knobs for tests: ``latency`` (seconds added to every request), ``deny()`` (RBAC 403 with the real
message), ``fault()`` (any status, or a hang, on requests whose path matches), ``hooks`` (called
before every request; may change objects), ``log`` (every request), ``pod_startup`` (what
happens to created pods), ``deleted`` (every object deleted), ``token`` (bearer token required).

Quick start::

    from clusterkit.served import node, pod
    from kubeapi import KubeAPI, ExecResult

    with KubeAPI(latency=0.05) as api:
        api.add(node("n1"))
        api.add(pod("agent-1", node="n1", namespace="kube-system"))
        api.on_exec(lambda req: ExecResult(stdout="hello\\n"), node="n1")
        kubeconfig = api.write_kubeconfig(tmp_path / "config")   # context "test"
        ...  # use the real kubernetes client with that kubeconfig
        assert api.count("GET", r"/api/v1/nodes") == 1
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import http.server
import itertools
import json
import os
import random
import re
import select
import socket
import ssl
import string
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

# --------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resource:
    group: str          # "" for core
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES: dict[tuple[str, str], Resource] = {}
for _r in (Resource("", "v1", "configmaps", "ConfigMap", True),
           Resource("", "v1", "pods", "Pod", True),
           Resource("", "v1", "nodes", "Node", False),
           Resource("", "v1", "namespaces", "Namespace", False),
           Resource("", "v1", "services", "Service", True),
           Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
           Resource("apps", "v1", "daemonsets", "DaemonSet", True)):
    RESOURCES[(_r.api_version, _r.plural)] = _r
KINDS: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in RESOURCES.values()}

FIELD_SELECTABLE = {
    "pods": {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "spec.hostNetwork",
             "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.podIP"},
}
DEFAULT_FIELDS = {"metadata.name", "metadata.namespace"}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- errors


class APIError(Exception):
    """Raised inside the server to answer with a ``Status`` (also usable from hooks)."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(res: "Resource | None", name: str | None) -> dict | None:
    if res is None:
        return None
    d = {"name": name} if name else {}
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    return d


def not_found(res: Resource, name: str) -> APIError:
    return APIError(404, "NotFound", f'{res.plural} "{name}" not found', _details(res, name))


def forbidden_message(verb: str, resource: str, *, group: str = "", namespace: str | None = None,
                      name: str | None = None, user: str = "system:serviceaccount:default:masqctl") -> str:
    """The API server's RBAC denial text, e.g. ``pods "x" is forbidden: User "u" cannot create
    resource "pods/exec" in API group "" in the namespace "kube-system"``."""
    base = resource.split("/", 1)[0]
    who = f'{base} "{name}"' if name else base
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return f'{who} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {scope}'


# --------------------------------------------------------------------------- selectors


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def label_matcher(selector: str | None) -> Callable[[dict], bool]:
    """Kubernetes label selector syntax: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``,
    ``a notin (x)``, ``a``, ``!a``. A malformed selector raises a 400."""
    if not selector:
        return lambda labels: True
    tests: list[Callable[[dict], bool]] = []
    for req in _split_top(selector):
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", req)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                tests.append(lambda l, k=key, v=vals: l.get(k) in v)
            else:
                tests.append(lambda l, k=key, v=vals: l.get(k) not in v)
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)", req)
        if m:
            key, op, val = m.groups()
            if op == "!=":
                tests.append(lambda l, k=key, v=val: l.get(k) != v)
            else:
                tests.append(lambda l, k=key, v=val: l.get(k) == v)
            continue
        m = re.fullmatch(r"(!?)([\w./-]+)", req)
        if m:
            neg, key = m.groups()
            tests.append((lambda l, k=key: k not in l) if neg else (lambda l, k=key: k in l))
            continue
        raise APIError(400, "BadRequest", f"unable to parse requirement: {req!r}")
    return lambda labels: all(t(labels) for t in tests)


def _field_value(obj: dict, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return "false" if path == "spec.hostNetwork" else ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_matcher(selector: str | None, res: Resource) -> Callable[[dict], bool]:
    if not selector:
        return lambda obj: True
    allowed = FIELD_SELECTABLE.get(res.plural, DEFAULT_FIELDS)
    tests = []
    for req in selector.split(","):
        m = re.fullmatch(r"\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*", req)
        if not m:
            raise APIError(400, "BadRequest", f"invalid selector: '{selector}'; can't understand '{req}'")
        key, op, val = m.groups()
        if key not in allowed:
            raise APIError(400, "BadRequest", f'field label not supported: {key}')
        if op == "!=":
            tests.append(lambda o, k=key, v=val: _field_value(o, k) != v)
        else:
            tests.append(lambda o, k=key, v=val: _field_value(o, k) == v)
    return lambda obj: all(t(obj) for t in tests)


# --------------------------------------------------------------------------- patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, ops: list) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, test)."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1] if parts else None
        kind = op["op"]
        if kind == "test":
            cur = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if cur != op.get("value"):
                raise APIError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                               f"test failed at {op['path']}")
        elif kind == "remove":
            try:
                del parent[int(last) if isinstance(parent, list) else last]
            except (KeyError, IndexError):
                raise APIError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                               f"unable to remove nonexistent key: {last}") from None
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        else:
            raise APIError(422, "Invalid", f"unsupported JSON patch operation {kind!r}")
    return doc


# --------------------------------------------------------------------------- exec


HANG = object()
"""Return this from an exec handler (or put it in ``Programs``) to make the exec never finish."""


@dataclass(frozen=True)
class ExecResult:
    """What one exec prints and how it ends. ``exit_code`` 0 is Success.

    ``failure`` (a message) makes the exec fail the way a missing binary does on a real
    cluster: the error channel carries ``reason: InternalError`` and no exit code.
    """

    stdout: str | bytes = ""
    stderr: str | bytes = ""
    exit_code: int = 0
    failure: str | None = None


@dataclass(frozen=True)
class ExecRequest:
    namespace: str
    pod: str
    container: str | None
    command: tuple[str, ...]
    node: str | None
    pod_object: dict


ExecHandler = Callable[[ExecRequest], Any]   # -> ExecResult | HANG | (stdout, stderr, exit_code)


def not_found_in_path(binary: str) -> ExecResult:
    """The failure a runtime reports when the binary does not exist in the container."""
    return ExecResult(failure=(
        "Internal error occurred: error executing command in container: failed to exec in container: "
        f'failed to start exec "0123456789ab": OCI runtime exec failed: exec failed: unable to start container '
        f'process: exec: "{binary}": executable file not found in $PATH: unknown'))


class Programs:
    """An exec handler that behaves like a container holding a few programs.

    ``programs`` maps a program name (``iptables-save``) to what it prints: a string (stdout,
    exit 0), an ``ExecResult``, ``HANG``, or a callable ``argv -> ExecResult``. Commands whose
    program is not listed fail like a missing binary. With ``shell=True`` the container also has
    ``/bin/sh``: ``sh -c SCRIPT`` runs SCRIPT with the real ``/bin/sh`` in a scratch directory
    where the listed programs are small executables (so the script's own logic is exercised for
    real); nothing else is on its ``PATH``. With ``chroot=True``, ``chroot /host CMD...`` runs
    CMD in the same container (the debug-pod path). ``calls`` records every argv.
    """

    def __init__(self, programs: dict[str, Any], *, shell: bool = True, chroot: bool = False):
        self.programs = dict(programs)
        self.shell = shell
        self.chroot = chroot
        self.calls: list[tuple[str, ...]] = []
        self._lock = threading.Lock()

    def __call__(self, req: ExecRequest) -> Any:
        with self._lock:
            self.calls.append(req.command)
        return self.run(list(req.command))

    def run(self, argv: list[str]) -> Any:
        if not argv:
            return ExecResult(failure="Internal error occurred: no command given")
        prog = os.path.basename(argv[0])
        if prog == "chroot" and self.chroot and len(argv) >= 3:
            return self.run(argv[2:])
        if prog in ("sh", "dash", "bash") and self.shell:
            if len(argv) >= 3 and argv[1] == "-c":
                return self._shell(argv[2], argv[3:])
            return ExecResult(stderr="sh: interactive shells are not supported here\n", exit_code=2)
        if prog not in self.programs:
            return not_found_in_path(argv[0])
        out = self.programs[prog]
        if callable(out) and out is not HANG:
            out = out(argv)
        if isinstance(out, str):
            return ExecResult(stdout=out)
        return out

    def _shell(self, script: str, args: list[str]) -> Any:
        import subprocess
        import tempfile

        if any(v is HANG for v in self.programs.values()) and any(
                re.search(rf"(^|[\s;|&(`]){re.escape(k)}($|[\s;|&)`])", script)
                for k, v in self.programs.items() if v is HANG):
            return HANG
        stub = _stub_program()
        with tempfile.TemporaryDirectory(prefix="kubeapi-sh-") as tmp:
            bindir, datadir = os.path.join(tmp, "bin"), os.path.join(tmp, "data")
            os.mkdir(bindir)
            os.mkdir(datadir)
            for name, value in self.programs.items():
                if value is HANG:
                    continue
                res = value([name]) if callable(value) else value
                if isinstance(res, str):
                    res = ExecResult(stdout=res)
                if res.failure is not None:
                    continue   # "not installed": leave it out of PATH
                for stream in ("stdout", "stderr"):
                    data = getattr(res, stream)
                    with open(os.path.join(datadir, f"{name}.{stream}"), "wb") as fh:
                        fh.write(data.encode() if isinstance(data, str) else data)
                with open(os.path.join(datadir, f"{name}.rc"), "w") as fh:
                    fh.write(f"{res.exit_code}\n")
                # a symlink to one stub written long before: no executable is ever written here,
                # so a concurrent fork cannot hold it open for writing (ETXTBSY)
                os.symlink(stub, os.path.join(bindir, name))
            proc = subprocess.run(["/bin/sh", "-c", script, "sh", *args], capture_output=True,
                                  env={"PATH": bindir, "KUBEAPI_DATA": datadir}, cwd=tmp, timeout=60)
        return ExecResult(stdout=proc.stdout, stderr=proc.stderr, exit_code=proc.returncode)


_STUB_LOCK = threading.Lock()
_STUB: list[str] = []


def _stub_program() -> str:
    """One shell script standing in for every fake program: it prints the files named after
    the name it was called by (``$0``) from ``$KUBEAPI_DATA``."""
    with _STUB_LOCK:
        if not _STUB:
            import atexit
            import shutil
            import tempfile

            d = tempfile.mkdtemp(prefix="kubeapi-stub-")
            path = os.path.join(d, "stub")
            with open(path, "w") as fh:
                fh.write('#!/bin/sh\nn=${0##*/}\n/bin/cat "$KUBEAPI_DATA/$n.stdout"\n'
                         '/bin/cat "$KUBEAPI_DATA/$n.stderr" >&2\nread rc < "$KUBEAPI_DATA/$n.rc"\nexit "$rc"\n')
            os.chmod(path, 0o755)
            atexit.register(shutil.rmtree, d, True)
            _STUB.append(path)
        return _STUB[0]


_stub_program()   # at import, before any test starts threads


def _exec_status(result: ExecResult) -> dict:
    if result.failure is not None:
        return {"metadata": {}, "status": "Failure", "message": result.failure, "reason": "InternalError",
                "details": {"causes": [{"message": result.failure}]}, "code": 500}
    if result.exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command, exit code "
                       f"{result.exit_code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(result.exit_code)}]}}


# --------------------------------------------------------------------------- request log, faults


@dataclass
class Request:
    """One request as the server saw it (``verb`` is the RBAC verb: get/list/create/...)."""

    method: str
    path: str
    query: dict[str, list[str]]
    verb: str | None = None
    resource: str | None = None       # e.g. "pods", "pods/exec"
    namespace: str | None = None
    name: str | None = None
    body: Any = None
    status: int | None = None
    started: float = 0.0
    ended: float | None = None

    def param(self, key: str) -> str | None:
        vals = self.query.get(key)
        return vals[0] if vals else None


@dataclass
class Fault:
    pattern: str
    method: str | None = None
    status: int | None = None
    reason: str | None = None
    message: str | None = None
    hang: bool = False
    delay: float = 0.0
    times: int | None = None           # None: every time
    hits: int = 0

    def matches(self, req: Request) -> bool:
        if self.method and self.method.upper() != req.method:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return re.search(self.pattern, req.path) is not None


@dataclass
class Denial:
    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None


# --------------------------------------------------------------------------- the server


class KubeAPI:
    """The server. Use as a context manager, or call ``start()`` and ``stop()``.

    ``tls=True`` serves HTTPS with a throwaway CA (``ca_pem`` has it; ``write_kubeconfig`` embeds
    it). ``token`` set: every request needs ``Authorization: Bearer <token>`` (else 401).
    """

    def __init__(self, *, latency: float = 0.0, tls: bool = False, token: str | None = "test-token",
                 user: str = "system:serviceaccount:default:masqctl",
                 exec_protocols: tuple[str, ...] = ("v4.channel.k8s.io",)):
        self.latency = latency
        self.tls = tls
        self.token = token
        self.user = user
        self.exec_protocols = exec_protocols
        self.log: list[Request] = []
        self.deleted: list[dict] = []
        self.hooks: list[Callable[[Request, "KubeAPI"], None]] = []
        self.faults: list[Fault] = []
        self.denials: list[Denial] = []
        self.pod_startup: str | Callable[[dict], None] = "running"
        self._store: dict[tuple[str, str, str], dict] = {}   # (plural, namespace, name) → object
        self._rv = itertools.count(1000)
        self._lock = threading.RLock()
        self._exec_pods: dict[tuple[str, str], ExecHandler] = {}
        self._exec_nodes: dict[str, ExecHandler] = {}
        self._exec_default: ExecHandler | None = None
        self._release = threading.Event()
        self._stopping = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_pem: str | None = None
        self._tmpdir: str | None = None
        for ns in ("default", "kube-system"):
            self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                      "status": {"phase": "Active"}})

    # ------------------------------------------------------------------ life cycle

    def start(self) -> "KubeAPI":
        api = self

        class Handler(_Handler):
            server_api = api

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        if self.tls:
            self._setup_tls()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kubeapi", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmpdir:
            import shutil
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> "KubeAPI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the server first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _setup_tls(self) -> None:
        import tempfile

        from kubeapi.tlsutil import make_ca_and_cert

        self._tmpdir = tempfile.mkdtemp(prefix="kubeapi-tls-")
        ca_pem, cert_pem, key_pem = make_ca_and_cert("127.0.0.1")
        self.ca_pem = ca_pem
        cert_path, key_path = os.path.join(self._tmpdir, "tls.crt"), os.path.join(self._tmpdir, "tls.key")
        with open(cert_path, "w") as fh:
            fh.write(cert_pem)
        with open(key_path, "w") as fh:
            fh.write(key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        self._ssl_context = ctx

    # ------------------------------------------------------------------ objects

    def add(self, obj: dict) -> dict:
        """Store an object as-is (no admission), filling metadata the server owns. Replaces an
        existing object of the same name. Returns the stored copy."""
        res = self._resource_of(obj)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        with self._lock:
            meta.setdefault("uid", _uid(meta["name"]))
            meta.setdefault("creationTimestamp", _now())
            meta["resourceVersion"] = str(next(self._rv))
            self._store[(res.plural, meta.get("namespace", ""), meta["name"])] = obj
        return copy.deepcopy(obj)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        """A copy of the stored object (``kind`` is the plural: ``pods``, ``configmaps``...)."""
        with self._lock:
            obj = self._store.get((kind, namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def objects(self, kind: str, namespace: str | None = None) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(o) for (k, ns, _), o in sorted(self._store.items())
                    if k == kind and (namespace is None or ns == namespace)]

    def update(self, kind: str, name: str, namespace: str | None = None,
               change: Callable[[dict], None] | None = None, **merge: Any) -> dict:
        """Change a stored object in place (as another client would): ``change(obj)`` and/or a
        merge patch given as keywords (``data={...}``). Bumps the resourceVersion."""
        with self._lock:
            key = (kind, namespace or "", name)
            obj = self._store[key]
            if change is not None:
                change(obj)
            if merge:
                obj = merge_patch(obj, merge)
            obj["metadata"]["resourceVersion"] = str(next(self._rv))
            self._store[key] = obj
            return copy.deepcopy(obj)

    def remove(self, kind: str, name: str, namespace: str | None = None) -> None:
        with self._lock:
            self._store.pop((kind, namespace or "", name), None)

    @staticmethod
    def _resource_of(obj: dict) -> Resource:
        try:
            return KINDS[(obj["apiVersion"], obj["kind"])]
        except KeyError:
            raise ValueError(f"unsupported object {obj.get('apiVersion')}/{obj.get('kind')}") from None

    # ------------------------------------------------------------------ exec handlers

    def on_exec(self, handler: ExecHandler, *, pod: str | None = None, namespace: str = "kube-system",
                node: str | None = None) -> None:
        """Register what exec prints: for one pod, for every pod on a node, or (neither) for all.
        The handler gets an ``ExecRequest`` and returns an ``ExecResult``, ``HANG``, or a tuple
        ``(stdout, stderr, exit_code)``. A pod handler wins over a node handler."""
        if pod is not None:
            self._exec_pods[(namespace, pod)] = handler
        elif node is not None:
            self._exec_nodes[node] = handler
        else:
            self._exec_default = handler

    def release(self) -> None:
        """Let every hung request and exec finish (with an error, as a dropped connection)."""
        self._release.set()

    # ------------------------------------------------------------------ faults

    def fault(self, pattern: str, *, method: str | None = None, status: int | None = None,
              message: str | None = None, reason: str | None = None, hang: bool = False,
              delay: float = 0.0, times: int | None = None) -> Fault:
        """Answer requests whose path matches ``pattern`` (``re.search``) with ``status`` (a
        ``Status`` body with ``message``/``reason``), or hang until ``release()``/``stop()``, or
        add ``delay`` seconds. ``times``: only the first N matches."""
        f = Fault(pattern, method, status, reason, message, hang, delay, times)
        self.faults.append(f)
        return f

    def deny(self, verb: str, resource: str, *, namespace: str | None = None, name: str | None = None) -> None:
        """Refuse a verb on a resource like RBAC does (403 with the real message). ``resource``
        may be a subresource, e.g. ``deny("create", "pods/exec", namespace="kube-system")``."""
        self.denials.append(Denial(verb, resource, namespace, name))

    def after(self, n: int, fn: Callable[["KubeAPI"], None], *, method: str | None = None,
              pattern: str | None = None) -> None:
        """Run ``fn(api)`` once, just before the ``n``-th request matching ``method``/``pattern``
        is handled (so that request already sees the change)."""
        seen = [0]

        def hook(req: Request, api: "KubeAPI") -> None:
            if (method is None or req.method == method) and (pattern is None or re.search(pattern, req.path)):
                seen[0] += 1
                if seen[0] == n:
                    fn(api)

        self.hooks.append(hook)

    # ------------------------------------------------------------------ log helpers

    def requests(self, method: str | None = None, pattern: str | None = None) -> list[Request]:
        return [r for r in list(self.log)
                if (method is None or r.method == method) and (pattern is None or re.search(pattern, r.path))]

    def count(self, method: str | None = None, pattern: str | None = None) -> int:
        return len(self.requests(method, pattern))

    # ------------------------------------------------------------------ kubeconfig

    def write_kubeconfig(self, path: Any, *, context: str = "test", namespace: str | None = None,
                         extra_contexts: tuple[str, ...] = (), token: str | None = None,
                         current: str | None = None, ca: bool = True) -> str:
        """Write a kubeconfig for this server (see ``kubeapi.kubeconfig.write_kubeconfig``)."""
        from kubeapi.kubeconfig import write_kubeconfig

        return write_kubeconfig(path, server=self.url, context=context, namespace=namespace,
                                token=self.token if token is None else token,
                                extra_contexts=extra_contexts, current=current,
                                ca_pem=self.ca_pem if (ca and self.tls) else None)

    # ------------------------------------------------------------------ request handling (server side)

    def _next_rv(self) -> str:
        return str(next(self._rv))

    def _handle(self, req: Request, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        """Answer a non-exec request: (status, JSON body)."""
        res, ns, name, sub = _route(req.path)
        if res is None:
            return _discovery(req.path)
        verb = req.verb
        if req.method == "GET":
            if name is None:
                return 200, self._list(res, ns, req)
            return 200, self._get(res, ns, name)
        if req.method == "POST" and name is None:
            return 201, self._create(res, ns, body)
        if req.method == "PUT" and name is not None:
            return 200, self._replace(res, ns, name, body)
        if req.method == "PATCH" and name is not None:
            return 200, self._patch(res, ns, name, body, headers.get("content-type", ""))
        if req.method == "DELETE" and name is not None:
            return 200, self._delete(res, ns, name, body)
        raise APIError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                       f"resource ({verb})")

    def _get(self, res: Resource, ns: str | None, name: str) -> dict:
        with self._lock:
            obj = self._store.get((res.plural, ns or "", name))
            if obj is None:
                raise not_found(res, name)
            return copy.deepcopy(obj)

    def _list(self, res: Resource, ns: str | None, req: Request) -> "_Encoded":
        lm = label_matcher(req.param("labelSelector"))
        fm = field_matcher(req.param("fieldSelector"), res)
        limit = int(req.param("limit") or 0)
        start_after = None
        token = req.param("continue")
        if token:
            try:
                start_after = tuple(json.loads(base64.urlsafe_b64decode(token.encode())))
            except Exception:
                raise APIError(400, "BadRequest", "continue key is not valid: illegal base64 data") from None
        with self._lock:
            rv = str(next(self._rv) - 1)
            keys = sorted(k for k in self._store if k[0] == res.plural and (ns is None or k[1] == ns))
            items, cont = [], None
            last: tuple = ()
            for key in keys:
                if start_after is not None and key[1:] <= start_after:
                    continue
                obj = self._store[key]
                if not lm(obj.get("metadata", {}).get("labels") or {}) or not fm(obj):
                    continue
                if limit and len(items) == limit:
                    cont = base64.urlsafe_b64encode(json.dumps(list(last)).encode()).decode()
                    break
                items.append(obj)
                last = key[1:]
            meta: dict[str, Any] = {"resourceVersion": rv}
            if cont:
                meta["continue"] = cont
            # encoded under the lock: no copy needed, and later writes cannot change the answer
            return _Encoded(json.dumps({"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta,
                                        "items": items}).encode())

    def _create(self, res: Resource, ns: str | None, body: Any) -> dict:
        if not isinstance(body, dict):
            raise APIError(400, "BadRequest", "the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            else:
                raise APIError(422, "Invalid", f"{res.kind} \"\" is invalid: metadata.name: Required value: "
                               "name or generateName is required",
                               {"kind": res.kind, "causes": [{"reason": "FieldValueRequired",
                                                             "message": "Required value: name or generateName is required",
                                                             "field": "metadata.name"}]})
        name = meta["name"]
        if res.namespaced:
            if meta.get("namespace") not in (None, ns):
                raise APIError(400, "BadRequest", "the namespace of the provided object does not match the "
                               "namespace sent on the request")
            meta["namespace"] = ns
            with self._lock:
                if ("namespaces", "", ns) not in self._store:
                    raise APIError(404, "NotFound", f'namespaces "{ns}" not found',
                                   {"name": ns, "kind": "namespaces"})
        with self._lock:
            key = (res.plural, ns or "", name)
            if key in self._store:
                raise APIError(409, "AlreadyExists", f'{res.plural} "{name}" already exists',
                               _details(res, name))
            meta["uid"] = _uid(f"{ns}/{name}/{time.time()}")
            meta["creationTimestamp"] = _now()
            meta["resourceVersion"] = self._next_rv()
            meta.pop("managedFields", None)
            if res.plural == "pods":
                self._start_pod(obj)
            self._store[key] = obj
            return copy.deepcopy(obj)

    def _start_pod(self, pod: dict) -> None:
        status = pod.setdefault("status", {})
        policy = self.pod_startup
        if callable(policy):
            policy(pod)
            return
        spec = pod.get("spec", {})
        node = spec.get("nodeName")
        status.setdefault("phase", "Pending")
        if policy == "running" and node:
            node_obj = self._store.get(("nodes", "", node))
            host_ip = _internal_ip(node_obj) if node_obj else None
            status["phase"] = "Running"
            status["hostIP"] = host_ip
            status["podIP"] = host_ip if spec.get("hostNetwork") else "10.244.99.%d" % random.randint(2, 250)
            status["conditions"] = [{"type": "Ready", "status": "True"}]
            status["containerStatuses"] = [
                {"name": c["name"], "image": c.get("image"), "ready": True,
                 "imageID": _image_id(str(c.get("image", ""))), "restartCount": 0,
                 "started": True, "state": {"running": {"startedAt": _now()}}}
                for c in spec.get("containers", [])]

    def _replace(self, res: Resource, ns: str | None, name: str, body: Any) -> dict:
        if not isinstance(body, dict):
            raise APIError(400, "BadRequest", "the body of the request was in an unknown format")
        meta = body.get("metadata") or {}
        if meta.get("name") != name:
            raise APIError(400, "BadRequest", "the name of the object "
                           f"({meta.get('name')}) does not match the name on the URL ({name})")
        with self._lock:
            key = (res.plural, ns or "", name)
            cur = self._store.get(key)
            if cur is None:
                raise not_found(res, name)
            sent_rv = meta.get("resourceVersion")
            if sent_rv and sent_rv != cur["metadata"]["resourceVersion"]:
                raise APIError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural}'
                               f'{"." + res.group if res.group else ""} "{name}": the object has been modified; '
                               "please apply your changes to the latest version and try again",
                               {"name": name, "kind": res.plural})
            obj = copy.deepcopy(body)
            obj.setdefault("apiVersion", res.api_version)
            obj.setdefault("kind", res.kind)
            for keep in ("uid", "creationTimestamp"):
                obj["metadata"][keep] = cur["metadata"].get(keep)
            if res.namespaced:
                obj["metadata"]["namespace"] = ns
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._store[key] = obj
            return copy.deepcopy(obj)

    def _patch(self, res: Resource, ns: str | None, name: str, body: Any, content_type: str) -> dict:
        ctype = content_type.split(";")[0].strip()
        with self._lock:
            key = (res.plural, ns or "", name)
            cur = self._store.get(key)
            if cur is None:
                raise not_found(res, name)
            if ctype == "application/json-patch+json":
                if not isinstance(body, list):
                    raise APIError(400, "BadRequest", "json patch must be a list of operations")
                new = json_patch(cur, body)
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(body, dict):
                    raise APIError(400, "BadRequest", "merge patch must be an object")
                sent_rv = (body.get("metadata") or {}).get("resourceVersion")
                if sent_rv and sent_rv != cur["metadata"]["resourceVersion"]:
                    raise APIError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} "{name}": '
                                   "the object has been modified; please apply your changes to the latest "
                                   "version and try again", {"name": name, "kind": res.plural})
                new = merge_patch(cur, body)
            else:
                raise APIError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: application/json-patch+json, "
                               "application/merge-patch+json, application/strategic-merge-patch+json")
            new["metadata"]["name"] = name
            new["metadata"]["resourceVersion"] = self._next_rv()
            self._store[key] = new
            return copy.deepcopy(new)

    def _delete(self, res: Resource, ns: str | None, name: str, body: Any = None) -> dict:
        """Delete; ``DeleteOptions.preconditions`` (resourceVersion, uid) are checked (409)."""
        pre = (body or {}).get("preconditions") or {} if isinstance(body, dict) else {}
        with self._lock:
            key = (res.plural, ns or "", name)
            obj = self._store.get(key)
            if obj is None:
                raise not_found(res, name)
            for field_name in ("resourceVersion", "uid"):
                want, have = pre.get(field_name), obj["metadata"].get(field_name)
                if want and want != have:
                    label = "ResourceVersion" if field_name == "resourceVersion" else "UID"
                    raise APIError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} "{name}": '
                                   f"Precondition failed: {label} in precondition: {want}, {label} in object "
                                   f"meta: {have}", _details(res, name))
            del self._store[key]
            self.deleted.append(copy.deepcopy(obj))
        return obj

    def _exec_handler_for(self, ns: str, pod: dict) -> ExecHandler | None:
        name = pod["metadata"]["name"]
        node = (pod.get("spec") or {}).get("nodeName")
        return self._exec_pods.get((ns, name)) or (self._exec_nodes.get(node) if node else None) \
            or self._exec_default


class _Encoded(bytes):
    """A response body already encoded as JSON."""


def _image_id(image: str) -> str:
    return f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _uid(seed: str) -> str:
    h = hashlib.sha1(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _internal_ip(node: dict) -> str | None:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return a.get("address")
    return None


def _route(path: str) -> tuple[Resource | None, str | None, str | None, str | None]:
    """(resource, namespace, name, subresource) for an API path; resource None: not a resource path."""
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
    if parts[:2] == ["api", "v1"]:
        api_version, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None, None, None, None
    if not rest:
        return None, None, None, None
    ns = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns, rest = rest[1], rest[2:]
    res = RESOURCES.get((api_version, rest[0]))
    if res is None:
        raise APIError(404, "NotFound", "the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if len(rest) > 3 or (ns is not None and not res.namespaced):
        raise APIError(404, "NotFound", "the server could not find the requested resource")
    return res, ns, name, sub


def _discovery(path: str) -> tuple[int, Any]:
    if path.rstrip("/") == "/version":
        return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-kubeapi-test", "platform": "linux/amd64"}
    if path.rstrip("/") == "/api":
        return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    raise APIError(404, "NotFound", "the server could not find the requested resource")


def _rbac_verb(method: str, name: str | None, sub: str | None, watch: bool) -> str:
    if sub == "exec":
        return "create"
    return {"GET": "watch" if watch else ("get" if name else "list"), "POST": "create", "PUT": "update",
            "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())


class _Handler(http.server.BaseHTTPRequestHandler):
    server_api: KubeAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:   # quiet
        pass

    def setup(self) -> None:
        api = self.server_api
        if api.tls:
            self.request = api._ssl_context.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError):
            self.close_connection = True

    def do_GET(self) -> None: self._dispatch()      # noqa: E704
    def do_POST(self) -> None: self._dispatch()     # noqa: E704
    def do_PUT(self) -> None: self._dispatch()      # noqa: E704
    def do_PATCH(self) -> None: self._dispatch()    # noqa: E704
    def do_DELETE(self) -> None: self._dispatch()   # noqa: E704

    def _dispatch(self) -> None:
        api = self.server_api
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        req = Request(self.command, url.path, query, started=time.monotonic())
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        api.log.append(req)
        try:
            if raw:
                try:
                    req.body = json.loads(raw)
                except ValueError:
                    raise APIError(400, "BadRequest", "the body of the request was in an unknown format") from None
            res, ns, name, sub = _route(url.path)
            if res is not None:
                req.resource = res.plural + (f"/{sub}" if sub else "")
                req.namespace, req.name = ns, name
                req.verb = _rbac_verb(self.command, name, sub, query.get("watch", ["false"])[0] == "true")
            if api.latency:
                time.sleep(api.latency)
            scheme, _, credential = headers.get("authorization", "").partition(" ")
            if api.token is not None and (scheme.lower() != "bearer" or credential.strip() != api.token):
                raise APIError(401, "Unauthorized", "Unauthorized")
            for hook in list(api.hooks):
                hook(req, api)
            for f in list(api.faults):
                if f.matches(req):
                    f.hits += 1
                    if f.delay:
                        time.sleep(f.delay)
                    if f.hang:
                        self._hang()
                        return
                    if f.status:
                        raise APIError(f.status, f.reason or http.HTTPStatus(f.status).phrase.replace(" ", ""),
                                       f.message or http.HTTPStatus(f.status).phrase)
            for d in api.denials:
                if (req.verb == d.verb and req.resource == d.resource and (d.namespace in (None, ns))
                        and (d.name in (None, name))):
                    raise APIError(403, "Forbidden", forbidden_message(
                        d.verb, d.resource, group=res.group if res else "", namespace=ns, name=name, user=api.user),
                        _details(res, name))
            if sub == "exec" and res is not None and res.plural == "pods":
                self._exec(req, ns, name, query, headers)
                return
            if sub is not None:
                raise APIError(404, "NotFound", "the server could not find the requested resource")
            status, body = api._handle(req, req.body, headers)
        except APIError as e:
            status, body = e.code, e.status()
        except Exception as e:   # a bug in the server or a hook: say so as a 500
            status, body = 500, APIError(500, "InternalError", f"kubeapi: {type(e).__name__}: {e}").status()
        self._send_json(status, body)
        req.status, req.ended = status, time.monotonic()

    def _send_json(self, status: int, body: Any) -> None:
        data = body if isinstance(body, _Encoded) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _hang(self, websocket: bool = False) -> None:
        """Hold the request until release()/stop() or until the client goes away (or, on a
        WebSocket, sends anything, such as its close frame: then answer with a close frame)."""
        api = self.server_api
        sock = self.connection
        while not api._release.is_set():
            try:
                r, _, _ = select.select([sock], [], [], 0.05)
                if r:
                    if websocket and sock.recv(1, socket.MSG_PEEK):
                        self._ws_send(struct.pack("!H", 1000), opcode=0x8)
                    break
            except (OSError, ValueError):
                break
        self.close_connection = True

    # ---------------------------------------------------------------- exec over WebSocket

    def _exec(self, req: Request, ns: str, name: str, query: dict, headers: dict) -> None:
        api = self.server_api
        pod = api._get(RESOURCES[("v1", "pods")], ns, name)
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        container = query.get("container", [None])[0]
        if container is None:
            if len(containers) != 1:
                raise APIError(400, "BadRequest", f"a container name must be specified for pod {name}, "
                               f"choose one of: [{' '.join(containers)}]")
            container = containers[0]
        elif container not in containers:
            raise APIError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        if (pod.get("status") or {}).get("phase") != "Running":
            raise APIError(400, "BadRequest", f"unable to upgrade connection: container not found (\"{container}\")")
        if headers.get("upgrade", "").lower() != "websocket":
            raise APIError(400, "BadRequest", "Upgrade request required")
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        proto = next((p for p in api.exec_protocols if p in offered), None)
        if proto is None:
            raise APIError(400, "BadRequest", "no supported WebSocket subprotocol offered")
        command = tuple(query.get("command", []))
        ereq = ExecRequest(ns, name, container, command, (pod.get("spec") or {}).get("nodeName"), pod)
        handler = api._exec_handler_for(ns, pod)
        accept = base64.b64encode(hashlib.sha1(
            (headers.get("sec-websocket-key", "") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", proto)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        req.status = 101
        if handler is None:
            result: Any = not_found_in_path(command[0] if command else "")
        else:
            try:
                result = handler(ereq)
            except Exception as e:
                result = ExecResult(failure=f"kubeapi exec handler failed: {type(e).__name__}: {e}")
        if result is HANG:
            self._hang(websocket=True)
            req.ended = time.monotonic()
            return
        if isinstance(result, tuple):
            result = ExecResult(*result)
        try:
            for channel, data in ((1, result.stdout), (2, result.stderr)):
                data = data.encode() if isinstance(data, str) else data
                for i in range(0, len(data), 65536):
                    self._ws_send(bytes([channel]) + data[i:i + 65536])
            self._ws_send(bytes([3]) + json.dumps(_exec_status(result)).encode())
            self._ws_send(struct.pack("!H", 1000), opcode=0x8)
        except OSError:
            pass
        req.ended = time.monotonic()

    def _ws_send(self, payload: bytes, opcode: int = 0x2) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        self.wfile.write(header + payload)
        self.wfile.flush()
