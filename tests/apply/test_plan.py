"""Planning on bundles: goals, explicit edits and ugly inputs, through the real bundle reader and
``masqctl apply`` (CLI in-process), and the plan re-inspected as the cluster would be after it."""

from __future__ import annotations

import json

import pytest
from errordoc import error_of
import yaml

import apply_clusters as clusters
from masqctl.analysis.inspect import inspect
from masqctl.analysis.plan import ApplyRequest, FileInput, check_introduced, plan_apply
from masqctl.cli.app import run
from masqctl.cluster.bundle import read_bundle
from masqctl.cluster.build import build_snapshot
from masqctl.errors import ApplyError, ConfigError, UsageError


def snapshot_of(tmp_path, plugin="azure", **kw):
    path = clusters.write_test_bundle(tmp_path / f"bundle-{plugin}", plugin, **kw)
    return path, build_snapshot(read_bundle(path))


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- preserve-source-ip


def test_hub_spoke_goes_from_mq008_to_clean(tmp_path):
    _, snap = snapshot_of(tmp_path)
    before = inspect(snap)
    assert "MQ008" in {f.code for f in before.findings}
    plan = plan_apply(snap, ApplyRequest(goal="preserve-source-ip"))
    assert plan.action == "create" and plan.resource_version is None
    # only the Connected peering's space; the Disconnected one is named and left out
    assert plan.changes == ["add 10.10.0.0/15 (peered VNet hub-vnet): pods keep their source IP toward it"]
    assert any("spoke1-to-old" in n and "Disconnected" in n for n in plan.notes)
    obj = plan.new_object
    assert obj["metadata"]["labels"] == {"component": "ip-masq-agent", "kubernetes.io/cluster-service": "true",
                                         "addonmanager.kubernetes.io/mode": "EnsureExists"}
    assert yaml.safe_load(plan.new_yaml()) == obj
    assert yaml.safe_load(obj["data"]["ip-masq-agent"]) == {"nonMasqueradeCIDRs": ["10.10.0.0/15"]}
    # the planned snapshot is what inspect sees afterwards: MQ008 gone, nothing above info
    after = inspect(plan.planned_snapshot)
    codes = {f.code: f.severity for f in after.findings}
    assert "MQ008" not in codes
    assert all(sev == "info" for sev in codes.values()), codes
    assert "MQ016" in codes  # the user ConfigMap now exists: the overlay-migration note
    # verdicts: the hub flow changes, the others do not
    flows = {f.kind: f for f in plan.flows if "old-vnet" not in f.label}
    hub = flows["peered-vnet"]
    old = next(f for f in plan.flows if "old-vnet" in f.label)
    assert (old.before, old.after) == (True, True) and "Disconnected" in old.label
    assert (hub.before, hub.after, hub.changed) == (True, False, True)
    assert "azure-ip-masq-agent-config key ip-masq-agent line 2" in hub.after_rule
    assert (flows["service-cidr"].before, flows["service-cidr"].after) == (False, False)
    assert "reconciled key ip-masq-agent-reconciled line 4" in flows["service-cidr"].after_rule
    assert (flows["internet"].before, flows["internet"].after) == (True, True)
    assert (flows["imds"].before, flows["imds"].after) == (True, True)
    # rules before/after from the engine
    b = [r.text for r in plan.rules_before().ipv4.rules]
    a = [r.text for r in plan.rules_after().ipv4.rules]
    assert set(a) - set(b) == {'-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: local traffic is not '
                               'subject to MASQUERADE" -d 10.10.0.0/15 -j RETURN'}
    assert any(w.startswith("MQ016 creating ConfigMap kube-system/azure-ip-masq-agent-config") for w in plan.warnings)


