"""Gather the Kubernetes half of a snapshot, live, with the official ``kubernetes`` client.

``gather_kube(options, progress)`` returns a ``RawCluster`` holding the API's own JSON:

* ConfigMaps: every one in the agent namespace, plus those with a well-known agent name
  (``WELL_KNOWN_CONFIGMAPS``) in other namespaces, found with one field-selected list per name
  (never a list of every ConfigMap in the cluster; optional: a 403 there is recorded, not fatal);
* DaemonSets and Pods of the agent namespace, complete;
* workload pods of every other namespace that can hold an IP (not Succeeded/Failed), paginated
  and trimmed to what maps a pod IP to its node (optional: a 403 is recorded, not fatal);
* Nodes, all of them;
* Services and EndpointSlices of every namespace (optional: a 403 or a failure leaves them
  ``None`` with the reason under ``MissingKey.SERVICES``/``ENDPOINTSLICES``);
* node captures (``NodeCapture``) for the selected Linux nodes, by exec into the node's agent
  pod, or with ``--debug-pod`` a short-lived pod that is always deleted.

Fleet behaviour: at most ``options.concurrency`` nodes at a time, each bounded by
``options.node_timeout`` (a watchdog also covers a call that ignores its timeout), a failing
node is recorded with its error while the others continue, and ``progress(what, done, total)``
is called as nodes finish. Failures that leave nothing to analyse (no kubeconfig, server
unreachable, credentials refused, a required list forbidden or timing out) raise a
``MasqctlError``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import queue
import secrets
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping

from masqctl.cluster.live import capture as cap
from masqctl.cluster.live.kubeclient import E_TIMEOUT, ApiCallError, Kube, Permission
from masqctl.cluster.live.kubeconfig import SERVICEACCOUNT_DIR, load_client_config
from masqctl.cluster.model import MissingKey, NodeCapture
from masqctl.cluster.options import GatherOptions, NodeSelection, Progress
from masqctl.cluster.raw import RawCluster
from masqctl.cluster.selection import choose, node_ref
from masqctl.errors import MasqctlError

WELL_KNOWN_CONFIGMAPS = ("ip-masq-agent", "ip-masq-agent-config", "azure-ip-masq-agent-config")

MISSING_OTHER_CONFIGMAPS = "configmaps/other-namespaces"
MISSING_WORKLOADS = "pods/workloads"
MISSING_DEBUG_PODS = "captures/debug-pods"   # debug pods that could not be deleted

WATCHDOG_GRACE = 2.0         # seconds past a node's timeout before its worker is abandoned
DEBUG_POD_POLL = 0.5
CLEANUP_TIMEOUT = 10.0


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- entry point


def gather_kube(options: GatherOptions, progress: Progress | None = None, *,
                environ: Mapping[str, str] | None = None,
                serviceaccount_dir: str = SERVICEACCOUNT_DIR) -> RawCluster:
    """The native Kubernetes documents and node captures of the cluster ``options`` points at.

    ``environ`` is where ``KUBECONFIG``, ``HOME`` and the in-cluster variables are looked up
    (default: the process environment, as kubectl does).
    """
    import urllib3


    cc = load_client_config(options.kubeconfig, options.context,
                            environ=os.environ if environ is None else environ,
                            serviceaccount_dir=serviceaccount_dir)
    cfg = cc.configuration
    cfg.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
    cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, options.concurrency + 8)
    kube = Kube(cfg, cc.where, request_timeout=options.node_timeout)
    raw = RawCluster(source=cc.source, namespace=options.namespace)
    raw.manifest["collected_at"] = _now()      # when gathering started: reports and plans say when they were read
    for kind in ("configmaps", "daemonsets", "pods", "nodes", "services", "endpointslices", "captures"):
        raw.origin[kind] = cc.where
    try:
        _Gathering(kube, options, raw, progress).run()
    finally:
        kube.close()
    return raw


# --------------------------------------------------------------------------- the run


@dataclass
class _Target:
    node: str
    pod: dict | None = None          # the agent pod to exec into
    container: str | None = None
    unusable: str | None = None      # why no agent pod can be used
    cilium_pod: str | None = None    # the node's cilium agent pod (cilium-dbg: the loaded ip-masq-agent map)


@dataclass
class _DebugPods:
    """Every debug pod this run may have created, until it is known to be deleted."""

    namespace: str
    pending: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: threading.Event = field(default_factory=threading.Event)

    def add(self, name: str) -> None:
        with self.lock:
            self.pending.add(name)

    def done(self, name: str) -> None:
        with self.lock:
            self.pending.discard(name)

    def names(self) -> list[str]:
        with self.lock:
            return sorted(self.pending)


class _Gathering:
    def __init__(self, kube: Any, options: GatherOptions, raw: RawCluster, progress: Progress | None):
        self.kube = kube
        self.options = options
        self.raw = raw
        self.progress = progress
        self.ns = options.namespace
        self.debug = _DebugPods(options.namespace)
        self.stop = threading.Event()

    # ------------------------------------------------------------------ reads

    def run(self) -> None:

        k, ns = self.kube, self.ns
        self._progress("reading cluster objects", 0, 1)
        required = {
            "configmaps": lambda: k.list(k.core.list_namespaced_config_map, ns, what=f"list configmaps in {ns}",
                                         perm=Permission("list", "configmaps", ns)),
            "daemonsets": lambda: k.list(k.apps.list_namespaced_daemon_set, ns, what=f"list daemonsets in {ns}",
                                         perm=Permission("list", "daemonsets", ns, "apps")),
            "pods": lambda: k.list(k.core.list_namespaced_pod, ns, what=f"list pods in {ns}",
                                   perm=Permission("list", "pods", ns)),
            "nodes": lambda: k.list(k.core.list_node, what="list nodes", perm=Permission("list", "nodes")),
        }
        optional = {f"cm:{name}": (lambda name=name: k.list(
            k.core.list_config_map_for_all_namespaces, field_selector=f"metadata.name={name}",
            what=f"list configmaps named {name} in all namespaces", perm=Permission("list", "configmaps")))
            for name in WELL_KNOWN_CONFIGMAPS}
        optional["services"] = lambda: k.list(k.core.list_service_for_all_namespaces,
                                               what="list services in all namespaces",
                                               perm=Permission("list", "services"))
        optional["endpointslices"] = lambda: k.list(k.discovery.list_endpoint_slice_for_all_namespaces,
                                                    what="list endpointslices in all namespaces",
                                                    perm=Permission("list", "endpointslices", group="discovery.k8s.io"))
        selector = self.options.nodes.selector
        if selector is not None:
            required["selected"] = lambda: k.list(k.core.list_node, label_selector=selector,
                                                  what=f"list nodes matching {selector!r}",
                                                  perm=Permission("list", "nodes"))
        results = _parallel({**required, **optional}, self.options.concurrency)
        for key in required:
            value = results[key]
            if isinstance(value, BaseException):
                raise value
        configmaps = list(results["configmaps"])
        other_errors = []
        for key, missing_key in (("services", MissingKey.SERVICES), ("endpointslices", MissingKey.ENDPOINTSLICES)):
            del optional[key]
            value = results.pop(key)
            if isinstance(value, BaseException):
                self.raw.missing[missing_key] = (f"{key} were not read, so paths through Services cannot be "
                                                 f"followed: {getattr(value, 'one_line', lambda: str(value))()}")
            else:
                setattr(self.raw, key, value)
        for key in optional:
            value = results[key]
            if isinstance(value, BaseException):
                other_errors.append(value)
                continue
            configmaps += [cm for cm in value if (cm.get("metadata") or {}).get("namespace") != ns]
        if other_errors:
            e = other_errors[0]
            self.raw.missing[MISSING_OTHER_CONFIGMAPS] = (
                f"ConfigMaps named {', '.join(WELL_KNOWN_CONFIGMAPS)} outside {ns} were not read: "
                f"{getattr(e, 'one_line', lambda: str(e))()}")
        self.raw.configmaps = configmaps
        self.raw.daemonsets = results["daemonsets"]
        self.raw.nodes = results["nodes"]
        ns_pods = results["pods"]
        self._progress("reading cluster objects", 1, 1)

        targets = self._select(results.get("selected"))
        workloads: dict[str, Any] = {}
        wl_thread = threading.Thread(target=self._workloads, args=(workloads,), name="masqctl-workloads",
                                     daemon=True)
        wl_thread.start()
        try:
            if not self.options.capture:
                self.raw.missing[MissingKey.CAPTURES] = "not captured (--no-capture)"
            elif targets:
                self._capture_all(self._plan(targets, ns_pods))
            wl_thread.join(timeout=self.options.node_timeout * 4)
        finally:
            self.stop.set()
            self._cleanup_debug_pods()
        self.raw.captures = dict(sorted(self.raw.captures.items()))
        if "pods" in workloads:
            self.raw.pods = ns_pods + workloads["pods"]
        else:
            self.raw.pods = ns_pods
            why = workloads.get("error") or "listing them did not finish in time"
            self.raw.missing[MISSING_WORKLOADS] = (
                f"pods outside {ns} were not read, so pod IPs of workloads cannot be mapped to nodes: {why}")

    def _workloads(self, out: dict[str, Any]) -> None:

        k = self.kube
        try:
            out["pods"] = k.list(k.core.list_pod_for_all_namespaces,
                                 field_selector=f"metadata.namespace!={self.ns},status.phase!=Succeeded,"
                                                "status.phase!=Failed",
                                 what="list pods in all namespaces", perm=Permission("list", "pods"),
                                 trim=trim_workload_pod, timeout=max(self.options.node_timeout, 30.0))
        except MasqctlError as e:
            out["error"] = e.one_line()
        except Exception as e:   # never lose the rest of the gathering to this optional read
            out["error"] = f"{type(e).__name__}: {e}"

    def _progress(self, what: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(what, done, total)

    # ------------------------------------------------------------------ node selection

    def _select(self, selected: list[dict] | None) -> list[str]:
        """The Linux nodes to capture (``masqctl.cluster.selection.choose``: the semantics a bundle
        gets too); the API server has evaluated a label selector (``selected``)."""
        sel: NodeSelection = self.options.nodes
        matched = None
        if sel.selector is not None:
            matched = {(n.get("metadata") or {}).get("name") for n in selected or []}
        chosen = choose([node_ref(n) for n in self.raw.nodes or []], sel, where="the cluster", matched=matched)
        for name, os_name in chosen.not_linux:
            self.raw.captures[name] = NodeCapture(node=name, errors={
                "node": f"{os_name} node: it runs no iptables masquerade agent; not captured"})
        return list(chosen.names)

    def _plan(self, names: list[str], ns_pods: list[dict]) -> list[_Target]:
        by_node: dict[str, list[dict]] = {}
        cilium: dict[str, str] = {}
        for p in ns_pods:
            node = (p.get("spec") or {}).get("nodeName") or ""
            if is_cilium_pod(p) and node not in cilium:
                cilium[node] = p["metadata"]["name"]
            if is_agent_pod(p):
                by_node.setdefault(node, []).append(p)
        targets = []
        for name in names:
            pod, container, why = pick_agent_pod(by_node.get(name, []))
            targets.append(_Target(name, pod, container, why, cilium.get(name)))
        return targets

    # ------------------------------------------------------------------ captures

    def _capture_all(self, targets: list[_Target]) -> None:
        total = len(targets)
        self._progress("capturing nodes", 0, total)
        results: queue.Queue = queue.Queue()
        work: queue.Queue = queue.Queue()
        for t in targets:
            work.put(t)
        started: dict[str, tuple[float, int]] = {}
        abandoned: set[int] = set()
        lock = threading.Lock()
        worker_ids = iter(range(1 << 30))

        def worker(wid: int) -> None:
            while not self.stop.is_set():
                try:
                    t = work.get_nowait()
                except queue.Empty:
                    return
                with lock:
                    started[t.node] = (time.monotonic(), wid)
                try:
                    result = self._capture(t, time.monotonic() + self.options.node_timeout)
                except BaseException as e:   # noqa: BLE001 - recorded, never lost
                    result = NodeCapture(node=t.node, captured_at=_now(), errors={"node": _error_text(e)})
                results.put((t.node, result))
                with lock:
                    if wid in abandoned:
                        return

        def spawn() -> None:
            threading.Thread(target=worker, args=(next(worker_ids),), name="masqctl-capture", daemon=True).start()

        with _sigterm_as_interrupt(self.options.debug_pod):
            for _ in range(min(self.options.concurrency, total)):
                spawn()
            done = 0
            while done < total:
                try:
                    node, result = results.get(timeout=0.1)
                except queue.Empty:
                    node = None
                if node is not None:
                    if node not in self.raw.captures:
                        self.raw.captures[node] = result
                        done += 1
                        self._progress("capturing nodes", done, total)
                    continue
                now = time.monotonic()
                with lock:
                    late = [(n, w) for n, (t0, w) in started.items()
                            if n not in self.raw.captures and now - t0 > self.options.node_timeout + WATCHDOG_GRACE]
                for n, w in late:
                    self.raw.captures[n] = NodeCapture(node=n, captured_at=_now(), errors={
                        "node": f"timed out after {self.options.node_timeout:g} s (--node-timeout); the API "
                                "server did not complete the call"})
                    done += 1
                    self._progress("capturing nodes", done, total)
                    with lock:
                        abandoned.add(w)
                        started.pop(n, None)
                    if not work.empty():
                        spawn()

    def _capture(self, t: _Target, deadline: float) -> NodeCapture:
        result = self._capture_tables(t, deadline)
        if t.cilium_pod is not None:
            result = self._cilium(result, t.cilium_pod, deadline)
        return result

    def _cilium(self, capture: NodeCapture, pod: str, deadline: float) -> NodeCapture:
        """``cilium-dbg bpf ipmasq list`` and ``cilium-dbg status`` in the node's cilium agent pod (container
        cilium-agent; older images name the tool ``cilium``): what Cilium loaded, and how it masquerades."""
        texts: dict[str, str] = {}
        errors = dict(capture.errors)
        for piece, args in CILIUM_COMMANDS:
            for tool in ("cilium-dbg", "cilium"):
                left = deadline - time.monotonic()
                if left <= 0:
                    errors[piece] = f"timed out after {self.options.node_timeout:g} s (--node-timeout)"
                    break
                out = self._exec(pod, CILIUM_CONTAINER, [tool, *args], left)
                if out.exit_code is None and out.missing_binary and tool == "cilium-dbg":
                    continue
                if out.exit_code == 0:
                    texts[piece] = out.stdout
                    errors.pop(piece, None)
                else:
                    errors[piece] = (f"{tool} {' '.join(args)} in pod {self.ns}/{pod} failed: "
                                     + (cap.first_line(out.stderr or "") or out.failure or f"exit {out.exit_code}"))
                break
        return replace(capture, cilium_ipmasq=texts.get("cilium-ipmasq"), cilium_status=texts.get("cilium-status"),
                       errors=errors)

    def _capture_tables(self, t: _Target, deadline: float) -> NodeCapture:
        if t.pod is not None:
            name = t.pod["metadata"]["name"]
            return self._exec_capture(t.node, name, t.container, [], deadline, via=f"agent-pod/{name}")
        if not self.options.debug_pod:
            return NodeCapture(node=t.node, captured_at=_now(), errors={
                "node": f"no usable agent pod on this node ({t.unusable}); rerun with --debug-pod to capture with "
                        "a short-lived host-network pod (needs create/delete pods and create pods/exec in "
                        f"{self.ns})"})
        return self._debug_capture(t.node, deadline)

    def _exec_capture(self, node: str, pod: str, container: str | None, prefix: list[str], deadline: float,
                      *, via: str) -> NodeCapture:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out after {self.options.node_timeout:g} s (--node-timeout)")
        out = self._exec(pod, container, [*prefix, "sh", "-c", cap.capture_script(self.options.conntrack)], left)
        at = _now()
        if out.exit_code is None and out.missing_binary and not prefix:
            return self._separate_execs(node, pod, container, deadline, via=via)
        if out.exit_code is None:
            return NodeCapture(node=node, captured_at=at, via=via, errors={"node": f"exec failed: {out.failure}"})
        sections = cap.split_sections(out.stdout, out.stderr)
        if out.exit_code != 0 or "iptables-save" not in sections:
            detail = cap.first_line(out.stderr) or cap.first_line(out.stdout) or "no output"
            return NodeCapture(node=node, captured_at=at, via=via, errors={
                "node": f"the capture command failed (exit {out.exit_code}): {detail}"})
        return _build_capture(node, at, via, sections, conntrack=self.options.conntrack)

    def _exec(self, pod: str, container: str | None, argv: list[str], left: float) -> Any:

        try:
            return self.kube.exec_command(self.ns, pod, container, argv, timeout=left)
        except ApiCallError as e:
            if e.code == E_TIMEOUT:
                raise TimeoutError(f"timed out after {self.options.node_timeout:g} s (--node-timeout) while "
                                   f"running the capture in pod {self.ns}/{pod}") from e
            raise

    def _separate_execs(self, node: str, pod: str, container: str | None, deadline: float, *,
                        via: str) -> NodeCapture:
        sections: dict[str, cap.Piece] = {}
        commands = [*cap.SEPARATE_COMMANDS, *([cap.CONNTRACK_COMMAND] if self.options.conntrack else [])]
        for piece, argv in commands:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {self.options.node_timeout:g} s (--node-timeout)")
            out = self._exec(pod, container, list(argv), left)
            if out.exit_code is None:
                rc = 127 if out.missing_binary else 126
                sections[piece] = cap.Piece(out.stdout, out.failure or out.stderr, rc)
            else:
                sections[piece] = cap.Piece(out.stdout, out.stderr, out.exit_code)
        return _build_capture(node, _now(), via, sections, shell=False, conntrack=self.options.conntrack)

    # ------------------------------------------------------------------ debug pods

    def _debug_capture(self, node: str, deadline: float) -> NodeCapture:

        name = f"masqctl-capture-{hashlib.sha1(node.encode()).hexdigest()[:6]}-{secrets.token_hex(3)}"
        lifetime = int(self.options.node_timeout) + 60
        via = f"debug-pod/{name}"
        self.debug.add(name)          # before the create: an interrupted create may still have made it
        capture: NodeCapture | None = None
        exists = True
        try:
            if self.stop.is_set():
                raise KeyboardInterrupt("interrupted")
            left = max(deadline - time.monotonic(), 0.1)
            try:
                self.kube.create_pod(self.ns, cap.debug_pod_manifest(name, self.ns, node, self.options.debug_image,
                                                                     lifetime), timeout=left)
            except ApiCallError as e:
                if e.status:          # the API server answered: nothing was created
                    exists = False
                    self.debug.done(name)
                raise
            if self.stop.is_set():
                raise KeyboardInterrupt("interrupted")
            self._wait_running(name, deadline)
            capture = self._exec_capture(node, name, "capture", ["chroot", "/host"], deadline, via=via)
            return capture
        finally:
            problem = self._delete_debug_pod(name) if exists else None
            if problem and capture is not None:
                capture.errors["debug-pod"] = problem

    def _wait_running(self, name: str, deadline: float) -> None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"debug pod {self.ns}/{name} did not start within {self.options.node_timeout:g} s "
                                   "(--node-timeout)")
            pod = self.kube.read_pod(self.ns, name, timeout=left)
            status = pod.get("status") or {}
            phase = status.get("phase")
            for cs in status.get("containerStatuses") or []:
                state = cs.get("state") or {}
                if "running" in state and phase == "Running":
                    return
                waiting = (state.get("waiting") or {}).get("reason")
                if waiting in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                               "CreateContainerError", "RunContainerError"):
                    msg = (state.get("waiting") or {}).get("message") or ""
                    raise RuntimeError(f"debug pod {self.ns}/{name} cannot start: {waiting} "
                                       f"({self.options.debug_image}) {msg}".rstrip())
            if phase in ("Failed", "Succeeded"):
                raise RuntimeError(f"debug pod {self.ns}/{name} ended ({phase}): {status.get('reason') or ''} "
                                   f"{status.get('message') or ''}".rstrip())
            if self.stop.wait(min(DEBUG_POD_POLL, max(left, 0))):
                raise KeyboardInterrupt("interrupted")

    def _delete_debug_pod(self, name: str) -> str | None:
        try:
            self.kube.delete_pod(self.ns, name, timeout=CLEANUP_TIMEOUT)
        except Exception as e:
            return (f"debug pod {self.ns}/{name} could not be deleted ({_error_text(e)}); delete it with "
                    f"kubectl -n {self.ns} delete pod {name}")
        self.debug.done(name)
        return None

    def _cleanup_debug_pods(self) -> None:
        """Delete every debug pod not known to be deleted yet (interrupted or abandoned runs)."""
        names = self.debug.names()
        if not names:
            return
        with _ignore_interrupts():
            for name in names:
                self._delete_debug_pod(name)
        left = self.debug.names()
        if left:
            self.raw.missing[MISSING_DEBUG_PODS] = (
                f"debug pods may be left in {self.ns}: {', '.join(left)}; delete them with "
                f"kubectl -n {self.ns} delete pod {' '.join(left)}")


# --------------------------------------------------------------------------- helpers (pure)


def _agent_container(pod: dict) -> dict | None:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if "ip-masq" in (c.get("image") or "") or "ip-masq" in (c.get("name") or ""):
            return c
    return None


CILIUM_CONTAINER = "cilium-agent"
CILIUM_COMMANDS = (("cilium-ipmasq", ("bpf", "ipmasq", "list")), ("cilium-status", ("status",)))


def is_cilium_pod(pod: dict) -> bool:
    """A running cilium agent pod (container ``cilium-agent``) in the host network."""
    spec = pod.get("spec") or {}
    return (any(c.get("name") == CILIUM_CONTAINER for c in spec.get("containers") or [])
            and bool(spec.get("hostNetwork")) and (pod.get("status") or {}).get("phase") == "Running"
            and not (pod.get("metadata") or {}).get("deletionTimestamp"))


def is_agent_pod(pod: dict) -> bool:
    """A pod running an ip-masq agent container (by image or container name)."""
    return _agent_container(pod) is not None


def pick_agent_pod(pods: list[dict]) -> tuple[dict | None, str | None, str | None]:
    """(pod, container, None) for the best usable agent pod, or (None, None, why-not)."""
    if not pods:
        return None, None, "no agent pod is scheduled on it"
    ranked = []
    reasons = []
    for p in pods:
        c = _agent_container(p)
        name = p["metadata"]["name"]
        status = p.get("status") or {}
        if not (p.get("spec") or {}).get("hostNetwork"):
            reasons.append(f"agent pod {name} is not in the host network, so its tables are not the node's")
            continue
        if status.get("phase") != "Running" or (p.get("metadata") or {}).get("deletionTimestamp"):
            reasons.append(f"agent pod {name} is {status.get('phase') or 'in an unknown phase'}"
                           + (" (terminating)" if (p.get("metadata") or {}).get("deletionTimestamp") else ""))
            continue
        cs = next((s for s in status.get("containerStatuses") or [] if s.get("name") == c["name"]), None)
        state = (cs or {}).get("state") or {}
        if "running" not in state:
            why = (state.get("waiting") or {}).get("reason") or ("terminated" if "terminated" in state else "not running")
            reasons.append(f"agent pod {name}: container {c['name']} is {why}")
            continue
        ranked.append((0 if cs.get("ready") else 1, name, p, c["name"]))
    if not ranked:
        return None, None, "; ".join(reasons)
    ranked.sort(key=lambda r: (r[0], r[1]))
    return ranked[0][2], ranked[0][3], None


def trim_workload_pod(pod: dict) -> dict:
    """A workload pod reduced to what maps a pod IP to a node (still a valid Pod document)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    out_meta = {k: meta[k] for k in ("name", "namespace", "uid", "labels", "ownerReferences", "creationTimestamp")
                if k in meta}
    out_spec: dict[str, Any] = {"containers": [{k: c[k] for k in ("name", "image") if k in c}
                                               for c in spec.get("containers") or []]}
    for k in ("nodeName", "hostNetwork"):
        if k in spec:
            out_spec[k] = spec[k]
    out_status = {k: status[k] for k in ("phase", "podIP", "podIPs", "hostIP", "hostIPs") if k in status}
    return {"apiVersion": pod.get("apiVersion", "v1"), "kind": pod.get("kind", "Pod"), "metadata": out_meta,
            "spec": out_spec, "status": out_status}


