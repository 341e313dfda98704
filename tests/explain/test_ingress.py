"""The ingress hop: a packet from outside through a destination node's kube-proxy rules."""

from __future__ import annotations

import pytest
from kubeproxy_rules import service_nat

from masqctl.analysis.ingress import nic_of, walk_ingress

NODE_IP = "10.50.0.4"
IP_ADDR = ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
           f"2: eth0    inet {NODE_IP}/16 brd 10.50.255.255 scope global eth0\\       valid_lft forever\n")
NAME = "ingress-nginx/ingress-nginx-controller:https"


def _hop(policy: str, endpoints, src="10.40.1.12", dst="10.50.0.100:443", **kw):
    dump = service_nat(name=NAME, cluster_ip="10.0.77.7", lb_ip="10.50.0.100", port=443, node_port=31443,
                       endpoints=endpoints, policy=policy, cluster_cidr="10.50.0.0/16",
                       agent=["10.50.0.0/16"], **kw)
    return walk_ingress(node="hub-0", src=src, dst=dst, proto="tcp", dump_text=dump, dump_label="hub-0 capture",
                        node_ip=NODE_IP, local_addresses=[NODE_IP], ip_addr_text=IP_ADDR,
                        ip_addr_label="ip-addr.txt", in_interface=nic_of(IP_ADDR, NODE_IP))


def test_nic_is_the_interface_holding_the_node_ip():
    assert nic_of(IP_ADDR, NODE_IP) == "eth0"
    assert nic_of(IP_ADDR, "10.9.9.9") is None
    assert nic_of(None, NODE_IP) is None


def test_cluster_policy_masquerades_to_the_node_ip_on_every_endpoint():
    hop = _hop("Cluster", [("10.50.1.20", 443, True), ("10.50.2.30", 443, False)])
    assert hop.masqueraded is True and hop.seen_ip == NODE_IP
    assert sorted(hop.endpoints) == ["10.50.1.20:443", "10.50.2.30:443"]
    assert all(c.probability == 0.5 for c in hop.candidates)
    assert hop.deciding_rule["chain"] == "KUBE-POSTROUTING"
    assert any("KUBE-MARK-MASQ" in n for n in hop.notes)


def test_local_policy_keeps_the_client_address_and_only_local_endpoints():
    hop = _hop("Local", [("10.50.1.20", 443, True), ("10.50.2.30", 443, False)])
    assert hop.masqueraded is False and hop.seen_ip == "10.40.1.12"
    assert hop.endpoints == ["10.50.1.20:443"]
    # the hub's own agent RETURNs for its VNet after KUBE-POSTROUTING let it pass
    assert hop.deciding_rule["chain"] == "IP-MASQ-AGENT"


def test_node_port_and_cluster_ip():
    hop = _hop("Cluster", [("10.50.1.20", 443, True)], dst=f"{NODE_IP}:31443")
    assert hop.seen_ip == NODE_IP and hop.endpoints == ["10.50.1.20:443"]
    hop = _hop("Cluster", [("10.50.1.20", 443, True)], dst="10.0.77.7:443")
    # a cluster IP from outside the cluster CIDR is marked too (`! -s 10.50.0.0/16`)
    assert hop.seen_ip == NODE_IP


def test_a_pod_ip_is_routed_as_is():
    hop = _hop("Cluster", [("10.50.1.20", 443, True)], dst="10.50.1.20:443")
    assert hop.masqueraded is False and hop.seen_ip == "10.40.1.12"
    assert hop.endpoints == ["10.50.1.20:443"]


def test_endpoints_that_differ_are_listed_and_the_answer_is_null():
    # one endpoint is the client itself (hairpin): KUBE-SEP marks it; the other does not
    hop = _hop("Cluster", [("10.50.1.20", 443, True)], dst="10.0.77.7:443", src="10.50.1.9")
    assert hop.seen_ip == "10.50.1.9"
    hop = _hop("Cluster", [("10.50.1.20", 443, True), ("10.50.1.9", 443, True)], dst="10.0.77.7:443",
               src="10.50.1.9")
    assert hop.seen_ip is None and hop.masqueraded is None
    assert {c.seen_ip for c in hop.candidates} == {"10.50.1.9", NODE_IP}
    assert "differ" in hop.why


@pytest.mark.parametrize("missing", [None, "no capture of node hub-0 (collected with --no-capture)"])
def test_no_rules_is_undecided_with_the_reason(missing):
    hop = walk_ingress(node="hub-0", src="10.40.1.12", dst="10.50.0.100:443", proto="tcp", dump_text=None,
                       dump_label="x", node_ip=NODE_IP, missing=missing)
    assert hop.seen_ip is None and hop.masqueraded is None and hop.candidates == []
    assert "not known" in hop.why and (missing is None or missing in hop.why)


# kube-proxy's filter rules on a node without a local endpoint of an externalTrafficPolicy Local
# Service (kubernetes/kubernetes pkg/proxy/iptables/proxier.go, syncProxyRules: "%s has no local
# endpoints", externalTrafficFilterTarget DROP, in KUBE-EXTERNAL-SERVICES, which INPUT and FORWARD
# jump to for new connections)
def _filter(*rules: str, jump: bool = True) -> str:
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":KUBE-EXTERNAL-SERVICES - [0:0]"]
    if jump:
        lines += ['-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service '
                  'portals" -j KUBE-EXTERNAL-SERVICES',
                  '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service '
                  'portals" -j KUBE-EXTERNAL-SERVICES']
    return "\n".join(lines + list(rules) + ["COMMIT", ""])


NO_LOCAL = (f'-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "{NAME} has no local endpoints" -m addrtype '
            "--dst-type LOCAL -m tcp --dport 31443 -j DROP")


def _no_local(filter_text: str, dst: str = f"{NODE_IP}:31443"):
    nat = service_nat(name=NAME, cluster_ip="10.0.77.7", lb_ip="10.50.0.100", port=443, node_port=31443,
                      endpoints=[("10.50.1.20", 443, False)], policy="Local", cluster_cidr="10.50.0.0/16",
                      agent=["10.50.0.0/16"])
    return walk_ingress(node="hub-0", src="10.40.1.12", dst=dst, proto="tcp", dump_text=filter_text + nat,
                        dump_label="hub-0 capture", node_ip=NODE_IP, local_addresses=[NODE_IP],
                        ip_addr_text=IP_ADDR, ip_addr_label="ip-addr.txt", in_interface=nic_of(IP_ADDR, NODE_IP))


def test_a_local_service_without_a_local_endpoint_is_dropped_by_the_filter_table():
    hop = _no_local(_filter(NO_LOCAL))
    assert [c.kind for c in hop.candidates] == ["dropped"]
    assert hop.seen_ip is None and "dropped by KUBE-EXTERNAL-SERVICES rule 1" in hop.why
    # another port, or the chain not reached: delivered to the node as before
    assert _no_local(_filter(NO_LOCAL), f"{NODE_IP}:31444").candidates[0].kind == "local"
    assert _no_local(_filter(NO_LOCAL, jump=False)).candidates[0].kind == "local"


def test_a_filter_rule_it_cannot_read_leaves_the_node_undecided():
    hop = _no_local(_filter("-A KUBE-EXTERNAL-SERVICES -m set --match-set blocked src -j DROP"))
    assert hop.seen_ip is None and hop.masqueraded is None
    assert [c.kind for c in hop.candidates] == ["unknown"]
    assert "KUBE-EXTERNAL-SERVICES rule 1 may drop it" in hop.why