def test_preserve_keeps_unrelated_keys_labels_annotations_and_comments(tmp_path):
    user = "# platform team\nnonMasqueradeCIDRs:\n  - 192.168.50.0/24  # lab\nmasqLinkLocal: true\n"
    _, snap = snapshot_of(tmp_path, user_config=user, user_labels={"team": "net", "component": "old"},
                          user_annotations={"owner": "alice"}, user_extra_data={"README": "do not delete\n"})
    plan = plan_apply(snap, ApplyRequest(goal="preserve-source-ip", to=("hub-vnet",)))
    assert plan.action == "update"
    obj = plan.new_object
    assert obj["data"]["README"] == "do not delete\n"
    assert obj["metadata"]["annotations"] == {"owner": "alice"}
    assert obj["metadata"]["labels"]["team"] == "net"
    assert obj["metadata"]["labels"]["component"] == "ip-masq-agent"
    assert any("label component changes from 'old'" in n for n in plan.notes)
    assert obj["data"]["ip-masq-agent"] == ("# platform team\nnonMasqueradeCIDRs:\n  - 192.168.50.0/24  # lab\n"
                                            "  - 10.10.0.0/15\nmasqLinkLocal: true\n")


def test_kubenet_refuses_preserve_with_the_reason(tmp_path, capsys):
    path, snap = snapshot_of(tmp_path, "kubenet")
    with pytest.raises(ApplyError) as exc:
        plan_apply(snap, ApplyRequest(goal="preserve-source-ip"))
    assert exc.value.code == "E707"
    assert "MQ009" in exc.value.message and "kubenet" in exc.value.message
    assert "not routable outside the cluster" in exc.value.message
    code, out, err = cli(capsys, "apply", "--bundle", path, "--goal", "preserve-source-ip")
    assert code == 1 and out == ""
    assert "E707" in err and "MQ009" in err


def test_preserve_without_azure_facts_says_what_is_missing(tmp_path):
    _, snap = snapshot_of(tmp_path, azure=False)
    with pytest.raises(ApplyError) as exc:
        plan_apply(snap, ApplyRequest(goal="preserve-source-ip"))
    assert exc.value.code == "E707" and "cannot tell whether pod IPs are routable" in exc.value.message


def test_to_unknown_vnet_is_a_usage_error(tmp_path):
    _, snap = snapshot_of(tmp_path)
    with pytest.raises(UsageError) as exc:
        plan_apply(snap, ApplyRequest(goal="preserve-source-ip", to=("nope-vnet",)))
    assert exc.value.code == "E252" and "hub-vnet" in exc.value.message


def test_to_a_disconnected_peering_is_refused(tmp_path):
    _, snap = snapshot_of(tmp_path)
    with pytest.raises(ApplyError) as exc:
        plan_apply(snap, ApplyRequest(goal="preserve-source-ip", to=("old-vnet",)))
    assert exc.value.code == "E707" and "Disconnected" in exc.value.message


# --------------------------------------------------------------------------- --remove, --add


def test_remove_of_a_reconciled_cidr_is_refused_with_its_configmap_line(tmp_path, capsys):
    path, snap = snapshot_of(tmp_path)
    with pytest.raises(ApplyError) as exc:
        plan_apply(snap, ApplyRequest(remove=("10.0.0.0/16",)))
    assert exc.value.code == "E708"
    assert ("ConfigMap kube-system/azure-ip-masq-agent-config-reconciled key ip-masq-agent-reconciled line 4"
            in exc.value.message)
    code, _, err = cli(capsys, "apply", "--bundle", path, "--remove", "10.0.0.0/16")
    assert code == 1 and "E708" in err and "line 4" in err


def test_remove_and_add_on_the_user_configmap(tmp_path):
    user = "nonMasqueradeCIDRs:\n  - 192.168.50.0/24\n  - 172.16.5.0/24\n"
    _, snap = snapshot_of(tmp_path, user_config=user)
    plan = plan_apply(snap, ApplyRequest(add=("10.10.0.0/15",), remove=("172.16.5.0/24", "1.2.3.0/24")))
    assert plan.changes[:2] == ["add 10.10.0.0/15", "remove 172.16.5.0/24"]
    assert any("1.2.3.0/24 is not in" in n for n in plan.notes)
    assert yaml.safe_load(plan.new_text) == {"nonMasqueradeCIDRs": ["192.168.50.0/24", "10.10.0.0/15"]}


