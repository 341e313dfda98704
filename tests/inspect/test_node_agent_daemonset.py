"""inspect on a cluster running masqctl's own node-agent (deploy/daemonset.yaml), a drop-in for the
AKS agent: found, read with the node-agent's own flags, its config computed as it computes it.

Every bundle goes through the real bundle loader; the node-agent's own dry run (``python -m
masqctl.agent --once --dry-run`` on the files the DaemonSet projects) is the reference for the rules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest
import yaml
from clusterkit.akscal import NODES, agent_pod, base

from masqctl.analysis.agentconfig import primary_agent
from masqctl.analysis.inspect import inspect
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions
from masqctl.engine import dry_run_text
from errordoc import no_result

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = json.load(open(os.path.join(ROOT, "docs", "inspect.schema.json")))
NAME = "masqctl-node-agent"
UNALIGNED = "nonMasqueradeCIDRs:\n  - 10.40.0.0/16\n  - 10.0.0.1/8\n"


def deploy_daemonset(args=None, command=None, image=None, mount_path=None) -> dict:
    with open(os.path.join(ROOT, "deploy", "daemonset.yaml")) as fh:
        ds = yaml.safe_load(fh)
    c = ds["spec"]["template"]["spec"]["containers"][0]
    if args is not None:
        c["args"] = list(args)
    if command is not None:
        c["command"] = list(command)
    if image is not None:
        c["image"] = image
    if mount_path is not None:
        c["volumeMounts"][0]["mountPath"] = mount_path
    ds["status"] = {"desiredNumberScheduled": len(NODES), "numberReady": len(NODES),
                    "currentNumberScheduled": len(NODES)}
    return ds


def node_agent_pod(i: int, node: str, ds: dict) -> dict:
    p = agent_pod(i, node)
    p["metadata"]["name"] = f"{NAME}-{'abcdefgh'[i]}x{i}q"
    p["metadata"]["labels"] = dict(ds["spec"]["selector"]["matchLabels"])
    p["metadata"]["ownerReferences"][0]["name"] = NAME
    image = ds["spec"]["template"]["spec"]["containers"][0]["image"]
    for c in p["spec"]["containers"] + p["status"]["containerStatuses"]:
        c["name"], c["image"] = NAME, image
    return p


def node_agent_bundle(ds: dict | None = None, keep_aks_agent: bool = False):
    """The healthy base cluster with the node-agent in place of (or beside) AKS's agent."""
    b = base()
    ds = ds or deploy_daemonset()
    pods = [node_agent_pod(i, n, ds) for i, n in enumerate(NODES)]
    b.daemonsets = (b.daemonsets if keep_aks_agent else []) + [ds]
    b.pods = (b.pods if keep_aks_agent else []) + pods
    return b


def load(bundle, tmp_path, name):
    return gather(GatherOptions(bundle=bundle.write(str(tmp_path / name))))


def node_agent_view(report):
    return next(v for v in report.agents if v.daemonset.kind == NAME)


def provenance(view) -> list:
    return [(e.cidr, [view.source_of(o) for o in e.origins]) for e in view.config.non_masquerade_cidrs]


def real_dry_run(view, tmp_path, name: str) -> subprocess.CompletedProcess:
    """The node-agent itself, with the DaemonSet's flags, on the files the DaemonSet projects."""
    folder = tmp_path / name
    folder.mkdir()
    for f in view.files:
        if f.text is not None:
            (folder / f.path).write_text(f.text)
    return subprocess.run([sys.executable, "-m", "masqctl.agent", *view.argv, "--once", "--dry-run",
                           "--config-dir", str(folder)], capture_output=True, text=True, timeout=60)


# --------------------------------------------------------------------------- the drop-in


