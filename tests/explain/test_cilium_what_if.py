"""``explain --config-dir DIR --flavor cilium|azure-cilium`` and ``node-agent --once --dry-run`` with
those flavours: the map Cilium would load, and its decision for one flow."""

from __future__ import annotations

import json

import pytest
from clusterkit.bundle import run_cli


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - 10.50.0.0/16\n")
    (tmp_path / "ip-masq-agent-reconciled").write_text("MasqLinkLocal: true\nNonMasqueradeCIDRs:\n- 192.168.0.0/16\n")
    return str(tmp_path)


def explain(*args):
    r = run_cli("explain", *args, "-o", "json")
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip().startswith("{") else r.stderr)


def test_azure_cilium_in_map(folder):
    rc, d = explain("192.168.0.5", "10.50.3.3:443", "--config-dir", folder, "--flavor", "azure-cilium",
                    "--node-ip", "10.224.0.4")
    assert rc == 0 and d["masqueraded"] is False
    assert "map entry 10.50.0.0/16 <- ip-masq-agent line 2" in d["summary"]


def test_cilium_reads_one_file_and_the_native_cidr(folder):
    # cilium (no merger) reads only ip-masq-agent: 192.168.0.0/16 from the -reconciled file is not in its map,
    # but --native-routing-cidr exempts it before the map
    rc, d = explain("192.168.0.5", "192.168.7.7:443", "--config-dir", folder, "--flavor", "cilium",
                    "--node-ip", "10.224.0.4", "--native-routing-cidr", "192.168.0.0/16")
    assert rc == 0 and d["masqueraded"] is False and "ipv4-native-routing-cidr 192.168.0.0/16" in d["summary"]
    rc, d = explain("192.168.0.5", "192.168.7.7:443", "--config-dir", folder, "--flavor", "cilium",
                    "--node-ip", "10.224.0.4")
    assert rc == 0 and d["masqueraded"] is True and d["source_ip_seen"] == "10.224.0.4"


def test_flags_need_a_cilium_flavour(folder):
    r = run_cli("explain", "192.168.0.5", "8.8.8.8", "--config-dir", folder, "--routing-mode", "tunnel")
    assert r.returncode == 2 and "E232" in r.stderr
    r = run_cli("explain", "192.168.0.5", "8.8.8.8", "--config-dir", folder, "--flavor", "cilium",
                "--native-routing-cidr", "nope")
    assert r.returncode == 2 and "E234" in r.stderr and "--native-routing-cidr" in r.stderr
    r = run_cli("explain", "192.168.0.5", "8.8.8.8", "--config-dir", folder, "--flavor", "cilium",
                "--routing-mode", "vxlan")
    assert r.returncode == 2 and "E233" in r.stderr


def test_node_agent_dry_run_prints_the_map(folder, tmp_path):
    r = run_cli("node-agent", "--once", "--dry-run", "--flavor", "azure-cilium", "--config-dir", folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "10.50.0.0/16\n192.168.0.0/16\n"          # masqLinkLocal: true (reconciled)
    r = run_cli("node-agent", "--once", "--dry-run", "--flavor", "cilium", "--config-dir", folder)
    assert r.stdout == "10.50.0.0/16\n169.254.0.0/16\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("node-agent", "--once", "--dry-run", "--flavor", "cilium", "--config-dir", str(empty))
    assert r.stdout.splitlines() == ["10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
                                     "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
                                     "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4"]
    r = run_cli("node-agent", "--once", "--flavor", "cilium", "--config-dir", folder)
    assert r.returncode == 2 and "E231" in r.stderr


@pytest.mark.parametrize("extra, masq, seen, words", [
    # bpf/lib/nat.h snat_v4_needs_masquerade(), the remote-node branch (the cases of
    # tests/analysis/test_cilium_bpf_order.py): native routing keeps the pod IP toward a remote node ...
    ([], False, "192.168.0.5", "traffic to a remote node in native routing"),
    # ... unless enable-remote-node-masquerade (CONFIG(enable_remote_node_masquerade)) ...
    (["--remote-node-masquerade"], True, "10.224.0.4", "with enable-remote-node-masquerade"),
    # ... and in tunnel mode the packet leaves unencapsulated and is masqueraded as any other
    (["--routing-mode", "tunnel"], True, "10.224.0.4", "SNAT to the node IP 10.224.0.4"),
])
def test_remote_node_what_if(folder, extra, masq, seen, words):
    rc, d = explain("192.168.0.5", "10.224.0.9:10250", "--config-dir", folder, "--flavor", "cilium",
                    "--node-ip", "10.224.0.4", "--remote-node", *extra)
    assert rc == 0 and d["masqueraded"] is masq and d["source_ip_seen"] == seen and words in d["summary"]
    assert any("DST is another node of the cluster (--remote-node)" in n for n in d["notes"])
    rc, d = explain("192.168.0.5", "10.224.0.9:10250", "--config-dir", folder, "--flavor", "cilium",
                    "--node-ip", "10.224.0.4", *extra)          # without --remote-node: not a node, said so
    assert rc == 0 and d["masqueraded"] is True and any("DST is not a node of the cluster" in n for n in d["notes"])
    r = run_cli("explain", "192.168.0.5", "10.224.0.9", "--config-dir", folder, "--remote-node")
    assert r.returncode == 2 and "E232" in r.stderr
