"""Bundle files that are present but say nothing: they are missing evidence, never "no objects"."""

from __future__ import annotations

import json
import os

import pytest
from qakit import assert_clean, bundle, run

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