@pytest.mark.parametrize("user", [None, "nonMasqueradeCIDRs:\n  - 10.40.0.0/15\n  - 10.224.0.0/16\nmasqLinkLocal: false\n"])
def test_deploy_daemonset_is_found_and_runs_the_azure_v2_config(user, tmp_path):
    aks, ours = base(), node_agent_bundle()
    if user is not None:
        aks.add_user(user)
        ours.add_user(user)
    go = inspect(load(aks, tmp_path, "aks"))
    got = inspect(load(ours, tmp_path, "ours"))
    view = got.agent
    ds = view.daemonset
    assert (ds.kind, ds.flavor, ds.container, ds.ref) == (NAME, "azure-v2", NAME, f"kube-system/{NAME}")
    assert view.flag_error is None and view.error is None
    assert view.options == go.agent.options                       # --health-bind etc. are the node-agent's
    assert view.on_invalid_config == "keep" and view.config_dir == "/etc/config"
    assert "MQ002" not in {f.code for f in got.findings}
    # the same findings: MQ016 too (AKS blocks the overlay migration on the user ConfigMap's existence,
    # whichever agent reads it)
    assert [(f.code, f.detail) for f in got.findings] == [(f.code, f.detail) for f in go.findings]
    # the same effective config as the azure-v2 agent, line by line, and the same rules
    assert provenance(view) == provenance(go.agent)
    assert view.config.masq_link_local == go.agent.config.masq_link_local
    assert got.to_dict()["config"] == go.to_dict()["config"]
    assert dry_run_text(view.rules()) == dry_run_text(go.agent.rules())
    real = real_dry_run(view, tmp_path, "folder")
    assert real.returncode == 0, real.stderr
    assert real.stdout == dry_run_text(view.rules())


def test_beside_the_managed_agent_both_are_read(tmp_path):
    report = inspect(load(node_agent_bundle(keep_aks_agent=True), tmp_path, "both"))
    assert report.agent.daemonset.kind == "azure-ip-masq-agent"          # AKS's agent stays primary
    ours = node_agent_view(report)
    assert ours.error is None and ours.flag_error is None
    assert provenance(ours) == provenance(report.agent)
    doc = report.to_dict()
    jsonschema.validate(doc, SCHEMA)
    (other,) = doc["other_agents"]
    assert (other["kind"], other["flavor"], other["on_invalid_config"], other["config_dir"]) == (
        NAME, "azure-v2", "keep", "/etc/config")
    assert "MQ002" not in {f.code for f in report.findings}


@pytest.mark.parametrize("command, args, image", [
    (["masqctl", "node-agent"], ["--v=2", "--resync-interval=60"], "python:3.11-slim-bookworm"),
    (["python3", "-m", "masqctl.agent", "--v=2"], ["--health-bind=0"], "ghcr.io/example/netdebug:1"),
    (["/bin/sh", "-c", "exec python3 -S -m masqctl.agent --v=2 --cleanup-on-exit"], [], "python:3.11"),
])
def test_any_image_running_the_node_agent(command, args, image, tmp_path):
    b = node_agent_bundle(deploy_daemonset(args=args, command=command, image=image))
    report = inspect(load(b, tmp_path, "b"))
    view = report.agent
    assert view.daemonset.kind == NAME and view.flag_error is None and view.error is None
    assert "MQ002" not in {f.code for f in report.findings}
    assert [c.cidr for c in view.config.non_masquerade_cidrs] == ["10.224.0.0/12", "10.0.0.0/16"]
    assert any("shell" in n for n in view.notes) == (command[0] == "/bin/sh")


def test_cli_json(tmp_path):
    path = node_agent_bundle().write(str(tmp_path / "cli"))
    r = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "inspect", "--bundle", path, "-o", "json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert (doc["agent"]["kind"], doc["agent"]["flavor"], doc["agent"]["flag_error"]) == (NAME, "azure-v2", None)
    assert doc["findings"] == []


# --------------------------------------------------------------------------- --flavor


