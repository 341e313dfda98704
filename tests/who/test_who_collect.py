"""`collect --conntrack`: each node's table through the same exec as iptables-save, into the
bundle, and `who` on that bundle. Against the local API server; the last test execs into a real
node namespace whose pods made real connections."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from cluster.bundlekit import run_cli
from cluster.kubekit import AKS_NAT, agent_programs, netns_exec
from kubeapi import KubeAPI, objects
from netns import requires_netns

from masqctl.cluster.bundle import read_bundle

N0, N1 = (f"aks-nodepool1-{i:08d}" for i in range(2))
TABLE = ("ipv4     2 tcp      6 431999 ESTABLISHED src=10.100.0.10 dst=10.42.1.10 sport=40000 dport=443 "
         "src=10.42.1.10 dst=10.224.0.4 sport=443 dport=61000 [ASSURED] mark=0 zone=0 use=2\n")


def _env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["HOME"] = str(tmp_path)
    return env


def collect(api, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    return run_cli("collect", "--kubeconfig", str(kubeconfig), "--no-azure", "-o", str(tmp_path / "b"), *extra)


def test_collect_conntrack_writes_each_nodes_table_and_who_reads_it(tmp_path):
    with KubeAPI() as api:
        objects.small_cluster(api, 2)
        programs = agent_programs(cat=TABLE)
        api.on_exec(programs, node=N0)
        api.on_exec(agent_programs(), node=N1)          # an image without cat (and no conntrack tool)
        r = collect(api, tmp_path, "--conntrack")
    assert r.returncode == 0, r.stderr
    assert "conntrack tables from 1" in r.stderr
    raw = read_bundle(str(tmp_path / "b"))
    assert raw.captures[N0].conntrack == TABLE and raw.captures[N0].iptables_save == AKS_NAT
    assert raw.captures[N1].conntrack is None and "conntrack" in raw.captures[N1].errors
    assert (tmp_path / "b" / "nodes" / N0 / "conntrack.txt").read_text() == TABLE
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert "conntrack" in manifest["failed"][N1]
    w = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "who", "10.224.0.4:61000", "--bundle",
                        str(tmp_path / "b"), "-o", "json"], capture_output=True, text=True, timeout=120)
    assert w.returncode == 0, w.stderr
    doc = json.loads(w.stdout)
    assert doc["node"] == N0 and doc["exact"] and doc["matches"][0]["pod"] == "default/web-0-0"
    assert doc["matches"][0]["owner"] == "ReplicaSet default/web-0"
    w1 = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "who", "10.224.0.5:61000", "--bundle",
                         str(tmp_path / "b"), "-o", "json"], capture_output=True, text=True, timeout=120)
    assert w1.returncode == 1
    assert any("/proc/net/nf_conntrack" in n for n in json.loads(w1.stdout)["notes"])   # why N1 has none


def test_without_conntrack_no_table_is_read(tmp_path):
    with KubeAPI() as api:
        objects.small_cluster(api, 1)
        programs = agent_programs(cat=TABLE)
        api.on_exec(programs)
        r = collect(api, tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "b" / "nodes" / N0 / "conntrack.txt").exists()
    assert read_bundle(str(tmp_path / "b")).captures[N0].conntrack is None
    assert programs.calls and all("nf_conntrack" not in " ".join(c) for c in programs.calls)


def test_conntrack_is_refused_where_it_cannot_be_read(tmp_path):
    r = run_cli("collect", "--bundle", "examples/hub-spoke", "-o", str(tmp_path / "x"), "--conntrack")
    assert r.returncode == 2 and "E262 --conntrack" in r.stderr


@requires_netns
@pytest.mark.netns
@pytest.mark.skipif(shutil.which("conntrack") is None, reason="conntrack is not installed")
def test_collect_conntrack_from_a_real_node(tmp_path):
    from whonet import HUB, NODE_IP, Estate, Pod

    node_name = "aks-system-20931744-vmss000000"
    pods = [Pod("orders", "orders-api-5b7c9d8f6-kq2xv", "10.40.0.9"),
            Pod("billing", "invoice-client-6d4f9b8c7-t5rjp", "10.40.0.7")]
    with Estate(pods) as estate, KubeAPI() as api:
        log = estate.traffic({pods[0].name: [("tcp", HUB, 45000)], pods[1].name: [("tcp", HUB, 45000)]})
        api.add(objects.node(node_name, ip=NODE_IP))
        api.add(objects.agent_pod(node_name, NODE_IP))
        api.add(objects.agent_daemonset(desired=1))
        api.add(objects.reconciled_configmap())
        for p in pods:
            api.add(objects.pod(p.name, node=node_name, namespace=p.namespace, ip=p.ip, host_ip=NODE_IP,
                                owner=("ReplicaSet", p.name.rsplit("-", 1)[0])))
        api.on_exec(netns_exec(estate.node))     # the agent pod: the node's own sh, iptables-save, /proc
        r = collect(api, tmp_path, "--conntrack")
        assert r.returncode == 0, r.stderr
    raw = read_bundle(str(tmp_path / "b"))
    assert "IP-MASQ-AGENT" in raw.captures[node_name].iptables_save
    for record in log:
        w = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "who", f"{record['ip']}:{record['port']}",
                            "--to", f"{HUB}:443", "--bundle", str(tmp_path / "b"), "-o", "json"],
                           capture_output=True, text=True, timeout=120)
        assert w.returncode == 0, (w.stdout, w.stderr)
        doc = json.loads(w.stdout)
        sender = next(p for p in pods if p.name == record["who"])
        assert doc["exact"] and [m["pod"] for m in doc["matches"]] == [sender.ref]


def test_who_on_a_live_cluster_reads_only_the_observed_nodes_table(tmp_path):
    with KubeAPI() as api:
        objects.small_cluster(api, 2)
        p0, p1 = agent_programs(cat=TABLE), agent_programs(cat=TABLE)
        api.on_exec(p0, node=N0)
        api.on_exec(p1, node=N1)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        w = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "who", "10.224.0.4:61000", "--to",
                            "10.42.1.10:443", "--kubeconfig", str(kubeconfig), "-o", "json"],
                           capture_output=True, text=True, timeout=120, env=_env(tmp_path))
        refused = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "who", "10.224.0.4:61000",
                                  "--kubeconfig", str(kubeconfig), "--no-capture"], capture_output=True, text=True,
                                 timeout=120, env=_env(tmp_path))
    assert w.returncode == 0, w.stderr
    doc = json.loads(w.stdout)
    assert doc["node"] == N0 and doc["exact"] and doc["matches"][0]["pod"] == "default/web-0-0"
    assert any("read live through agent-pod/" in n for n in doc["notes"])
    assert p0.calls and not p1.calls            # only the node that owns the address was exec'd into
    assert any("nf_conntrack" in " ".join(c) for c in p0.calls)
    assert refused.returncode == 2 and "E262 --no-capture" in refused.stderr
