"""Writing the user ConfigMap against a local API server with the real kubernetes client: create,
update, conflicts between plan and write, refusals that write nothing, 403, backups and restore."""

from __future__ import annotations

import json
import os

import pytest
import yaml

import apply_clusters as clusters
from kubeapi import KubeAPI
from masqctl.cli.app import run
from masqctl.cluster.live import configmap_write as cw

USER = "azure-ip-masq-agent-config"
WRITES = r"/configmaps"


@pytest.fixture
def api():
    with KubeAPI() as server:
        yield server


def live(api, tmp_path, *argv, backup=True) -> list[str]:
    kc = api.write_kubeconfig(tmp_path / "kubeconfig")
    args = ["apply", "--kubeconfig", str(kc), "--context", "test", "--no-azure", "--no-capture", *argv]
    if backup:
        args += ["--backup-dir", str(tmp_path / "backups")]
    return args


def cli(capsys, argv):
    code = run(argv)
    out, err = capsys.readouterr()
    return code, out, err


def writes(api) -> list:
    return [r for r in api.log if r.method in ("POST", "PUT", "PATCH", "DELETE") and "configmaps" in r.path]


def backups(tmp_path) -> list[str]:
    d = tmp_path / "backups"
    return sorted(str(d / f) for f in os.listdir(d)) if d.exists() else []


def test_create_writes_the_planned_object_and_a_backup_of_absence(api, tmp_path, capsys):
    clusters.load_into(api)
    code, out, err = cli(capsys, live(api, tmp_path, "--add", "10.10.0.0/15", "--yes", "--no-verify", "-o", "json"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["action"] == "create" and doc["written"] is True and doc["write"]["action"] == "created"
    cm = api.get("configmaps", USER, "kube-system")
    assert cm["data"] == {"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 10.10.0.0/15\n"}
    assert cm["metadata"]["labels"] == {"component": "ip-masq-agent", "kubernetes.io/cluster-service": "true",
                                        "addonmanager.kubernetes.io/mode": "EnsureExists"}
    assert [r.method for r in writes(api)] == ["POST"]
    [path] = backups(tmp_path)
    text = open(path).read()
    assert text.startswith(f"# masqctl-backup absent kube-system/{USER}\n")
    assert f"kubectl -n kube-system delete configmap {USER}" in text
    assert yaml.safe_load(text) == {"apiVersion": "v1", "kind": "List", "items": []}
    assert doc["backup"]["path"] == path and doc["backup"]["existed"] is False
    # restore from that backup: the ConfigMap goes away again (delete with a precondition)
    code, out, err = cli(capsys, live(api, tmp_path, "--from-backup", path, "--yes", "--no-verify"))
    assert code == 0, err
    assert api.get("configmaps", USER, "kube-system") is None
    delete = [r for r in writes(api) if r.method == "DELETE"]
    assert delete and delete[0].body["preconditions"]["resourceVersion"] == cm["metadata"]["resourceVersion"]


def test_update_keeps_unrelated_keys_labels_annotations_and_backup_restores_exactly(api, tmp_path, capsys):
    user = "# ours\nnonMasqueradeCIDRs:\n  - 192.168.50.0/24  # lab\n"
    clusters.load_into(api, user_config=user, user_labels={"team": "net"}, user_annotations={"owner": "alice"},
                       user_extra_data={"README": "keep me\n"})
    original = api.get("configmaps", USER, "kube-system")
    code, out, err = cli(capsys, live(api, tmp_path, "--add", "10.10.0.0/15", "--yes", "--no-verify"))
    assert code == 0, err
    assert "updated ConfigMap kube-system/azure-ip-masq-agent-config" in out
    assert "to restore: kubectl replace -f" in err
    cm = api.get("configmaps", USER, "kube-system")
    assert cm["data"] == {"ip-masq-agent": user.replace("# lab\n", "# lab\n  - 10.10.0.0/15\n"),
                          "README": "keep me\n"}
    assert cm["metadata"]["annotations"] == {"owner": "alice"}
    assert cm["metadata"]["labels"]["team"] == "net" and cm["metadata"]["labels"]["component"] == "ip-masq-agent"
    [put] = [r for r in writes(api)]
    assert put.method == "PUT" and put.body["metadata"]["resourceVersion"] == original["metadata"]["resourceVersion"]
    [path] = backups(tmp_path)
    saved = yaml.safe_load(open(path))
    assert saved["data"] == original["data"]
    assert saved["metadata"]["labels"] == original["metadata"]["labels"]
    assert saved["metadata"]["annotations"] == original["metadata"]["annotations"]
    assert "resourceVersion" not in saved["metadata"]   # so `kubectl replace -f` applies it as is
    assert f"resourceVersion {original['metadata']['resourceVersion']}" in open(path).read()
    # restore with masqctl: back to the exact old data, labels and annotations
    code, out, err = cli(capsys, live(api, tmp_path, "--from-backup", path, "--yes", "--no-verify"))
    assert code == 0, err
    back = api.get("configmaps", USER, "kube-system")
    assert back["data"] == original["data"]
    assert back["metadata"]["labels"] == original["metadata"]["labels"]
    assert back["metadata"]["annotations"] == original["metadata"]["annotations"]


def _edit(api):
    cm = api.get("configmaps", USER, "kube-system")
    cm["data"]["ip-masq-agent"] = "nonMasqueradeCIDRs:\n  - 172.31.0.0/16\n"
    api.add(cm)


@pytest.mark.parametrize("when", ["before-the-write-read", "at-the-put"])
def test_concurrent_edit_between_plan_and_write_is_never_overwritten(api, tmp_path, capsys, when):
    clusters.load_into(api, user_config="nonMasqueradeCIDRs:\n  - 192.168.50.0/24\n")
    # the plan lists ConfigMaps; masqctl then reads the one ConfigMap (1st GET) and PUTs it
    if when == "before-the-write-read":
        api.after(1, _edit, method="GET", pattern=rf"/configmaps/{USER}$")
    else:
        api.after(1, _edit, method="PUT", pattern=rf"/configmaps/{USER}$")
    code, out, err = cli(capsys, live(api, tmp_path, "--add", "10.10.0.0/15", "--yes", "--no-verify"))
    assert code == 1
    assert "E701" in err and "changed since the plan" in err and "re-run" in err
    cm = api.get("configmaps", USER, "kube-system")
    assert cm["data"]["ip-masq-agent"] == "nonMasqueradeCIDRs:\n  - 172.31.0.0/16\n"   # the other change stays
    statuses = [r.status for r in writes(api)]
    assert statuses in ([], [409])


def test_created_meanwhile_is_a_conflict(api, tmp_path, capsys):
    clusters.load_into(api)

    def create(api):
        api.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": USER, "namespace": "kube-system"},
                 "data": {"ip-masq-agent": "nonMasqueradeCIDRs: [172.31.0.0/16]\n"}})

    api.after(1, create, method="POST", pattern=r"/configmaps$")
    code, out, err = cli(capsys, live(api, tmp_path, "--add", "10.10.0.0/15", "--yes", "--no-verify"))
    assert code == 1 and "E701" in err and "someone created it" in err
    assert api.get("configmaps", USER, "kube-system")["data"]["ip-masq-agent"] == "nonMasqueradeCIDRs: [172.31.0.0/16]\n"


