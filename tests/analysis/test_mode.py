"""detect_mode: every row of agent-semantics.md's "Which engine does the masquerading on AKS",
from the AKS network profile alone, from node evidence alone, from both, and from neither."""

from __future__ import annotations

import pytest
from masq_snapshots import agent_daemonset, agent_nat, ip_addr

from masqctl.analysis.mode import detect_mode
from masqctl.cluster.model import (AgentPool, AzureFacts, ClusterSnapshot, ManagedCluster, NetworkProfile, Node,
                                   NodeCapture, WorkloadPod)

N1 = "aks-pool1-0"
SWIFT = ("-A POSTROUTING -j SWIFT-POSTROUTING\n:SWIFT-POSTROUTING - [0:0]\n"
         "-A SWIFT-POSTROUTING -s 10.50.0.0/16 -d 168.63.129.16/32 -p udp -m udp --dport 53 -j SNAT "
         "--to-source 10.224.0.4\n")
CALICO = (":cali-POSTROUTING - [0:0]\n:cali-nat-outgoing - [0:0]\n-A POSTROUTING -j cali-POSTROUTING\n"
          "-A cali-POSTROUTING -j cali-nat-outgoing\n"
          "-A cali-nat-outgoing -m set --match-set cali40masq-ipam-pools src -m set ! --match-set "
          "cali40all-ipam-pools dst -j MASQUERADE --random-fully\n")


def nat(agent: bool = True, extra: str = "") -> str:
    """A node's nat table: the agent's chain (or not) plus other systems' rules."""
    if agent:
        text = agent_nat(["10.244.0.0/16"])
        return text.replace("COMMIT\n", extra + "COMMIT\n")
    return "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" + extra + "COMMIT\n"


def snap(profile: NetworkProfile | None = None, pools=(AgentPool("pool1"),), labels: dict | None = None,
         capture: str | None = None, pod_cidr: bool = False, addr: str | None = None, pods=(),
         with_ds: bool = True) -> ClusterSnapshot:
    node = Node(N1, "10.224.0.4", (("InternalIP", "10.224.0.4"),), pod_cidrs=("10.244.0.0/24",) if pod_cidr else (),
                labels={"kubernetes.azure.com/agentpool": "pool1", **(labels or {})})
    captures = {N1: NodeCapture(N1, iptables_save=capture, ip_addr=addr, via="bundle")} if capture else {}
    azure = None
    missing = {}
    if profile is not None:
        azure = AzureFacts(cluster=ManagedCluster(None, "c", "rg", network_profile=profile, agent_pools=tuple(pools)))
    else:
        missing["azure"] = "not gathered (--no-azure)"
    if not captures:
        missing["captures"] = "not captured (--no-capture)"
    return ClusterSnapshot("bundle t", nodes=(node,), captures=captures, azure=azure, missing=missing,
                           workloads=tuple(pods), daemonsets=(agent_daemonset(),) if with_ds else ())


P = NetworkProfile
POD_SUBNET_POOL = (AgentPool("pool1", vnet_subnet_id="/s/x/providers/Microsoft.Network/virtualNetworks/v/subnets/n",
                             pod_subnet_id="/s/x/providers/Microsoft.Network/virtualNetworks/v/subnets/pods"),)
CILIUM_LBL = {"kubernetes.azure.com/ebpf-dataplane": "cilium"}
OVERLAY_LBL = {"kubernetes.azure.com/azure-cni-overlay": "true", "kubernetes.azure.com/podnetwork-type": "overlay"}
EBPF_LBL = {"kubernetes.azure.com/ebpf-host-routing": "true"}
POD_IN_SUBNET = (WorkloadPod("default", "web", N1, ("10.224.0.30",)),)

