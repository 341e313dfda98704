"""One bundle per finding: each triggers exactly the expected codes (read through the real bundle loader)."""

from __future__ import annotations

import pytest
from clusterkit.akscal import (BASE_CIDRS, NODES, VNET, agent_pod, aks, base, configmap, daemonset, iptables_save,
                     kubenet, peering,
                     reconciled_text, vnet)

from masqctl.analysis.inspect import inspect
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions, NodeSelection


def load(bundle, tmp_path, name="b"):
    return gather(GatherOptions(bundle=bundle.write(str(tmp_path / name))))


def patch_capture(node_index: int, text: str):
    def apply(b):
        b.captures[NODES[node_index]]["iptables-save.txt"] = text
    return apply


def _mq001(b):
    b.add_user("nonMasqueradeCIDRs:\n  - 10.40.0.0/16\n", name="ip-masq-agent", key="config")


def _mq002(b):
    # AKS#2653: a reconciled ConfigMap with a null list item
    b.set_reconciled("nonMasqueradeCIDRs:\n  -\nmasqLinkLocal: true\n")


def _mq003(b):
    b.pods[1] = agent_pod(1, NODES[1], ready=False, restarts=7, waiting="CrashLoopBackOff",
                          last={"reason": "Error", "exitCode": 255, "message": "F0919 iptables-restore failed"})
    b.daemonsets = [daemonset(ready=2)]


def _mq006(b):
    b.capture_all(iptables_save(BASE_CIDRS, before="-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"))


def _mq007(b):
    b.set_reconciled(reconciled_text(["10.0.0.0/16"]))
    b.capture_all(iptables_save(["10.0.0.0/16"]))


def _mq008(b):
    b.vnets[VNET] = vnet([peering("aks-to-hub", "hub-vnet", ["10.40.0.0/15"])])


def _mq009(b):
    b.add_user("nonMasqueradeCIDRs:\n  - 20.50.0.0/16\n")
    b.capture_all(iptables_save(list(BASE_CIDRS) + ["20.50.0.0/16"]))


def _mq009_kubenet_peered(b):
    b.vnets[VNET] = vnet([peering("aks-to-hub", "hub-vnet", ["10.40.0.0/15"])])
    b.add_user("nonMasqueradeCIDRs:\n  - 10.40.0.0/15\n")
    b.capture_all(iptables_save(["10.40.0.0/15", "10.244.0.0/16"]))


def _mq010(b):
    b.set_reconciled(reconciled_text(BASE_CIDRS, extra="resyncInterval: 60s\n"))


def _mq011(b):
    cidrs = ["10.224.0.0/16", "10.0.0.0/16", "10.224.0.0/12"]
    b.set_reconciled(reconciled_text(cidrs))
    b.capture_all(iptables_save(cidrs))


def _mq012(b):
    b.daemonsets = [daemonset(args=("--v=2", "--resync-interval=60", "--nomasq-all-reserved-ranges"))]


def _mq013(b):
    cidrs = list(BASE_CIDRS) + [f"172.16.{i}.0/24" for i in range(58)]
    b.set_reconciled(reconciled_text(cidrs))
    b.capture_all(iptables_save(cidrs))


def _mq014(b):
    b.aks = aks(ip_families=("IPv4", "IPv6"))


def _mq015(b):
    b.aks = aks(pod_subnet=True)
    b.vnets[VNET] = vnet(subnets=[
        {"name": "aks-subnet", "id": f"{b.vnets[VNET]['id']}/subnets/aks-subnet", "addressPrefix": "10.224.0.0/16"},
        {"name": "pod-subnet", "id": f"{b.vnets[VNET]['id']}/subnets/pod-subnet", "addressPrefix": "10.225.0.0/16"}])
    # the nodes show what pod-subnet mode writes: CNS's DNS/IMDS SNAT, and no agent jump in force
    b.capture_all(iptables_save(BASE_CIDRS, jump=0, before="-A POSTROUTING -j SWIFT-POSTROUTING", extra_rules=(
        "-A SWIFT-POSTROUTING -s 10.225.0.0/16 -d 168.63.129.16/32 -p udp -m udp --dport 53 "
        "-j SNAT --to-source 10.224.0.4")))


