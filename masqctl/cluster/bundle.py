"""Bundles: a cluster's native documents in a folder (or a ``.tar.gz`` of one).

Layout (docs/bundles.md)::

    configmaps.yaml  daemonsets.yaml  pods.yaml  nodes.yaml     kubectl get … -o yaml (kind: List)
    services.yaml  endpointslices.yaml                            kubectl get svc|endpointslices -A -o yaml
    aks.json                                                      az aks show -o json
    vnets/<name>.json                                             az network vnet show -o json
    nodes/<node>/iptables-save.txt  ip6tables-save.txt  ip-addr.txt  conntrack.txt
    nodes/<node>/cilium-ipmasq.txt  cilium-status.txt             cilium-dbg bpf ipmasq list / status
    manifest.json                                                 written by masqctl collect

Every file is optional; what is absent is recorded in ``RawCluster.missing``. Reading is
defensive: a tarball member that escapes the bundle, a link or device, a bundle over the
size cap (in total, or one bundle file over its own cap), a file that is not text, not
YAML/JSON or of the wrong shape is an ``InputError`` naming the file (and the field); but a
node's capture file that is not text, is a folder or cannot be read is only that node's capture
piece lost, with the reason in ``NodeCapture.errors`` (the other nodes are read). Only the
bundle's own files are ever read: any other file or tarball member (an attachment, a core dump)
is skipped unread. Writing is all-or-nothing: the bundle is written into a
temporary sibling folder that is renamed into place at the end.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections import OrderedDict
from typing import Any

from masqctl.cluster.dumpheader import detect_backend
from masqctl.cluster.model import MissingKey, NodeCapture
from masqctl.cluster.raw import (
    AKS_FILE,
    CONFIGMAPS_FILE,
    CILIUM_IPMASQ_FILE,
    CILIUM_STATUS_FILE,
    CONNTRACK_FILE,
    DAEMONSETS_FILE,
    ENDPOINTSLICES_FILE,
    IP6TABLES_FILE,
    IP_ADDR_FILE,
    IPTABLES_FILE,
    MANIFEST_FILE,
    NODES_DIR,
    NFT_FILE,
    NFT_TEXT_FILE,
    NODES_FILE,
    PODS_FILE,
    SERVICES_FILE,
    VNETS_DIR,
    RawCluster,
)
from masqctl.cluster.shape import Doc, type_name
from masqctl.cluster.yamlio import (
    BUNDLE_TEXT,
    decode_text,
    dump_json,
    dump_yaml,
    load_json,
    load_text_documents,
)
from masqctl.errors import InputError, UsageError

# Codes (docs/errors.md, "Bundles").
E_OPEN = "E320"       # the bundle does not exist or is neither a folder nor a readable .tar.gz
E_UNSAFE = "E323"     # a member escapes the bundle, or is a link, device or other special file
E_SIZE = "E324"       # over the size cap
E_NODE_NAME = "E325"  # a node name that cannot be a folder name
E_OUT_EXISTS = "E326"  # the output folder exists and is not empty
E_WRITE = "E327"      # the bundle cannot be written
E_EMPTY = "E329"      # none of the bundle's files is there
E_FILE_SIZE = "E340"  # one bundle file over the per-file cap

DEFAULT_MAX_BYTES = 2 << 30          # 2 GiB of files in one bundle
DEFAULT_MAX_FILE_BYTES = 256 << 20   # 256 MiB for one bundle file (a large cluster's pods.yaml is far less)
DEFAULT_MAX_MEMBERS = 200_000

FORMAT_VERSION = 1

KUBE_FILES = {   # RawCluster attribute → (file, kind of the items, MissingKey)
    "configmaps": (CONFIGMAPS_FILE, "ConfigMap", MissingKey.CONFIGMAPS),
    "daemonsets": (DAEMONSETS_FILE, "DaemonSet", MissingKey.DAEMONSETS),
    "pods": (PODS_FILE, "Pod", MissingKey.PODS),
    "nodes": (NODES_FILE, "Node", MissingKey.NODES),
    "services": (SERVICES_FILE, "Service", MissingKey.SERVICES),
    "endpointslices": (ENDPOINTSLICES_FILE, "EndpointSlice", MissingKey.ENDPOINTSLICES),
}
CAPTURE_FILES = {IPTABLES_FILE: "iptables_save", IP6TABLES_FILE: "ip6tables_save", IP_ADDR_FILE: "ip_addr",
                 CONNTRACK_FILE: "conntrack", CILIUM_IPMASQ_FILE: "cilium_ipmasq",
                 CILIUM_STATUS_FILE: "cilium_status", NFT_FILE: "nft_ruleset", NFT_TEXT_FILE: "nft_ruleset_text"}
CAPTURE_PIECES = {IPTABLES_FILE: "iptables-save", IP6TABLES_FILE: "ip6tables-save", IP_ADDR_FILE: "ip-addr",
                  CONNTRACK_FILE: "conntrack", CILIUM_IPMASQ_FILE: "cilium-ipmasq", CILIUM_STATUS_FILE: "cilium-status",
                  NFT_FILE: "nft", NFT_TEXT_FILE: "nft"}
_VNET_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?$")


def safe_node_name(name: str) -> bool:
    """A node name usable as a folder name: a DNS subdomain as Kubernetes requires (letters,
    digits, ``-``, ``.``, ``_``; starts and ends alphanumeric; at most 253 characters)."""
    return bool(_NODE_NAME.match(name)) and ".." not in name


# =========================================================================== reading


class _Files:
    """The bundle's relevant files, by POSIX path relative to the bundle root."""

    def __init__(self, label: str):
        self.label = label
        self.data: dict[str, bytes] = {}
        self.unreadable: dict[str, str] = {}   # a node capture that cannot be read -> why
        self.on_disk: dict[str, str] = {}      # a folder's node captures, read when asked for -> full path
        self.max_file_bytes = DEFAULT_MAX_FILE_BYTES


