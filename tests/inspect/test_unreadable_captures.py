"""One node's capture that cannot be read (binary, not UTF-8, a folder, not readable) makes that node
unknown with the reason; the other nodes are analysed as usual and the report is still one document."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import pytest
from clusterkit.akscal import NODES, base, iptables_save

from masqctl.cluster.bundle import read_bundle

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIFTED = NODES[2]


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", "inspect", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, **kwargs)


def bundle(path: str) -> str:
    b = base()
    b.captures[DRIFTED]["iptables-save.txt"] = iptables_save(["10.224.0.0/12"])   # a RETURN missing
    return b.write(path)


def capture(folder: str, node: str = NODES[0]) -> str:
    return os.path.join(folder, "nodes", node, "iptables-save.txt")


def uglify(folder: str, how: str) -> None:
    path = capture(folder)
    os.remove(path)
    if how == "nul":
        with open(path, "wb") as fh:
            fh.write(b"*nat\n:POSTROUTING ACCEPT [0:0]\n\x00\x00\x7fELF\x02\x01\nCOMMIT\n")
    elif how == "latin1":
        with open(path, "wb") as fh:
            fh.write(b"*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -m comment --comment \"caf\xe9\" -j RETURN\n"
                     b"COMMIT\n")
    elif how == "folder":
        os.mkdir(path)
        with open(os.path.join(path, "x"), "w") as fh:
            fh.write("*nat\nCOMMIT\n")


def unknown_groups(doc: dict) -> list[dict]:
    return [g for g in doc["nodes"]["groups"] if g["state"] == "unknown"]


@pytest.mark.parametrize("how, says", [("nul", "binary"), ("latin1", "not UTF-8"), ("folder", "is a folder")])
def test_one_ugly_capture_makes_that_node_unknown(tmp_path, how, says):
    folder = bundle(str(tmp_path / "b"))
    uglify(folder, how)
    r = run("--bundle", folder, "-o", "json")
    assert "Traceback" not in r.stderr
    assert r.returncode == 1, r.stderr                  # the other nodes' drift (MQ004) is still found
    doc = json.loads(r.stdout)
    unknown = unknown_groups(doc)
    assert [g["nodes"] for g in unknown] == [[NODES[0]]]
    summary = unknown[0]["summary"]
    assert f"nodes/{NODES[0]}/iptables-save.txt" in summary and says in summary, summary
    assert any(f["code"] == "MQ004" and f["nodes"] == [DRIFTED] for f in doc["findings"])
    in_sync = [g for g in doc["nodes"]["groups"] if g["state"] == "in-sync"]
    assert [g["nodes"] for g in in_sync] == [[NODES[1]]]
    assert any(NODES[0] in n.get("nodes", []) and says in n["reason"] for n in doc["not_checked"])


def test_ugly_capture_in_a_tarball(tmp_path):
    folder = bundle(str(tmp_path / "b"))
    uglify(folder, "nul")
    tgz = str(tmp_path / "b.tgz")
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(folder, arcname="b")
    raw = read_bundle(tgz)
    cap = raw.captures[NODES[0]]
    assert cap.iptables_save is None and "binary" in cap.errors["iptables-save"]
    assert "E321" in cap.errors["iptables-save"]
    assert raw.captures[NODES[1]].iptables_save


def test_only_the_ugly_piece_is_lost(tmp_path):
    folder = bundle(str(tmp_path / "b"))
    with open(os.path.join(folder, "nodes", NODES[0], "ip6tables-save.txt"), "wb") as fh:
        fh.write(b"\xff\xfe*filter\n")
    cap = read_bundle(folder).captures[NODES[0]]
    assert cap.iptables_save and cap.ip6tables_save is None
    assert "not UTF-8" in cap.errors["ip6tables-save"] and "iptables-save" not in cap.errors


@pytest.mark.skipif(os.geteuid() != 0, reason="reading as another user needs root to switch to it")
def test_a_capture_the_user_cannot_read(tmp_path):
    # root reads every file: a forked child (masqctl already imported) reads the bundle as nobody,
    # from a folder nobody can read but for one file, and inspects it
    from masqctl.analysis.inspect import inspect
    from masqctl.cluster.build import build_snapshot

    top = tempfile.mkdtemp(prefix="masqctl-unreadable-")
    try:
        os.chmod(top, 0o755)
        folder = bundle(os.path.join(top, "b"))
        for dirpath, dirnames, filenames in os.walk(folder):
            os.chmod(dirpath, 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
        os.chmod(capture(folder), 0o600)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:      # pragma: no cover - the child
            try:
                os.close(rfd)
                os.setgid(65534)
                os.setuid(65534)
                raw = read_bundle(folder)
                report = inspect(build_snapshot(raw))
                out = json.dumps({"errors": raw.captures[NODES[0]].errors, "report": report.to_dict()})
            except BaseException as exc:    # noqa: BLE001 - said to the parent
                out = json.dumps({"failed": repr(exc)})
            with os.fdopen(wfd, "w") as fh:
                fh.write(out)
            os._exit(0)
        os.close(wfd)
        with os.fdopen(rfd) as fh:
            got = json.loads(fh.read())
        os.waitpid(pid, 0)
        assert "failed" not in got, got
        assert "cannot be read: Permission denied" in got["errors"]["iptables-save"]
        unknown = unknown_groups(got["report"])
        assert [g["nodes"] for g in unknown] == [[NODES[0]]]
        assert "Permission denied" in unknown[0]["summary"]
        assert any(f["code"] == "MQ004" for f in got["report"]["findings"])
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_an_unreadable_file_that_is_not_a_capture_still_refuses_the_bundle(tmp_path):
    folder = bundle(str(tmp_path / "b"))
    with open(os.path.join(folder, "pods.yaml"), "wb") as fh:
        fh.write(b"\x00\x01binary")
    r = run("--bundle", folder, "-o", "json")
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == "E321"