def _mq016(b):
    b.add_user("masqLinkLocal: true\n")


def _mq017(b):
    b.capture_all(iptables_save(BASE_CIDRS, legacy_warning=True))


CILIUM_DS = {
    "apiVersion": "apps/v1", "kind": "DaemonSet",
    "metadata": {"name": "cilium", "namespace": "kube-system"},
    "spec": {"selector": {"matchLabels": {"k8s-app": "cilium"}}, "template": {"spec": {
        "hostNetwork": True,
        "containers": [
            {"name": "cilium-agent", "image": "mcr.microsoft.com/containernetworking/cilium/cilium-distroless:v1.18.4",
             "volumeMounts": [{"mountPath": "/etc/config", "name": "azure-ip-masq-dir"}]},
            {"name": "azure-ip-masq-merger", "image": "mcr.microsoft.com/containernetworking/azure-ip-masq-merger:v0.0.1",
             "command": ["./azure-ip-masq-merger", "-v", "2"],
             "volumeMounts": [{"mountPath": "/etc/config/", "name": "cfg"},
                              {"mountPath": "/etc/merged-config/", "name": "azure-ip-masq-dir"}]}],
        "volumes": [{"name": "azure-ip-masq-dir", "emptyDir": {}},
                    {"name": "cfg", "projected": {"sources": [
                        {"configMap": {"name": "azure-ip-masq-agent-config", "optional": True,
                                       "items": [{"key": "ip-masq-agent", "path": "ip-masq-agent"}]}},
                        {"configMap": {"name": "azure-ip-masq-agent-config-reconciled", "optional": True,
                                       "items": [{"key": "ip-masq-agent-reconciled",
                                                  "path": "ip-masq-agent-reconciled"}]}}]}}]}}},
    "status": {"desiredNumberScheduled": 3, "numberReady": 3}}


def cilium_ebpf():
    """akscal as Azure CNI overlay powered by Cilium with eBPF host routing: the merger feeds Cilium."""
    b = base()
    b.aks["networkProfile"].update({"networkPluginMode": "overlay", "networkDataplane": "cilium",
                                    "podCidr": "192.168.0.0/16",
                                    "advancedNetworking": {"performance": {"accelerationMode": "BpfVeth"}}})
    b.configmaps.append(configmap("cilium-config", {
        "enable-bpf-masquerade": "true", "enable-ip-masq-agent": "true", "enable-ipv4-masquerade": "true",
        "enable-ipv6-masquerade": "false", "enable-remote-node-masquerade": "true",
        "ipv4-native-routing-cidr": "192.168.0.0/16", "routing-mode": "native"}, labels={"app": "cilium"}))
    b.set_reconciled("MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 192.168.0.0/16\n")
    b.daemonsets = [CILIUM_DS]
    b.pods = []
    return b


def _mq021(b):
    _mq015(b)
    b.add_user("nonMasqueradeCIDRs:\n  - 10.40.0.0/16\n")


def _mq022(b):
    b.configmap("cilium-config")["data"]["enable-ip-masq-agent"] = "false"
    b.add_user("masqLinkLocal: true\n")


def _mq002_merger(b):
    b.add_user("nonMasqueradeCIDRs:\n  - 10.50.0.1/16\n")


def _mq023(b):
    b.set_reconciled("MasqLinkLocal: true\n")


def _mq024(b):
    for n in NODES:
        b.captures[n]["cilium-ipmasq.txt"] = "IP PREFIX/ADDRESS   \n192.168.0.0/16      \n"
    b.captures[NODES[2]]["cilium-ipmasq.txt"] = "IP PREFIX/ADDRESS   \n10.0.0.0/8      \n"


