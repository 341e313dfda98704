"""The config a DaemonSet really runs: flags as Go parses them, the projection, provenance."""

from __future__ import annotations

import pytest
from inspectlib import aks_daemonset, reconciled, snapshot, upstream_daemonset, user

from masqctl.analysis.agentconfig import agent_configs, primary_agent, view_of
from masqctl.cluster.model import (AgentDaemonSet, ConfigMap, ConfigMapProjection, ConfigMount, KeyToPath,
                                   MissingKey)

AKS = reconciled(["10.224.0.0/16", "10.0.0.0/16", "10.224.0.0/12"])


@pytest.mark.parametrize("args, field, value", [
    (["--enable-ipv6"], "enable_ipv6", True),
    (["--enable-ipv6=true"], "enable_ipv6", True),
    (["-enable-ipv6"], "enable_ipv6", True),
    (["--enable-ipv6=false"], "enable_ipv6", False),
    (["-enable-ipv6=F"], "enable_ipv6", False),
    (["--masq-chain", "MY-MASQ"], "masq_chain", "MY-MASQ"),
    (["--masq-chain=MY-MASQ"], "masq_chain", "MY-MASQ"),
    (["--nomasq-all-reserved-ranges"], "nomasq_all_reserved_ranges", True),
    (["--resync-interval=30"], "resync_interval", 30.0),
    (["--resync-interval", "0x10"], "resync_interval", 16.0),
    (["--v=2", "--logtostderr", "--log_dir", "/x"], "resync_interval", 60.0),
    (["--v=2", "positional", "--enable-ipv6"], "enable_ipv6", False),  # Go stops at the first non-flag
    (["--", "--enable-ipv6"], "enable_ipv6", False),
])
def test_v2_flags_parsed_like_go(args, field, value):
    view = view_of(snapshot([AKS]), aks_daemonset(args=args))
    assert view.flag_error is None
    assert getattr(view.options, field) == value


def test_command_words_are_flags_too():
    view = view_of(snapshot([AKS]), aks_daemonset(command=["/ip-masq-agent-v2", "--enable-ipv6"], args=["--v=2"]))
    assert view.options.enable_ipv6 is True


@pytest.mark.parametrize("args, needle", [
    (["--to-ports=1024-65535"], "flag provided but not defined: -to-ports"),
    (["--random-fully=false"], "flag provided but not defined: -random-fully"),
    (["--enable-ipv6=maybe"], "invalid boolean value"),
    (["--resync-interval=1m"], "invalid value"),
    (["--masq-chain"], "flag needs an argument"),
    (["--masq-chain=POSTROUTING"], "built-in chain"),
])
def test_v2_flags_the_agent_refuses(args, needle):
    view = view_of(snapshot([AKS]), aks_daemonset(args=args))
    assert view.flag_error is not None and needle in view.flag_error.message
    assert "DaemonSet kube-system/azure-ip-masq-agent" in view.flag_error.input


def test_upstream_flags():
    view = view_of(snapshot([]), upstream_daemonset(args=["--random-fully=false", "--to-ports", "1024-29999"]))
    assert view.flag_error is None
    assert view.options.random_fully is False and str(view.options.to_ports[0]) == "1024-29999"
    assert view.flag_error is None
    assert view_of(snapshot([]), upstream_daemonset(args=["--resync-interval=5"])).flag_error is not None


def test_aks_projection_with_provenance():
    cms = [AKS, user("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n")]
    view = primary_agent(snapshot(cms))
    assert [f.path for f in view.files] == ["ip-masq-agent", "ip-masq-agent-reconciled"]
    assert all(f.read and f.present for f in view.files)
    by = {c.cidr: [view.source_of(o) for o in c.origins] for c in view.config.non_masquerade_cidrs}
    assert by["10.0.0.0/8"] == ["ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 2"]
    assert by["10.224.0.0/12"] == [
        "ConfigMap kube-system/azure-ip-masq-agent-config-reconciled key ip-masq-agent-reconciled line 4"]
    assert view.config.masq_link_local.value is True
    assert view.rules().ipv4.chain == "IP-MASQ-AGENT"


