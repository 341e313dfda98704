"""Agent DaemonSets whose config volume the API server would never accept: refused, naming the
field, instead of a confident effective config (and ConfigMap provenance) built on a guess."""

from __future__ import annotations

import os

import pytest
from qakit import assert_clean, bundle, dump_yaml, load_yaml, run
from errordoc import no_result


def _agent_volume(doc):
    ds = next(o for o in doc["items"] if o["metadata"]["name"] == "azure-ip-masq-agent")
    return next(v for v in ds["spec"]["template"]["spec"]["volumes"] if "projected" in v)


def both_sources(vol):
    vol["configMap"] = {"name": "azure-ip-masq-agent-config-reconciled"}


def reconciled_onto_user_path(vol):
    srcs = [s for s in vol["projected"]["sources"] if "configMap" in s]
    srcs[1]["configMap"]["items"][0]["path"] = srcs[0]["configMap"]["items"][0]["path"]


def same_source_twice(vol):
    srcs = [s for s in vol["projected"]["sources"] if "configMap" in s]
    srcs[0]["configMap"]["items"].append(dict(srcs[0]["configMap"]["items"][0], key="other"))


@pytest.mark.parametrize("change,field,says", [
    (both_sources, "volumes[0].projected", "both configMap and projected"),
    (reconciled_onto_user_path, "sources[1].configMap.items[0].path", "projected twice"),
    (same_source_twice, "sources[0].configMap.items[1].path", "projected twice"),
])
@pytest.mark.parametrize("command", [["inspect"], ["explain", "10.40.0.9", "8.8.8.8"],
                                     ["apply", "--goal", "preserve-source-ip"]])
def test_impossible_projection_is_refused(tmp_path, change, field, says, command):
    b = bundle(tmp_path)
    path = os.path.join(b, "daemonsets.yaml")
    doc = load_yaml(path)
    change(_agent_volume(doc))
    dump_yaml(path, doc)
    proc = run(*command, "--bundle", b, "-o", "json")
    assert_clean(proc)
    assert proc.returncode == 2, proc.stdout[:500]
    assert no_result(proc)
    assert "error E322 daemonsets.yaml" in proc.stderr and field in proc.stderr and says in proc.stderr, proc.stderr


def test_the_shipped_projection_is_read(tmp_path):
    proc = run("inspect", "--bundle", bundle(tmp_path), "-o", "json")
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
