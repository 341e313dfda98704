"""Property tests of the bundle reader: random bundle layouts (missing files, odd names,
symlinks and FIFOs, bad YAML, random bytes) in folders and tarballs (traversal, links, devices,
a wrapping folder, repeated members) give a snapshot or a coded error naming the input — never
another exception, never a hang, and never a read outside the given bundle: every file outside
it holds a canary that must not reach the result."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import tempfile

from clusterkit.offline import configmap, daemonset, kube_list, node, pod
from timelimit import time_limit
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle
from masqctl.cluster.yamlio import dump_yaml
from masqctl.errors import InputError, MasqctlError

CANARY = "canary-7f3d91"
# MASQCTL_FUZZ_EXAMPLES=5000 searches harder (the default keeps the file well under 30 s on 2 cores)
EXAMPLES = int(os.environ.get("MASQCTL_FUZZ_EXAMPLES", "250"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KUBE = {
    "configmaps.yaml": kube_list([configmap("azure-ip-masq-agent-config", {"ip-masq-agent": "masqLinkLocal: true\n"})]),
    "daemonsets.yaml": kube_list([daemonset()]),
    "pods.yaml": kube_list([pod("web", "n1", "10.224.0.40")]),
    "nodes.yaml": kube_list([node("n1", "10.224.0.4", "10.244.0.0/24")]),
}
DUMP = "*nat\n:POSTROUTING ACCEPT [0:0]\n:IP-MASQ-AGENT - [0:0]\n-A IP-MASQ-AGENT -j MASQUERADE\nCOMMIT\n"


# --------------------------------------------------------------------------- contents and names

def _good(name: str) -> bytes:
    base = name.rsplit("/", 1)[-1]
    if base in KUBE:
        return dump_yaml(KUBE[base]).encode()
    if base.endswith(".json"):
        return json.dumps({"name": "vnet", "addressSpace": {"addressPrefixes": ["10.224.0.0/12"]}}).encode()
    if base == "ip-addr.txt":
        return b"2: eth0    inet 10.224.0.4/16 brd 10.224.255.255 scope global eth0\n"
    return DUMP.encode()


def contents(name: str):
    good = st.just(_good(name))
    return st.one_of(
        good, good, good, st.just(b""), st.binary(max_size=300),
        st.sampled_from([b"kind: List\nitems: {", b"items:\n- kind: Pod\n  metadata: 3\n", b"[1, 2]", b"\xff\xfe",
                         b"&a [*a]", b"{\"name\": \"x\",}", b"- - - -", b"kind: Secret\n", b"items: [null]\n",
                         b"*nat\n-A X -j\n", b"\x00" * 10]),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


NODE_NAMES = st.one_of(st.sampled_from(["n1", "aks-nodepool1-0", "-rf", "a b", "ünïcode", "x" * 260, "..x", "n.",
                                        "N1", "n1_", "n\t1"]),
                       st.text(alphabet="abn1-._ ~%$\u00e9", min_size=1, max_size=12))
TOP = ["configmaps.yaml", "daemonsets.yaml", "pods.yaml", "nodes.yaml", "aks.json", "manifest.json"]
CAPTURES = ["iptables-save.txt", "ip6tables-save.txt", "ip-addr.txt"]
PATHS = st.one_of(
    st.sampled_from(TOP),
    st.builds(lambda n, f: f"nodes/{n}/{f}", NODE_NAMES, st.sampled_from(CAPTURES + ["notes.txt"])),
    st.builds(lambda s: f"vnets/{s}.json", st.text(alphabet="abv-._ é", min_size=1, max_size=10)),
    st.sampled_from(["README.md", "attachments/core.bin", "configmaps.yml", "Pods.yaml", "nodes/n1/sub/iptables-save.txt",
                     ".hidden", "vnets/x.txt", "nodes/iptables-save.txt"]),
)
KINDS = ["file", "file", "file", "link-file", "link-dir", "fifo"]


def relevant(path: str) -> bool:
    parts = path.split("/")
    return ((len(parts) == 1 and path in TOP) or (len(parts) == 2 and parts[0] == "vnets" and path.endswith(".json"))
            or (len(parts) == 3 and parts[0] == "nodes" and parts[2] in CAPTURES))


def _ok_path(path: str) -> bool:
    return all(part not in ("", ".", "..") and "\x00" not in part and len(part.encode()) < 250
               for part in path.split("/"))


@st.composite
def folder_layouts(draw):
    entries = {}
    hostile = draw(st.integers(0, 2)) == 0      # a third of the layouts hold links or FIFOs
    for path in draw(st.lists(PATHS.filter(_ok_path), max_size=8, unique=True)):
        kind = draw(st.sampled_from(KINDS)) if hostile else "file"
        entries[path] = (kind, draw(contents(path)) if kind == "file" else None)
    # a whole folder of the layout replaced by a symlink out of the bundle
    linked_dir = draw(st.sampled_from([None, "nodes", "vnets", "nodes/n1"])) if hostile else None
    return entries, linked_dir


def make_outside(root: str) -> str:
    """Files outside the bundle, each holding the canary, that a symlink may point to."""
    out = os.path.join(root, "outside")
    os.makedirs(os.path.join(out, "n1"))
    secret = dump_yaml(kube_list([configmap(CANARY, {"ip-masq-agent": CANARY})]))
    for rel in ("secret.yaml", "n1/iptables-save.txt", "x.json"):
        with open(os.path.join(out, rel), "w") as fh:
            fh.write(secret if rel.endswith(".yaml") else f"# {CANARY}\n" + (DUMP if rel.endswith(".txt") else ""))
    for cap in CAPTURES:
        with open(os.path.join(out, "n1", cap), "w") as fh:
            fh.write(f"# {CANARY}\n{DUMP}")
    return out


def check_result(path: str):
    """Read and build ``path``: the snapshot, or the coded error (None when it succeeded)."""
    try:
        with time_limit(20, "reading the bundle"):
            raw = read_bundle(path)
            snapshot = build_snapshot(raw)
    except MasqctlError as exc:
        assert isinstance(exc, InputError), exc.one_line()
        assert re.fullmatch(r"E3[24]\d", exc.code), exc.one_line()
        assert exc.input, exc.one_line()
        assert CANARY not in exc.one_line()
        event(f"error {exc.code}")
        return None, exc
    assert CANARY not in repr(raw) and CANARY not in repr(snapshot)
    event("snapshot")
    return snapshot, None


# --------------------------------------------------------------------------- folders

@FUZZ
@given(folder_layouts())
def test_any_bundle_folder_is_a_snapshot_or_a_coded_error(layout):
    entries, linked_dir = layout
    with tempfile.TemporaryDirectory() as root:
        outside = make_outside(root)
        b = os.path.join(root, "b")
        os.mkdir(b)
        unsafe = False          # a bundle file (or one of its folders) that is a link or no regular file
        if linked_dir is not None:
            os.makedirs(os.path.dirname(os.path.join(b, linked_dir)), exist_ok=True)
            os.symlink(outside if linked_dir != "nodes/n1" else os.path.join(outside, "n1"), os.path.join(b, linked_dir))
            unsafe = True
        for rel, (kind, data) in entries.items():
            full = os.path.join(b, *rel.split("/"))
            try:
                os.makedirs(os.path.dirname(full), exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                continue        # a file already stands where this needs a folder
            if os.path.lexists(full) or os.path.realpath(os.path.dirname(full)).startswith(outside):
                continue        # never write into the outside folder through the linked one
            if kind == "file":
                with open(full, "wb") as fh:
                    fh.write(data)
                continue
            if kind == "fifo":
                os.mkfifo(full)
            else:
                os.symlink(os.path.join(outside, "secret.yaml") if kind == "link-file" else os.path.join(outside, "n1"),
                           full)
            unsafe = unsafe or relevant(rel)
        before = sorted(os.walk(root))
        _, error = check_result(b)
        if unsafe:
            assert error is not None and error.code == "E323", error and error.one_line()
        assert sorted(os.walk(root)) == before        # reading writes nothing


# --------------------------------------------------------------------------- tarballs

ESCAPES = ["../x.yaml", "/etc/passwd", "nodes/../../x", "a/../../b", "nodes/n1/../../../iptables-save.txt",
           "C:/x", "a\\..\\b", "..", "./../configmaps.yaml"]
SAFE_NAMES = st.one_of(PATHS, st.sampled_from(["./configmaps.yaml", "nodes//n1/iptables-save.txt", "nodes/./n1/ip-addr.txt",
                                               "x/", "a/b/c/d/e/f.yaml"]))


@st.composite
def tar_layouts(draw):
    prefix = draw(st.sampled_from(["", "", "case-1/", "./", "b/c/"]))
    members = []
    hostile = draw(st.integers(0, 2)) == 0      # a third of the tarballs hold links, devices or escapes
    kinds = ["file", "file", "file", "dir"] + (["sym", "hard", "fifo", "chr", "escape"] if hostile else [])
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(kinds))
        name = draw(st.sampled_from(ESCAPES)) if kind == "escape" else prefix + draw(SAFE_NAMES)
        data = draw(contents(name)) if kind in ("file", "escape") else b""
        members.append((kind, name, data))
    return members


def _tar(path: str, members) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind in ("file", "escape"):
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            info.linkname = {"sym": "../outside/secret.yaml", "hard": "/etc/passwd"}.get(kind, "")
            tf.addfile(info)


def _escapes(name: str) -> bool:
    return (name.startswith("/") or "\\" in name or re.match(r"^[A-Za-z]:", name) is not None
            or ".." in name.split("/"))


@FUZZ
@given(tar_layouts())
def test_any_bundle_tarball_is_a_snapshot_or_a_coded_error(members):
    with tempfile.TemporaryDirectory() as root:
        make_outside(root)
        path = os.path.join(root, "b.tgz")
        _tar(path, members)
        before = sorted(os.walk(root))
        _, error = check_result(path)
        unsafe = any(kind in ("sym", "hard", "fifo", "chr") or _escapes(name) for kind, name, _ in members)
        # a link, device or escaping member refuses the whole tarball, and only those do
        assert (error is not None and error.code == "E323") == unsafe, error and error.one_line()
        assert sorted(os.walk(root)) == before        # nothing extracted anywhere
