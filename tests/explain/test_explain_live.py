"""`masqctl explain` on a live cluster: a local Kubernetes API server (tests/kubeapi) with exec.

explain lists the pods, finds the source pod's node, and captures only that node (one exec into
its agent pod); the answer comes from what that node's iptables-save printed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

kubeapi = pytest.importorskip("kubeapi")
pytest.importorskip("masqctl.cluster.live.kube", reason="live gathering (masqctl.cluster.live.kube) is not in this tree yet")

from clusterkit import objects, served  # noqa: E402
from clusterkit.seed import nat_table  # noqa: E402
from kubeapi import KubeAPI, Programs  # noqa: E402


def ip_addr(ip: str) -> str:
    return objects.ip_addr(ip, 16, brd="10.224.255.255", metric=None, valid="forever")


def test_live_explain_captures_only_the_source_pods_node(tmp_path):
    with KubeAPI() as api:
        nodes = served.small_cluster(api, 3, user_config="nonMasqueradeCIDRs:\n  - 10.42.0.0/16\n")
        handlers = {}
        for i, n in enumerate(nodes):
            ip = f"10.224.0.{4 + i}"
            cidrs = ["10.224.0.0/16", "10.0.0.0/16", "10.224.0.0/12", "10.42.0.0/16"]
            handlers[n] = Programs({"iptables-save": nat_table(cidrs), "ip6tables-save": "", "ip": ip_addr(ip)})
            api.on_exec(handlers[n], node=n)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        # web-1-0 runs on nodes[1] with IP 10.100.1.10 (served.small_cluster)
        r = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "explain", "default/web-1-0", "10.42.7.7:443",
                            "--kubeconfig", str(kubeconfig), "--context", "test", "--no-azure", "-o", "json"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["node"] == nodes[1] and doc["what_if"] is False
        assert doc["masqueraded"] is False and doc["source_ip_seen"] == "10.100.1.10"
        assert doc["provenance"]["sources"] == ["ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent "
                                                "line 2"]
        assert handlers[nodes[1]].calls, "the source pod's node was not captured"
        assert not handlers[nodes[0]].calls and not handlers[nodes[2]].calls, "other nodes were captured"
        # no Azure facts: the destination is a private address of an unknown network, and it says why
        assert doc["destination_places"][0]["kind"] == "private"
        assert doc["reply"]["comes_back"] is None
