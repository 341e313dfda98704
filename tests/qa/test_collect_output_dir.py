"""collect -o json: on every other command -o is the output format, on collect it is the output folder.
A bare format name (json, yaml, table) that is no existing folder is refused with E327 and a hint,
writing nothing; ./json (or an existing folder of that name) is taken as the folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from qakit import EXAMPLES, ROOT, assert_clean
from errordoc import no_result

HUB = os.path.join(EXAMPLES, "hub-spoke")


def collect(cwd, *args: str) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, run from ``cwd`` (the folder a relative -o lands in)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", "collect", "--bundle", HUB, *args],
                          capture_output=True, text=True, cwd=str(cwd), env=env, timeout=120)


def tree(path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, dirs, files in os.walk(path)
                  for f in files + dirs)


@pytest.mark.parametrize("option", ["-o", "--output-dir"])
@pytest.mark.parametrize("name", ["json", "yaml", "table", "JSON", "Yaml"])
def test_a_format_name_is_refused_when_no_such_folder_exists(tmp_path, option, name):
    proc = collect(tmp_path, option, name)
    assert_clean(proc)
    assert proc.returncode == 2, proc.stderr
    assert no_result(proc)
    assert f"error E327 -o/--output-dir {name}: " in proc.stderr, proc.stderr
    assert "collect's -o is the output folder; collect always writes a bundle; " \
           f"to name a folder '{name}' write ./{name}" in proc.stderr, proc.stderr
    assert tree(tmp_path) == []                    # nothing written, no folder made


@pytest.mark.parametrize("name,folder", [
    ("./json", "json"),
    ("./yaml", "yaml"),
    ("json/", "json"),
    ("{tmp}/table", "table"),        # an absolute path names a folder
    ("json-bundle", "json-bundle"),  # only the bare format names are refused
])
def test_an_explicit_folder_path_is_written(tmp_path, name, folder):
    proc = collect(tmp_path, "-o", name.format(tmp=tmp_path))
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    written = tree(tmp_path / folder)
    assert {"configmaps.yaml", "daemonsets.yaml", "manifest.json"} <= set(written), written
    assert os.listdir(tmp_path) == [folder]


def test_an_existing_empty_folder_named_json_is_used(tmp_path):
    (tmp_path / "json").mkdir()
    proc = collect(tmp_path, "-o", "json")
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert "manifest.json" in os.listdir(tmp_path / "json")


def test_an_existing_full_folder_named_json_is_the_usual_e326(tmp_path):
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "keep").write_text("x")
    proc = collect(tmp_path, "-o", "json")
    assert_clean(proc)
    assert proc.returncode == 2 and "error E326" in proc.stderr, proc.stderr
    assert tree(tmp_path) == ["json", os.path.join("json", "keep")]
