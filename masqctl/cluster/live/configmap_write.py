"""Write the user ConfigMap safely: read with its resourceVersion, back up, create/update/delete
with optimistic concurrency, and restore from a backup.

The ``kubernetes`` client is imported only inside the functions that talk to the API server.
Objects travel as the JSON the API server sends and takes (plain dicts), so what is backed up is
exactly what was read.

Concurrency: every write names the resourceVersion the plan was made against. An update is a
PUT with that resourceVersion (the server refuses it with 409 Conflict when the object changed);
a create is refused with 409 AlreadyExists when someone created the object meanwhile; a delete
carries a resourceVersion precondition. Each of those is ``ApplyError`` E701: nothing of the
other writer's change is overwritten. Before a write the object is also read once more and
compared, so a change is caught even by a server that ignored the precondition.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
from dataclasses import dataclass, field

import yaml

from masqctl.cluster.live.kubeconfig import load_client_config
from masqctl.cluster.yamlio import dump_yaml as to_yaml
from masqctl.engine.decode import decode_document
from masqctl.errors import ApplyError, ConfigError, UsageError
from masqctl.textinput import Codes, decode, read_bytes

FIELD_MANAGER = "masqctl"
# Metadata the API server sets; left out of what is written and of backup bodies.
SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "selfLink",
                 "deletionTimestamp", "deletionGracePeriodSeconds")
BACKUP_MARKER = "# masqctl-backup"
MAX_BACKUP_BYTES = 4 * 1024 * 1024
FROM_BACKUP = Codes(open="E255", binary="E255", size="E255", error=UsageError)


@dataclass(frozen=True)
class Desired:
    """What the ConfigMap should hold after the write. ``data`` None: the ConfigMap should not exist."""

    namespace: str
    name: str
    data: dict[str, str] | None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    binary_data: dict[str, str] | None = None   # None: keep whatever the live object has


@dataclass(frozen=True)
class WriteResult:
    action: str                  # "created" | "updated" | "deleted" | "unchanged"
    resource_version: str | None  # of the object after the write (None: deleted / absent)
    object: dict | None           # the object as the server returned it


@dataclass(frozen=True)
class Backup:
    path: str
    namespace: str
    name: str
    object: dict | None           # None: the ConfigMap did not exist
    resource_version: str | None  # of the object when it was backed up

    def restore_commands(self) -> list[str]:
        """How an operator restores it by hand."""
        if self.object is None:
            return [f"kubectl -n {self.namespace} delete configmap {self.name}",
                    f"masqctl apply --from-backup {self.path}"]
        return [f"kubectl replace -f {self.path}   (kubectl create -f {self.path} if it was deleted)",
                f"masqctl apply --from-backup {self.path}"]

    def to_dict(self) -> dict:
        return {"path": self.path, "configmap": f"{self.namespace}/{self.name}", "existed": self.object is not None,
                "resource_version": self.resource_version, "restore": self.restore_commands()}


# --------------------------------------------------------------------------- client


def core_api(kubeconfig: str | None, context: str | None, *, environ, timeout: float = 30.0):
    """A ``CoreV1Api`` for the kubeconfig/context, resolved exactly as gathering resolves it
    (``masqctl.cluster.live.kubeconfig``: ``--kubeconfig``, ``KUBECONFIG`` in ``environ``, ``~/.kube/config``,
    in-cluster). The client is imported here, not at import time."""
    import urllib3
    from kubernetes import client


    cc = load_client_config(kubeconfig, context, environ=environ)
    cfg = cc.configuration
    cfg.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
    api = client.CoreV1Api(client.ApiClient(cfg))
    api._masqctl_timeout = timeout  # noqa: SLF001 - carried with the API object, read by _call
    return api


def _call(api, what: str, verb: str, namespace: str, name: str, fn, *args, **kwargs):
    """Run one API call; turn its failure into an ``ApplyError`` that names the object and verb."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    ref = f"ConfigMap {namespace}/{name}"
    try:
        return fn(*args, _preload_content=False, _request_timeout=getattr(api, "_masqctl_timeout", 30.0),
                  **kwargs)
    except ApiException as exc:
        status = _status(exc)
        message = status.get("message") or exc.reason or str(exc.status)
        if exc.status == 403:
            raise ApplyError(f"forbidden: {what} needs permission to {verb} configmaps in namespace {namespace} "
                             f"(the API server said: {message})", input=ref, code="E702",
                             hint=f"ask for a Role with verbs get, {verb} on configmaps in {namespace}, "
                             f"or check `kubectl auth can-i {verb} configmaps -n {namespace}`") from None
        if exc.status == 401:
            raise ApplyError(f"the API server refused the credentials ({message})", input=ref, code="E702",
                             hint="log in again (az aks get-credentials / kubelogin)") from None
        raise _ApiFailure(exc.status, status.get("reason") or exc.reason or "", message) from None
    except HTTPError as exc:
        raise ApplyError(f"the API server could not be reached to {verb} it: {exc.__class__.__name__}: {exc}",
                         input=ref, code="E704", hint="check the connection and the kubeconfig, then re-run") from None
    except OSError as exc:
        raise ApplyError(f"the API server could not be reached to {verb} it: {exc}", input=ref, code="E704",
                         hint="check the connection and the kubeconfig, then re-run") from None


