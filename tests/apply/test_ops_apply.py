"""The write sequence of apply (masqctl.ops.apply.write_plan) called directly, without the CLI: a
write with its backup, a conflict that writes nothing, and a verify failure that rolls back — against
the local API server with the real kubernetes client (and, for verify, real iptables-save output)."""

from __future__ import annotations

import os

import pytest

import apply_clusters as clusters
from kubeapi import KubeAPI
from masqctl.analysis.plan import ApplyRequest, plan_apply
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions
from masqctl.errors import ApplyError
from masqctl.ops.apply import WriteRecord, write_plan
from netns import requires_netns
from test_verify import NEW_CIDR, OLD_USER, Nodes, real_save

USER = "azure-ip-masq-agent-config"


def planned(api, tmp_path, *, capture: bool, add: str = NEW_CIDR):
    kc = api.write_kubeconfig(tmp_path / "kubeconfig")
    options = GatherOptions(kubeconfig=str(kc), context="test", azure=False, capture=capture)
    snapshot = gather(options)
    return plan_apply(snapshot, ApplyRequest(add=(add,))), snapshot, options


def configmap_writes(api) -> list:
    return [r for r in api.log if r.method in ("POST", "PUT", "PATCH", "DELETE") and "configmaps" in r.path]


def test_write_saves_a_backup_first_then_writes_the_plan(tmp_path):
    steps: list[str] = []
    with KubeAPI() as api:
        clusters.load_into(api, user_config=OLD_USER)
        plan, snapshot, options = planned(api, tmp_path, capture=False)
        before = api.get("configmaps", USER, "kube-system")
        record = write_plan(plan, snapshot, options, backup_dir=str(tmp_path / "b"), environ={}, verify=False,
                            on_step=lambda step, rec: steps.append(step))
        after = api.get("configmaps", USER, "kube-system")
        methods = [r.method for r in configmap_writes(api)]
    assert steps == ["backup", "written"]
    assert methods == ["PUT"]
    assert record.write.action == "updated" and record.verify is None and record.rollback is None
    assert after["data"]["ip-masq-agent"] == OLD_USER + f"  - {NEW_CIDR}\n"
    assert os.path.exists(record.backup.path) and record.backup.object["data"] == before["data"]
    doc = record.to_dict()
    assert doc["written"] is True and doc["write"]["action"] == "updated" and doc["backup"]["path"] == record.backup.path


def test_a_change_since_the_plan_is_e701_and_nothing_is_written_or_backed_up(tmp_path):
    record = WriteRecord()
    with KubeAPI() as api:
        clusters.load_into(api, user_config=OLD_USER)
        plan, snapshot, options = planned(api, tmp_path, capture=False)
        cm = api.get("configmaps", USER, "kube-system")
        cm["data"]["ip-masq-agent"] = "nonMasqueradeCIDRs:\n  - 172.31.0.0/16\n"
        api.add(cm)                                      # someone else edits it after the plan
        with pytest.raises(ApplyError) as caught:
            write_plan(plan, snapshot, options, backup_dir=str(tmp_path / "b"), environ={}, verify=False,
                       record=record)
        kept = api.get("configmaps", USER, "kube-system")
        writes = configmap_writes(api)
    assert caught.value.code == "E701" and "changed since the plan" in caught.value.message
    assert writes == [] and kept["data"]["ip-masq-agent"] == "nonMasqueradeCIDRs:\n  - 172.31.0.0/16\n"
    assert record.to_dict() == {} and not (tmp_path / "b").exists()


@requires_netns
def test_verify_failure_rolls_back_to_the_backup(tmp_path):
    saves = real_save(OLD_USER), real_save(OLD_USER + f"  - {NEW_CIDR}\n")
    steps: list[str] = []
    record = WriteRecord()
    with KubeAPI() as api:
        clusters.load_into(api, user_config=OLD_USER)
        nodes = Nodes(saves[0], saves[1], {clusters.NODES[0]: 1, clusters.NODES[1]: 1, clusters.NODES[2]: None})
        for n in clusters.NODES:
            api.on_exec(nodes.handler(n), node=n)
        plan, snapshot, options = planned(api, tmp_path, capture=True)
        with pytest.raises(ApplyError) as caught:
            write_plan(plan, snapshot, options, backup_dir=str(tmp_path / "b"), environ={}, verify=True,
                       timeout=1.0, interval=0.05, rollback=True, record=record,
                       on_step=lambda step, rec: steps.append(step))
        restored = api.get("configmaps", USER, "kube-system")
        methods = [r.method for r in configmap_writes(api)]
    assert caught.value.code == "E710" and "rolled back" in caught.value.message
    assert steps == ["backup", "written", "verified", "rolled-back"]
    assert methods == ["PUT", "PUT"]
    assert record.verify.ok is False and [n for n in record.verify.pending] == [clusters.NODES[2]]
    assert record.rollback.action == "updated" and restored["data"]["ip-masq-agent"] == OLD_USER
