"""`masqctl collect --bundle SRC -o OUT [--redact]`: the offline path through the real CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import tarfile

import pytest
from clusterkit.bundle import run_cli
from test_bundle import BOMB, live_raw

from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle, write_bundle, write_tarball
from errordoc import no_result


@pytest.fixture
def src(tmp_path):
    write_bundle(live_raw(), tmp_path / "src")
    return tmp_path / "src"


def test_rewrite_a_bundle(tmp_path, src):
    r = run_cli("collect", "--bundle", str(src), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{tmp_path / 'out'}\n"
    assert "collected: 2 configmaps, 1 daemonsets, 2 pods, 2 nodes; Azure: aks.json, 1 VNet; iptables from 1 node" \
        in r.stderr
    assert "n2 node: exec timed out after 30 s" in r.stderr
    a = build_snapshot(read_bundle(str(src)))
    b = build_snapshot(read_bundle(str(tmp_path / "out")))
    assert dataclasses.replace(b, source=a.source) == a
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["collected_at"] == "2025-09-19T20:07:05Z" and manifest["redacted"] is False


def test_redact_a_tarball(tmp_path, src):
    write_tarball(str(src), str(tmp_path / "src.tgz"))
    r = run_cli("collect", "--bundle", str(tmp_path / "src.tgz"), "--output-dir", str(tmp_path / "red"), "--redact")
    assert r.returncode == 0, r.stderr
    assert "(redacted)" in r.stderr
    text = (tmp_path / "red" / "aks.json").read_text()
    assert "redacted-subscription-1" in text and "3f2a9c1e" not in text


@pytest.mark.parametrize("setup,code", [
    ("bomb", "E321"), ("garbage", "E321"), ("strings", "E322"), ("traversal", "E323"), ("symlink", "E323"),
    ("missing", "E320"), ("empty", "E329"), ("badnode", "E325"), ("shape", "E322"),
])
def test_bad_bundles_exit_2_without_traceback_and_write_nothing(tmp_path, setup, code):
    bad = tmp_path / "bad"
    if setup in ("traversal", "symlink"):
        bad = tmp_path / "bad.tgz"
        with tarfile.open(bad, "w:gz") as tf:
            info = tarfile.TarInfo("../../escape.yaml" if setup == "traversal" else "configmaps.yaml")
            if setup == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
    elif setup != "missing":
        bad.mkdir()
        if setup == "bomb":
            (bad / "configmaps.yaml").write_bytes(BOMB)
        elif setup == "garbage":
            (bad / "pods.yaml").write_bytes(os.urandom(4096) + b"\x00")
        elif setup == "strings":
            (bad / "configmaps.yaml").write_text("kind: List\nitems: [a, b, c]\n")
        elif setup == "badnode":
            (bad / "nodes" / "_x").mkdir(parents=True)
            (bad / "nodes" / "_x" / "iptables-save.txt").write_text("*nat\nCOMMIT\n")
        elif setup == "shape":   # readable files, a field of the wrong type deep inside
            (bad / "configmaps.yaml").write_text(
                "kind: List\nitems:\n- metadata: {name: ip-masq-agent, namespace: kube-system}\n  data: [x]\n")
    out = tmp_path / "out"
    r = run_cli("collect", "--bundle", str(bad), "-o", str(out))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and f"error {code}" in r.stderr, r.stderr
    assert no_result(r)
    assert not out.exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".out")] == []


def test_shape_error_names_file_and_field(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "configmaps.yaml").write_text(
        "kind: List\nitems:\n" + "".join(f"- metadata: {{name: cm{i}}}\n  data: {{}}\n" for i in range(3))
        + "- metadata: {name: ip-masq-agent}\n  data: [x]\n")
    r = run_cli("collect", "--bundle", str(bad), "-o", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "E322 configmaps.yaml items[3].data: expected a mapping of strings, got list" in " ".join(r.stderr.split())


def test_output_dir_is_required_and_checked_before_gathering(tmp_path, src):
    r = run_cli("collect", "--bundle", str(src))
    assert r.returncode == 2 and "--output-dir" in r.stderr
    out = tmp_path / "full"
    out.mkdir()
    (out / "x").write_text("x")
    r = run_cli("collect", "--bundle", str(tmp_path / "does-not-matter"), "-o", str(out))
    assert r.returncode == 2 and "E326" in r.stderr       # refused before reading anything
    assert os.listdir(out) == ["x"]