def _build_capture(node: str, at: str, via: str, sections: dict[str, cap.Piece], *, shell: bool = True,
                   conntrack: bool = False) -> NodeCapture:
    errors: dict[str, str] = {}
    texts: dict[str, str | None] = {}
    labels = {"iptables-save": "iptables-save", "ip6tables-save": "ip6tables-save", "ip-addr": "ip -o addr"}
    for piece in cap.PIECES:
        p = sections.get(piece)
        if p is None or p.rc is None:
            texts[piece] = None
            errors[piece] = "not captured: the capture stopped before this command"
            continue
        if p.rc == 0:
            texts[piece] = p.stdout + ("\n" if p.stdout and not p.stdout.endswith("\n") else "")
            continue
        texts[piece] = None
        detail = cap.first_line(p.stderr)
        if cap.missing_binary(p) or "not found" in detail and p.rc in (126, 127):
            if piece == "ip-addr":
                errors[piece] = ("`ip` is not in the container image; local addresses come from the Node object "
                                 "instead")
            elif piece == "ip6tables-save":
                errors[piece] = "ip6tables-save is not in the container image; IPv6 rules not captured"
            else:
                errors[piece] = "iptables-save is not in the container image; rules not captured"
        elif piece == "ip6tables-save":
            errors[piece] = f"IPv6 rules not captured (exit {p.rc}): {detail or 'no message'}"
        else:
            errors[piece] = f"{labels[piece]} failed (exit {p.rc}): {detail or 'no message'}"
    legacy = cap.rule_count(sections.get("legacy-rules"))
    nft = cap.rule_count(sections.get("nft-rules"))
    ipt_stderr = sections["iptables-save"].stderr if "iptables-save" in sections else ""
    backend = cap.detect_backend(texts["iptables-save"], ipt_stderr, legacy_rules=legacy, nft_rules=nft)
    table = None
    if conntrack:
        table, problem = _conntrack_piece(sections.get("conntrack"))
        if problem:
            errors["conntrack"] = problem
    nft_json, absent = _nft_piece(sections.get("nft"), errors)
    return NodeCapture(node=node, iptables_save=texts["iptables-save"], ip6tables_save=texts["ip6tables-save"],
                       ip_addr=texts["ip-addr"], conntrack=table, backend=backend, captured_at=at, via=via,
                       errors=errors, nft_ruleset=nft_json, absent=absent)


