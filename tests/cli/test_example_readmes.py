"""The READMEs of the shipped examples: every link stays inside the repository and points at a
file that exists, and every `masqctl` command they show runs from the repository's root."""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READMES = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "examples", "**", "README.md"),
                                                             recursive=True))


def commands(readme: str) -> list[str]:
    text = open(os.path.join(ROOT, readme), encoding="utf-8").read()
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip().startswith("masqctl ") and "--bundle examples/" in line]


def test_there_are_readmes_with_commands():
    assert len(READMES) >= 5 and sum(len(commands(r)) for r in READMES) >= 5


@pytest.mark.parametrize("readme", READMES)
def test_links_stay_inside_the_repository(readme):
    text = open(os.path.join(ROOT, readme), encoding="utf-8").read()
    for target in re.findall(r"\]\(([^)\s]+)\)", text.replace("\n", "")):
        path = target.split("#", 1)[0]
        assert not re.match(r"[a-z]+:", target), (readme, target)
        if not path:
            continue
        resolved = os.path.normpath(os.path.join(ROOT, os.path.dirname(readme), path))
        assert resolved.startswith(ROOT + os.sep) and os.path.exists(resolved), (readme, target)


@pytest.mark.parametrize("readme, command", [(r, c) for r in READMES for c in commands(r)])
def test_the_commands_shown_run_from_the_repository_root(readme, command):
    argv = shlex.split(command.split(" #", 1)[0].split(" | ", 1)[0])[1:]     # what masqctl runs of a pipe
    r = subprocess.run([sys.executable, "-m", "masqctl.cli.main", *argv], capture_output=True, text=True,
                       timeout=120, cwd=ROOT, check=False, env={**os.environ, "COLUMNS": "120"})
    assert r.returncode in (0, 1) and r.stdout, (command, r.stderr[-1500:])