# (case, snapshot kwargs, name, snat_by, agent_decides, pod_ips_routable_outside, decided_by)
ROWS = [
    # kubenet
    ("kubenet/profile", dict(profile=P("kubenet")), "kubenet", "iptables-agent", True, False, "profile"),
    ("kubenet/nodes", dict(capture=nat(), pod_cidr=True,
                           addr=ip_addr("10.224.0.4", 16, "3: cbr0    inet 10.244.0.1/24 scope global cbr0\n")),
     "kubenet", "iptables-agent", True, False, "nodes"),
    ("kubenet/both", dict(profile=P("kubenet"), capture=nat()), "kubenet", "iptables-agent", True, False,
     "profile+nodes"),
    # Azure CNI node subnet
    ("node-subnet/profile", dict(profile=P("azure")), "azure-cni-node-subnet", "iptables-agent", True, True,
     "profile"),
    ("node-subnet/nodes", dict(capture=nat(), addr=ip_addr("10.224.0.4", 16), pods=POD_IN_SUBNET),
     "azure-cni-node-subnet", "iptables-agent", True, True, "nodes"),
    ("node-subnet/both", dict(profile=P("Azure"), capture=nat(), addr=ip_addr("10.224.0.4", 16)),
     "azure-cni-node-subnet", "iptables-agent", True, True, "profile+nodes"),
    # Azure CNI overlay
    ("overlay/profile", dict(profile=P("azure", "overlay")), "azure-cni-overlay", "iptables-agent", True, False,
     "profile"),
    ("overlay/nodes", dict(capture=nat(), labels=OVERLAY_LBL, pod_cidr=True), "azure-cni-overlay",
     "iptables-agent", True, False, "nodes"),
    ("overlay/both", dict(profile=P("azure", "Overlay"), capture=nat(), labels=OVERLAY_LBL), "azure-cni-overlay",
     "iptables-agent", True, False, "profile+nodes"),
    # Cilium overlay without eBPF host routing
    ("cilium-overlay/profile", dict(profile=P("azure", "overlay", "cilium")), "cilium-overlay", "iptables-agent",
     True, False, "profile"),
    ("cilium-overlay/nodes", dict(capture=nat(), labels={**OVERLAY_LBL, **CILIUM_LBL}), "cilium-overlay",
     "iptables-agent", True, False, "nodes"),
    ("cilium-overlay/both", dict(profile=P("azure", "overlay", "cilium"), capture=nat(),
                                 labels={**OVERLAY_LBL, **CILIUM_LBL}), "cilium-overlay", "iptables-agent", True,
     False, "profile+nodes"),
    # Cilium with eBPF host routing
    ("cilium-ebpf/profile", dict(profile=P("azure", "overlay", "cilium", acceleration_mode="BpfVeth")),
     "cilium-ebpf-host-routing", "cilium-bpf", False, False, "profile"),
    ("cilium-ebpf/nodes", dict(capture=nat(extra=":CILIUM_POST_nat - [0:0]\n"), labels={**CILIUM_LBL, **EBPF_LBL}),
     "cilium-ebpf-host-routing", "cilium-bpf", False, False, "nodes"),
    ("cilium-ebpf/both", dict(profile=P("azure", "overlay", "cilium", acceleration_mode="BpfVeth"), capture=nat(),
                              labels=EBPF_LBL), "cilium-ebpf-host-routing", "cilium-bpf", False, False,
     "profile+nodes"),
    # Azure CNI pod subnet
    ("pod-subnet/profile", dict(profile=P("azure"), pools=POD_SUBNET_POOL), "azure-cni-pod-subnet",
     "swift-postrouting", False, True, "profile"),
    ("pod-subnet/nodes", dict(capture=nat(agent=False, extra=SWIFT)), "azure-cni-pod-subnet", "swift-postrouting",
     False, True, "nodes"),
    ("pod-subnet/both", dict(profile=P("azure"), pools=POD_SUBNET_POOL, capture=nat(agent=False, extra=SWIFT)),
     "azure-cni-pod-subnet", "swift-postrouting", False, True, "profile+nodes"),
    # a user-deployed agent whose chain is live (seed 004): it masquerades beside CNS's DNS/IMDS SNAT
    ("pod-subnet/user-agent", dict(profile=P("azure"), pools=POD_SUBNET_POOL, capture=nat(agent=True, extra=SWIFT)),
     "azure-cni-pod-subnet", "iptables-agent", True, True, "profile+nodes"),
    # BYO CNI (no agent DaemonSet)
    ("byo/profile", dict(profile=P("none"), with_ds=False), "byo-cni", "cni", False, None, "profile"),
    # kubenet + Calico
    ("calico/profile", dict(profile=P("kubenet", network_policy="calico"), with_ds=False), "calico", "cni", False,
     False, "profile"),
    ("calico/nodes", dict(capture=nat(agent=False, extra=CALICO), with_ds=False), "calico", "cni", False, False,
     "nodes"),
    # neither
    ("neither", dict(), "unknown", "unknown", None, None, "none"),
]


