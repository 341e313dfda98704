"""The dataplane interface: every engine detect_mode can name has a dataplane module; the
iptables agent's verdict is the kernel walk of the node's rules; the others say what limits an
answer in their mode, and MQ015's fix comes from the dataplane that decides."""

from __future__ import annotations

import pytest
from masq_snapshots import agent_nat

from masqctl.analysis import mode as m
from masqctl.analysis.dataplanes import DATAPLANES, Dataplane, dataplane_of
from masqctl.analysis.explain import Request, explain
from masqctl.analysis.mode import MasqMode

ENGINES = (m.AGENT, m.CILIUM_BPF, m.SWIFT, m.CNI, "unknown")


def mode_of(name: str, snat_by: str, agent_decides) -> MasqMode:
    return MasqMode(name=name, snat_by=snat_by, agent_decides=agent_decides, pod_ips_routable_outside=None,
                    evidence=(), missing=("the AKS network profile",))


def test_every_engine_mode_can_name_has_a_dataplane_module():
    assert set(ENGINES) == set(DATAPLANES)
    for key, dp in DATAPLANES.items():
        assert isinstance(dp, Dataplane) and dp.snat_by == key
        assert type(dp).__module__.startswith("masqctl.analysis.dataplanes.")
    # only the engine masqctl models exactly says its verdict is the engine's own
    assert [k for k, dp in DATAPLANES.items() if dp.exact] == [m.AGENT]


def test_a_mode_without_an_engine_gets_the_unknown_dataplane():
    assert dataplane_of(mode_of("unknown", "unknown", None)).snat_by == "unknown"
    assert dataplane_of(object()).snat_by == "unknown"


def test_the_iptables_agents_verdict_is_the_walk_of_the_nodes_rules():
    dump = agent_nat(["10.244.0.0/16"])
    for dst, masqueraded in (("10.244.3.4", False), ("8.8.8.8", True)):
        req = Request(src="10.244.1.5", dst=dst, iptables="-", iptables_text=dump, node_ip="10.224.0.4")
        ours = DATAPLANES[m.AGENT].verdict(req)
        assert ours.masqueraded() is masqueraded
        assert ours.to_dict() == explain(Request(src="10.244.1.5", dst=dst, iptables="-", iptables_text=dump,
                                                 node_ip="10.224.0.4")).to_dict()


@pytest.mark.parametrize("name, snat_by, words", [
    (m.CILIUM_EBPF, m.CILIUM_BPF, "the agent's iptables rules are bypassed"),
    (m.POD_SUBNET, m.SWIFT, "only SWIFT-POSTROUTING SNATs Azure DNS"),
    (m.CALICO, m.CNI, "the CNI decides masquerading"),
])
def test_an_engine_other_than_the_agent_qualifies_every_answer(name, snat_by, words):
    dp = dataplane_of(mode_of(name, snat_by, False))
    assert words in dp.caveat(mode_of(name, snat_by, False))
    assert dp.fix(mode_of(name, snat_by, False))
    # where the agent does decide (or it cannot be told), that engine adds nothing
    assert dp.caveat(mode_of(name, snat_by, True)) is None
    assert dp.caveat(mode_of(name, snat_by, None)) is None


def test_the_agent_adds_no_caveat_and_an_unknown_mode_says_what_is_missing():
    assert dataplane_of(mode_of(m.KUBENET, m.AGENT, True)).caveat(mode_of(m.KUBENET, m.AGENT, True)) is None
    unknown = mode_of("unknown", "unknown", None)
    assert "the AKS network profile" in dataplane_of(unknown).caveat(unknown)
