"""apply (plan mode on a bundle) with odd --from-file contents."""

from __future__ import annotations

import json
import os

import pytest
from qakit import assert_clean, run
from errordoc import no_result

HUB = os.path.join("examples", "hub-spoke")

CM_YAML = """apiVersion: v1
kind: ConfigMap
metadata:
  name: azure-ip-masq-agent-config
  namespace: kube-system
data:
  ip-masq-agent: |
    nonMasqueradeCIDRs:
      - 10.42.0.0/15
"""
CM_JSON = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "azure-ip-masq-agent-config", "namespace": "kube-system"},
                      "data": {"ip-masq-agent": "nonMasqueradeCIDRs: [10.42.0.0/15]\n"}})
LIST_YAML = "apiVersion: v1\nkind: List\nitems: []\n"


@pytest.mark.parametrize("text", [CM_YAML, CM_JSON, LIST_YAML], ids=["configmap-yaml", "configmap-json", "list"])
def test_a_kubernetes_manifest_is_not_taken_as_the_agent_config(tmp_path, text):
    """Written as the agent's config, a whole manifest is a file of ignored keys: a ConfigMap that
    changes nothing and blocks an Overlay migration. It is refused, naming the file."""
    path = tmp_path / "cm.yaml"
    path.write_text(text)
    proc = run("apply", "--bundle", HUB, "--from-file", str(path), "-o", "json")
    assert_clean(proc)
    assert proc.returncode == 2
    assert no_result(proc)
    assert "error E253" in proc.stderr and str(path) in proc.stderr and "manifest" in proc.stderr, proc.stderr


@pytest.mark.parametrize("text", ["nonMasqueradeCIDRs:\n  - 10.42.0.0/15\n",
                                  '{"nonMasqueradeCIDRs": ["10.42.0.0/15"], "masqLinkLocal": false}',
                                  "# a key named kind alone is just ignored\nkind: x\nnonMasqueradeCIDRs: [10.42.0.0/15]\n"])
def test_an_agent_config_is_planned(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    proc = run("apply", "--bundle", HUB, "--from-file", str(path), "-o", "json")
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["action"] == "create"
    assert "10.42.0.0/15" in json.dumps(plan["effective_after"])
