"""Every finding whose fix is a command carries it as ``remedy.command``, in one vocabulary with
apply: a `masqctl apply …` remedy, run against the bundle that shows the finding, plans a change
that resolves it; a kubectl remedy parses and names no placeholder."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB = os.path.join(ROOT, "examples", "hub-spoke")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False, env={**os.environ, "COLUMNS": "200"})


def variant(tmp_path, name: str, *, user: dict | None = None, reconciled: str | None = None) -> str:
    """examples/hub-spoke with the user ConfigMap ``user`` (data) and/or another reconciled text."""
    path = tmp_path / name
    shutil.copytree(HUB, path)
    doc = yaml.safe_load((path / "configmaps.yaml").read_text())
    if reconciled is not None:
        rec = next(i for i in doc["items"] if i["metadata"]["name"] == "azure-ip-masq-agent-config-reconciled")
        rec["data"]["ip-masq-agent-reconciled"] = reconciled
    if user is not None:
        doc["items"].append({"apiVersion": "v1", "kind": "ConfigMap", "data": user,
                             "metadata": {"name": "azure-ip-masq-agent-config", "namespace": "kube-system",
                                          "resourceVersion": "1", "labels": {"component": "ip-masq-agent"}}})
    (path / "configmaps.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


CASES = {
    # name: (user ConfigMap data, reconciled text, the codes whose masqctl remedy is checked)
    "peered": (None, None, {"MQ008"}),
    "host-bits": ({"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.42.0.1/15\n"}, None, {"MQ002"}),
    "ipv6": ({"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.42.0.0/15\n  - fd00:42::/64\n"}, None,
             {"MQ002", "MQ014"}),
    "tidy": ({"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.42.0.0/15\n  - 10.42.1.0/24\nmasqLinkLocal: false\n"
                               "nonMasqCIDRs:\n  - 10.50.0.0/16\n"},
             "MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 10.0.0.0/16\n- 10.40.0.0/15\n",    # no AKS redundancy
             {"MQ010", "MQ011", "MQ012"}),
    "misnamed-key": ({"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.42.0.0/15\n",
                      "config": "nonMasqueradeCIDRs:\n  - 10.60.0.0/16\n"}, None, {"MQ001"}),
    "internet": ({"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.42.0.0/15\n  - 8.8.8.0/24\n"}, None, {"MQ009"}),
    "user-configmap": ({"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.42.0.0/15\n"}, None, {"MQ016"}),
    "stale": (None, "MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 10.0.0.0/16\n", {"MQ007"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_masqctl_remedy_resolves_its_finding(tmp_path, case):
    user, reconciled, codes = CASES[case]
    bundle = variant(tmp_path, case, user=user, reconciled=reconciled)
    doc = json.loads(run("inspect", "--bundle", bundle, "-o", "json").stdout)
    found = {f["code"]: f for f in doc["findings"]}
    assert codes <= set(found), (case, sorted(found))
    for code in sorted(codes):
        command = found[code]["remedy"]["command"]
        assert command and command.startswith("masqctl apply "), (code, command)
        assert f"`{command}`" in found[code]["fix"], (code, found[code]["fix"])    # the prose names it
        argv = shlex.split(command)[1:]
        r = run(*argv, "--bundle", bundle, "-o", "json")
        assert r.returncode == 0, (code, command, r.stderr)
        plan = json.loads(r.stdout)
        resolved = {f["code"] for f in plan["findings"]["resolved"]}
        still = {f["code"] for f in plan["findings"]["introduced"] + plan["findings"]["changed"]}
        assert code in resolved and code not in still, (code, command, plan["findings"], plan["changes"])


def test_kubectl_remedies_parse_and_name_real_objects(tmp_path):
    # the user ConfigMap changes the effective config, so both captured nodes drift (MQ004)
    bundle = variant(tmp_path, "drift", user={"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.42.0.0/15\n"})
    doc = json.loads(run("inspect", "--bundle", bundle, "-o", "json").stdout)
    kubectl = [f for f in doc["findings"] if (f["remedy"]["command"] or "").startswith("kubectl ")]
    assert "MQ004" in {f["code"] for f in kubectl}
    for f in kubectl:
        argv = shlex.split(f["remedy"]["command"])
        assert argv[:3] == ["kubectl", "-n", "kube-system"] and argv[3] in ("delete", "rollout"), argv
        assert not any("<" in a for a in argv), argv
        assert "-l" in argv and argv[argv.index("-l") + 1].startswith("k8s-app=azure-ip-masq-agent")


def test_the_verdict_names_the_first_remedy(tmp_path):
    bundle = variant(tmp_path, "internet", user=CASES["internet"][0])
    doc = json.loads(run("inspect", "--bundle", bundle, "-o", "json").stdout)
    first = next(f for f in doc["findings"] if f["severity"] in ("error", "warning"))
    assert first["remedy"]["command"] and doc["summary"]["verdict"].split(" → ")[1].startswith(
        first["remedy"]["command"] + ";")


@pytest.mark.parametrize("user", [None, {"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.60.0.0/16\nmasqLinkLocal: false\n"}],
                         ids=["no-user-configmap", "user-configmap-with-other-keys"])
def test_the_mq008_manifest_is_the_one_apply_writes(tmp_path, user):
    """inspect's MQ008 manifest and `apply --goal preserve-source-ip -o yaml` are one manifest: the same
    labels, the same YAML, the user file's other keys kept."""
    bundle = variant(tmp_path, "peered", user=user)
    doc = json.loads(run("inspect", "--bundle", bundle, "-o", "json").stdout)
    mq008 = next(f for f in doc["findings"] if f["code"] == "MQ008")
    assert mq008["remedy"]["command"] == "masqctl apply --goal preserve-source-ip"
    r = run(*shlex.split(mq008["remedy"]["command"])[1:], "--bundle", bundle, "-o", "yaml")
    assert r.returncode == 0, r.stderr
    assert mq008["remedy"]["configmap"] == r.stdout
    assert mq008["remedy"]["configmap"] in mq008["fix"]
    assert yaml.safe_load(r.stdout)["metadata"]["labels"]["addonmanager.kubernetes.io/mode"] == "EnsureExists"
    if user:
        assert "masqLinkLocal: false" in r.stdout and "10.60.0.0/16" in r.stdout


def test_mq008_points_at_who_for_the_meantime_and_that_command_runs():
    """Until the ConfigMap is changed, MQ008's fix names `masqctl who` (from the finding's own code,
    docs/findings.md says the same); filled in with the field report's log line it names the pod."""
    doc = json.loads(run("inspect", "--bundle", HUB, "-o", "json").stdout)
    fix = next(f for f in doc["findings"] if f["code"] == "MQ008")["fix"]
    meantime = next(line for line in fix.splitlines() if "masqctl who" in line)
    template = meantime.split("masqctl who ", 1)[1].split(" (", 1)[0]
    assert template == "NODE_IP:PORT --to DST:PORT", meantime
    argv = template.replace("NODE_IP:PORT", "10.40.0.4:51234").replace("DST:PORT", "10.42.1.10:443").split()
    r = run("who", *argv, "--bundle", HUB, "-o", "json")
    assert r.returncode == 0, r.stderr
    match = json.loads(r.stdout)["matches"][0]
    assert json.loads(r.stdout)["exact"] and match["pod"] == "billing/invoice-client-6d4f9b8c7-t5rjp", match