def _nft_piece(p: cap.Piece | None, errors: dict[str, str]) -> tuple[str | None, dict[str, str]]:
    """The ruleset's JSON, and what is absent: no ``nft`` on the node is recorded, not a failure."""
    if p is None or p.rc is None:
        return None, {}
    if p.rc == 0 and p.stdout.strip():
        return p.stdout + ("\n" if not p.stdout.endswith("\n") else ""), {}
    detail = cap.first_line(p.stderr)
    if cap.missing_binary(p) or "not found" in detail and p.rc in (126, 127):
        return None, {"nft": "nft is not in reach on this node (not in the container image, or not installed): "
                             "native nftables tables were not captured — run `nft -j list ruleset` on the node and "
                             "add it as nodes/<node>/nft-ruleset.json if kube-proxy or the CNI uses nftables"}
    errors["nft"] = f"nft -j list ruleset failed (exit {p.rc}): {detail or 'no message'}"
    return None, {}


def _conntrack_piece(p: cap.Piece | None) -> tuple[str | None, str | None]:
    """The table's text, or why there is none."""
    if p is None or p.rc is None:
        return None, "not captured: the capture stopped before the connection-tracking table"
    if p.rc == 0:
        return p.stdout + ("\n" if p.stdout and not p.stdout.endswith("\n") else ""), None
    detail = cap.first_line(p.stderr)
    if cap.missing_binary(p) or "not found" in detail and p.rc in (126, 127):
        return None, ("the node has no /proc/net/nf_conntrack and no conntrack tool in reach; take the table on "
                      "the node (conntrack -L) and add it as nodes/<node>/conntrack.txt")
    return None, f"reading the connection-tracking table failed (exit {p.rc}): {detail or 'no message'}"


