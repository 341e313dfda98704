"""A bundle without daemonsets.yaml says one thing about the agent everywhere: it is unknown, with
the reason, in inspect's verdict, sections and not-checked list, in explain's provenance, and in
apply's refusal; never "no agent found" or "no ConfigMap decides"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REASON = "DaemonSets were not gathered (daemonsets.yaml is not in the bundle)"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("no-ds") / "hub-spoke"
    shutil.copytree(os.path.join(ROOT, "examples", "hub-spoke"), path)
    (path / "daemonsets.yaml").unlink()
    return str(path)


def test_inspect_says_the_agent_is_unknown_everywhere(bundle):
    doc = json.loads(run("inspect", "--bundle", bundle, "-o", "json").stdout)
    assert doc["agent"] is None and doc["agent_unknown"] == REASON
    assert "the agent is unknown" in doc["summary"]["verdict"]
    for n in doc["not_checked"]:
        if n["code"] in ("MQ002", "MQ003", "MQ004", "MQ005", "MQ007", "MQ008", "MQ009"):
            assert n["reason"] == f"the agent is unknown: {REASON}", n
        assert "no agent" not in n["reason"] and "not modelled" not in n["reason"], n
    human = run("inspect", "--bundle", bundle).stdout
    assert "No masquerade agent DaemonSet found" not in human and "No agent" not in human
    assert f"Agent      unknown: {REASON}" in human
    assert human.count("unknown") >= 3            # agent, effective config, nodes


def test_a_healthy_bundle_keeps_its_verdict(bundle):
    doc = json.loads(run("inspect", "--bundle", os.path.join(ROOT, "examples", "aks-kubenet"), "-o", "json").stdout)
    assert doc["agent_unknown"] is None and doc["summary"]["verdict"].startswith("no problems found (3 node(s)")


def test_explain_and_apply_agree(bundle):
    ex = json.loads(run("explain", "10.40.0.9", "10.42.1.10", "--bundle", bundle, "-o", "json").stdout)
    assert ex["masqueraded"] is True                 # the node's own rules decide, as captured
    assert "the agent is unknown" in ex["provenance"]["text"] and "effective config is not known" in \
        ex["provenance"]["text"]
    r = run("apply", "--goal", "fix", "--bundle", bundle)
    assert r.returncode == 1 and "E709" in r.stderr and "the agent is unknown" in r.stderr
    assert "no ConfigMap decides" not in r.stderr
