"""The example bundles give the findings a reader of the seeds expects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from masqctl.analysis.inspect import inspect
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")


def example(name: str) -> str:
    path = os.path.join(EXAMPLES, name)
    if not os.path.isdir(path):
        pytest.skip(f"examples/{name} is not in the tree yet (built by the bundle work)")
    return path


def report_of(path: str):
    return inspect(gather(GatherOptions(bundle=path)))


def codes(report) -> set[str]:
    return {f.code for f in report.findings}


def test_aks_azure_cni_redundant_node_subnet():
    r = report_of(example("aks-azure-cni"))
    mq011 = [f for f in r.findings if f.code == "MQ011"]
    assert mq011 and "10.224.0.0/16 ⊂ 10.224.0.0/12" in mq011[0].detail
    assert r.exit_code == 0


def test_aks_kubenet_is_clean_or_info_only():
    r = report_of(example("aks-kubenet"))
    assert all(f.severity == "info" for f in r.findings), [(f.code, f.detail) for f in r.findings]
    assert r.exit_code == 0


def test_hub_spoke_mq008_until_the_blog_user_configmap(tmp_path):
    src = example("hub-spoke")
    assert "MQ008" in codes(report_of(src))
    dst = str(tmp_path / "hub-spoke-fixed")
    shutil.copytree(src, dst)
    path = os.path.join(dst, "configmaps.yaml")
    with open(path) as fh:
        doc = yaml.safe_load(fh)
    doc["items"] = [cm for cm in doc["items"] if cm["metadata"]["name"] != "azure-ip-masq-agent-config"]
    doc["items"].append({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "azure-ip-masq-agent-config", "namespace": "kube-system",
                                      "labels": {"addonmanager.kubernetes.io/mode": "EnsureExists",
                                                 "component": "ip-masq-agent"}},
                         "data": {"ip-masq-agent": "nonMasqueradeCIDRs:\n- 10.0.0.0/8\n"}})
    with open(path, "w") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    after = report_of(dst)
    assert "MQ008" not in codes(after)
    assert "MQ016" in codes(after)       # the user ConfigMap now exists


def test_aks_pod_subnet_user_agent_decides():
    # pod-subnet mode has no general masquerade, but this cluster runs its own agent whose chain is
    # live on every node: that agent decides, so its config has effect (no MQ015)
    r = report_of(example("aks-pod-subnet"))
    assert "MQ015" not in codes(r)
    d = r.to_dict()
    assert d["mode"]["name"] == "azure-cni-pod-subnet" and d["mode"]["agent_decides"] is True, d["mode"]


@pytest.mark.parametrize("name", ["aks-azure-cni", "aks-kubenet", "hub-spoke", "aks-pod-subnet"])
def test_quick_start_command_reads_well(name):
    path = example(name)
    r = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "inspect", "--bundle", path], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    assert "Effective config" in r.stdout and "Findings" in r.stdout
    j = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "inspect", "--bundle", path, "-o", "json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    json.loads(j.stdout)