def _error_text(e: BaseException) -> str:
    if isinstance(e, MasqctlError):
        text = e.one_line()
        return f"{text} ({e.hint})" if e.hint else text
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    if isinstance(e, TimeoutError):
        return str(e) or "timed out"
    return str(e) or type(e).__name__


def _parallel(calls: dict[str, Callable[[], Any]], width: int) -> dict[str, Any]:
    """Run the calls on daemon threads; each result is the value or the exception raised."""
    results: dict[str, Any] = {}
    todo = list(calls.items())
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                key, fn = todo.pop(0)
            try:
                value: Any = fn()
            except BaseException as e:   # noqa: BLE001 - handed back to the caller
                value = e
            with lock:
                results[key] = value

    threads = [threading.Thread(target=worker, daemon=True, name="masqctl-read")
               for _ in range(max(1, min(width, len(todo))))]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.1)
    return results


@contextmanager
def _sigterm_as_interrupt(active: bool) -> Iterator[None]:
    """While debug pods may exist, SIGTERM raises KeyboardInterrupt in the main thread, so the
    ``finally`` blocks that delete them run (Python's default SIGTERM action would skip them)."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _ignore_interrupts() -> Iterator[None]:
    """Let the cleanup finish even if Ctrl-C or SIGTERM arrives again (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