def test_nothing_to_do_exits_0(tmp_path, capsys):
    path, _ = snapshot_of(tmp_path, user_config="nonMasqueradeCIDRs:\n  - 10.10.0.0/15\n",
                          user_labels={"component": "ip-masq-agent", "kubernetes.io/cluster-service": "true",
                                       "addonmanager.kubernetes.io/mode": "EnsureExists"})
    code, out, _ = cli(capsys, "apply", "--bundle", path, "--goal", "preserve-source-ip", "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["action"] == "none" and doc["written"] is False


@pytest.mark.parametrize("cidr, code, words", [
    ("10.0.0.1/8", "E105", "not aligned"),
    ("fd00::/8", "E107", "--enable-ipv6"),
    ("10.0.0.0/33", "E104", "could not be parsed"),
    ("banana", "E104", "could not be parsed"),
])
def test_ugly_add_is_refused_with_the_agents_reason(tmp_path, capsys, cidr, code, words):
    path, snap = snapshot_of(tmp_path)
    with pytest.raises(ConfigError) as exc:
        plan_apply(snap, ApplyRequest(add=(cidr,)))
    assert exc.value.code == code and words in exc.value.message
    assert exc.value.input.startswith("ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line ")
    rc, out, err = cli(capsys, "apply", "--bundle", path, "--add", cidr, "-o", "json")
    assert rc == 2 and error_of(out)["code"] == code and code in err


# --------------------------------------------------------------------------- --from-file


def test_from_file_with_65_cidrs_is_refused(tmp_path, capsys):
    path, _ = snapshot_of(tmp_path)
    f = tmp_path / "many.yaml"
    f.write_text("nonMasqueradeCIDRs:\n" + "".join(f"  - 10.{i}.0.0/16\n" for i in range(65)))
    rc, out, err = cli(capsys, "apply", "--bundle", path, "--from-file", str(f))
    assert rc == 2 and out == ""
    assert "E106" in err and f"--from-file {f}" in err and "65 CIDRs" in err


def test_from_file_yaml_bomb_is_refused(tmp_path, capsys):
    path, _ = snapshot_of(tmp_path)
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        bomb.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 9) + "]")
    bomb.append("nonMasqueradeCIDRs: [10.0.0.0/8]")
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(bomb) + "\n")
    rc, out, err = cli(capsys, "apply", "--bundle", path, "--from-file", str(f))
    assert rc == 2 and out == "" and "E102" in err and "aliasing" in err


@pytest.mark.parametrize("content, code", [(None, "E253"), (b"\x00\x01binary", "E253")])
def test_from_file_unreadable_is_a_usage_error(tmp_path, capsys, content, code):
    path, _ = snapshot_of(tmp_path)
    f = tmp_path / "cfg.yaml"
    if content is not None:
        f.write_bytes(content)
    rc, out, err = cli(capsys, "apply", "--bundle", path, "--from-file", str(f))
    assert rc == 2 and code in err and str(f) in err


def test_from_file_good(tmp_path):
    _, snap = snapshot_of(tmp_path)
    plan = plan_apply(snap, ApplyRequest(from_file=FileInput("new.yaml", b'{"nonMasqueradeCIDRs": ["10.10.0.0/15"]}')))
    assert plan.action == "create" and plan.new_text == '{"nonMasqueradeCIDRs": ["10.10.0.0/15"]}'


# --------------------------------------------------------------------------- fix, reset


