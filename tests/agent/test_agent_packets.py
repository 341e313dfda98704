"""Ground truth: what source address a destination sees after the node-agent wrote its rules."""

from __future__ import annotations

import pytest
from agentlib import ConfigVolume, run_once, yaml_config
from netns import Topology, requires_netns

pytestmark = [requires_netns, pytest.mark.netns]

NON_MASQ_DST = "198.51.100.7"   # inside a nonMasqueradeCIDR
MASQ_DST = "203.0.113.7"        # outside every nonMasqueradeCIDR
LINK_LOCAL_DST = "169.254.10.10"


def test_pod_ip_kept_for_non_masquerade_cidrs_node_ip_otherwise(tmp_path, lockfile):
    with Topology() as t:
        for ip in (NON_MASQ_DST, MASQ_DST, LINK_LOCAL_DST):
            t.add_destination(ip)
        cfg = ConfigVolume(str(tmp_path / "config"),
                           {"ip-masq-agent": yaml_config(["198.51.100.0/24", "10.244.0.0/16"], False)})
        r = run_once(t.node, cfg.path, lockfile)
        assert r.returncode == 0, r.stderr
        assert t.probe_udp(NON_MASQ_DST, port=9101) == Topology.POD_IP
        assert t.probe_udp(MASQ_DST, port=9102) == Topology.NODE_UPLINK
        assert t.probe_udp(Topology.DST_IP, port=9103) == Topology.NODE_UPLINK  # 192.168.100.0/24 not exempt
        # masqLinkLocal false: 169.254.0.0/16 keeps the pod IP
        assert t.probe_udp(LINK_LOCAL_DST, port=9104) == Topology.POD_IP

        # masqLinkLocal true (as AKS's reconciled file sets it): link-local is masqueraded too
        cfg.swap({"ip-masq-agent": yaml_config(["198.51.100.0/24", "10.244.0.0/16"], True)})
        r = run_once(t.node, cfg.path, lockfile)
        assert r.returncode == 0, r.stderr
        assert t.probe_udp(LINK_LOCAL_DST, port=9105) == Topology.NODE_UPLINK
        assert t.probe_udp(NON_MASQ_DST, port=9106) == Topology.POD_IP

        # the destination's range added to the user file: source preserved from then on
        cfg.swap({"ip-masq-agent": yaml_config(["198.51.100.0/24", "10.244.0.0/16"], True),
                  "ip-masq-agent-extra": yaml_config(["203.0.113.0/24"])})
        assert run_once(t.node, cfg.path, lockfile).returncode == 0
        assert t.probe_udp(MASQ_DST, port=9107) == Topology.POD_IP
