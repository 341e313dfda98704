"""Pod subnet without eBPF: explain says that pod traffic is not masqueraded and only Azure DNS and
IMDS are SNATed, by CNS's SWIFT-POSTROUTING (cns/restserver/internalapi_linux.go programSNATRules),
naming the rules; inspect says why the user ConfigMap changes nothing (MQ021)."""

from __future__ import annotations

from clusterkit.akscal import BASE_CIDRS, NODES, VNET, base, iptables_save, vnet

from masqctl.analysis.explain_cluster import ClusterRequest, explain_snapshot
from masqctl.analysis.inspect import inspect
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions

SWIFT = ("-A SWIFT-POSTROUTING -s 10.225.0.0/16 -d 168.63.129.16/32 -p udp -m udp --dport 53 "
         "-j SNAT --to-source 10.224.0.4",
         "-A SWIFT-POSTROUTING -s 10.225.0.0/16 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 "
         "-j SNAT --to-source 10.224.0.4")


def snapshot(tmp_path):
    from clusterkit.akscal import aks
    b = base()
    b.aks = aks(pod_subnet=True)
    b.vnets[VNET] = vnet(subnets=[
        {"name": "aks-subnet", "id": f"{b.vnets[VNET]['id']}/subnets/aks-subnet", "addressPrefix": "10.224.0.0/16"},
        {"name": "pod-subnet", "id": f"{b.vnets[VNET]['id']}/subnets/pod-subnet", "addressPrefix": "10.225.0.0/16"}])
    b.capture_all(iptables_save(BASE_CIDRS, jump=0, before="-A POSTROUTING -j SWIFT-POSTROUTING",
                                extra_rules="\n".join(SWIFT)))
    b.add_user("nonMasqueradeCIDRs:\n  - 10.40.0.0/16\n")
    return gather(GatherOptions(bundle=b.write(str(tmp_path / "b"))))


def test_not_masqueraded_only_dns_imds(tmp_path):
    snap = snapshot(tmp_path)
    ex = explain_snapshot(snap, ClusterRequest(src="10.225.0.7", dst="8.8.8.8:443", node=NODES[0]))
    assert ex.base.evaluation.masqueraded is False
    assert "not masqueraded; only DNS/IMDS are SNATed, by CNS" in ex.base.summary
    assert "169.254.169.254/32" in ex.base.summary and "changes nothing" in ex.base.summary
    dns = explain_snapshot(snap, ClusterRequest(src="10.225.0.7", dst="168.63.129.16:53", proto="udp",
                                                node=NODES[0]))
    assert dns.base.evaluation.masqueraded is True
    assert "SNATed by CNS's SWIFT-POSTROUTING" in dns.base.summary
    report = inspect(snap)
    mq021 = next(f for f in report.findings if f.code == "MQ021")
    assert "changes nothing" in mq021.detail and "SWIFT-POSTROUTING" in mq021.detail
