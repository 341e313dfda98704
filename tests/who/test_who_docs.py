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


def blocks() -> list[tuple[str, list[str]]]:
    """Each ``$ masqctl who … --bundle examples/hub-spoke`` block: the command and the lines the page
    shows after it (``…`` where it leaves lines out)."""
    with open(os.path.join(ROOT, "docs", "who.md"), encoding="utf-8") as fh:
        text = fh.read()
    found = re.findall(r"^\$ (masqctl who [^\n]+--bundle examples/hub-spoke)\n(.*?)^```", text, re.M | re.S)
    return [(command, shown.rstrip("\n").split("\n")) for command, shown in found]


def run(command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *shlex.split(command)[1:]], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env={**os.environ, "COLUMNS": "400"})


@pytest.mark.parametrize("command, first", examples())
def test_each_example_prints_what_the_page_says(command, first):
    r = run(command)
    assert r.returncode in (0, 1), r.stderr
    assert r.stdout.splitlines()[0] == first


@pytest.mark.parametrize("command, shown", blocks(), ids=[c for c, _ in blocks()])
def test_each_block_is_the_output_or_its_lines_in_order(command, shown):
    """A block without ``…`` is the whole output; one with it shows output lines in their order."""
    out = [line.rstrip() for line in run(command).stdout.rstrip("\n").split("\n")]
    if "…" not in shown:
        assert out == [line.rstrip() for line in shown]
        return
    at = 0
    for line in (line.rstrip() for line in shown if line.strip() not in ("…", "")):
        line = line.removesuffix(" …").removesuffix("…")
        nxt = next((i for i in range(at, len(out)) if out[i].startswith(line)), None)
        assert nxt is not None, (line, out)
        at = nxt + 1