class _Texts:
    """The node captures of a bundle folder, read from their files when asked for. The last few
    read are kept (readers ask for one capture several times in a row); no others, so a fleet's
    captures are never in memory all at once."""

    KEEP = 4

    def __init__(self, max_file_bytes: int):
        self.max_file_bytes = max_file_bytes
        self._recent: OrderedDict[str, str] = OrderedDict()

    def read(self, full: str, rel: str) -> str:
        text = self._recent.get(full)
        if text is not None:
            self._recent.move_to_end(full)
            return text
        try:
            with open(full, "rb") as fh:
                data = fh.read(self.max_file_bytes + 1)
        except OSError as exc:
            raise InputError(f"cannot be read: {exc.strerror}", input=rel, code=E_OPEN) from None
        if len(data) > self.max_file_bytes:
            raise _file_too_big(os.path.dirname(full), rel, len(data), self.max_file_bytes, grew=True)
        text = _text(rel, data)
        self._recent[full] = text
        while len(self._recent) > self.KEEP:
            self._recent.popitem(last=False)
        return text


_KEEP_READ = 1 << 16     # a capture this small (ip -o addr, an empty one) is kept once read


class _OnDisk:
    """A capture text still in its file."""

    __slots__ = ("texts", "full", "rel")

    def __init__(self, texts: _Texts, full: str, rel: str):
        self.texts, self.full, self.rel = texts, full, rel

    def read(self) -> str:
        return self.texts.read(self.full, self.rel)


def _text_field(name: str) -> property:
    def get(self):
        value = self.__dict__[name]
        return value.read() if isinstance(value, _OnDisk) else value

    def put(self, value) -> None:
        self.__dict__[name] = value

    return property(get, put, doc=f"``NodeCapture.{name}``, read from the bundle's file when asked for")


