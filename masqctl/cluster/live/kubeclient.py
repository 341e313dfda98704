"""A thin layer over the official ``kubernetes`` client: native JSON in, clear errors out.

* Every read returns the API's own JSON (``_preload_content=False`` + ``json.loads``), so what
  masqctl keeps is what ``kubectl get -o json`` shows (``managedFields`` dropped, as kubectl does).
* Lists are paginated (``limit``/``continue``) and every call has a timeout.
* ``exec_command`` runs one command in a container over the exec WebSocket and returns its
  stdout, stderr and exit status separately. It uses its own ``ApiClient``: the client's stream
  helper swaps a method on the ``ApiClient`` it is given, which is not safe to share between
  threads.
* ``describe_failure`` turns any client/transport exception into a ``GatherError`` with a stable
  code and, for 403, the permission that is missing.
"""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Iterator

from masqctl.errors import GatherError

E_UNREACHABLE = "E613"      # the API server cannot be reached
E_TLS = "E614"              # TLS verification or handshake failed
E_UNAUTHORIZED = "E615"     # 401: credentials refused
E_FORBIDDEN = "E616"        # 403: a permission is missing
E_TIMEOUT = "E617"          # a call did not answer in time
E_API = "E618"              # any other API error (5xx, unexpected answer)

PAGE_SIZE = 500


@dataclass(frozen=True)
class Permission:
    """What a call needs, for the 403 message: ``verb`` on ``resource`` (in ``namespace``)."""

    verb: str
    resource: str
    namespace: str | None = None     # None: cluster scope
    group: str = ""

    def describe(self) -> str:
        scope = f"in {self.namespace}" if self.namespace else "cluster-wide"
        return f"{self.verb} {self.resource} {scope}"

    def grant(self) -> str:
        verbs = {"list": "get,list", "get": "get"}.get(self.verb, self.verb)
        kind = "Role" if self.namespace else "ClusterRole"
        ns = f" in namespace {self.namespace}" if self.namespace else ""
        return f"grant `{verbs}` on {self.resource}{ns} (a {kind}; see docs/rbac.md and deploy/rbac.yaml)"


class ApiCallError(GatherError):
    """A failed API call. ``status`` is the HTTP status (0 when there was no answer)."""

    def __init__(self, message: str, *, status: int = 0, input: str | None = None, hint: str | None = None,
                 code: str | None = None):
        super().__init__(message, input=input, hint=hint, code=code)
        self.status = status


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "reason", None) if isinstance(getattr(e, "reason", None), BaseException) else None,
                 e.__cause__, e.__context__]


def _status_body(exc: BaseException) -> dict | None:
    for e in _chain(exc):
        body = getattr(e, "body", None) or getattr(e, "resp_body", None)
        if body:
            try:
                doc = json.loads(body)
            except (ValueError, TypeError):
                continue
            if isinstance(doc, dict):
                return doc
    return None


def _http_status(exc: BaseException) -> int:
    for e in _chain(exc):
        st = getattr(e, "status", None) or getattr(e, "status_code", None)
        if isinstance(st, int) and st:
            return st
    return 0


