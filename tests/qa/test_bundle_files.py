"""Bundle files that are present but say nothing: they are missing evidence, never "no objects"."""

from __future__ import annotations

import json
import os

import pytest
from qakit import assert_clean, bundle, run
from errordoc import no_result

# (file, what a 0-byte or comment-only file must not be mistaken for, check on the JSON report)
EMPTY_FILES = [
    ("configmaps.yaml", ""),
    ("configmaps.yaml", "# kubectl failed: forbidden\n"),
    ("configmaps.yaml", "\n---\n"),
    ("daemonsets.yaml", ""),
    ("pods.yaml", "   \n"),
    ("nodes.yaml", ""),
]


@pytest.mark.parametrize("name,text", EMPTY_FILES)
def test_an_empty_kubernetes_file_is_missing_evidence(tmp_path, name, text):
    b = bundle(tmp_path)
    with open(os.path.join(b, name), "w") as fh:
        fh.write(text)
    proc = run("inspect", "--bundle", b, "-o", "json")
    assert_clean(proc)
    doc = json.loads(proc.stdout)
    said = json.dumps(doc)
    assert f"{name} is empty" in said, said[:2000]
    # nothing is concluded from the absence: no error finding rests on an empty file
    assert doc["summary"]["error"] == 0, [f["code"] for f in doc["findings"]]


def test_an_empty_list_from_kubectl_is_still_an_empty_list(tmp_path):
    """`kubectl get cm -o yaml` with nothing to show writes `items: []`: that is evidence of none."""
    b = bundle(tmp_path)
    with open(os.path.join(b, "configmaps.yaml"), "w") as fh:
        fh.write("apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n")
    proc = run("inspect", "--bundle", b, "-o", "json")
    assert_clean(proc)
    assert "configmaps.yaml is empty" not in proc.stdout


def _items(path):
    from qakit import load_yaml
    return load_yaml(path)


def _add_copy(b, file, pick, change):
    from qakit import dump_yaml, load_yaml
    path = os.path.join(b, file)
    doc = load_yaml(path)
    original = next(o for o in doc["items"] if pick(o))
    clone = json.loads(json.dumps(original))
    change(clone)
    doc["items"].append(clone)
    dump_yaml(path, doc)


def _set_cidrs(cm):
    cm["data"]["ip-masq-agent-reconciled"] = "nonMasqueradeCIDRs:\n- 10.99.0.0/16\n"


def _set_image(ds):
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.14"


def _set_pod_cidr(node):
    node["spec"]["podCIDR"] = "10.244.9.0/24"


def _same(obj):
    pass


DUPLICATES = [
    # file, which object, how the copy differs, refused?
    ("configmaps.yaml", lambda o: o["metadata"]["name"] == "azure-ip-masq-agent-config-reconciled", _set_cidrs, True),
    ("daemonsets.yaml", lambda o: o["metadata"]["name"] == "azure-ip-masq-agent", _set_image, True),
    ("nodes.yaml", lambda o: True, _set_pod_cidr, True),
    ("configmaps.yaml", lambda o: o["metadata"]["name"] == "azure-ip-masq-agent-config-reconciled", _same, False),
    ("daemonsets.yaml", lambda o: o["metadata"]["name"] == "azure-ip-masq-agent", _same, False),
    ("pods.yaml", lambda o: o["metadata"]["name"].startswith("orders-api"), _same, False),
]


@pytest.mark.parametrize("file,pick,change,refused", DUPLICATES)
def test_one_name_twice(tmp_path, file, pick, change, refused):
    """Two different objects under one name cannot come from one cluster read: refused, naming
    both items. An exact repeat (two kubectl outputs concatenated) is read once: never a second
    agent, never a silent choice between two configs."""
    b = bundle(tmp_path)
    _add_copy(b, file, pick, change)
    proc = run("inspect", "--bundle", b, "-o", "json")
    assert_clean(proc)
    if refused:
        assert proc.returncode == 2
        assert no_result(proc)
        assert "error E322" in proc.stderr and file in proc.stderr and "appears twice" in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["other_agents"] == []