class BundleCapture(NodeCapture):
    """A ``NodeCapture`` of a bundle folder whose texts stay in their files until asked for (each
    is read and checked once when the bundle is read). It is equal to the ``NodeCapture`` with the
    same values."""

    iptables_save = _text_field("iptables_save")
    ip6tables_save = _text_field("ip6tables_save")
    ip_addr = _text_field("ip_addr")
    conntrack = _text_field("conntrack")
    cilium_ipmasq = _text_field("cilium_ipmasq")
    cilium_status = _text_field("cilium_status")
    nft_ruleset = _text_field("nft_ruleset")
    nft_ruleset_text = _text_field("nft_ruleset_text")

    def __eq__(self, other):
        if not isinstance(other, NodeCapture):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in NodeCapture.__dataclass_fields__)

    __hash__ = NodeCapture.__hash__

    def holds(self, name: str) -> bool:
        value = self.__dict__.get(name)
        return True if isinstance(value, _OnDisk) else bool(getattr(self, name))   # kept on disk: not empty


def _capture_file(rel: str) -> bool:
    """``nodes/<node>/<capture file>``: one node's capture, whose failure is that node's alone."""
    parts = rel.split("/")
    return len(parts) == 3 and parts[0] == NODES_DIR and parts[2] in CAPTURE_FILES


def _relevant(rel: str) -> bool:
    parts = rel.split("/")
    if len(parts) == 1:
        return parts[0] in (CONFIGMAPS_FILE, DAEMONSETS_FILE, PODS_FILE, NODES_FILE, SERVICES_FILE,
                            ENDPOINTSLICES_FILE, AKS_FILE, MANIFEST_FILE)
    if len(parts) == 2 and parts[0] == VNETS_DIR:
        return parts[1].endswith(".json")
    if len(parts) == 3 and parts[0] == NODES_DIR:
        return parts[2] in CAPTURE_FILES
    return False


def _file_too_big(label: str, rel: str, size: int, max_file_bytes: int, *, grew: bool = False) -> InputError:
    what = "grew past" if grew else f"is {size} bytes, over"
    return InputError(f"{what} the cap of {max_file_bytes} bytes for one bundle file; it is not read", input=f"{label}: {rel}", code=E_FILE_SIZE,
                      hint="a bundle file this large is not kubectl, az or iptables-save output; "
                           "check the file, or cut it down to the objects that matter")


def _read_folder(path: str, max_bytes: int, max_file_bytes: int) -> _Files:
    files = _Files(path)
    files.max_file_bytes = max_file_bytes
    total = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        rel_dir = os.path.relpath(dirpath, path)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        depth = 0 if not rel_dir else rel_dir.count("/") + 1
        keep = []
        for d in dirnames:
            full = os.path.join(dirpath, d)
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if os.path.islink(full):
                if rel in (VNETS_DIR, NODES_DIR) or (depth == 1 and rel_dir == NODES_DIR) or _relevant(rel):
                    raise InputError("is a symbolic link; a bundle holds plain files and folders only",
                                     input=f"{path}: {rel}", code=E_UNSAFE)
                continue
            if depth < 2:
                keep.append(d)
            elif _capture_file(rel):
                files.unreadable[rel] = "is a folder, not a file"
        dirnames[:] = keep
        for f in filenames:
            rel = f"{rel_dir}/{f}" if rel_dir else f
            if not _relevant(rel):
                continue
            full = os.path.join(dirpath, f)
            try:
                st = os.lstat(full)
            except OSError as exc:
                if _capture_file(rel):
                    files.unreadable[rel] = f"cannot be read: {exc.strerror}"
                    continue
                raise InputError(f"cannot be read: {exc.strerror}", input=f"{path}: {rel}", code=E_OPEN) from None
            if stat.S_ISLNK(st.st_mode):
                raise InputError("is a symbolic link; a bundle holds plain files only", input=f"{path}: {rel}",
                                 code=E_UNSAFE)
            if not stat.S_ISREG(st.st_mode):
                raise InputError("is not a regular file (a device, pipe or socket)", input=f"{path}: {rel}",
                                 code=E_UNSAFE)
            if st.st_size > max_file_bytes:
                raise _file_too_big(path, rel, st.st_size, max_file_bytes)
            total += st.st_size
            if total > max_bytes:
                raise InputError(f"the bundle's files exceed the size cap of {max_bytes} bytes (at {rel})",
                                 input=path, code=E_SIZE)
            if _capture_file(rel):
                files.on_disk[rel] = full    # read (and checked) one at a time, when captures are read
                continue
            try:
                with open(full, "rb") as fh:
                    data = fh.read(max_file_bytes + 1)   # a file that grows meanwhile is cut here
            except OSError as exc:
                if _capture_file(rel):
                    files.unreadable[rel] = f"cannot be read: {exc.strerror}"
                    continue
                raise InputError(f"cannot be read: {exc.strerror}", input=f"{path}: {rel}", code=E_OPEN) from None
            if len(data) > max_file_bytes:
                raise _file_too_big(path, rel, len(data), max_file_bytes, grew=True)
            files.data[rel] = data
    return files