@pytest.mark.parametrize("argv, code", [
    (["--add", "10.0.0.1/8"], "E105"),
    (["--add", "fd00::/8"], "E107"),
    (["--remove", "10.40.0.0/15"], "E708"),
])
def test_refusals_write_nothing(api, tmp_path, capsys, argv, code):
    clusters.load_into(api, user_config="nonMasqueradeCIDRs:\n  - 192.168.50.0/24\n")
    rc, out, err = cli(capsys, live(api, tmp_path, *argv, "--yes", "--no-verify"))
    # an invalid CIDR given on the command line is an input error (2); a refusal of the plan fails it (1)
    assert rc == (2 if code.startswith("E1") else 1) and code in err
    assert writes(api) == []
    assert backups(tmp_path) == []


def test_forbidden_names_the_permission(api, tmp_path, capsys):
    clusters.load_into(api, user_config="nonMasqueradeCIDRs:\n  - 192.168.50.0/24\n")
    api.deny("update", "configmaps", namespace="kube-system")
    rc, out, err = cli(capsys, live(api, tmp_path, "--add", "10.10.0.0/15", "--yes", "--no-verify"))
    assert rc == 1 and "E702" in err and "permission to update configmaps in namespace kube-system" in err
    assert api.get("configmaps", USER, "kube-system")["data"]["ip-masq-agent"] == \
        "nonMasqueradeCIDRs:\n  - 192.168.50.0/24\n"


def test_reset_deletes_with_a_precondition(api, tmp_path, capsys):
    clusters.load_into(api, user_config="nonMasqueradeCIDRs:\n  - 192.168.50.0/24\n")
    rv = api.get("configmaps", USER, "kube-system")["metadata"]["resourceVersion"]
    rc, out, err = cli(capsys, live(api, tmp_path, "--goal", "reset", "--yes", "--no-verify"))
    assert rc == 0, err
    assert api.get("configmaps", USER, "kube-system") is None
    [d] = writes(api)
    assert d.method == "DELETE" and d.body["preconditions"] == {"resourceVersion": rv}


def test_not_a_terminal_means_dry_run(api, tmp_path, capsys):
    clusters.load_into(api)
    rc, out, err = cli(capsys, live(api, tmp_path, "--add", "10.10.0.0/15"))
    assert rc == 0 and "Action: create" in out and "nothing written (stdout is not a terminal)" in err
    assert writes(api) == []


def test_backup_dir_not_writable_writes_nothing(api, tmp_path, capsys):
    clusters.load_into(api)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = live(api, tmp_path, "--add", "10.10.0.0/15", "--yes", "--no-verify", backup=False)
    rc, out, err = cli(capsys, argv + ["--backup-dir", str(blocker / "sub")])
    assert rc == 1 and "E705" in err and writes(api) == []


def test_load_backup_refuses_ugly_files(tmp_path):
    from masqctl.errors import UsageError

    cases = {"list.yaml": "- a\n- b\n", "secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n",
             "bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: [1]}\n",
             "bomb.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
                 f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))}
    for name, text in cases.items():
        p = tmp_path / name
        p.write_text(text)
        with pytest.raises(UsageError) as exc:
            cw.load_backup(str(p))
        assert exc.value.code == "E255" and str(p) in exc.value.input, name