class _ApiFailure(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def _status(exc) -> dict:
    try:
        body = json.loads(exc.body) if exc.body else {}
        return body if isinstance(body, dict) else {}
    except (ValueError, TypeError):
        return {}


def _json(response) -> dict:
    data = response.data
    return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)


def _rejected(ref: str, exc: _ApiFailure, verb: str) -> ApplyError:
    return ApplyError(f"the API server refused to {verb} it: {exc.status} {exc.reason}: {exc.message}",
                      input=ref, code="E703")


def _changed(ref: str, why: str) -> ApplyError:
    return ApplyError(f"it changed since the plan was made ({why}); nothing was written",
                      input=ref, code="E701",
                      hint="someone else changed it: re-run `masqctl apply` to plan against the current version")


# --------------------------------------------------------------------------- read


def read_configmap(api, namespace: str, name: str, *, what: str = "masqctl apply") -> dict | None:
    """The ConfigMap as the API server sends it (with ``metadata.resourceVersion``), or None if absent."""
    try:
        return _json(_call(api, what, "get", namespace, name, api.read_namespaced_config_map, name, namespace))
    except _ApiFailure as exc:
        if exc.status == 404:
            return None
        raise _rejected(f"ConfigMap {namespace}/{name}", exc, "read") from None


def resource_version(obj: dict | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


# --------------------------------------------------------------------------- backup


def _clean(obj: dict) -> dict:
    body = copy.deepcopy(obj)
    meta = body.setdefault("metadata", {})
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    body.setdefault("apiVersion", "v1")
    body.setdefault("kind", "ConfigMap")
    ordered = {"apiVersion": body.pop("apiVersion"), "kind": body.pop("kind"), "metadata": body.pop("metadata")}
    ordered.update(body)
    return ordered


def write_backup(directory: str, namespace: str, name: str, obj: dict | None, *, source: str,
                 now: datetime.datetime | None = None) -> Backup:
    """Save ``obj`` (the live ConfigMap, or None when it does not exist) to a new file in ``directory``.

    The file is never overwritten (a new name per backup), readable only by its owner. Raises
    ``ApplyError`` E705 when it cannot be written: then nothing must be written to the cluster.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S.%fZ")
    taken = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    rv = resource_version(obj)
    safe_source = re.sub(r"[^A-Za-z0-9_.-]+", "_", source).strip("_")[:60] or "cluster"
    base = f"{safe_source}_{namespace}_{name}_{stamp}"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ApplyError(f"the backup folder cannot be created: {exc.strerror}; nothing was written",
                         input=directory, code="E705", hint="give a writable --backup-dir") from None
    for attempt in range(100):
        path = os.path.join(directory, base + (f"-{attempt}" if attempt else "") + ".yaml")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ApplyError(f"the backup cannot be written: {exc.strerror}; nothing was written",
                             input=path, code="E705", hint="give a writable --backup-dir") from None
        text = _backup_text(path, namespace, name, obj, taken=taken, source=source)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise ApplyError(f"the backup cannot be written: {exc.strerror}; nothing was written",
                             input=path, code="E705", hint="give a writable --backup-dir") from None
        return Backup(path, namespace, name, copy.deepcopy(obj) if obj is not None else None, rv)
    raise ApplyError("no free backup file name", input=directory, code="E705")


def _backup_text(path: str, namespace: str, name: str, obj: dict | None, *, taken: str, source: str) -> str:
    """Comment lines (what, when, from where, the resourceVersion, how to restore) and the object."""
    rv = resource_version(obj)
    lines = [f"{BACKUP_MARKER} {'of' if obj is not None else 'absent'} {namespace}/{name}",
             f"# taken {taken} from {source}" + (f", resourceVersion {rv}" if rv else "")]
    if obj is None:
        lines += [f"# {namespace}/{name} did not exist. To restore (delete what was created):",
                  f"#   kubectl -n {namespace} delete configmap {name}"]
        body = {"apiVersion": "v1", "kind": "List", "items": []}
    else:
        lines += ["# To restore:", f"#   kubectl replace -f {path}   (kubectl create -f {path} if it was deleted)"]
        body = _clean(obj)
    lines.append(f"#   or: masqctl apply --from-backup {path}")
    return "\n".join(lines) + "\n" + _dump(body)


def _dump(obj: object) -> str:
    return to_yaml(obj)


def load_backup(path: str) -> Backup:
    """Read a backup written by ``write_backup`` (or any single ConfigMap YAML/JSON file).

    Errors are ``UsageError`` E255 naming the file: unreadable, too big, not YAML, not a ConfigMap.
    """
    name = f"--from-backup {path}"
    data = read_bytes(path, label=name, what="", max_bytes=MAX_BACKUP_BYTES, codes=FROM_BACKUP, stdin_ok=False,
                      size_hint="a ConfigMap backup is a few KiB")
    text = decode(name, data, what="", codes=FROM_BACKUP)
    absent = None
    backed_rv = None
    for line in text.splitlines()[:3]:
        m = re.match(rf"^{re.escape(BACKUP_MARKER)} absent ([^/\s]+)/(\S+)$", line)
        if m:
            absent = (m.group(1), m.group(2))
        m = re.match(r"^# taken .*, resourceVersion (\S+)$", line)
        if m:
            backed_rv = m.group(1)
    try:
        try:
            decode_document(os.path.basename(path), data)
        except ConfigError as exc:
            if exc.code == "E102":
                raise UsageError(f"is not valid YAML: {exc.message}", input=f"--from-backup {path}",
                                 code="E255") from None
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"is not valid YAML: {exc}", input=f"--from-backup {path}", code="E255") from None
    if absent is not None:
        if not (isinstance(doc, dict) and doc.get("kind") == "List" and not doc.get("items")):
            raise UsageError("says the ConfigMap was absent but holds objects", input=f"--from-backup {path}",
                             code="E255")
        return Backup(path, absent[0], absent[1], None, None)
    if not isinstance(doc, dict) or doc.get("kind") != "ConfigMap" or doc.get("apiVersion") != "v1":
        raise UsageError("is not a v1 ConfigMap (kind and apiVersion)", input=f"--from-backup {path}",
                         code="E255", hint="give a file written by masqctl apply, or `kubectl get configmap -o yaml`")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise UsageError("has no metadata.name", input=f"--from-backup {path}", code="E255")
    for part in ("data", "binaryData"):
        value = doc.get(part)
        if value is not None and (not isinstance(value, dict)
                                  or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            raise UsageError(f"{part} must map keys to strings", input=f"--from-backup {path}", code="E255")
    for part in ("labels", "annotations"):
        value = meta.get(part)
        if value is not None and (not isinstance(value, dict)
                                  or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            raise UsageError(f"metadata.{part} must map keys to strings", input=f"--from-backup {path}",
                             code="E255")
    namespace = meta.get("namespace") or "kube-system"
    return Backup(path, namespace, meta["name"], doc, meta.get("resourceVersion") or backed_rv)


def desired_from_backup(backup: Backup) -> Desired:
    if backup.object is None:
        return Desired(backup.namespace, backup.name, None)
    meta = backup.object.get("metadata") or {}
    return Desired(backup.namespace, backup.name, dict(backup.object.get("data") or {}),
                   dict(meta.get("labels") or {}), dict(meta.get("annotations") or {}),
                   dict(backup.object.get("binaryData") or {}))


# --------------------------------------------------------------------------- write


def write(api, desired: Desired, expected_rv: str | None, *, what: str = "masqctl apply") -> WriteResult:
    """Make the ConfigMap ``desired``, provided it is still at ``expected_rv`` (None: absent).

    Create when it was absent, update (PUT with ``expected_rv``) when present, delete (with a
    resourceVersion precondition) when ``desired.data`` is None. Raises ``ApplyError`` E701 when
    the object is not at ``expected_rv`` any more; nothing is written then.
    """
    ns, name = desired.namespace, desired.name
    ref = f"ConfigMap {ns}/{name}"
    live = read_configmap(api, ns, name, what=what)
    live_rv = resource_version(live)
    if live_rv != expected_rv:
        if expected_rv is None:
            raise _changed(ref, f"it was absent, now it exists at resourceVersion {live_rv}")
        if live is None:
            raise _changed(ref, f"it was at resourceVersion {expected_rv}, now it does not exist")
        raise _changed(ref, f"planned against resourceVersion {expected_rv}, now at {live_rv}")
    if desired.data is None:
        if live is None:
            return WriteResult("unchanged", None, None)
        return _delete(api, ns, name, expected_rv, what)
    if live is None:
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns}, "data": dict(desired.data)}
        if desired.labels:
            body["metadata"]["labels"] = dict(desired.labels)
        if desired.annotations:
            body["metadata"]["annotations"] = dict(desired.annotations)
        if desired.binary_data:
            body["binaryData"] = dict(desired.binary_data)
        try:
            created = _json(_call(api, what, "create", ns, name, api.create_namespaced_config_map, ns, body,
                                  field_manager=FIELD_MANAGER))
        except _ApiFailure as exc:
            if exc.status == 409:
                raise _changed(ref, "someone created it after the plan was made") from None
            raise _rejected(ref, exc, "create") from None
        return WriteResult("created", resource_version(created), created)
    body = copy.deepcopy(live)
    meta = body.setdefault("metadata", {})
    meta.pop("managedFields", None)
    meta["resourceVersion"] = expected_rv
    meta["labels"] = dict(desired.labels)
    meta["annotations"] = dict(desired.annotations)
    if not meta["labels"]:
        meta.pop("labels")
    if not meta["annotations"]:
        meta.pop("annotations")
    body["data"] = dict(desired.data)
    if desired.binary_data is not None:
        if desired.binary_data:
            body["binaryData"] = dict(desired.binary_data)
        else:
            body.pop("binaryData", None)
    try:
        updated = _json(_call(api, what, "update", ns, name, api.replace_namespaced_config_map, name, ns, body,
                              field_manager=FIELD_MANAGER))
    except _ApiFailure as exc:
        if exc.status == 409:
            raise _changed(ref, f"the API server refused the update: {exc.message}") from None
        if exc.status == 404:
            raise _changed(ref, "it was deleted after the plan was made") from None
        raise _rejected(ref, exc, "update") from None
    return WriteResult("updated", resource_version(updated), updated)


def _delete(api, ns: str, name: str, expected_rv: str, what: str) -> WriteResult:
    ref = f"ConfigMap {ns}/{name}"
    body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"resourceVersion": expected_rv}}
    try:
        _call(api, what, "delete", ns, name, api.delete_namespaced_config_map, name, ns, body=body)
    except _ApiFailure as exc:
        if exc.status == 409:
            raise _changed(ref, f"the API server refused the delete: {exc.message}") from None
        if exc.status == 404:
            raise _changed(ref, "someone deleted it after the plan was made") from None
        raise _rejected(ref, exc, "delete") from None
    return WriteResult("deleted", None, None)