def _mq024_status(b):
    # no map captured, but cilium-dbg status says the node masquerades with iptables
    b.captures[NODES[1]]["cilium-status.txt"] = (
        "KVStore:                 Disabled\n"
        "Masquerading:            IPTables [IPv4: Enabled, IPv6: Disabled]\n")


def _mq025(b):
    # kube-proxy runs on the node, but its iptables-save has no KUBE-SERVICES: nftables mode, not captured
    from clusterkit import objects as o
    b.pods.append(o.pod("kube-proxy-x7k2q", node=NODES[0], namespace="kube-system", ip="10.224.0.4",
                        host_network=True, owner=("DaemonSet", "kube-proxy"), layout="brief"))


def _mq025_incompatible(b):
    # the line iptables-nft-save prints for a table holding rules written with nft, which it cannot
    # print (tests/netfilter/test_dump.py reads the same line into Dump.incompatible_tables)
    cap = b.captures[NODES[0]]
    cap["iptables-save.txt"] = "# Table `filter' is incompatible, use 'nft' tool.\n" + cap["iptables-save.txt"]


def _mq026(b):
    # kindnet's golden table (kubernetes-sigs/kindnet pkg/masq/masq_test.go, case "ipv4 - ipv6 node and no
    # cidr masqs"): a native masquerade at srcnat - 10, before the agent's chain
    import pathlib
    text = (pathlib.Path(__file__).parent.parent / "fixtures" / "nft" / "kindnet-ipmasq.txt").read_text()
    b.captures[NODES[0]]["nft-ruleset.txt"] = text


def _mq027(b):
    b.captures[NODES[1]]["nft-ruleset.json"] = '{"nftables": [{"table": {"family": "ip"}}]}'


CASES = [
    ("healthy", base, None, set()),
    ("cilium eBPF healthy", cilium_ebpf, None, {"MQ015"}),
    ("MQ021 pod subnet with a user ConfigMap", base, _mq021, {"MQ015", "MQ016", "MQ021"}),
    ("MQ002 the merger refuses host bits", cilium_ebpf, _mq002_merger, {"MQ002", "MQ015"}),
    ("MQ022 Cilium's ip-masq-agent off", cilium_ebpf, _mq022, {"MQ015", "MQ022"}),
    ("MQ023 Cilium with an empty list", cilium_ebpf, _mq023, {"MQ015", "MQ023"}),
    ("MQ024 a stale Cilium map", cilium_ebpf, _mq024, {"MQ015", "MQ024"}),
    ("MQ024 Cilium masquerades with iptables", cilium_ebpf, _mq024_status, {"MQ015", "MQ024"}),
    ("MQ001 upstream name and key", base, _mq001, {"MQ001"}),
    ("MQ002 null list item", base, _mq002, {"MQ002"}),
    ("MQ003 crash loop on one node", base, _mq003, {"MQ003"}),
    ("MQ004 a CIDR missing on one node", base, patch_capture(1, iptables_save(["10.224.0.0/12"])), {"MQ004"}),
    ("MQ004 extra CIDR and link-local", base,
     patch_capture(2, iptables_save(list(BASE_CIDRS) + ["10.9.0.0/16"], link_local=False)), {"MQ004"}),
    ("MQ005 jump missing", base, patch_capture(0, iptables_save(BASE_CIDRS, jump=0)), {"MQ005"}),
    ("MQ005 jump duplicated", base, patch_capture(0, iptables_save(BASE_CIDRS, jump=2)), {"MQ005"}),
    ("MQ005 chain absent", base, patch_capture(0, iptables_save(BASE_CIDRS, chain=False, jump=0)), {"MQ005"}),
    ("MQ006 docker masquerade before the jump", base, _mq006, {"MQ006"}),
    ("MQ007 stale reconciled", base, _mq007, {"MQ007"}),
    ("MQ008 connected peering", base, _mq008, {"MQ008"}),
    ("MQ009 internet range", base, _mq009, {"MQ009", "MQ016"}),
    ("MQ009 peered range on kubenet", kubenet, _mq009_kubenet_peered, {"MQ009", "MQ016"}),
    ("MQ010 resyncInterval on azure-v2", base, _mq010, {"MQ010"}),
    ("MQ011 akscal's reconciled list", base, _mq011, {"MQ011"}),
    ("MQ012 reserved-ranges flag with files", base, _mq012, {"MQ012"}),
    ("MQ013 near the limit", base, _mq013, {"MQ013"}),
    ("MQ014 dual-stack without --enable-ipv6", base, _mq014, {"MQ014"}),
    ("MQ015 pod subnet", base, _mq015, {"MQ015"}),
    ("MQ016 user ConfigMap", base, _mq016, {"MQ016"}),
    ("MQ017 legacy tables", base, _mq017, {"MQ017"}),
    ("MQ025 kube-proxy without KUBE-SERVICES, no ruleset", base, _mq025, {"MQ025"}),
    ("MQ025 a table iptables cannot print, no ruleset", base, _mq025_incompatible, {"MQ025"}),
    ("MQ026 kindnet's nft masquerade", base, _mq026, {"MQ026"}),
    ("MQ027 unreadable ruleset", base, _mq027, {"MQ027"}),
    ("kubenet healthy", kubenet, None, set()),
]


