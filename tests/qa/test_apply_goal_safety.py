"""apply never derives an unsafe range, and writes one the operator names only with --allow-unsafe.

A goal (``--goal preserve-source-ip``, from the Connected peerings' remote address space, ``--to
VNET`` or ``--to CIDR``) refuses any range that covers internet space, Azure's 168.63.129.16, IMDS or
link-local (E707, naming the peering or --to and the reason) and still plans the safe ranges; with
none left it exits 1. An explicit ``--add``/``--from-file`` of such a range is planned with an
error-level entry (MQ009 where MQ009 calls it an error) and exits 1 without ``--allow-unsafe``,
also with ``--yes``, writing nothing. The ranges marked are the ones ``inspect`` reports as MQ009
errors once written. Bundles are the shipped examples; writing goes to the local API server (and
the local ARM for goals), through the real clients.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from qakit import assert_clean, bundle, dump_json, load_json, load_yaml, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))

import e2e_estate as es  # noqa: E402
from azurearm import ARM, FakeAz, make_pki  # noqa: E402
from kubeapi import KubeAPI  # noqa: E402
from errordoc import no_result

NS = "kube-system"
USER_CM = "azure-ip-masq-agent-config"
HUB = "10.42.0.0/15"                       # the hub VNet of examples/hub-spoke
PEERING = "peer-spoke1-to-hub"
SPOKE_VNET = "vnet-spoke1.json"

# range -> (unsafe?, is it an MQ009 error?, words the reason must hold)
RANGES = {
    "0.0.0.0/0": (True, True, ["internet", "168.63.129.16", "IMDS 169.254.169.254"]),
    "128.0.0.0/1": (True, True, ["internet", "168.63.129.16", "IMDS"]),
    "20.50.0.0/16": (True, True, ["internet addresses (20.50.0.0/16)"]),
    "8.8.8.8/32": (True, True, ["internet"]),
    "168.63.129.16/32": (True, True, ["168.63.129.16"]),
    "169.254.169.254/32": (True, False, ["IMDS 169.254.169.254"]),
    "169.254.0.0/16": (True, False, ["IMDS 169.254.169.254", "link-local"]),
    "169.254.10.0/24": (True, False, ["link-local"]),
    "::/0": (True, True, ["internet"]),
    "10.50.0.0/16": (False, False, []),
    "100.64.0.0/10": (False, False, []),
    "192.168.0.0/16": (False, False, []),
}
UNSAFE = [c for c, (bad, _, _) in RANGES.items() if bad]
IPV4 = [c for c in RANGES if ":" not in c]     # the example agent runs without --enable-ipv6
SAFE = [c for c, (bad, _, _) in RANGES.items() if not bad]


def _hub_spoke_with_peering_space(tmp_path, prefixes: list[str]) -> str:
    path = bundle(tmp_path)
    vnet_file = os.path.join(path, "vnets", SPOKE_VNET)
    vnet = load_json(vnet_file)
    [peering] = vnet["virtualNetworkPeerings"]
    assert peering["name"] == PEERING and peering["peeringState"] == "Connected"
    peering["remoteAddressSpace"]["addressPrefixes"] = list(prefixes)
    dump_json(vnet_file, vnet)
    return path


def _plan(proc) -> dict:
    assert_clean(proc)
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- goal: derived from peerings


@pytest.mark.parametrize("to", [(), ("--to", "vnet-hub"), ("--to", PEERING)], ids=["all-peerings", "to-vnet",
                                                                                    "to-peering"])
@pytest.mark.parametrize("cidr", UNSAFE)
def test_a_peering_of_unsafe_space_alone_is_refused_naming_the_peering(tmp_path, cidr, to):
    path = _hub_spoke_with_peering_space(tmp_path, [cidr])
    proc = run("apply", "--bundle", path, "--goal", "preserve-source-ip", *to, "-o", "json")
    assert_clean(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert no_result(proc)
    err = proc.stderr
    assert "error E707" in err and f"{cidr} from peering {PEERING} of VNet vnet-spoke1 (to vnet-hub)" in err, err
    for word in RANGES[cidr][2]:
        assert word in err, (word, err)
    assert "--allow-unsafe" in err          # the hint: how to name such a range on purpose


@pytest.mark.parametrize("cidr", [c for c in UNSAFE if c in IPV4])
def test_unsafe_space_beside_a_safe_range_is_refused_and_the_safe_one_planned(tmp_path, cidr):
    path = _hub_spoke_with_peering_space(tmp_path, [HUB, cidr])
    proc = run("apply", "--bundle", path, "--goal", "preserve-source-ip", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    plan = _plan(proc)
    assert yaml.safe_load(plan["new_configmap"]["data"]["ip-masq-agent"]) == {"nonMasqueradeCIDRs": [HUB]}
    [refused] = plan["refused"]
    assert refused["code"] == "E707" and refused["cidr"] == cidr
    assert refused["source"] == f"peering {PEERING} of VNet vnet-spoke1 (to vnet-hub)"
    for word in RANGES[cidr][2]:
        assert word in " ".join(refused["reasons"]), (word, refused)
    assert plan["unsafe"] == []
    after = [c["cidr"] for c in plan["effective_after"]["nonMasqueradeCIDRs"]]
    assert cidr not in after
    # the human plan names the refusal too
    proc = run("apply", "--bundle", path, "--goal", "preserve-source-ip")
    assert proc.returncode == 0 and f"refused: E707 refused {cidr} from peering {PEERING}" in proc.stdout


def test_safe_peered_space_is_planned_whole(tmp_path):
    """The control: private ranges of a peering are all planned, nothing is refused."""
    path = _hub_spoke_with_peering_space(tmp_path, [HUB, "172.20.0.0/16"])
    plan = _plan(run("apply", "--bundle", path, "--goal", "preserve-source-ip", "-o", "json"))
    assert plan["refused"] == [] and plan["unsafe"] == []
    assert yaml.safe_load(plan["new_configmap"]["data"]["ip-masq-agent"]) == {
        "nonMasqueradeCIDRs": [HUB, "172.20.0.0/16"]}


# --------------------------------------------------------------------------- goal: --to CIDR


@pytest.mark.parametrize("cidr", [c for c in UNSAFE if c in IPV4] + ["169.254.169.254"])
def test_to_an_unsafe_cidr_is_refused(tmp_path, cidr):
    proc = run("apply", "--bundle", "examples/hub-spoke", "--goal", "preserve-source-ip", "--to", cidr,
               "-o", "json")
    assert_clean(proc)
    assert proc.returncode == 1 and no_result(proc)
    assert "error E707" in proc.stderr and f"{cidr} from --to {cidr}:" in proc.stderr, proc.stderr


@pytest.mark.parametrize("extra", ["--allow-unsafe", None])
def test_to_an_unsafe_cidr_beside_a_safe_one_plans_the_safe_one(extra):
    argv = ["apply", "--bundle", "examples/hub-spoke", "--goal", "preserve-source-ip", "--to", "0.0.0.0/0",
            "--to", "172.20.0.0/16", "-o", "json"] + ([extra] if extra else [])
    proc = run(*argv)
    assert proc.returncode == 0, proc.stderr
    plan = _plan(proc)
    assert [r["source"] for r in plan["refused"]] == ["--to 0.0.0.0/0"]      # --allow-unsafe does not change a goal
    assert yaml.safe_load(plan["new_configmap"]["data"]["ip-masq-agent"]) == {"nonMasqueradeCIDRs": ["172.20.0.0/16"]}


# --------------------------------------------------------------------------- explicit: --add, --from-file


@pytest.mark.parametrize("cidr", IPV4)
def test_add_of_an_unsafe_range_is_planned_as_an_error_and_needs_allow_unsafe(cidr):
    unsafe, mq009, words = RANGES[cidr]
    proc = run("apply", "--bundle", "examples/hub-spoke", "--add", cidr, "-o", "json")
    plan = _plan(proc)
    assert plan["written"] is False
    if not unsafe:
        assert proc.returncode == 0 and plan["unsafe"] == [] and "error" not in plan
        return
    assert proc.returncode == 1, proc.stderr
    [entry] = plan["unsafe"]
    assert entry["cidr"] == cidr and entry["severity"] == "error"
    assert entry["finding"] == ("MQ009" if mq009 else None)
    assert entry["from"] == f"ConfigMap {NS}/{USER_CM} key ip-masq-agent line 2"
    for word in words:
        assert word in " ".join(entry["reasons"]), (word, entry)
    assert plan["error"]["code"] == "E707" and "--allow-unsafe" in plan["error"]["hint"]
    assert "error E707" in proc.stderr and "nothing was written" in proc.stderr
    # human output: an error line in the plan naming MQ009
    human = run("apply", "--bundle", "examples/hub-spoke", "--add", cidr)
    assert human.returncode == 1
    said = " ".join(human.stdout.split())    # wrapped at words to the terminal's width
    assert f"error: {cidr} (ConfigMap {NS}/{USER_CM} key ip-masq-agent line 2): " in said
    assert ("MQ009:" in said) == mq009
    # the operator's explicit choice: planned, exit 0
    allowed = run("apply", "--bundle", "examples/hub-spoke", "--add", cidr, "--allow-unsafe", "-o", "json")
    assert allowed.returncode == 0, allowed.stderr
    assert [u["cidr"] for u in _plan(allowed)["unsafe"]] == [cidr]


def test_from_file_with_an_unsafe_range_needs_allow_unsafe(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("nonMasqueradeCIDRs:\n  - 10.50.0.0/16\n  - 0.0.0.0/0\n")
    proc = run("apply", "--bundle", "examples/hub-spoke", "--from-file", str(f), "-o", "json")
    assert proc.returncode == 1
    assert [u["cidr"] for u in _plan(proc)["unsafe"]] == ["0.0.0.0/0"]
    assert run("apply", "--bundle", "examples/hub-spoke", "--from-file", str(f), "--allow-unsafe").returncode == 0


def test_an_unsafe_range_already_in_effect_does_not_block_other_edits(tmp_path):
    """Removing it, or adding something else, needs no --allow-unsafe; the plan warns that it stays."""
    path = bundle(tmp_path)
    cms = load_yaml(os.path.join(path, "configmaps.yaml"))
    cms["items"].append({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": USER_CM, "namespace": NS, "resourceVersion": "900"},
                         "data": {"ip-masq-agent": "nonMasqueradeCIDRs:\n  - 0.0.0.0/0\n"}})
    with open(os.path.join(path, "configmaps.yaml"), "w") as fh:
        yaml.safe_dump(cms, fh, sort_keys=False)
    added = run("apply", "--bundle", path, "--add", "10.50.0.0/16", "-o", "json")
    assert added.returncode == 0, added.stderr
    plan = _plan(added)
    assert plan["unsafe"] == []
    assert any(w.startswith("0.0.0.0/0 is already in effect and stays") and "--remove 0.0.0.0/0" in w
               for w in plan["warnings"])
    removed = run("apply", "--bundle", path, "--remove", "0.0.0.0/0", "-o", "json")
    assert removed.returncode == 0, removed.stderr
    assert _plan(removed)["unsafe"] == []


# --------------------------------------------------------------------------- the same ranges as MQ009


def _kubenet_peered(tmp_path) -> str:
    """examples/aks-kubenet with its VNet peered to the hub (Connected)."""
    path = bundle(tmp_path, "aks-kubenet")
    [vnet_file] = [os.path.join(path, "vnets", f) for f in os.listdir(os.path.join(path, "vnets"))]
    vnet = load_json(vnet_file)
    hub = load_json(os.path.join(es.BUNDLE, "vnets", SPOKE_VNET))["virtualNetworkPeerings"][0]
    hub = dict(hub, id=vnet["id"] + "/virtualNetworkPeerings/" + PEERING)
    vnet["virtualNetworkPeerings"] = [hub]
    dump_json(vnet_file, vnet)
    return path


@pytest.mark.parametrize("cluster", ["hub-spoke", "kubenet-peered"])
@pytest.mark.parametrize("cidr", IPV4 + [HUB, "10.42.1.0/24", "10.0.0.0/8"])
def test_marked_ranges_are_what_inspect_reports_as_mq009_errors(tmp_path, cluster, cidr):
    """Plan --add CIDR, then inspect the cluster as the plan leaves it: MQ009 is an error about CIDR
    exactly when the plan marked CIDR with MQ009."""
    from masqctl.analysis.inspect import inspect
    from masqctl.analysis.plan import ApplyRequest, plan_apply
    from masqctl.cluster.build import build_snapshot
    from masqctl.cluster.bundle import read_bundle

    path = str(es.BUNDLE) if cluster == "hub-spoke" else _kubenet_peered(tmp_path)
    plan = plan_apply(build_snapshot(read_bundle(path)), ApplyRequest(add=(cidr,)))
    marked = {u.cidr: u for u in plan.unsafe}
    report = inspect(plan.planned_snapshot)
    mq009_errors = [f for f in report.findings if f.code == "MQ009" and f.severity == "error"
                    and f.detail.startswith(f"{cidr} (")]
    assert bool(mq009_errors) == (cidr in marked and marked[cidr].finding == "MQ009"), (
        [f.detail for f in mq009_errors], marked)
    if cidr in RANGES:
        assert (cidr in marked) == RANGES[cidr][0]
    if cluster == "kubenet-peered" and cidr in (HUB, "10.42.1.0/24"):
        assert cidr in marked and "peered VNet vnet-hub" in " ".join(marked[cidr].reasons)


# --------------------------------------------------------------------------- live: nothing is written on refusal


@pytest.fixture
def kube(tmp_path):
    with KubeAPI() as api:
        es.load_kube(api)
        yield api, api.write_kubeconfig(tmp_path / "kubeconfig", context="test")


def _writes(api) -> list:
    return [r for r in api.log if r.method in ("POST", "PUT", "PATCH", "DELETE") and "/configmaps" in r.path]


def _backups(tmp_path) -> list:
    d = tmp_path / "backups"
    return sorted(d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("argv,written", [
    (["--add", "0.0.0.0/0"], None),
    (["--add", "10.50.0.0/16", "--add", "169.254.169.254/32"], None),
    (["--add", "20.50.0.0/16", "-o", "json"], None),
    (["--from-file", "{tmp}/unsafe.yaml"], None),
    (["--add", "0.0.0.0/0", "--allow-unsafe"], ["0.0.0.0/0"]),          # the operator's explicit choice
    (["--add", "10.50.0.0/16"], ["10.50.0.0/16"]),                         # control: a safe range is written
], ids=["add-default-route", "add-imds-beside-safe", "add-public-json", "from-file", "allowed", "safe"])
def test_live_yes_writes_an_unsafe_range_only_with_allow_unsafe(kube, tmp_path, argv, written):
    api, kubeconfig = kube
    (tmp_path / "unsafe.yaml").write_text("nonMasqueradeCIDRs:\n  - 0.0.0.0/0\n")
    argv = [a.format(tmp=tmp_path) for a in argv]
    proc = run("apply", "--kubeconfig", str(kubeconfig), "--context", "test", "--no-azure", "--no-capture",
               "--yes", "--no-verify", "--backup-dir", str(tmp_path / "backups"), *argv)
    assert_clean(proc)
    if written is None:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "error E707" in proc.stderr and "nothing was written" in proc.stderr
        assert _writes(api) == [] and _backups(tmp_path) == []
        assert api.get("configmaps", USER_CM, NS) is None
        if "json" in argv:
            doc = json.loads(proc.stdout)
            assert doc["written"] is False and doc["error"]["code"] == "E707"
        return
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cm = api.get("configmaps", USER_CM, NS)
    assert yaml.safe_load(cm["data"]["ip-masq-agent"]) == {"nonMasqueradeCIDRs": written}
    assert [w.method for w in _writes(api)] == ["POST"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("goal-pki"))


@pytest.mark.parametrize("prefixes,extra,written", [
    (["0.0.0.0/0"], [], None),
    (["0.0.0.0/0"], ["--allow-unsafe"], None),                      # --allow-unsafe never unlocks a goal
    (["169.254.0.0/16"], ["--to", "vnet-hub"], None),
    ([HUB, "0.0.0.0/0"], [], [HUB]),
    ([HUB], ["--to", "8.8.8.0/24", "--to", "vnet-hub"], [HUB]),
], ids=["default-route", "default-route-allow-unsafe", "link-local-to-vnet", "hub-and-default-route",
        "to-public-cidr"])
def test_live_goal_never_writes_a_derived_unsafe_range(kube, pki, tmp_path, prefixes, extra, written):
    api, kubeconfig = kube
    vnet = json.loads((es.BUNDLE / "vnets" / SPOKE_VNET).read_text())
    vnet["virtualNetworkPeerings"][0]["remoteAddressSpace"]["addressPrefixes"] = prefixes
    with ARM(pki, tenant=es.TENANT) as arm:
        arm.add(es.to_arm_resource(json.loads((es.BUNDLE / "aks.json").read_text())))
        arm.add(es.to_arm_resource(vnet, children={"subnets": None, "virtualNetworkPeerings": None}))
        home = Path(tmp_path) / "home"
        home.mkdir()
        az = FakeAz.install(tmp_path / "azbin", token=arm.register_token("operator@example.com"),
                            subscription=es.SUBSCRIPTION, tenant=es.TENANT)
        env = es.base_env(home, az.path_with("/usr/bin:/bin"))
        env["REQUESTS_CA_BUNDLE"] = str(pki.ca_pem)
        proc = es.masqctl("apply", "--goal", "preserve-source-ip", *extra, "--yes", "--no-verify", "--no-capture",
                          "--kubeconfig", str(kubeconfig), "--context", "test", "--subscription", es.SUBSCRIPTION,
                          "-g", es.RESOURCE_GROUP, "--cluster", es.CLUSTER, "--arm-endpoint", arm.url,
                          "--backup-dir", str(tmp_path / "backups"), env=env)
    assert_clean(proc)
    if written is None:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "error E707" in proc.stderr and f"peering {PEERING}" in proc.stderr, proc.stderr
        assert _writes(api) == [] and _backups(tmp_path) == []
        assert api.get("configmaps", USER_CM, NS) is None
        return
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "refused: E707 refused" in proc.stdout
    cm = api.get("configmaps", USER_CM, NS)
    assert yaml.safe_load(cm["data"]["ip-masq-agent"]) == {"nonMasqueradeCIDRs": written}
