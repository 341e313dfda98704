"""The namespace harness itself: a packet crosses pod -> node -> dst, and MASQUERADE on the
node changes the source the destination sees."""

from netns import Topology, requires_netns


@requires_netns
def test_forwarding_and_masquerade_change_the_seen_source():
    with Topology() as t:
        t.add_destination("203.0.113.7")
        assert t.probe_udp("203.0.113.7") == Topology.POD_IP
        t.node.iptables_restore("*nat\n-A POSTROUTING -d 203.0.113.0/24 -j MASQUERADE\nCOMMIT\n")
        assert t.probe_udp("203.0.113.7", port=9998) == Topology.NODE_UPLINK
        assert "-A POSTROUTING -d 203.0.113.0/24 -j MASQUERADE" in t.node.iptables_save()