@pytest.mark.parametrize("name, make, patch, expected", CASES, ids=[c[0] for c in CASES])
def test_each_fixture_triggers_exactly_its_codes(name, make, patch, expected, tmp_path):
    b = make()
    if patch is not None:
        patch(b)
    report = inspect(load(b, tmp_path))
    got = {f.code for f in report.findings}
    assert got == expected, [(f.code, f.detail) for f in report.findings]
    for f in report.findings:
        assert f.evidence and f.fix and f.title and f.detail
    if patch is _mq025_incompatible:
        assert any("table(s) filter are incompatible" in e for f in report.findings for e in f.evidence)
    assert report.exit_code == (1 if any(f.severity == "error" for f in report.findings) else 0)


def test_every_code_has_a_fixture():
    from masqctl.analysis.findings import CODES
    from masqctl.analysis.findings.fleet import CODES as FLEET_CODES   # across clusters: tests/inspect/test_fleet.py

    covered = set().union(*(c[3] for c in CASES))
    assert covered == set(CODES) - set(FLEET_CODES)


@pytest.mark.parametrize("patch, code, severity, needles", [
    (_mq002, "MQ002", "error", ["E104", "azure-ip-masq-agent-config-reconciled key ip-masq-agent-reconciled line 2",
                                "crash-loop on every node"]),
    (_mq003, "MQ003", "error", ["CrashLoopBackOff", "7 restarts", "exit code 255", "2/3 ready"]),
    (_mq008, "MQ008", "warning", ["10.40.0.0/15", "hides which pod"]),
    (_mq009, "MQ009", "error", ["20.50.0.0/16", "internet"]),
    (_mq011, "MQ011", "info", ["10.224.0.0/16 ⊂ 10.224.0.0/12"]),
    (_mq016, "MQ016", "info", ["overlay"]),
])
def test_severity_and_detail(patch, code, severity, needles, tmp_path):
    b = base()
    patch(b)
    report = inspect(load(b, tmp_path))
    f = next(f for f in report.findings if f.code == code)
    assert f.severity == severity
    for n in needles:
        assert n in f.detail, f.detail


def test_mq004_names_exactly_the_drift_and_its_node(tmp_path):
    b = base()
    patch_capture(2, iptables_save(list(BASE_CIDRS) + ["10.9.0.0/16"], link_local=False))(b)
    report = inspect(load(b, tmp_path))
    (f,) = report.findings
    assert f.nodes == (NODES[2],)
    assert "extra RETURN for 10.9.0.0/16" in f.detail and "link-local RETURN 169.254.0.0/16 present" in f.detail
    assert [g.state for g in report.drift.groups] == ["drift", "in-sync"]