def test_flavor_upstream_has_upstream_semantics(tmp_path):
    only_link_local = "masqLinkLocal: true\n"
    up = node_agent_bundle(deploy_daemonset(args=["--v=2", "--flavor=upstream"])).add_user(only_link_local)
    v2 = node_agent_bundle().add_user(only_link_local)
    up_view = primary_agent(load(up, tmp_path, "up"))
    v2_view = primary_agent(load(v2, tmp_path, "v2"))
    assert (up_view.daemonset.flavor, up_view.options.flavor) == ("upstream", "upstream")
    # upstream reads only ip-masq-agent, over its defaults: the RFC 1918 list stays
    assert {f.path: f.read for f in up_view.files} == {"ip-masq-agent": True, "ip-masq-agent-reconciled": False}
    assert [c.cidr for c in up_view.config.non_masquerade_cidrs] == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    assert up_view.config.masq_link_local.value is True
    # azure-v2 merges both files from an empty config: only the reconciled CIDRs
    assert [c.cidr for c in v2_view.config.non_masquerade_cidrs] == ["10.224.0.0/12", "10.0.0.0/16"]
    assert up_view.options.random_fully is True and "--random-fully" in dry_run_text(up_view.rules())
    assert "--random-fully" not in dry_run_text(v2_view.rules())
    real = real_dry_run(up_view, tmp_path, "upstream-folder")
    assert real.returncode == 0, real.stderr
    assert real.stdout == dry_run_text(up_view.rules())
    report = inspect(load(up, tmp_path, "up-report"))
    assert "MQ002" not in {f.code for f in report.findings}
    mq001 = [f for f in report.findings if f.code == "MQ001"]
    assert mq001 and "azure-ip-masq-agent-config-reconciled" in mq001[0].detail   # the upstream flavour ignores it


def test_flavor_upstream_flags_only_it_knows(tmp_path):
    args = ["--flavor=upstream", "--no-random-fully", "--to-ports=1024-29999,32768-65535", "--masq-chain=MY-MASQ"]
    view = primary_agent(load(node_agent_bundle(deploy_daemonset(args=args)), tmp_path, "b"))
    assert view.flag_error is None
    assert (view.options.random_fully, [str(p) for p in view.options.to_ports], view.options.masq_chain) == (
        False, ["1024-29999", "32768-65535"], "MY-MASQ")
    real = real_dry_run(view, tmp_path, "folder")
    assert real.returncode == 0, real.stderr
    assert real.stdout == dry_run_text(view.rules())


# --------------------------------------------------------------------------- invalid config, flags


@pytest.mark.parametrize("args", [["--v=2"], ["--v=2", "--on-invalid-config=keep"], ["--on-invalid-config", "keep"]])
def test_keep_reports_mq002_without_a_crash_loop(args, tmp_path):
    b = node_agent_bundle(deploy_daemonset(args=args)).add_user(UNALIGNED)
    report = inspect(load(b, tmp_path, "b"))
    (f,) = [f for f in report.findings if f.code == "MQ002"]
    assert f.severity == "error"
    assert "E105" in f.detail and "ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 3" in f.detail
    assert "crash-loop" not in f.detail and "exits" not in f.detail
    assert "--on-invalid-config keep" in f.detail and "last good rules" in f.detail
    assert "10.0.0.1/8 → 10.0.0.0/8" in f.fix
    # the node-agent itself refuses the same file, naming it
    real = real_dry_run(report.agent, tmp_path, "folder")
    assert real.returncode != 0 and no_result(real) and "E105" in real.stderr and "ip-masq-agent" in real.stderr


def test_exit_and_the_go_agent_report_the_crash_loop(tmp_path):
    exits = inspect(load(node_agent_bundle(deploy_daemonset(args=["--on-invalid-config=exit"])).add_user(UNALIGNED),
                         tmp_path, "exit"))
    go = inspect(load(base().add_user(UNALIGNED), tmp_path, "go"))
    for report in (exits, go):
        (f,) = [f for f in report.findings if f.code == "MQ002"]
        assert "crash-loop on every node" in f.detail and "E105" in f.detail
    assert "--on-invalid-config exit" in next(f for f in exits.findings if f.code == "MQ002").detail


