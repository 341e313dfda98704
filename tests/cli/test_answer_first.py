"""The answer first, in one vocabulary: inspect starts with a one-line verdict that names the
command fixing the most severe problem, `--quiet` prints only that line, a finding's remedy is the
runnable command `apply` agrees with, `apply -o yaml` is the manifest alone, and every JSON
document carries a schema version."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from masqctl.cli.output import _yaml_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB_SPOKE = os.path.join(ROOT, "examples", "hub-spoke")
DUMP = os.path.join(HUB_SPOKE, "nodes", "aks-system-20931744-vmss000000", "iptables-save.txt")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False, env={**os.environ, "COLUMNS": "200"})


def test_inspect_starts_with_the_verdict_and_its_command():
    r = run("inspect", "--bundle", HUB_SPOKE)
    first = r.stdout.splitlines()[0]
    assert first == ("1 problem: peered-VNet traffic is masqueraded although pod IPs are routable there (MQ008) "
                     "→ masqctl apply --goal preserve-source-ip")
    assert r.returncode == 0


def test_quiet_prints_the_verdict_only_and_keeps_the_exit_status():
    r = run("inspect", "--bundle", HUB_SPOKE, "--quiet")
    assert r.stdout.strip().splitlines() == [run("inspect", "--bundle", HUB_SPOKE).stdout.splitlines()[0]]
    assert r.returncode == 0
    healthy = run("inspect", "--bundle", os.path.join(ROOT, "examples", "aks-kubenet"), "-q")
    assert healthy.stdout.strip().startswith("no problems found (3 node(s) in scope)")


def test_the_remedy_is_the_command_apply_agrees_with():
    doc = json.loads(run("inspect", "--bundle", HUB_SPOKE, "-o", "json").stdout)
    mq008 = next(f for f in doc["findings"] if f["code"] == "MQ008")
    assert mq008["remedy"]["command"] == "masqctl apply --goal preserve-source-ip"
    assert yaml.safe_load(mq008["remedy"]["configmap"])["metadata"]["name"] == "azure-ip-masq-agent-config"
    assert doc["summary"]["verdict"].endswith("→ masqctl apply --goal preserve-source-ip")
    # the command resolves the finding (the plan says so), and --goal fix points at it
    plan = json.loads(run("apply", "--bundle", HUB_SPOKE, "--goal", "preserve-source-ip", "-o", "json").stdout)
    assert "MQ008" in [f["code"] for f in plan["findings"]["resolved"]]
    fix = json.loads(run("apply", "--bundle", HUB_SPOKE, "--goal", "fix", "-o", "json").stdout)
    assert any("MQ008" in n and "`masqctl apply --goal preserve-source-ip`" in n for n in fix["notes"])


def test_apply_yaml_is_the_manifest_alone():
    r = run("apply", "--bundle", HUB_SPOKE, "--goal", "preserve-source-ip", "-o", "yaml")
    manifest = yaml.safe_load(r.stdout)
    assert r.returncode == 0 and manifest["kind"] == "ConfigMap"
    assert manifest["data"]["ip-masq-agent"] == "nonMasqueradeCIDRs:\n  - 10.42.0.0/15\n"
    assert "ip-masq-agent: |" in r.stdout          # the config reads as the file it is
    nothing = run("apply", "--bundle", HUB_SPOKE, "--goal", "fix", "-o", "yaml")
    assert nothing.stdout == "" and "nothing to do" in nothing.stderr


def test_json_documents_carry_a_schema_version():
    ex = json.loads(run("explain", "10.40.0.9", "10.42.1.10", "--iptables", DUMP, "-o", "json").stdout)
    cl = json.loads(run("explain", "10.40.0.9", "10.42.1.10", "--bundle", HUB_SPOKE, "-o", "json").stdout)
    ap = json.loads(run("apply", "--bundle", HUB_SPOKE, "--goal", "fix", "-o", "json").stdout)
    assert ex["schema"] == cl["schema"] == ap["schema"] == 1


@settings(max_examples=200, deadline=None, database=None)
@given(st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=80), st.integers(), st.none(),
                                                        st.lists(st.text(max_size=30), max_size=3)), max_size=6))
def test_yaml_output_reads_back_as_the_document(doc):
    assert yaml.safe_load(_yaml_text(doc)) == doc