def test_mq008_fix_merges_the_user_cidrs_and_disconnected_peering_is_evidence(tmp_path):
    b = base()
    b.vnets[VNET] = vnet([peering("aks-to-hub", "hub-vnet", ["10.40.0.0/15"]),
                          peering("aks-to-old", "old-vnet", ["10.60.0.0/16"], state="Disconnected")])
    b.add_user("nonMasqueradeCIDRs:\n  - 192.168.10.0/24\n")
    report = inspect(load(b, tmp_path))
    f = next(f for f in report.findings if f.code == "MQ008")
    assert "10.60.0.0/16" not in f.detail
    assert any("old-vnet" in e and "Connected" in e for e in f.evidence)
    assert "- 192.168.10.0/24\n" in f.fix and "- 10.40.0.0/15\n" in f.fix


def test_missing_evidence_is_listed_never_guessed(tmp_path):
    b = base()
    b.aks = None
    b.vnets = {}
    b.captures = {NODES[0]: b.captures[NODES[0]]}
    report = inspect(load(b, tmp_path))
    skipped = {n.code: n for n in report.not_checked}
    assert "MQ007" in skipped
    assert "MQ008" in skipped and "Azure" in skipped["MQ008"].reason
    assert set(skipped["MQ004"].nodes) == set(NODES[1:])
    unknown = [g for g in report.drift.groups if g.state == "unknown"]
    assert unknown and unknown[0].summary.startswith("unknown, no capture")
    assert all("in sync" not in g.summary for g in unknown)


def test_no_captures_at_all(tmp_path):
    b = base()
    b.captures = {}
    report = inspect(load(b, tmp_path))
    skipped = {n.code for n in report.not_checked}
    assert {"MQ004", "MQ005", "MQ006", "MQ017"} <= skipped
    assert [g.state for g in report.drift.groups] == ["unknown"] and len(report.drift.groups[0].nodes) == 3


def test_only_filters_and_nodes_select(tmp_path):
    b = base()
    patch_capture(1, iptables_save(["10.224.0.0/12"]))(b)
    _mq011(b)
    b.captures[NODES[1]]["iptables-save.txt"] = iptables_save(["10.224.0.0/12"])
    snap = load(b, tmp_path)
    assert {f.code for f in inspect(snap).findings} == {"MQ004", "MQ011"}
    assert {f.code for f in inspect(snap, only={"MQ011"}).findings} == {"MQ011"}
    assert inspect(snap, nodes=NodeSelection(names=(NODES[0],))).findings[0].code == "MQ011"
    assert {f.code for f in inspect(snap, nodes=NodeSelection(selector="agentpool=nodepool1")).findings} == {
        "MQ004", "MQ011"}
    assert inspect(snap, nodes=NodeSelection(sample=1)).nodes_in_scope == (NODES[0],)


def test_unknown_only_code_is_a_usage_error(tmp_path):
    from masqctl.errors import UsageError

    with pytest.raises(UsageError) as exc:
        inspect(load(base(), tmp_path), only={"MQ999"})
    assert exc.value.code == "E240" and "MQ999" in exc.value.message


def test_hub_spoke_user_configmap_removes_mq008(tmp_path):
    """The seed blog: node subnet, hub peered; adding 10.0.0.0/8 to the user ConfigMap preserves pod IPs."""
    b = base()
    _mq008(b)
    before = {f.code for f in inspect(load(b, tmp_path, "before")).findings}
    b.add_user("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n")
    b.capture_all(iptables_save(list(BASE_CIDRS) + ["10.0.0.0/8"]))
    after = inspect(load(b, tmp_path, "after"))
    assert "MQ008" in before and "MQ008" not in {f.code for f in after.findings}
    assert after.exit_code == 0
