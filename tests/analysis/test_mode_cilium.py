"""Who masquerades on AKS Cilium, from the evidence (Azure/azure-container-networking
test/integration/manifests/cilium/v1.18: cilium-config.yaml without eBPF host routing has
enable-ipv4-masquerade "false"; ebpf/overlay has the merger; ebpf/podsubnet mounts
azure-dns-imds-ip-masq-agent-config as cilium-agent's /etc/config)."""

from __future__ import annotations

from clusterkit.akscal import NODES, base, configmap
from clusterkit.cilium import PODSUBNET_DS

from masqctl.analysis.explain_cluster import ClusterRequest, explain_snapshot
from masqctl.analysis.inspect import inspect
from masqctl.analysis.mode import detect_mode
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions

# the AKS-owned DNS/IMDS config (ebpf/podsubnet/static/azure-dns-imds-ip-masq-agent-config.yaml): every
# IPv4 range except 168.63.129.16/32 and 169.254.169.254/32
DNS_IMDS = ["0.0.0.0/1", "128.0.0.0/3", "160.0.0.0/5", "168.0.0.0/11", "168.32.0.0/12", "168.48.0.0/13",
            "168.56.0.0/14", "168.60.0.0/15", "168.62.0.0/16", "168.63.0.0/17", "168.63.128.0/24",
            "168.63.129.0/29", "168.63.129.8/30", "168.63.129.12/30", "168.63.129.17/32", "168.63.129.18/31",
            "168.63.129.20/30", "168.63.129.24/29", "168.63.129.32/27", "168.63.129.64/26", "168.63.129.128/25",
            "168.63.130.0/23", "168.63.132.0/22", "168.63.136.0/21", "168.63.144.0/20", "168.63.160.0/19",
            "168.63.192.0/18", "168.64.0.0/10", "168.128.0.0/9", "169.0.0.0/9", "169.128.0.0/10", "169.192.0.0/11",
            "169.224.0.0/12", "169.240.0.0/13", "169.248.0.0/14", "169.252.0.0/15", "169.254.0.0/17",
            "169.254.128.0/19", "169.254.160.0/21", "169.254.168.0/24", "169.254.169.0/25", "169.254.169.128/26",
            "169.254.169.192/27", "169.254.169.224/28", "169.254.169.240/29", "169.254.169.248/30",
            "169.254.169.252/31", "169.254.169.255/32", "169.254.170.0/23", "169.254.172.0/22", "169.254.176.0/20",
            "169.254.192.0/18", "169.255.0.0/16", "170.0.0.0/7", "172.0.0.0/6", "176.0.0.0/4", "192.0.0.0/3",
            "224.0.0.0/3"]


def cilium_config(**over):
    data = {"enable-bpf-masquerade": "true", "enable-ip-masq-agent": "true", "enable-ipv4-masquerade": "true",
            "enable-ipv6-masquerade": "false", "enable-remote-node-masquerade": "false",
            "ipv4-native-routing-cidr": "10.225.0.0/16", "routing-mode": "native"}
    data.update(over)
    return configmap("cilium-config", data, labels={"app": "cilium"})


def load(b, tmp_path):
    return gather(GatherOptions(bundle=b.write(str(tmp_path / "b"))))


def test_aks_cilium_without_ebpf_keeps_the_iptables_agent(tmp_path):
    b = base()
    b.aks["networkProfile"].update({"networkPluginMode": "overlay", "networkDataplane": "cilium"})
    b.configmaps.append(cilium_config(**{"enable-ipv4-masquerade": "false", "enable-bpf-masquerade": "false",
                                         "enable-ip-masq-agent": "false"}))
    mode = detect_mode(load(b, tmp_path))
    assert (mode.name, mode.snat_by, mode.agent_decides) == ("cilium-overlay", "iptables-agent", True)
    assert any("Cilium's own masquerade is off" in n for n in mode.notes)


def test_pod_subnet_ebpf_uses_the_dns_imds_config(tmp_path):
    b = base()
    b.aks = __import__("clusterkit.akscal", fromlist=["aks"]).aks(pod_subnet=True)
    b.aks["networkProfile"].update({"networkDataplane": "cilium",
                                    "advancedNetworking": {"performance": {"accelerationMode": "BpfVeth"}}})
    b.configmaps.append(cilium_config())
    b.configmaps.append(configmap("azure-dns-imds-ip-masq-agent-config", {
        "ip-masq-agent": "nonMasqueradeCIDRs:\n" + "".join(f"- {c}\n" for c in DNS_IMDS)
                         + "  \nmasqLinkLocal: true\nmasqLinkLocalIPv6: true\n"}, labels={"app": "cilium"}))
    b.daemonsets = [PODSUBNET_DS]
    b.pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "namespace": "shop"},
               "spec": {"nodeName": NODES[0], "containers": [{"name": "c", "image": "x"}]},
               "status": {"phase": "Running", "podIP": "10.225.0.7", "podIPs": [{"ip": "10.225.0.7"}]}}]
    b.add_user("nonMasqueradeCIDRs:\n  - 10.40.0.0/16\n")
    snap = load(b, tmp_path)
    mode = detect_mode(snap)
    assert (mode.name, mode.snat_by, mode.agent_decides, mode.user_config_matters) == (
        "azure-cni-pod-subnet", "cilium-bpf", False, False)
    report = inspect(snap)
    mq021 = next(f for f in report.findings if f.code == "MQ021")
    assert "azure-dns-imds-ip-masq-agent-config" in mq021.detail and "not mounted" in mq021.detail
    internet = explain_snapshot(snap, ClusterRequest(src="shop/web-0", dst="8.8.8.8:443"))
    assert internet.base.evaluation.masqueraded is False
    assert "0.0.0.0/1" in internet.base.summary and "azure-dns-imds-ip-masq-agent-config" in internet.base.summary
    dns = explain_snapshot(snap, ClusterRequest(src="shop/web-0", dst="168.63.129.16:53", proto="udp"))
    assert dns.base.evaluation.masqueraded is True and dns.base.evaluation.source_ip_seen == "10.224.0.4"


def test_load_balancer_keys_are_evidence(tmp_path):
    # cilium-config's bpf-lb-* keys (Cilium's kube-proxy replacement): recorded and said what they do to a
    # source address; bpf-lb-mode applies only with kube-proxy-replacement on
    for extra, words in (({"kube-proxy-replacement": "true", "bpf-lb-mode": "snat"}, "SNATs NodePort"),
                         ({"kube-proxy-replacement": "true", "bpf-lb-mode": "dsr"}, "client address kept"),
                         ({"kube-proxy-replacement": "true", "bpf-lb-mode": "hybrid"}, "(UDP; TCP keeps"),
                         ({"kube-proxy-replacement": "false", "bpf-lb-mode": "snat"}, "does not apply")):
        b = base()
        b.aks["networkProfile"].update({"networkPluginMode": "overlay", "networkDataplane": "cilium",
                                        "advancedNetworking": {"performance": {"accelerationMode": "BpfVeth"}}})
        b.configmaps.append(cilium_config(**extra))
        mode = detect_mode(load(b, tmp_path / extra["bpf-lb-mode"] / extra["kube-proxy-replacement"]))
        lb = [e for e in mode.evidence if "bpf-lb-mode=" in e]
        assert len(lb) == 1 and words in lb[0], mode.evidence
        from masqctl.analysis.cilium import cilium_facts
        assert cilium_facts(load(b, tmp_path / "x" / extra["bpf-lb-mode"] / extra["kube-proxy-replacement"])
                            ).to_dict()["values"]["bpf-lb-mode"] == extra["bpf-lb-mode"]