def _member_path(name: str) -> str | None:
    """A member's path normalised; None when it escapes the bundle."""
    if name.startswith("/") or "\\" in name or re.match(r"^[A-Za-z]:", name):
        return None
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return None
        parts.append(part)
    return "/".join(parts)


def _read_tarball(path: str, max_bytes: int, max_members: int, max_file_bytes: int) -> _Files:
    """The bundle files of a tarball, read member by member as the stream passes: a member that
    is not a bundle file is never read (only decompressed past), one over ``max_file_bytes`` is
    refused before it is read. The bundle is either at the tarball's root or, for
    ``tar czf b.tgz mybundle/``, in its one top folder; a member is read only while it can still
    be part of the bundle under one of the two."""
    files = _Files(path)
    total = 0
    count = 0
    try:
        tf = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InputError(f"is neither a bundle folder nor a readable .tar.gz ({exc})", input=path,
                         code=E_OPEN) from None
    at_root: dict[str, bytes] = {}       # bundle files at the tarball's root
    wrapped: dict[str, bytes] = {}       # bundle files one folder down (path without that folder)
    wrapped_too_big: dict[str, tuple[str, int]] = {}
    roots: set[str] = set()
    try:
        with tf:
            for member in tf:
                count += 1
                if count > max_members:
                    raise InputError(f"holds more than {max_members} members", input=path, code=E_SIZE)
                rel = _member_path(member.name)
                if rel is None:
                    raise InputError("member path leaves the bundle (absolute or with ..); refusing the tarball",
                                     input=f"{path}: {member.name}", code=E_UNSAFE)
                if member.issym() or member.islnk():
                    raise InputError(f"member is a {'symbolic' if member.issym() else 'hard'} link "
                                     f"(to {member.linkname!r}); a bundle holds plain files only",
                                     input=f"{path}: {member.name}", code=E_UNSAFE)
                if member.isdir():
                    continue
                if not member.isreg():
                    raise InputError("member is a device, pipe or other special file",
                                     input=f"{path}: {member.name}", code=E_UNSAFE)
                total += member.size
                if total > max_bytes:
                    raise InputError(f"the bundle's files exceed the size cap of {max_bytes} bytes "
                                     f"(at {member.name})", input=path, code=E_SIZE)
                top, _, below = rel.partition("/")
                roots.add(top)
                if _relevant(rel):
                    if member.size > max_file_bytes:
                        raise _file_too_big(path, member.name, member.size, max_file_bytes)
                    at_root[rel] = _member_data(tf, member)
                    wrapped.clear()
                    wrapped_too_big.clear()
                elif below and not at_root and len(roots) == 1 and _relevant(below):
                    if member.size > max_file_bytes:   # refused only if the bundle turns out to be here
                        wrapped.pop(below, None)
                        wrapped_too_big[below] = (member.name, member.size)
                    else:
                        wrapped_too_big.pop(below, None)
                        wrapped[below] = _member_data(tf, member)
                if len(roots) > 1:       # no single top folder: the bundle can only be at the root
                    wrapped.clear()
                    wrapped_too_big.clear()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InputError(f"the tarball is damaged or cut short ({exc})", input=path, code=E_OPEN) from None
    if not at_root and wrapped_too_big:
        name, size = next(iter(wrapped_too_big.values()))
        raise _file_too_big(path, name, size, max_file_bytes)
    files.data.update(at_root or wrapped)
    return files


