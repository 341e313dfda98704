"""collect --bundle SRC -o DIR with odd output folders: a clear error naming the option, nothing written."""

from __future__ import annotations

import os

import pytest
from qakit import assert_clean, run
from errordoc import no_result

HUB = os.path.join("examples", "hub-spoke")


@pytest.mark.parametrize("out,code,says", [
    ("", "E327", "--output-dir ''"),
    ("   ", "E327", "--output-dir '   '"),
    ("{tmp}/file", "E326", "exists and is not a folder"),
    ("{tmp}/full", "E326", "is not empty"),
    ("{tmp}/no/such/parent", "E327", "parent folder does not exist"),
])
def test_bad_output_folders(tmp_path, out, code, says):
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("x")
    before = sorted(os.listdir(tmp_path))
    cwd_before = sorted(os.listdir("."))
    proc = run("collect", "--bundle", HUB, "-o", out.format(tmp=tmp_path))
    assert_clean(proc)
    assert proc.returncode == 2
    assert no_result(proc)
    assert f"error {code}" in proc.stderr and says in proc.stderr, proc.stderr
    assert sorted(os.listdir(tmp_path)) == before
    assert sorted(os.listdir(".")) == cwd_before
