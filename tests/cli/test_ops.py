"""The inspect and explain operations (masqctl.ops) called directly, without the CLI: --no-azure on a
bundle, and explain's two-pass live gather against the local API server with the real client."""

from __future__ import annotations

from pathlib import Path

from clusterkit import served
from kubeapi import KubeAPI, Programs
from masqctl.analysis.explain_cluster import ClusterRequest
from masqctl.analysis.inspect import inspect
from masqctl.cluster.gather import gather
from masqctl.cluster.model import MissingKey
from masqctl.cluster.options import GatherOptions, NodeSelection
from masqctl.ops.explain import explain_on_cluster
from masqctl.ops.inspect import inspect_cluster, without_azure

HUB_SPOKE = str(Path(__file__).resolve().parents[2] / "examples" / "hub-spoke")


def test_no_azure_sets_a_bundles_azure_documents_aside():
    snapshot = gather(GatherOptions(bundle=HUB_SPOKE))
    assert snapshot.azure is not None
    bare = without_azure(snapshot)
    assert bare.azure is None and bare.missing[MissingKey.AZURE] == "not used (--no-azure)"
    assert without_azure(bare) is bare
    with_azure = inspect_cluster(GatherOptions(bundle=HUB_SPOKE)).to_dict()
    without = inspect_cluster(GatherOptions(bundle=HUB_SPOKE, azure=False)).to_dict()
    assert with_azure != without
    assert without == inspect(bare).to_dict()


def nat_dump() -> str:
    return ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            ":IP-MASQ-AGENT - [0:0]\n-A POSTROUTING -m comment --comment \"ip-masq-agent: ensure nat POSTROUTING "
            "directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain\" -m addrtype ! --dst-type "
            "LOCAL -j IP-MASQ-AGENT\n-A IP-MASQ-AGENT -d 10.42.0.0/16 -m comment --comment \"ip-masq-agent: local "
            "traffic is not subject to MASQUERADE\" -j RETURN\n-A IP-MASQ-AGENT -m comment --comment "
            "\"ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)\" -j MASQUERADE\n"
            "COMMIT\n")


def live_cluster(api):
    nodes = served.small_cluster(api, 3, user_config="nonMasqueradeCIDRs:\n  - 10.42.0.0/16\n")
    handlers = {n: Programs({"iptables-save": nat_dump(), "ip6tables-save": "",
                             "ip": "1: lo    inet 127.0.0.1/8 scope host lo\n"}) for n in nodes}
    for n, h in handlers.items():
        api.on_exec(h, node=n)
    return nodes, handlers


def test_live_explain_resolves_the_source_first_then_captures_only_its_node(tmp_path):
    said: list[str] = []
    with KubeAPI() as api:
        nodes, handlers = live_cluster(api)
        kc = api.write_kubeconfig(tmp_path / "kubeconfig")
        options = GatherOptions(kubeconfig=str(kc), context="test", azure=False)
        result = explain_on_cluster(options, ClusterRequest(src="default/web-1-0", dst="10.42.7.7:443"), said.append)
    assert result.node == nodes[1]                       # web-1-0 runs on nodes[1] (served.small_cluster)
    assert handlers[nodes[1]].calls and not handlers[nodes[0]].calls and not handlers[nodes[2]].calls
    assert said == ["explain: listing pods to find the source's node", f"explain: gathering (nodes: {nodes[1]})"]
    assert result.to_dict()["masqueraded"] is False


def test_live_explain_with_a_node_skips_the_first_pass(tmp_path):
    said: list[str] = []
    with KubeAPI() as api:
        nodes, handlers = live_cluster(api)
        kc = api.write_kubeconfig(tmp_path / "kubeconfig")
        options = GatherOptions(kubeconfig=str(kc), context="test", azure=False, nodes=NodeSelection())
        explain_on_cluster(options, ClusterRequest(src="default/web-1-0", dst="10.42.7.7:443", node=nodes[2]),
                           said.append)
    assert handlers[nodes[2]].calls and not handlers[nodes[0]].calls and not handlers[nodes[1]].calls
    assert said == [f"explain: gathering (nodes: {nodes[2]})"]
