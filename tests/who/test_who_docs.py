"""The examples in docs/who.md are what masqctl prints for the example bundle."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def examples() -> list[tuple[str, str]]:
    with open(os.path.join(ROOT, "docs", "who.md"), encoding="utf-8") as fh:
        text = fh.read()
    return re.findall(r"^\$ (masqctl who [^\n]+--bundle examples/hub-spoke)\n([^\n]+)", text, re.M)


def test_the_page_has_its_examples():
    assert len(examples()) >= 4


@pytest.mark.parametrize("command, first", examples())
def test_each_example_prints_what_the_page_says(command, first):
    r = subprocess.run([sys.executable, "-m", "masqctl.cli.main", *shlex.split(command)[1:]], capture_output=True,
                       text=True, cwd=ROOT, timeout=120, env={**os.environ, "COLUMNS": "400"})
    assert r.returncode in (0, 1), r.stderr
    assert r.stdout.splitlines()[0] == first
