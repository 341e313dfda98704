"""The stderr progress display of live gathering (masqctl.cli.progress)."""

from __future__ import annotations

import io

from kubekit import agent_programs, gather

from clusterkit import served
from kubeapi import KubeAPI
from masqctl.cli.progress import progress_callback, stderr_progress


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_not_a_terminal_is_silent_unless_verbose():
    assert progress_callback(stream=Pipe()) is None
    stderr_progress()("x", 1, 2)                          # always callable


def test_plain_lines_every_ten_percent():
    out = Pipe()
    cb = progress_callback(verbose=1, stream=out)
    for done in range(0, 501):
        cb("capturing nodes", done, 500)
    lines = out.getvalue().splitlines()
    assert lines == [f"capturing nodes: {n}/500 ({n // 5}%)" for n in range(0, 501, 50)]


def test_rich_bar_on_a_terminal_during_a_real_gathering(tmp_path):
    out = io.StringIO()
    cb = progress_callback(stream=out, terminal=True)
    with KubeAPI() as api:
        served.small_cluster(api, 4, workloads_per_node=0)
        api.on_exec(agent_programs())
        raw = gather(api, tmp_path, progress=cb)
    assert len(raw.captures) == 4
    text = out.getvalue()
    assert "capturing nodes" in text and "4/4" in text
    assert cb.progress is None                           # stopped once every phase was complete


def test_no_bar_for_a_few_nodes_or_when_quiet():
    out = io.StringIO()
    cb = progress_callback(stream=out, terminal=True)
    for done in range(4):
        cb("capturing nodes", done, 3)          # three nodes: over before a bar is read
    assert out.getvalue() == "" and cb.progress is None
    assert progress_callback(stream=io.StringIO(), terminal=True, quiet=True) is None   # -q, -o json
    assert progress_callback(verbose=1, stream=io.StringIO(), terminal=True, quiet=True) is not None