def test_fix_resolves_the_fixable_findings(tmp_path):
    user = ("nonMasqueradeCIDRs:\n  - 10.40.1.0/24\n  - 10.10.0.0/15\n  - 10.10.0.0/15\n  - fd00::/8\n"
            "resyncInterval: 60s\nmasqLinkLocal: false\nnonMasqueradeCIDR: [1.2.3.0/24]\n")
    misnamed = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "ip-masq-agent", "namespace": "kube-system"},
                "data": {"config": "nonMasqueradeCIDRs:\n  - 192.168.7.0/24\n"}}
    _, snap = snapshot_of(tmp_path, user_config=user, extra_configmaps=[misnamed])
    before = {f.code for f in inspect(snap).findings}
    assert {"MQ002", "MQ001"} <= before
    plan = plan_apply(snap, ApplyRequest(goal="fix"))
    assert yaml.safe_load(plan.new_text) == {"nonMasqueradeCIDRs": ["10.10.0.0/15", "192.168.7.0/24"]}
    assert any("kubectl -n kube-system delete configmap ip-masq-agent" in w for w in plan.warnings)
    after = {f.code for f in inspect(plan.planned_snapshot).findings}
    # the user file is valid, its ignored keys, no-op setting and redundant/duplicate CIDRs are gone
    assert not ({"MQ002", "MQ010", "MQ012", "MQ014"} & after), after
    mq011 = [f for f in inspect(plan.planned_snapshot).findings if f.code == "MQ011"]
    assert all("azure-ip-masq-agent-config key" not in (f.detail + " ".join(f.evidence)) or
               "reconciled" in f.detail for f in mq011)


def test_reset_deletes_and_on_absent_has_nothing_to_do(tmp_path):
    _, snap = snapshot_of(tmp_path, user_config="nonMasqueradeCIDRs: [10.10.0.0/15]\n")
    plan = plan_apply(snap, ApplyRequest(goal="reset"))
    assert plan.action == "delete" and plan.new_object is None
    assert [f.kind for f in plan.flows if f.changed] == ["peered-vnet"]
    (tmp_path / "2").mkdir()
    _, snap2 = snapshot_of(tmp_path / "2")
    assert plan_apply(snap2, ApplyRequest(goal="reset")).action == "none"


# --------------------------------------------------------------------------- usage


@pytest.mark.parametrize("argv, code", [
    (["--goal", "reset", "--add", "10.1.0.0/16"], "E250"),
    (["--goal", "nope"], "E250"),
    (["--to", "hub-vnet"], "E250"),
    ([], "E250"),
    (["--goal", "fix", "--timeout", "0"], "E256"),
    (["--goal", "fix", "--dry-run", "--yes"], "E254"),
    (["--goal", "fix", "--yes"], "E254"),
])
def test_usage_errors_exit_2(tmp_path, capsys, argv, code):
    path, _ = snapshot_of(tmp_path)
    rc, out, err = cli(capsys, "apply", "--bundle", path, *argv)
    assert rc == 2 and out == ""
    if code:
        assert code in err


