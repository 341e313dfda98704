"""Ground truth for the path across two clusters: a spoke pod calls the hub's load-balancer Service.

The spoke node runs the agent's rules rendered from the spoke bundle's own ConfigMaps (with and
without the field report's fix, nonMasqueradeCIDRs 10.0.0.0/8), the hub node kube-proxy's rules
for ``ingress-nginx/ingress-nginx-controller`` with ``externalTrafficPolicy`` Cluster or Local.
Both nodes are captured back into their bundles as ``masqctl collect`` would, and the source the
ingress pod really saw must be the one the analysis says, in every case.
"""

from __future__ import annotations

import itertools

from clusterkit.seed import RECONCILED_SPOKE, configmap, daemonset, list_yaml, node, pod, write_files
from fleetkit import endpointslice, service
from fleetlab import HNODE, ING, LB, SNODE, SPOD, FleetLab
from kubeproxy_rules import service_nat
from netns import requires_netns

from masqctl.analysis.agentconfig import primary_agent
from masqctl.analysis.explain_cluster import ClusterRequest, explain_snapshot
from masqctl.analysis.explain_path import explain_path
from masqctl.analysis.ingress import ingress_on_node
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions

SPOKE_NODE, HUB_NODE = "aks-spoke-vmss000000", "aks-hub-vmss000000"
NAME = "ingress-nginx/ingress-nginx-controller:https"
FIX = "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n"
EXPECTED = {("Cluster", False): HNODE, ("Cluster", True): HNODE, ("Local", False): SNODE, ("Local", True): SPOD}


def spoke_bundle(root, fix: bool) -> None:
    maps = [configmap("azure-ip-masq-agent-config-reconciled", "ip-masq-agent-reconciled", RECONCILED_SPOKE)]
    if fix:
        maps.append(configmap("azure-ip-masq-agent-config", "ip-masq-agent", FIX))
    write_files(root, {"configmaps.yaml": list_yaml(maps), "daemonsets.yaml": list_yaml([daemonset()]),
                       "nodes.yaml": list_yaml([node(SPOKE_NODE, SNODE, {"agentpool": "nodepool1"})]),
                       "pods.yaml": list_yaml([pod("shop", "orders-api", SPOKE_NODE, SPOD)])})


def hub_bundle(root, policy: str | None = None, port: int = 443) -> None:
    files = {"nodes.yaml": list_yaml([node(HUB_NODE, HNODE, {"agentpool": "system"})]),
             "pods.yaml": list_yaml([pod("ingress-nginx", "ingress-nginx-controller-0", HUB_NODE, ING)])}
    if policy is not None:
        ports = [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https", "nodePort": 31443},
                 {"name": "https-udp", "port": 443, "protocol": "UDP", "targetPort": port, "nodePort": 31443}]
        files["services.yaml"] = list_yaml([service("ingress-nginx", "ingress-nginx-controller", cluster_ip="10.0.77.7",
                                                    ports=ports, type_="LoadBalancer", policy=policy, lb_ip=LB)])
        files["endpointslices.yaml"] = list_yaml([endpointslice(
            "ingress-nginx", "ingress-nginx-controller", [(ING, HUB_NODE, "ingress-nginx-controller-0")],
            [{"name": "https", "port": port, "protocol": "TCP"}, {"name": "https-udp", "port": port, "protocol": "UDP"}])])
    write_files(root, files)


def hub_rules(policy: str, port: int) -> str:
    return service_nat(name=NAME, cluster_ip="10.0.77.7", lb_ip=LB, port=443, node_port=31443,
                       endpoints=[(ING, port, True)], policy=policy, cluster_cidr="10.42.0.0/16",
                       agent=["10.42.0.0/16", "10.0.0.0/16"], proto="tcp,udp")


@requires_netns
def test_the_source_the_hub_ingress_sees_matches_the_kernel(tmp_path):
    ports = itertools.count(18443)
    problems = []
    with FleetLab() as lab:
        for (policy, fix), want in EXPECTED.items():
            port = next(ports)
            spoke, hub = tmp_path / f"spoke-{policy}-{fix}", tmp_path / f"hub-{policy}-{fix}"
            spoke_bundle(spoke, fix)
            hub_bundle(hub, policy, port)
            agent = primary_agent(gather(GatherOptions(bundle=str(spoke)))).rules().ipv4
            lab.load(lab.snode, agent.payload())
            lab.snode.iptables_restore(f"*nat\n{agent.jump.text}\nCOMMIT\n")
            lab.load(lab.hnode, hub_rules(policy, port))
            write_files(spoke, {f"nodes/{SPOKE_NODE}/{k}": v for k, v in lab.capture(lab.snode).items()})
            write_files(hub, {f"nodes/{HUB_NODE}/{k}": v for k, v in lab.capture(lab.hnode).items()})
            seen = lab.probe(LB, 443, port)
            seen_np = lab.probe(HNODE, 31443, port)
            clusters = [("spoke1", gather(GatherOptions(bundle=str(spoke)))), ("hub", gather(GatherOptions(bundle=str(hub))))]
            for proto in ("udp", "tcp"):
                egress = explain_snapshot(gather(GatherOptions(bundle=str(spoke))),
                                          ClusterRequest("shop/orders-api", f"{LB}:443", proto=proto))
                src = egress.base.evaluation.source_ip_seen
                hop = ingress_on_node(gather(GatherOptions(bundle=str(hub))), HUB_NODE, src, f"{LB}:443", proto)
                case = f"{proto} eTP {policy}, spoke fix {fix}"
                if seen.get(proto) != hop.seen_ip:
                    problems.append(f"{case}: the kernel delivered {seen.get(proto)}, the analysis says "
                                    f"{hop.seen_ip} (egress {egress.summary}; ingress {hop.why})")
                if hop.seen_ip != want:
                    problems.append(f"{case}: expected {want}, got {hop.seen_ip}")
                if hop.endpoints != [f"{ING}:{port}"]:
                    problems.append(f"{case}: endpoints {hop.endpoints}")
                # across both clusters: the Service by name (its load-balancer IP), and the hub node's node port
                port_name = "https" if proto == "tcp" else "https-udp"
                path = explain_path(clusters, ClusterRequest("shop/orders-api",
                                                             f"ingress-nginx/ingress-nginx-controller:{port_name}"))
                if path.seen.ip != seen.get(proto) or path.target.kind != "lb" or path.target.dst != f"{LB}:443":
                    problems.append(f"{case}, Service: the kernel delivered {seen.get(proto)}, explain says "
                                    f"{path.seen.ip} to {path.target.dst} ({path.seen.why})")
                path = explain_path(clusters, ClusterRequest("shop/orders-api", f"{HNODE}:31443", proto=proto))
                if path.seen.ip != seen_np.get(proto) or path.seen.ip != want:
                    problems.append(f"{case}, node port: the kernel delivered {seen_np.get(proto)}, explain says "
                                    f"{path.seen.ip} ({path.seen.why})")
                if [h.stage for h in path.path] != ["egress", "network", "ingress", "endpoint"]:
                    problems.append(f"{case}, node port: path {[h.stage for h in path.path]}")
                if path.seen.endpoint != "ingress-nginx/ingress-nginx-controller-0" or path.seen.cluster != "hub":
                    problems.append(f"{case}, node port: endpoint {path.seen.endpoint} in {path.seen.cluster}")
    assert not problems, "\n".join(problems)