@pytest.mark.parametrize("case, kwargs, name, snat_by, decides, routable, decided_by", ROWS,
                         ids=[r[0] for r in ROWS])
def test_mode_table(case, kwargs, name, snat_by, decides, routable, decided_by):
    mode = detect_mode(snap(**kwargs))
    assert (mode.name, mode.snat_by, mode.agent_decides, mode.pod_ips_routable_outside, mode.decided_by) == (
        name, snat_by, decides, routable, decided_by), mode
    if decided_by != "none":
        assert mode.evidence
    if "profile" in decided_by:
        assert any("networkProfile.networkPlugin" in e for e in mode.evidence)
    if decided_by == "nodes":
        assert any(N1 in e for e in mode.evidence)
        assert any("profile would confirm" in n for n in mode.notes)


def test_neither_names_what_is_missing():
    mode = detect_mode(snap())
    assert mode.name == "unknown" and mode.agent_decides is None
    assert any("network profile" in m for m in mode.missing)
    assert any("capture" in m and "--no-capture" in m for m in mode.missing)
    assert "network mode unknown" in mode.describe()


def test_nodes_that_show_a_pod_cidr_but_not_which_mode_stay_unknown_with_what_they_do_say():
    # agent chain and a node podCIDR, no labels, no bridge: kubenet or overlay — both cluster-only pod ranges
    mode = detect_mode(snap(capture=nat(), pod_cidr=True))
    assert mode.name == "unknown" and mode.snat_by == "iptables-agent" and mode.agent_decides is True
    assert mode.pod_ips_routable_outside is False
    assert any("kubenet from overlay" in m for m in mode.missing)


def test_agent_chain_without_pod_cidr_or_addresses_does_not_guess_node_subnet():
    mode = detect_mode(snap(capture=nat()))
    assert mode.name == "unknown" and mode.pod_ips_routable_outside is None
    assert any("ip -o addr" in m for m in mode.missing)


def test_profile_and_nodes_in_conflict_is_said():
    mode = detect_mode(snap(profile=P("kubenet"), capture=nat(extra=SWIFT)))
    assert mode.name == "kubenet"
    assert any("conflict" in n and "SWIFT-POSTROUTING" in n for n in mode.notes)


def test_node_without_the_agent_jump_is_noted():
    mode = detect_mode(snap(profile=P("azure", "overlay"), capture=nat(agent=False)))
    assert mode.name == "azure-cni-overlay"
    assert any("no POSTROUTING jump to IP-MASQ-AGENT" in n for n in mode.notes)


def test_cilium_overlay_profile_with_ebpf_labelled_nodes_is_ebpf():
    mode = detect_mode(snap(profile=P("azure", "overlay", "cilium"), labels=EBPF_LBL))
    assert mode.name == "cilium-ebpf-host-routing" and mode.agent_decides is False
    assert any("taken as eBPF host routing" in n for n in mode.notes)


def test_azure_cni_with_calico_policy_needs_a_capture_to_know_who_decides():
    mode = detect_mode(snap(profile=P("azure", network_policy="calico")))
    assert mode.name == "azure-cni-node-subnet" and mode.agent_decides is None
    assert any("cali-nat-outgoing" in m for m in mode.missing)
    mode = detect_mode(snap(profile=P("azure", network_policy="calico"), capture=nat(extra=CALICO)))
    assert mode.agent_decides is None and any("Calico" in n for n in mode.notes)


