"""Kernel agreement for explain on a bundle: the node of the bundle is a real network namespace.

The agent's rules are rendered from the bundle's own ConfigMaps (through the DaemonSet's real
projection), loaded into the node namespace, and captured back with iptables-save and ip -o addr
into the bundle, exactly as `masqctl collect` would. Real UDP and TCP flows then go from the pod
namespace to each destination, and the source address each one arrived with must equal what
`explain SRC DST --bundle` says, for SRC given as namespace/pod.
"""

from __future__ import annotations

import itertools

from clusterkit.seed import configmap, daemonset, list_yaml, node, pod, write_files
from explain_kernel import Flow, send_batch, setup_topology
from netns import Topology, requires_netns

from masqctl.analysis.agentconfig import primary_agent
from masqctl.analysis.explain_cluster import ClusterRequest, explain_snapshot
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions

NODE = "aks-kernel-vmss000000"
_ports = itertools.count(23000)


@requires_netns
def test_explain_on_a_bundle_agrees_with_the_kernel(tmp_path):
    root = tmp_path / "bundle"
    reconciled = "MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 10.244.0.0/16\n- 10.40.0.0/15\n"
    user = "nonMasqueradeCIDRs:\n  - 10.42.0.0/16  # hub\n  - 198.51.100.0/25\n"
    write_files(root, {
        "configmaps.yaml": list_yaml([
            configmap("azure-ip-masq-agent-config-reconciled", "ip-masq-agent-reconciled", reconciled),
            configmap("azure-ip-masq-agent-config", "ip-masq-agent", user)]),
        "daemonsets.yaml": list_yaml([daemonset()]),
        "nodes.yaml": list_yaml([node(NODE, Topology.NODE_UPLINK, {"kubernetes.azure.com/agentpool": "pool1"},
                                      "10.244.1.0/24")]),
        "pods.yaml": list_yaml([pod("shop", "probe", NODE, Topology.POD_IP)]),
    })
    rules = primary_agent(gather(GatherOptions(bundle=str(root)))).rules().ipv4
    dests = ["10.42.1.1", "203.0.113.9", "198.51.100.7", "198.51.100.200", "169.254.169.254", "10.40.9.9",
             "10.41.0.5"]
    with Topology() as t:
        setup_topology(t, dests)
        t.node.iptables_restore(rules.payload(), noflush=False)
        t.node.iptables_restore(f"*nat\n{rules.jump.text}\nCOMMIT\n")
        write_files(root, {f"nodes/{NODE}/iptables-save.txt": t.node.run("iptables-save").stdout,
                           f"nodes/{NODE}/ip-addr.txt": t.node.run("ip", "-o", "addr").stdout})
        flows = [Flow(Topology.POD_IP, d, p, p) for d, p in zip(dests + [Topology.DST_IP], _ports)]
        flows += [Flow(Topology.POD_IP, d, p, p, proto="tcp") for d, p in zip(("10.42.1.1", "203.0.113.9"), _ports)]
        seen = send_batch(t, flows)
    snapshot = gather(GatherOptions(bundle=str(root)))
    problems = []
    verdicts = {}
    for f in flows:
        ex = explain_snapshot(snapshot, ClusterRequest("shop/probe", f"{f.dst}:{f.port}", proto=f.proto))
        assert ex.node == NODE and not ex.what_if
        got = seen.get(f.final_port)
        if got is None:
            problems.append(f"{f.dst}: nothing arrived ({ex.summary})")
            continue
        if ex.base.evaluation.source_ip_seen != got[1]:
            problems.append(f"{f.proto} {f.dst}: kernel saw {got[1]}, explain says {ex.summary}")
        verdicts[(f.dst, f.proto)] = ex
    assert not problems, "\n".join(problems)
    # and the answers are the interesting ones, with their provenance
    hub = verdicts[("10.42.1.1", "udp")]
    assert hub.base.evaluation.masqueraded is False
    assert hub.provenance["sources"] == ["ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 2"]
    assert verdicts[("198.51.100.7", "udp")].provenance["sources"] == [
        "ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 3"]
    assert verdicts[("10.40.9.9", "udp")].provenance["sources"] == [
        "ConfigMap kube-system/azure-ip-masq-agent-config-reconciled key ip-masq-agent-reconciled line 4"]
    for masq in ("203.0.113.9", "198.51.100.200", "169.254.169.254", Topology.DST_IP):
        assert verdicts[(masq, "udp")].base.evaluation.source_ip_seen == Topology.NODE_UPLINK, masq