def test_dry_run_json_is_one_document(tmp_path, capsys):
    path, _ = snapshot_of(tmp_path)
    rc, out, err = cli(capsys, "apply", "--bundle", path, "--goal", "preserve-source-ip", "-o", "json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["action"] == "create" and doc["written"] is False
    assert doc["new_configmap"]["data"]["ip-masq-agent"] == "nonMasqueradeCIDRs:\n  - 10.10.0.0/15\n"
    assert [f["changed"] for f in doc["flows"]].count(True) == 1
    assert doc["effective_after"]["nonMasqueradeCIDRs"][0] == {
        "cidr": "10.10.0.0/15", "from": ["ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 2"]}


def test_human_plan_names_what_changes(tmp_path, capsys):
    path, _ = snapshot_of(tmp_path)
    rc, out, err = cli(capsys, "apply", "--bundle", path, "--goal", "preserve-source-ip")
    assert rc == 0
    assert "Action: create" in out and "+-A IP-MASQ-AGENT" in out and "10.10.0.0/15" in out
    assert "nothing written (a bundle can only be planned)" in err


# --------------------------------------------------------------------------- findings after the change


def test_plan_lists_the_findings_inspect_would_report_after_it(tmp_path, capsys):
    # kubenet: pod IPs are not routable outside the cluster, so keeping them toward a private
    # range the cluster does not know is MQ009 (warning): the plan says so before anything is written
    path, snap = snapshot_of(tmp_path, "kubenet")
    plan = plan_apply(snap, ApplyRequest(add=("192.168.0.0/16",)))
    introduced = {(f.code, f.severity) for f in plan.introduced}
    assert ("MQ009", "warning") in introduced and not plan.resolved
    # the plan and inspect on the planned state agree on what is new
    before = {(f.code, f.severity) for f in inspect(snap).findings}
    after = {(f.code, f.severity) for f in inspect(plan.planned_snapshot).findings}
    assert introduced == after - before
    rc, out, err = cli(capsys, "apply", "--bundle", path, "--add", "192.168.0.0/16", "-o", "json")
    assert rc == 0
    doc = json.loads(out)
    assert ("MQ009", "warning") in {(f["code"], f["severity"]) for f in doc["findings"]["introduced"]}
    assert any("192.168.0.0/16" in f["detail"] for f in doc["findings"]["introduced"] if f["code"] == "MQ009")
    rc, out, _ = cli(capsys, "apply", "--bundle", path, "--add", "192.168.0.0/16")
    assert rc == 0 and "introduces WARNING MQ009" in out


def test_plan_that_fixes_a_finding_says_it_resolves_it(tmp_path):
    _, snap = snapshot_of(tmp_path)
    plan = plan_apply(snap, ApplyRequest(goal="preserve-source-ip"))
    assert [f.code for f in plan.resolved] == ["MQ008"]
    assert {(f.code, f.severity) for f in plan.introduced} == {("MQ016", "info")}


def test_a_finding_reported_before_and_after_is_changed_not_introduced(tmp_path):
    # 172.16.0.0/12 is not the peered hub: MQ008 stays, with a detail naming the new list
    _, snap = snapshot_of(tmp_path)
    plan = plan_apply(snap, ApplyRequest(add=("172.16.0.0/12",)))
    assert "MQ008" not in {f.code for f in plan.introduced} | {f.code for f in plan.resolved}
    assert [f.code for f in plan.changed_findings] == ["MQ008"]


def test_an_introduced_error_finding_is_refused_without_force(tmp_path, capsys):
    # kubenet and the peered hub's range: MQ009 at error severity after the change
    path, snap = snapshot_of(tmp_path, "kubenet")
    plan = plan_apply(snap, ApplyRequest(add=("10.10.0.0/15",)))
    assert ("MQ009", "error") in {(f.code, f.severity) for f in plan.introduced}
    with pytest.raises(ApplyError) as exc:
        check_introduced(plan, force=False)
    assert exc.value.code == "E713" and "MQ009" in str(exc.value)
    check_introduced(plan, force=True)                       # --force writes it anyway
    check_introduced(plan, force=False, allow_unsafe=True)   # the operator named this range as unsafe
    # the CLI refuses it first as an unsafe range (E707), and with --allow-unsafe shows the finding
    rc, out, err = cli(capsys, "apply", "--bundle", path, "--add", "10.10.0.0/15")
    assert rc == 1 and "E707" in err
    rc, out, err = cli(capsys, "apply", "--bundle", path, "--add", "10.10.0.0/15", "--allow-unsafe")
    assert rc == 0 and "introduces ERROR MQ009" in out


# --------------------------------------------------------------------------- the shipped examples

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples"


def _example(name):
    path = EXAMPLES / name
    if not path.is_dir():
        pytest.skip(f"examples/{name} is not in the tree yet")
    return build_snapshot(read_bundle(str(path)))


def test_example_hub_spoke_goes_from_mq008_to_clean():
    snap = _example("hub-spoke")
    assert "MQ008" in {f.code for f in inspect(snap).findings}
    plan = plan_apply(snap, ApplyRequest(goal="preserve-source-ip"))
    after = {f.code: f.severity for f in inspect(plan.planned_snapshot).findings}
    assert "MQ008" not in after and all(sev == "info" for sev in after.values()), after
    assert any(f.changed and f.kind == "peered-vnet" for f in plan.flows)


def test_example_kubenet_refuses_preserve():
    snap = _example("aks-kubenet")
    with pytest.raises(ApplyError) as exc:
        plan_apply(snap, ApplyRequest(goal="preserve-source-ip"))
    assert exc.value.code == "E707" and "MQ009" in exc.value.message