@pytest.mark.parametrize("args, needles", [
    (["--v=2", "--no-such-flag=1"], ["flag provided but not defined: -no-such-flag"]),
    (["--v=2", "--resync-interval=1m"], ["invalid value '1m' for flag -resync-interval"]),
    (["--on-invalid-config=ignore"], ["--on-invalid-config 'ignore'", "E206"]),
    (["--health-bind=nowhere"], ["--health-bind 'nowhere'", "E205"]),
    (["--iptables-backend=iptables"], ["--iptables-backend 'iptables'", "E207"]),
    (["--flavor=gke"], ["unknown flavour 'gke'", "E201"]),
    (["--dry-run"], ["--dry-run needs --once"]),
    (["--v=2", "extra"], ["unexpected argument 'extra'"]),
    (["--resync-interval=0"], ["--resync-interval must be a positive number"]),
])
def test_flags_the_node_agent_refuses_are_mq002_naming_them(args, needles, tmp_path):
    report = inspect(load(node_agent_bundle(deploy_daemonset(args=args)), tmp_path, "b"))
    view = report.agent
    assert view.daemonset.kind == NAME and view.flag_error is not None
    (f,) = [f for f in report.findings if f.code == "MQ002"]
    text = f.detail + " " + view.flag_error.one_line()
    for n in needles:
        assert n in text, text
    assert "exits at start" in f.detail and "crash-loop" in f.detail     # a refused flag does exit, even with keep
    assert f"DaemonSet kube-system/{NAME} container {NAME} args" in view.flag_error.input
    # the node-agent itself refuses them too (exit status 2)
    real = subprocess.run([sys.executable, "-m", "masqctl.agent", *args, "--config-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert real.returncode == 2, (args, real.stdout, real.stderr)


def test_go_agent_still_refuses_the_node_agents_flags(tmp_path):
    b = base()
    b.daemonsets[0]["spec"]["template"]["spec"]["containers"][0]["args"] = ["--v=2", "--health-bind=127.0.0.1:8679"]
    report = inspect(load(b, tmp_path, "b"))
    (f,) = [f for f in report.findings if f.code == "MQ002"]
    assert "flag provided but not defined: -health-bind" in f.detail


# --------------------------------------------------------------------------- --config-dir


def test_config_dir_selects_the_mount_that_is_read(tmp_path):
    moved = deploy_daemonset(args=["--v=2", "--config-dir=/etc/masq/"], mount_path="/etc/masq")
    view = primary_agent(load(node_agent_bundle(moved), tmp_path, "moved"))
    assert view.config_dir == "/etc/masq" and view.error is None
    assert [c.cidr for c in view.config.non_masquerade_cidrs] == ["10.224.0.0/12", "10.0.0.0/16"]

    # the flag moved, the volume did not: the node-agent sees no folder (azure-v2 refuses that)
    stale = deploy_daemonset(args=["--v=2", "--config-dir=/etc/masq"])
    report = inspect(load(node_agent_bundle(stale), tmp_path, "stale"))
    view = report.agent
    assert view.mount is None and view.error.code == "E101" and "/etc/masq" in view.error.one_line()
    assert any("no volume is mounted at /etc/masq" in n for n in view.notes)
    (f,) = [f for f in report.findings if f.code == "MQ002"]
    assert "crash-loop" not in f.detail and "last good rules" in f.detail
    real = subprocess.run([sys.executable, "-m", "masqctl.agent", "--once", "--dry-run", "--config-dir",
                           str(tmp_path / "absent")], capture_output=True, text=True, timeout=60)
    assert real.returncode != 0 and "E101" in real.stderr

    # upstream without its folder uses its defaults, as the node-agent does
    up = deploy_daemonset(args=["--flavor=upstream", "--config-dir=/etc/masq"])
    view = primary_agent(load(node_agent_bundle(up), tmp_path, "up"))
    assert view.error is None and view.config.defaults_used


def test_relative_config_dir_is_said_to_be_assumed(tmp_path):
    ds = deploy_daemonset(args=["--config-dir=etc/config"])
    view = primary_agent(load(node_agent_bundle(ds), tmp_path, "rel"))
    assert view.config_dir == "/etc/config" and view.error is None
    assert any("relative" in n and "working directory" in n for n in view.notes)


@pytest.mark.parametrize("args, needle", [
    (["--once"], "syncs once and exits"),
    (["--once", "--dry-run"], "without writing rules"),
    (["--help"], "prints its usage"),
])
def test_one_shot_flags_are_noted(args, needle, tmp_path):
    view = primary_agent(load(node_agent_bundle(deploy_daemonset(args=args)), tmp_path, "b"))
    assert view.flag_error is None
    assert any(needle in n and "kubelet restarts it" in n for n in view.notes), view.notes
