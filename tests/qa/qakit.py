"""Helpers for the adversarial QA tests: copy a shipped example bundle, mutate its native files,
run the real CLI in a subprocess (exit code, stdout, stderr as a user sees them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")


def bundle(tmp_path, example: str = "hub-spoke") -> str:
    """A private copy of ``examples/<example>``."""
    dst = os.path.join(str(tmp_path), example)
    shutil.copytree(os.path.join(EXAMPLES, example), dst)
    return dst


def load_yaml(path: str):
    with open(path) as fh:
        return yaml.safe_load(fh)


def dump_yaml(path: str, doc) -> None:
    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data):
            return True
    with open(path, "w") as fh:
        yaml.dump(doc, fh, Dumper=NoAliases, sort_keys=False)


def load_json(path: str):
    with open(path) as fh:
        return json.load(fh)


def dump_json(path: str, doc) -> None:
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=2)


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def assert_clean(proc: subprocess.CompletedProcess) -> None:
    """No traceback and no internal error, whatever the input."""
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback" not in stream, stream
        assert "E999" not in stream, stream
