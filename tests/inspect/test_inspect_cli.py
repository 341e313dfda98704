"""`masqctl inspect` as a user runs it: one JSON/YAML document, exit codes, --only, --nodes, --no-azure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest
import yaml
from clusterkit.akscal import NODES, VNET, base, iptables_save, peering, vnet
from errordoc import no_result

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = json.load(open(os.path.join(ROOT, "docs", "inspect.schema.json")))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", "inspect", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


@pytest.fixture
def drifted(tmp_path):
    b = base()
    b.captures[NODES[1]]["iptables-save.txt"] = iptables_save(["10.224.0.0/12"])
    b.vnets[VNET] = vnet([peering("aks-to-hub", "hub-vnet", ["10.40.0.0/15"])])
    return b.write(str(tmp_path / "drifted"))


@pytest.fixture
def healthy(tmp_path):
    return base().write(str(tmp_path / "healthy"))


def test_json_is_one_valid_document_and_exit_1_on_error(drifted):
    r = run("--bundle", drifted, "-o", "json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, SCHEMA)
    codes = [(f["code"], f["severity"]) for f in doc["findings"]]
    assert codes == [("MQ004", "error"), ("MQ008", "warning")]      # most severe first
    assert doc["summary"]["exit_code"] == 1
    assert doc["findings"][0]["nodes"] == [NODES[1]]
    rows = {row["cidr"]: row for row in doc["config"]["nonMasqueradeCIDRs"]}
    assert rows["10.224.0.0/12"]["network"][0].startswith("= AKS-managed VNet")
    assert rows["10.0.0.0/16"]["network"] == ["= service CIDR"]


def test_healthy_exits_0_and_yaml_matches_json(healthy):
    rj = run("--bundle", healthy, "-o", "json")
    ry = run("--bundle", healthy, "-o", "yaml")
    assert rj.returncode == 0 and ry.returncode == 0, rj.stderr + ry.stderr
    assert yaml.safe_load(ry.stdout) == json.loads(rj.stdout)
    jsonschema.validate(json.loads(rj.stdout), SCHEMA)


def test_human_report_sections(drifted):
    r = run("--bundle", drifted)
    assert r.returncode == 1
    for section in ("Agent and mode", "Effective config", "Nodes", "Findings", "MQ004", "fix:"):
        assert section in r.stdout, r.stdout


def test_only_restricts_and_sets_the_exit_code(drifted):
    r = run("--bundle", drifted, "-o", "json", "--only", "mq008")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [f["code"] for f in doc["findings"]] == ["MQ008"] and doc["only"] == ["MQ008"]


@pytest.mark.parametrize("value", ["MQ999", "MQ004,BOGUS", ""])
def test_unknown_only_code_is_exit_2_naming_it(drifted, value):
    r = run("--bundle", drifted, "--only", value, "-o", "json")
    assert r.returncode == 2 and no_result(r)
    assert "E240" in r.stderr and (value.split(",")[-1] in r.stderr) and "Traceback" not in r.stderr


def test_nodes_and_no_azure(drifted):
    r = run("--bundle", drifted, "-o", "json", "--nodes", NODES[0], "--no-azure")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["findings"] == []          # the drifted node is out of scope; peering facts not used
    assert any(n["code"] == "MQ008" and "Azure" in n["reason"] for n in doc["not_checked"])
    assert doc["summary"]["nodes"] == 1


def test_bad_bundle_is_exit_2(tmp_path):
    r = run("--bundle", str(tmp_path / "nope"), "-o", "json")
    assert r.returncode == 2 and no_result(r) and "Traceback" not in r.stderr


def test_broken_capture_is_unknown_not_a_crash(tmp_path):
    b = base()
    b.captures[NODES[0]]["iptables-save.txt"] = "*nat\n-A POSTROUTING -m comment --comment \"unterminated\n"
    r = run("--bundle", b.write(str(tmp_path / "b")), "-o", "json")
    assert "Traceback" not in r.stderr
    if r.returncode == 2:
        assert "iptables-save" in r.stderr          # the loader refused the file, naming it
    else:
        doc = json.loads(r.stdout)
        unknown = [g for g in doc["nodes"]["groups"] if g["state"] == "unknown"]
        assert unknown and "unreadable" in unknown[0]["summary"]