def describe_failure(exc: BaseException, *, what: str, server: str, perm: Permission | None = None,
                     timeout: float | None = None) -> ApiCallError:
    """An ``ApiCallError`` for a failed call. ``what`` says what was attempted ("list nodes"),
    ``server`` where (``the Kubernetes API (context X)``)."""
    import urllib3.exceptions as u3

    status = _http_status(exc)
    body = _status_body(exc) or {}
    api_message = body.get("message") if isinstance(body.get("message"), str) else None
    if status == 403:
        need = perm.describe() if perm else what
        return ApiCallError(f"forbidden: cannot {need}" + (f" ({api_message})" if api_message else ""),
                            status=403, input=server, code=E_FORBIDDEN,
                            hint=perm.grant() if perm else "ask a cluster admin for the permission named above")
    if status == 401:
        return ApiCallError(f"the API server refused the credentials (401 Unauthorized) while trying to {what}",
                            status=401, input=server, code=E_UNAUTHORIZED,
                            hint="refresh the credentials (az aks get-credentials, kubelogin) or check the token")
    if status:
        detail = api_message or getattr(exc, "reason", None) or str(exc)
        return ApiCallError(f"{what} failed: HTTP {status}: {detail}", status=status, input=server, code=E_API)
    for e in _chain(exc):
        # (urllib3's NewConnectionError is a ConnectTimeoutError subclass: a refusal, not a timeout)
        if isinstance(e, (u3.NewConnectionError, ConnectionRefusedError, socket.gaierror)) and \
                not isinstance(e, (socket.timeout, TimeoutError)) and "timed out" not in str(e):
            return ApiCallError(f"{what}: cannot reach the API server: {_short(e)}", input=server,
                                code=E_UNREACHABLE,
                                hint="check the server address, VPN/private-cluster access and that the "
                                     "cluster is running (az aks show)")
    for e in _chain(exc):
        if isinstance(e, (u3.ReadTimeoutError, u3.ConnectTimeoutError, socket.timeout, TimeoutError)) or \
                type(e).__name__ in ("WebSocketTimeoutException",):
            limit = f" within {timeout:g} s" if timeout else ""
            return ApiCallError(f"{what}: the API server did not answer{limit}", input=server, code=E_TIMEOUT,
                                hint="the API server or its network is slow; retry, or raise --node-timeout")
    for e in _chain(exc):
        if isinstance(e, (ssl.SSLError, u3.SSLError)) or "CERTIFICATE_VERIFY_FAILED" in str(e) \
                or "SSLError" in str(getattr(e, "reason", "")):
            return ApiCallError(f"{what}: TLS failed: {_short(e)}", input=server, code=E_TLS,
                                hint="the server certificate does not match the kubeconfig's CA or server name; "
                                     "refresh the kubeconfig (az aks get-credentials)")
    for e in _chain(exc):
        if isinstance(e, (u3.NewConnectionError, ConnectionError, u3.ProtocolError, socket.gaierror)) or \
                type(e).__name__ in ("WebSocketConnectionClosedException", "WebSocketAddressException"):
            return ApiCallError(f"{what}: cannot reach the API server: {_short(e)}", input=server,
                                code=E_UNREACHABLE,
                                hint="check the server address, VPN/private-cluster access and that the "
                                     "cluster is running (az aks show)")
    return ApiCallError(f"{what} failed: {_short(exc)}", input=server, code=E_API)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]


