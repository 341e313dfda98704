"""An agent whose --masq-chain is a chain another program owns (kube-proxy's KUBE-POSTROUTING):
inspect names the collision instead of reading the chain as the agent's drift (through the real
bundle loader)."""

from __future__ import annotations

import pytest
from clusterkit.akscal import BASE_CIDRS, NODES, base, daemonset, iptables_save

from masqctl.agent.flags import foreign_chain_owner
from masqctl.analysis.inspect import inspect
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions


def load(bundle, tmp_path):
    return gather(GatherOptions(bundle=bundle.write(str(tmp_path / "b"))))


def node_state(chain: str, agent_wrote_last: bool) -> str:
    """A node where the agent runs on ``chain``: no chain of its own, its jump beside kube-proxy's,
    and in ``chain`` the rules of whichever wrote last."""
    lines = iptables_save(BASE_CIDRS, chain=False, jump=0).splitlines()
    if agent_wrote_last:
        lines = [ln for ln in lines if not ln.startswith(f"-A {chain} ")]
    at = lines.index("COMMIT")
    lines[at:at] = [f"-A POSTROUTING -m addrtype ! --dst-type LOCAL -j {chain}"] + (
        [*(f"-A {chain} -d {c} -j RETURN" for c in BASE_CIDRS), f"-A {chain} -j MASQUERADE"]
        if agent_wrote_last else [])
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("agent_wrote_last", [False, True])
def test_go_agent_on_kube_proxys_chain_is_named_a_collision(agent_wrote_last, tmp_path):
    b = base()
    b.daemonsets = [daemonset(args=("--v=2", "--resync-interval=60", "--masq-chain=KUBE-POSTROUTING"))]
    b.capture_all(node_state("KUBE-POSTROUTING", agent_wrote_last))
    report = inspect(load(b, tmp_path))
    assert [f.code for f in report.findings] == ["MQ005"], [(f.code, f.detail) for f in report.findings]
    (f,) = report.findings
    assert f.severity == "error" and "KUBE-POSTROUTING" in f.detail and "kube-proxy" in f.detail
    assert f.title == "the agent's chain is a chain another program owns"
    assert set(f.nodes) == set(NODES)
    # no misleading fix: restarting the agent pod would only take the chain over again
    assert "delete pod" not in f.fix and "remove --masq-chain KUBE-POSTROUTING" in f.fix
    assert "no POSTROUTING jump" not in f.detail
    skipped = {n.code: n for n in report.not_checked}
    assert "KUBE-POSTROUTING is kube-proxy/kubelet's" in skipped["MQ004"].reason


def test_node_agent_refuses_a_foreign_chain_and_inspect_says_it_exits(tmp_path):
    b = base()
    ds = daemonset(args=("--masq-chain", "cali-nat-outgoing"))
    ds["spec"]["template"]["spec"]["containers"][0]["command"] = ["masqctl", "node-agent"]
    b.daemonsets = [ds]
    report = inspect(load(b, tmp_path))
    (mq002,) = [f for f in report.findings if f.code == "MQ002"]
    assert "refuses its arguments and exits at start: cali-nat-outgoing is Calico's chain" in mq002.detail


def test_node_agent_with_allow_foreign_chain_is_named_a_collision(tmp_path):
    b = base()
    ds = daemonset(args=("--masq-chain", "KUBE-POSTROUTING", "--allow-foreign-chain"))
    ds["spec"]["template"]["spec"]["containers"][0]["command"] = ["masqctl", "node-agent"]
    b.daemonsets = [ds]
    report = inspect(load(b, tmp_path))
    mq005 = [f for f in report.findings if f.code == "MQ005"]
    assert len(mq005) == 1 and "--allow-foreign-chain" in mq005[0].fix
    assert "MQ004" not in {f.code for f in report.findings}


@pytest.mark.parametrize("chain, owner", [
    ("KUBE-POSTROUTING", "kube-proxy/kubelet"), ("KUBE-MARK-MASQ", "kube-proxy/kubelet"),
    ("cali-nat-outgoing", "Calico"), ("CILIUM_POST_nat", "Cilium"), ("SWIFT-POSTROUTING", "Azure CNS (pod subnet SNAT)"),
    ("KIND-MASQ-AGENT", "kindnet"), ("DOCKER", "Docker"),
    ("IP-MASQ-AGENT", None), ("MY-MASQ", None), ("kube-masq", None), ("CALI-X", None),
])
def test_foreign_chain_owners(chain, owner):
    assert foreign_chain_owner(chain) == owner
