"""`apply --diff`: the change as kubectl diff shows it, a unified diff of the ConfigMap manifest
(live → planned) with ---/+++ headers naming the object; it applies with `patch` to the live
manifest and gives the planned one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", "apply", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False, env={**os.environ, "COLUMNS": "80"})


def test_an_update_is_a_diff_of_the_manifest_that_patches_live_into_planned(tmp_path):
    args = ("--add", "10.50.0.0/16", "--bundle", os.path.join(EXAMPLES, "aks-pod-subnet"))
    r = run(*args, "--diff")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "--- live/v1.ConfigMap.kube-system.ip-masq-agent-config"
    assert lines[1] == "+++ planned/v1.ConfigMap.kube-system.ip-masq-agent-config"
    assert lines[2].startswith("@@ ") and "+      - 10.50.0.0/16" in lines
    plan = json.loads(run(*args, "-o", "json").stdout)
    assert plan["diff"] == r.stdout and plan["written"] is False
    if shutil.which("patch") is None:
        pytest.skip("patch is not installed")
    live = tmp_path / "live.yaml"
    cm = plan["new_configmap"]
    doc = yaml.safe_load(open(os.path.join(EXAMPLES, "aks-pod-subnet", "configmaps.yaml")))
    current = next(i for i in doc["items"] if i["metadata"]["name"] == cm["metadata"]["name"])
    from masqctl.analysis.userconfig import configmap_object, to_yaml
    live.write_text(to_yaml(configmap_object("kube-system", cm["metadata"]["name"], data=current["data"],
                                             labels=current["metadata"].get("labels") or {},
                                             annotations=current["metadata"].get("annotations") or {})))
    subprocess.run(["patch", "-s", str(live)], input=r.stdout, text=True, check=True)
    assert yaml.safe_load(live.read_text()) == cm


def test_a_new_configmap_is_all_added_and_a_deletion_all_removed():
    created = run("--goal", "preserve-source-ip", "--bundle", os.path.join(EXAMPLES, "hub-spoke"), "--diff").stdout
    assert created.splitlines()[2].startswith("@@ -0,0 +1,")
    assert all(line.startswith("+") for line in created.splitlines()[3:])
    deleted = run("--goal", "reset", "--bundle", os.path.join(EXAMPLES, "aks-pod-subnet"), "--diff").stdout
    assert deleted.splitlines()[2].endswith(" +0,0 @@")


def test_nothing_to_do_prints_no_diff_and_the_preview_shows_the_change():
    r = run("--goal", "fix", "--bundle", os.path.join(EXAMPLES, "hub-spoke"), "--diff")
    assert r.returncode == 0 and r.stdout == "" and "no difference" in r.stderr
    preview = run("--add", "10.50.0.0/16", "--bundle", os.path.join(EXAMPLES, "aks-pod-subnet")).stdout
    assert "+++ planned/v1.ConfigMap.kube-system.ip-masq-agent-config" in preview


@pytest.mark.parametrize("extra", [["--yes"], ["-o", "json"], ["-o", "yaml"]])
def test_diff_with_a_write_or_a_document_is_a_usage_error(extra):
    r = run("--add", "10.50.0.0/16", "--bundle", os.path.join(EXAMPLES, "aks-pod-subnet"), "--diff", *extra)
    assert r.returncode == 2 and "E258" in r.stderr