def strip_object(obj: dict) -> dict:
    """Drop what ``kubectl get -o json`` hides by default (``metadata.managedFields``)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


class Kube:
    """The calls masqctl makes, on one shared ``ApiClient`` (thread-safe for plain requests)."""

    def __init__(self, configuration: Any, where: str, *, request_timeout: float = 30.0):
        from kubernetes import client

        self.configuration = configuration
        self.where = where
        self.request_timeout = request_timeout
        self.api_client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.discovery = client.DiscoveryV1Api(self.api_client)

    def close(self) -> None:
        try:
            self.api_client.close()
        except Exception:
            pass

    def _call(self, fn: Any, *args: Any, what: str, perm: Permission | None, timeout: float | None = None,
              **kw: Any) -> Any:
        t = timeout or self.request_timeout
        try:
            resp = fn(*args, _preload_content=False, _request_timeout=t, **kw)
            data = resp.data
        except Exception as e:
            raise describe_failure(e, what=what, server=self.where, perm=perm, timeout=t) from e
        try:
            return json.loads(data)
        except ValueError as e:
            raise ApiCallError(f"{what}: the API server's answer is not JSON", input=self.where, code=E_API) from e

    def list(self, fn: Any, *args: Any, what: str, perm: Permission | None, page_size: int = PAGE_SIZE,
             timeout: float | None = None, trim: Any = None, **kw: Any) -> list[dict]:
        """Every item of a list call, page by page. ``trim(obj)`` may shrink each object."""
        items: list[dict] = []
        cont = None
        while True:
            extra = dict(kw)
            if cont:
                extra["_continue"] = cont
            page = self._call(fn, *args, what=what, perm=perm, timeout=timeout, limit=page_size, **extra)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise ApiCallError(f"{what}: the answer is not a list", input=self.where, code=E_API)
            for obj in page["items"]:
                if isinstance(obj, dict):
                    items.append(trim(obj) if trim else strip_object(obj))
            cont = (page.get("metadata") or {}).get("continue")
            if not cont:
                return items

    def get(self, fn: Any, *args: Any, what: str, perm: Permission | None, timeout: float | None = None) -> dict:
        return strip_object(self._call(fn, *args, what=what, perm=perm, timeout=timeout))

    # ------------------------------------------------------------------ pods (debug pods)

    def create_pod(self, namespace: str, body: dict, *, timeout: float) -> dict:
        return self._call(self.core.create_namespaced_pod, namespace, body, what=f"create pod in {namespace}",
                          perm=Permission("create", "pods", namespace), timeout=timeout)

    def read_pod(self, namespace: str, name: str, *, timeout: float) -> dict:
        return self._call(self.core.read_namespaced_pod, name, namespace, what=f"get pod {namespace}/{name}",
                          perm=Permission("get", "pods", namespace), timeout=timeout)

    def delete_pod(self, namespace: str, name: str, *, timeout: float) -> bool:
        """Delete now (grace period 0). False when it was already gone."""
        try:
            self._call(self.core.delete_namespaced_pod, name, namespace, what=f"delete pod {namespace}/{name}",
                       perm=Permission("delete", "pods", namespace), timeout=timeout,
                       grace_period_seconds=0)
        except ApiCallError as e:
            if e.status == 404:
                return False
            raise
        return True

    # ------------------------------------------------------------------ exec

    def exec_command(self, namespace: str, pod: str, container: str | None, argv: list[str], *,
                     timeout: float) -> "ExecOutput":
        """Run ``argv`` in the container; wait at most ``timeout`` seconds in all."""
        import time

        from kubernetes import client
        from kubernetes.stream import stream

        perm = Permission("create", "pods/exec", namespace)
        what = f"exec in pod {namespace}/{pod}"
        deadline = time.monotonic() + timeout
        api_client = client.ApiClient(self.configuration)
        ws = None
        try:
            kw: dict[str, Any] = {"command": argv, "stdout": True, "stderr": True, "stdin": False, "tty": False,
                                  "_preload_content": False}
            if container:
                kw["container"] = container
            # The client opens the WebSocket without a timeout: a handshake that never completes is
            # bounded by the caller's per-node watchdog (masqctl.cluster.live.kube), not here.
            try:
                ws = stream(client.CoreV1Api(api_client).connect_get_namespaced_pod_exec, pod, namespace, **kw)
            except Exception as e:
                raise describe_failure(e, what=what, server=self.where, perm=perm, timeout=timeout) from e
            while ws.is_open():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ApiCallError(f"{what}: no answer within {timeout:g} s", input=self.where, code=E_TIMEOUT)
                try:
                    ws.update(timeout=min(left, 1.0))
                except Exception as e:
                    raise describe_failure(e, what=what, server=self.where, perm=perm, timeout=timeout) from e
            out = ws.read_channel(1)
            err = ws.read_channel(2)
            status_text = ws.read_channel(3)
        finally:
            if ws is not None:
                try:
                    ws.close(timeout=0.2)
                except Exception:
                    pass
            try:
                api_client.close()
            except Exception:
                pass
        return ExecOutput.from_channels(out, err, status_text)


@dataclass(frozen=True)
class ExecOutput:
    """One exec's result. ``exit_code`` None: the command did not run (``failure`` says why)."""

    stdout: str
    stderr: str
    exit_code: int | None
    failure: str | None = None

    @property
    def missing_binary(self) -> bool:
        return self.failure is not None and "executable file not found" in self.failure

    @classmethod
    def from_channels(cls, out: str, err: str, status_text: str) -> "ExecOutput":
        if not status_text:
            return cls(out, err, None, "the exec ended without a status (connection closed)")
        try:
            status = json.loads(status_text)
        except ValueError:
            return cls(out, err, None, f"unreadable exec status: {status_text[:200]}")
        if status.get("status") == "Success":
            return cls(out, err, 0)
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    return cls(out, err, int(cause.get("message")))
                except (TypeError, ValueError):
                    break
        return cls(out, err, None, str(status.get("message") or status_text)[:500])