def _member_data(tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fh = tf.extractfile(member)
    return fh.read(member.size) if fh is not None else b""


def _kube_list(name: str, text: str, kind: str) -> list | None:
    """The items of a ``kind: List`` (or ``<Kind>List``, or a single object, or several
    YAML documents of either). None when the file holds no document at all (empty, blanks or
    comments only): that is what a failed ``kubectl get … > file`` leaves, not an empty list,
    which kubectl writes as ``items: []``."""
    items: list = []
    documents = load_text_documents(name, text)
    if all(doc is None for doc in documents):
        return None
    for n, doc in enumerate(documents):
        where = f"document {n + 1}" if n else None
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise InputError(f"expected a Kubernetes List (a mapping with items), got {type_name(doc)}",
                             input=f"{name} {where}" if where else name, code="E322",
                             hint="use the output of kubectl get … -o yaml")
        found = doc.get("kind")
        if found == kind:
            items.append(doc)
            continue
        if "items" not in doc and found not in ("List", f"{kind}List"):
            raise InputError(f"expected a List of {kind} objects, got kind {found!r}",
                             input=f"{name} {where + ' ' if where else ''}kind", code="E322")
        value = doc.get("items")
        if value is None:
            continue
        if not isinstance(value, list):
            raise InputError(f"expected a list, got {type_name(value)}",
                             input=f"{name} {where + ' ' if where else ''}items", code="E322")
        items.extend(value)
    return items


def _distinct(name: str, kind: str, objects: list) -> list:
    """``objects`` with exact repeats dropped. The API server holds one object per namespace and
    name, so two different objects under one name mean files of two moments were concatenated:
    refused (E322), naming both, rather than silently using one of them."""
    seen: dict[tuple[str, str], int] = {}
    out: list = []
    for i, obj in enumerate(objects):
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            out.append(obj)             # the shape check names what is wrong with it
            continue
        ns = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
        key = (ns, meta["name"])
        if key in seen:
            first = seen[key]
            if objects[first] == obj:
                continue
            ref = f"{ns}/{meta['name']}" if ns else meta["name"]
            raise InputError(f"{kind} {ref} appears twice with different content (items[{first}] and items[{i}]); "
                             "a cluster has one object per name, so these are two captures mixed together",
                             input=f"{name} items[{i}]", code="E322",
                             hint="keep the output of one kubectl get in the file")
        seen[key] = i
        out.append(obj)
    return out


def _azure_json(name: str, data: bytes) -> Any:
    text = decode_text(name, data)
    return load_json(name, text) if text.strip() else None


def _text(name: str, data: bytes) -> str:
    return decode_text(name, data)


def read_bundle(path: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
                max_members: int = DEFAULT_MAX_MEMBERS,
                max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> RawCluster:
    """Read the bundle at ``path`` (a folder, or a ``.tar.gz``/``.tgz``/``.tar`` of one)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = _read_folder(path, max_bytes, max_file_bytes)
    elif os.path.isfile(path):
        files = _read_tarball(path, max_bytes, max_members, max_file_bytes)
    elif os.path.lexists(path):
        raise InputError("is neither a folder nor a file", input=path, code=E_OPEN)
    else:
        raise InputError("does not exist", input=path, code=E_OPEN,
                         hint="give a bundle folder written by masqctl collect (or assembled by hand), or a .tar.gz of one")
    if not files.data and not files.unreadable and not files.on_disk:
        raise InputError("holds none of the bundle's files (configmaps.yaml, daemonsets.yaml, pods.yaml, "
                         "nodes.yaml, services.yaml, endpointslices.yaml, aks.json, vnets/, nodes/)", input=path, code=E_EMPTY,
                         hint="see docs/bundles.md for the layout")
    raw = RawCluster(source=f"bundle {path}")
    manifest = _manifest(files.data.get(MANIFEST_FILE))
    raw.manifest = manifest
    reasons = manifest.get("missing", {})
    if isinstance(manifest.get("namespace"), str) and manifest["namespace"]:
        raw.namespace = manifest["namespace"]

    for attr, (file, kind, key) in KUBE_FILES.items():
        data = files.data.pop(file, None)
        if data is None:
            raw.missing[key] = reasons.get(key) or f"{file} is not in the bundle"
            continue
        text = decode_text(file, data)
        del data                 # the bytes go before the text is parsed: a large pods.yaml is not held twice
        objects = _kube_list(file, text, kind)
        del text
        if objects is None:
            raw.missing[key] = reasons.get(key) or f"{file} is empty"
            continue
        setattr(raw, attr, _distinct(file, kind, objects))
        raw.origin[attr] = file

    if AKS_FILE in files.data:
        raw.aks = _azure_json(AKS_FILE, files.data[AKS_FILE])
        raw.origin["aks"] = AKS_FILE
        if raw.aks is None:
            raw.missing[MissingKey.AZURE_CLUSTER] = f"{AKS_FILE} is empty"
    for rel in sorted(r for r in files.data if r.startswith(VNETS_DIR + "/")):
        stem = rel.split("/", 1)[1][:-len(".json")]
        value = _azure_json(rel, files.data[rel])
        if value is None:
            continue
        if isinstance(value, list):   # `az network vnet list`
            for i, item in enumerate(value):
                raw.vnets[f"{stem}[{i}]"] = item
                raw.origin[f"vnets/{stem}[{i}]"] = f"{rel} [{i}]"
        else:
            raw.vnets[stem] = value
            raw.origin[f"vnets/{stem}"] = rel
    absent = {MissingKey.AZURE: raw.aks is None and not raw.vnets,
              MissingKey.AZURE_CLUSTER: raw.aks is None, MissingKey.AZURE_VNETS: not raw.vnets}
    for key, is_absent in absent.items():
        if is_absent and key in reasons and key not in raw.missing:
            raw.missing[key] = reasons[key]
    for key, reason in reasons.items():
        if "/" in key and key not in raw.missing:     # finer keys (azure.vnets/<name>) kept as written
            raw.missing[key] = reason

    raw.captures = _captures(files, manifest)
    if not raw.captures and MissingKey.CAPTURES in reasons:
        raw.missing[MissingKey.CAPTURES] = reasons[MissingKey.CAPTURES]
    return raw


def _manifest(data: bytes | None) -> dict:
    if data is None:
        return {}
    value = load_json(MANIFEST_FILE, decode_text(MANIFEST_FILE, data))
    if not isinstance(value, dict):
        raise InputError(f"expected a mapping, got {type_name(value)}", input=MANIFEST_FILE, code="E322")
    m = Doc(value, MANIFEST_FILE)
    m.str("collected_at")
    m.str("source")
    m.str("namespace")
    m.str_map("missing")
    caps = m.mapping("captures")
    if caps is not None:
        for node in caps.data:
            c = caps.mapping(node)
            if c is None:
                continue
            for key in ("via", "backend", "captured_at"):
                c.str(key)
            c.str_map("errors")
            c.str_map("absent")
    return value


def _captures(files: _Files, manifest: dict) -> dict[str, NodeCapture]:
    meta = manifest.get("captures") or {}
    texts: dict[str, dict[str, object]] = {}
    unreadable: dict[str, dict[str, str]] = {}     # node -> capture piece -> why it says nothing
    backends: dict[str, str] = {}                  # node -> the backend its iptables-save header says
    disk = _Texts(files.max_file_bytes)
    for rel in [*files.data, *files.unreadable, *files.on_disk]:
        parts = rel.split("/")
        if len(parts) != 3 or parts[0] != NODES_DIR:
            continue
        node = parts[1]
        if not safe_node_name(node):
            raise InputError("is not a node name (letters, digits, -, ., _; starting and ending with a letter "
                             "or digit)", input=f"{NODES_DIR}/{node}/", code=E_NODE_NAME)
        piece = CAPTURE_PIECES[parts[2]]
        if rel in files.unreadable:
            unreadable.setdefault(node, {})[piece] = f"{rel} {files.unreadable[rel]} ({E_OPEN})"
            continue
        # each file's bytes are dropped once decoded: a fleet's dumps are not held twice. A capture
        # that is not text makes that node's piece unknown, with the reason; the other nodes are read
        try:
            if rel in files.on_disk:
                # checked now, kept in its file: read again when a reader asks for it
                text = disk.read(files.on_disk[rel], rel)
                value = _OnDisk(disk, files.on_disk[rel], rel) if len(text) > _KEEP_READ else text
            else:
                text = value = _text(rel, files.data.pop(rel))
        except InputError as exc:
            if exc.code not in (E_OPEN, BUNDLE_TEXT.binary):
                raise                                   # a file grown past its cap meanwhile
            unreadable.setdefault(node, {})[piece] = f"{rel} is unreadable: {exc.message} ({exc.code})"
            continue
        texts.setdefault(node, {})[CAPTURE_FILES[parts[2]]] = value
        if piece == "iptables-save" and text:
            # what building the snapshot would read from the header anyway (it is read here once)
            backend = detect_backend(text)
            if backend is not None:
                backends[node] = backend
    out: dict[str, NodeCapture] = {}
    for node in sorted(set(texts) | set(meta) | set(unreadable)):
        if not safe_node_name(node):
            raise InputError("is not a node name", input=f"{MANIFEST_FILE} captures.{node}", code=E_NODE_NAME)
        m = meta.get(node) or {}
        t = texts.get(node, {})
        errors = dict(m.get("errors") or {})
        errors.update(unreadable.get(node, {}))
        make = BundleCapture if any(isinstance(v, _OnDisk) for v in t.values()) else NodeCapture
        out[node] = make(node=node, iptables_save=t.get("iptables_save"),
                         ip6tables_save=t.get("ip6tables_save"), ip_addr=t.get("ip_addr"),
                         conntrack=t.get("conntrack"), cilium_ipmasq=t.get("cilium_ipmasq"),
                         cilium_status=t.get("cilium_status"), nft_ruleset=t.get("nft_ruleset"),
                         nft_ruleset_text=t.get("nft_ruleset_text"),
                         backend=m.get("backend") or backends.get(node), captured_at=m.get("captured_at"),
                         via=m.get("via") or "bundle", errors=errors, absent=dict(m.get("absent") or {}))
    return out


# =========================================================================== writing


def now_rfc3339() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _kube_document(items: list) -> dict:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def _vnet_file_stem(stem: str, vnet: Any, used: set[str]) -> str:
    name = vnet.get("name") if isinstance(vnet, dict) and isinstance(vnet.get("name"), str) else stem
    base = name if _VNET_STEM.match(name or "") else re.sub(r"[^A-Za-z0-9_.-]", "_", name or "vnet").lstrip("._-")
    base = (base or "vnet")[:80]
    candidate = base
    n = 2
    while candidate.lower() in used:
        candidate = f"{base}-{n}"
        n += 1
    used.add(candidate.lower())
    return candidate


def check_output_dir(out_dir: str) -> None:
    """Refuse an output folder that exists and is not empty (UsageError E326), or that cannot be
    made (E327: no name, no parent folder)."""
    if not out_dir.strip():
        raise UsageError("no folder named: give the new folder to write the bundle into",
                         input=f"--output-dir {out_dir!r}", code=E_WRITE)
    if os.path.lexists(out_dir):
        if os.path.islink(out_dir) or not os.path.isdir(out_dir):
            raise UsageError("exists and is not a folder", input=out_dir, code=E_OUT_EXISTS)
        if os.listdir(out_dir):
            raise UsageError("exists and is not empty; a bundle is written into a new or empty folder",
                             input=out_dir, code=E_OUT_EXISTS, hint="choose another --output-dir, or remove it")
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise UsageError("its parent folder does not exist", input=out_dir, code=E_WRITE)


def manifest_of(raw: RawCluster, *, redacted: bool, files: list[str]) -> dict:
    from masqctl import __version__

    collected = {}
    for attr in KUBE_FILES:
        objects = getattr(raw, attr)
        collected[attr] = len(objects) if objects is not None else None
    collected["aks"] = raw.aks is not None
    collected["vnets"] = sorted(raw.vnets)
    collected["captures"] = sorted(n for n, c in raw.captures.items()
                                   if c.iptables_save is not None or c.ip6tables_save is not None or c.ip_addr is not None
                                   or c.conntrack is not None or c.cilium_ipmasq is not None
                                   or c.cilium_status is not None or c.nft_ruleset is not None
                                   or c.nft_ruleset_text is not None)
    captures = {}
    failed = {}
    for node, cap in sorted(raw.captures.items()):
        captures[node] = {"via": cap.via, "backend": cap.backend, "captured_at": cap.captured_at,
                          "errors": dict(cap.errors)}
        if cap.absent:
            captures[node]["absent"] = dict(cap.absent)
        if cap.errors:
            failed[node] = dict(cap.errors)
    manifest = dict(raw.manifest) if isinstance(raw.manifest, dict) else {}
    manifest.update({
        "format": FORMAT_VERSION,
        "tool": "masqctl",
        "version": __version__,
        "collected_at": manifest.get("collected_at"),   # when gathering started; None: not said
        "written_at": now_rfc3339(),
        "source": manifest.get("source") or raw.source,
        "namespace": raw.namespace,
        "redacted": redacted,
        "collected": collected,
        "missing": dict(sorted({**{key: "not gathered" for attr, (_f, _k, key) in KUBE_FILES.items()
                                   if getattr(raw, attr) is None}, **raw.missing}.items())),
        "failed": failed,
        "captures": captures,
        "files": files,
    })
    return manifest


def write_bundle(raw: RawCluster, out_dir: str, *, redact: bool = False) -> list[str]:
    """Write ``raw`` as a bundle into ``out_dir`` (new or empty). Returns the files written,
    relative to ``out_dir``. All or nothing: on any error nothing is left behind."""
    out_dir = os.fspath(out_dir)
    check_output_dir(out_dir)
    for node in raw.captures:
        if not safe_node_name(node):
            raise InputError("cannot be a folder name in a bundle (a node name has letters, digits, -, ., _ "
                             "and starts and ends with a letter or digit)", input=f"node {node!r}",
                             code=E_NODE_NAME)
    if redact:
        from masqctl.cluster.redact import redact_raw

        raw = redact_raw(raw)
    contents: dict[str, str] = {}
    for attr, (file, _kind, _key) in KUBE_FILES.items():
        objects = getattr(raw, attr)
        if objects is not None:
            contents[file] = dump_yaml(_kube_document(objects))
    if raw.aks is not None:
        contents[AKS_FILE] = dump_json(raw.aks)
    used: set[str] = set()
    for stem, vnet in sorted(raw.vnets.items()):
        contents[f"{VNETS_DIR}/{_vnet_file_stem(stem, vnet, used)}.json"] = dump_json(vnet)
    for node, cap in sorted(raw.captures.items()):
        for file, attr in CAPTURE_FILES.items():
            text = getattr(cap, attr)
            if text is not None:
                contents[f"{NODES_DIR}/{node}/{file}"] = text
    files = sorted(contents)
    contents[MANIFEST_FILE] = dump_json(manifest_of(raw, redacted=redact, files=files))

    parent = os.path.dirname(os.path.abspath(out_dir))
    base = os.path.basename(os.path.abspath(out_dir))
    try:
        tmp = tempfile.mkdtemp(prefix=f".{base}.", suffix=".partial", dir=parent)
    except OSError as exc:
        raise UsageError(f"cannot write next to it: {exc.strerror}", input=out_dir, code=E_WRITE) from None
    try:
        for rel, text in contents.items():
            full = os.path.join(tmp, *rel.split("/"))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
        os.chmod(tmp, 0o755)
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)      # empty (checked above)
        os.rename(tmp, out_dir)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"the bundle could not be written: {exc.strerror or exc}", input=out_dir,
                         code=E_WRITE) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [*files, MANIFEST_FILE]


def write_tarball(bundle_dir: str, out_path: str) -> None:
    """Pack a bundle folder into a ``.tar.gz`` (plain files only, no owners)."""
    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(out_path, "w:gz") as tf:
        for dirpath, dirnames, filenames in os.walk(bundle_dir):
            dirnames.sort()
            for f in sorted(filenames):
                full = os.path.join(dirpath, f)
                rel = os.path.relpath(full, bundle_dir).replace(os.sep, "/")
                tf.add(full, arcname=rel, filter=clean)


__all__ = ["manifest_of", "read_bundle", "safe_node_name", "write_bundle", "write_tarball"]