@pytest.mark.parametrize("cm", [
    user("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n", name="ip-masq-agent", key="config"),      # upstream's name
    user("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n", key="config"),                            # wrong key
    user("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n", namespace="default"),                     # wrong namespace
])
def test_config_the_agent_never_mounts_is_ignored(cm):
    view = primary_agent(snapshot([AKS, cm]))
    assert "10.0.0.0/8" not in view.config.cidrs()
    assert view.config.cidrs() == ["10.224.0.0/16", "10.0.0.0/16", "10.224.0.0/12"]


def test_no_file_means_v2_defaults_and_upstream_defaults():
    v2 = primary_agent(snapshot([]))
    assert v2.config.defaults_used and v2.config.cidrs() == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    up = view_of(snapshot([]), upstream_daemonset())
    assert up.config.defaults_used


def test_error_maps_to_the_configmap_key_and_line():
    view = primary_agent(snapshot([AKS, user("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 10.0.0.1/8\n")]))
    assert view.config is None and view.error.code == "E105"
    assert view.error.one_line().startswith("E105 ConfigMap kube-system/azure-ip-masq-agent-config key "
                                            "ip-masq-agent line 3")


def test_ipv6_cidr_without_the_flag_and_with_it():
    text = "nonMasqueradeCIDRs:\n  - fd00::/8\n"
    assert primary_agent(snapshot([AKS, user(text)])).error.code == "E107"
    ok = view_of(snapshot([AKS, user(text)]), aks_daemonset(args=["--enable-ipv6=true"]))
    assert ok.error is None and "fd00::/8" in ok.config.cidrs(6)


def test_projection_without_items_and_sub_path():
    mount = ConfigMount("cfg", "/etc/config", None, (ConfigMapProjection("masq", None, False),))
    cm = ConfigMap("kube-system", "masq", {"ip-masq-x": "nonMasqueradeCIDRs: [10.1.0.0/16]\n",
                                           "other": "nonMasqueradeCIDRs: [10.2.0.0/16]\n"})
    view = view_of(snapshot([cm]), aks_daemonset(mounts=[mount]))
    assert view.config.cidrs() == ["10.1.0.0/16"]
    assert {f.path: f.read for f in view.files} == {"ip-masq-x": True, "other": False}
    # upstream with a subPath mount of key "config" as /etc/config/ip-masq-agent
    sub = ConfigMount("cfg", "/etc/config/ip-masq-agent", "config", (ConfigMapProjection("masq2", None, True),))
    cm2 = ConfigMap("kube-system", "masq2", {"config": "nonMasqueradeCIDRs: [10.3.0.0/16]\n"})
    up = view_of(snapshot([cm2]), upstream_daemonset(mounts=[sub]))
    assert up.config.cidrs() == ["10.3.0.0/16"]


def test_no_config_mount_v2_exits_upstream_defaults():
    view = view_of(snapshot([AKS]), aks_daemonset(mounts=[]))
    assert view.error.code == "E101"
    assert view_of(snapshot([]), upstream_daemonset(mounts=[])).config.defaults_used


def test_missing_configmaps_is_not_decided():
    snap = snapshot([], missing={MissingKey.CONFIGMAPS: "forbidden"})
    view = primary_agent(snap)
    assert view.config is None and view.error is None and not view.decidable
    assert any("forbidden" in n for n in view.notes)


def test_unknown_flavour_and_ordering():
    odd = AgentDaemonSet("kube-system", "masq-thing", "unknown", None, "c", "example/masq:1")
    views = agent_configs(snapshot([AKS], daemonsets=[odd, aks_daemonset()]))
    assert [v.daemonset.name for v in views] == ["azure-ip-masq-agent", "masq-thing"]
    assert views[1].options is None and views[1].config is None


def test_item_path_into_a_folder_is_an_agent_error():
    mount = ConfigMount("cfg", "/etc/config", None, (
        ConfigMapProjection("azure-ip-masq-agent-config", (KeyToPath("ip-masq-agent", "ip-masq-dir/file"),), True),))
    view = view_of(snapshot([user("nonMasqueradeCIDRs: [10.0.0.0/8]\n")]), aks_daemonset(mounts=[mount]))
    assert view.error.code == "E101"