def test_calico_and_agent_together():
    mode = detect_mode(snap(capture=nat(extra=CALICO)))
    assert mode.name == "calico" and mode.agent_decides is None
    assert any("first to match decides" in n for n in mode.notes)


def test_byo_cni_with_a_self_installed_agent_cannot_tell():
    mode = detect_mode(snap(profile=P("none")))
    assert mode.name == "byo-cni" and mode.agent_decides is None


def test_pod_subnet_on_some_pools_is_decided_per_node():
    pools = (AgentPool("pool1", pod_subnet_id="/x/virtualNetworks/v/subnets/pods"), AgentPool("pool2"))
    s = snap(profile=P("azure"), pools=pools)
    cluster = detect_mode(s)
    assert cluster.name == "unknown" and any("agent pools differ" in n for n in cluster.notes)
    node = detect_mode(s, N1)     # N1 is in pool1
    assert node.name == "azure-cni-pod-subnet" and node.node == N1


def test_cilium_ebpf_pod_subnet_says_the_user_configmap_is_not_read():
    mode = detect_mode(snap(profile=P("azure", network_dataplane="cilium", acceleration_mode="BpfVeth"),
                            pools=POD_SUBNET_POOL))
    assert mode.name == "azure-cni-pod-subnet" and mode.user_config_matters is False
    assert any("azure-dns-imds-ip-masq-agent-config" in n for n in mode.notes)


def test_unreadable_capture_is_a_note_not_a_crash():
    mode = detect_mode(snap(profile=P("kubenet"), capture="*nat\nthis is not iptables\nCOMMIT\n"))
    assert mode.name == "kubenet" and any("could not be read" in n for n in mode.notes)


def test_unknown_plugin_values_are_not_guessed():
    mode = detect_mode(snap(profile=P("weird")))
    assert mode.name == "unknown" and any("weird" in n for n in mode.notes)
    mode = detect_mode(snap(profile=P(None)))
    assert mode.name == "unknown" and any("networkPlugin" in m for m in mode.missing)


def test_to_dict_is_plain_json():
    import json
    doc = detect_mode(snap(profile=P("kubenet"))).to_dict()
    assert json.loads(json.dumps(doc))["user_config_matters"] is True


def test_calico_nft_dataplane_from_nodes():
    # Calico's nftables dataplane: the nat part of felix's `table ip calico` (tests/fixtures/nft/calico-nat.nft),
    # no cali- chains in iptables: recognised as Calico, as cali-nat-outgoing is in iptables mode
    import dataclasses
    import pathlib
    text = (pathlib.Path(__file__).parent.parent / "fixtures" / "nft" / "calico-nat.json").read_text()
    s = snap(capture=nat(agent=False), with_ds=False)
    s = dataclasses.replace(s, captures={N1: dataclasses.replace(s.captures[N1], nft_ruleset=text)})
    mode = detect_mode(s)
    assert (mode.name, mode.snat_by, mode.agent_decides, mode.decided_by) == ("calico", "cni", False, "nodes")
    assert any("table ip calico" in e for e in mode.evidence)
    with_agent = dataclasses.replace(s, captures={N1: dataclasses.replace(s.captures[N1], iptables_save=nat())},
                                     daemonsets=(agent_daemonset(),))
    mode = detect_mode(with_agent)
    assert mode.name == "calico" and mode.agent_decides is None       # both may masquerade: explain walks both


def test_cilium_without_ebpf_host_routing_says_the_agent_decides():
    # ACN test/integration/manifests/cilium/v1.18/cilium-config.yaml (no eBPF host routing):
    # enable-ipv4-masquerade "false"; without cilium-config in the snapshot the profile still says so
    mode = detect_mode(snap(profile=P("azure", "overlay", "cilium"), capture=nat()))
    assert (mode.name, mode.snat_by, mode.agent_decides) == ("cilium-overlay", "iptables-agent", True)
    assert any("Cilium's own masquerade is off and the iptables agent decides" in n for n in mode.notes)
