"""`who` without the kernel: the example bundle, hand-made bundles and tables, the JSON contract,
inputs that must be refused, and a bundle's conntrack.txt through read, write and --redact."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from cluster.bundlekit import kube_list, node, pod

from masqctl.analysis.who import Endpoint, WhoRequest, parse_address, who_in_table, who_on_snapshot
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle, write_bundle
from masqctl.errors import InputError, UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB_SPOKE = os.path.join(ROOT, "examples", "hub-spoke")
NODE0 = "aks-system-20931744-vmss000000"
KEYS = ["schema", "observed", "node", "to", "matches", "candidates", "exact", "notes"]
MATCH_KEYS = {"proto", "orig_src", "orig_sport", "orig_dst", "orig_dport", "reply_dst", "reply_dport", "state",
              "timeout", "assured", "pod", "owner"}


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", "who", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, input=stdin)


def line(src: str, sport: int, dst: str, dport: int, seen: str, seen_port: int, proto: str = "tcp",
         state: str = "ESTABLISHED") -> str:
    num = {"tcp": 6, "udp": 17}[proto]
    st = f" {state}" if proto == "tcp" else ""
    return (f"ipv4     2 {proto:<8} {num} 431999{st} src={src} dst={dst} sport={sport} dport={dport} src={dst} "
            f"dst={seen} sport={dport} dport={seen_port} [ASSURED] mark=0 zone=0 use=2")


def bundle(tmp_path, tables: dict[str, str], pods: list[dict], nodes: list[dict]) -> str:
    path = tmp_path / "b"
    path.mkdir()
    (path / "pods.yaml").write_text(yaml.safe_dump(kube_list(pods)))
    (path / "nodes.yaml").write_text(yaml.safe_dump(kube_list(nodes)))
    for name, text in tables.items():
        (path / "nodes" / name).mkdir(parents=True)
        (path / "nodes" / name / "conntrack.txt").write_text(text)
    return str(path)


# --------------------------------------------------------------------------- the field report's case


def test_the_logged_node_address_and_port_name_the_pod():
    r = cli("10.40.0.4:51234", "--to", "10.42.1.10:443", "--bundle", HUB_SPOKE, "-o", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == KEYS
    assert doc["observed"] == {"ip": "10.40.0.4", "port": 51234} and doc["to"] == {"ip": "10.42.1.10", "port": 443}
    assert doc["node"] == NODE0 and doc["exact"] is True
    (m,) = doc["matches"]
    assert set(m) == MATCH_KEYS
    assert m == {"proto": "tcp", "orig_src": "10.40.0.7", "orig_sport": 51234, "orig_dst": "10.42.1.10",
                 "orig_dport": 443, "reply_dst": "10.40.0.4", "reply_dport": 51234, "state": "ESTABLISHED",
                 "timeout": 431999, "assured": True, "pod": "billing/invoice-client-6d4f9b8c7-t5rjp",
                 "owner": "ReplicaSet billing/invoice-client-6d4f9b8c7"}
    assert [c["pod"] for c in doc["candidates"]] == ["billing/invoice-client-6d4f9b8c7-t5rjp"]


def test_a_translated_port_leads_to_the_pod_that_sent_from_another_port():
    table = read_bundle(HUB_SPOKE).captures[NODE0].conntrack
    entry = next(ln for ln in table.splitlines() if "src=10.40.0.9 " in ln and "sport=51234 " in ln)
    seen_port = int(entry.rsplit("dport=", 1)[1].split()[0])
    assert seen_port != 51234                       # the node translated it: 51234 was taken
    r = cli(f"10.40.0.4:{seen_port}", "--bundle", HUB_SPOKE)
    assert r.returncode == 0
    first = r.stdout.splitlines()[0]
    assert "orders/orders-api-5b7c9d8f6-kq2xv" in first and "10.40.0.9:51234" in first
    assert "source port translated from 51234" in r.stdout


def test_without_a_port_every_connection_is_a_candidate():
    doc = json.loads(cli("10.40.0.4", "--to", "10.42.1.10:443", "--bundle", HUB_SPOKE, "-o", "json").stdout)
    assert doc["exact"] is False and len(doc["matches"]) == 6
    assert [c["pod"] for c in doc["candidates"]] == ["billing/invoice-client-6d4f9b8c7-t5rjp",
                                                     "orders/orders-api-5b7c9d8f6-kq2xv"]
    node_own = [m for m in doc["matches"] if m["orig_src"] == "10.40.0.4"]
    assert node_own and node_own[0]["pod"] is None
    assert any("OBSERVED:PORT" in n for n in doc["notes"])


def test_proto_filters():
    doc = json.loads(cli("10.40.0.4", "--proto", "udp", "--bundle", HUB_SPOKE, "-o", "json").stdout)
    assert {m["pod"] for m in doc["matches"]} == {"kube-system/coredns-6bd9d8c8b6-xl7nq"}
    assert {m["orig_dst"] for m in doc["matches"]} == {"168.63.129.16"}


def test_no_match_explains_and_lists_the_pods_of_the_node():
    r = cli("10.40.0.4:1", "--to", "10.42.1.10:443", "--bundle", HUB_SPOKE, "-o", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["matches"] == [] and doc["exact"] is False and doc["node"] == NODE0
    pods = {c["pod"] for c in doc["candidates"]}
    assert "orders/orders-api-5b7c9d8f6-kq2xv" in pods and "kube-system/kube-proxy-48e30" in pods
    assert "orders/orders-api-5b7c9d8f6-w8d4n" not in pods           # on the other node
    notes = " ".join(doc["notes"])
    assert "2 minutes" in notes and "5 days" in notes and "UDP" in notes and "preserve-source-ip" in notes


def test_a_node_without_a_table_is_unknown_not_empty():
    r = cli("10.40.0.35:40000", "--bundle", HUB_SPOKE, "-o", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["node"] == "aks-system-20931744-vmss000001" and doc["matches"] == []
    assert any("no connection-tracking table" in n and "collect --conntrack" in n for n in doc["notes"])
    human = cli("10.40.0.35:40000", "--bundle", HUB_SPOKE)
    assert human.stdout.startswith("unknown: no connection-tracking table")


def test_a_pod_ip_that_was_not_masqueraded_is_looked_up_on_the_pods_node(tmp_path):
    t0 = line("10.40.0.9", 40000, "10.41.0.20", 443, "10.40.0.9", 40000)
    b = bundle(tmp_path, {"n0": t0, "n1": line("10.40.0.40", 40000, "10.41.0.20", 443, "10.40.0.40", 40000)},
               [pod("api-1", "n0", "10.40.0.9"), pod("api-2", "n1", "10.40.0.40")],
               [node("n0", "10.40.0.4"), node("n1", "10.40.0.35")])
    doc = json.loads(cli("10.40.0.40:40000", "--bundle", b, "-o", "json").stdout)
    assert doc["node"] == "n1" and [m["pod"] for m in doc["matches"]] == ["default/api-2"] and doc["exact"]
    assert doc["matches"][0]["owner"] is None      # no ownerReferences


def test_an_address_no_node_has_is_searched_in_every_table(tmp_path):
    b = bundle(tmp_path, {"n0": line("10.40.0.9", 40000, "10.42.1.10", 443, "192.0.2.7", 61000),
                          "n1": line("10.40.0.40", 40001, "10.42.1.10", 443, "10.40.0.35", 61000)},
               [pod("api-1", "n0", "10.40.0.9"), pod("api-2", "n1", "10.40.0.40")],
               [node("n0", "10.40.0.4"), node("n1", "10.40.0.35")])
    doc = json.loads(cli("192.0.2.7:61000", "--bundle", b, "-o", "json").stdout)
    assert doc["node"] == "n0" and [m["pod"] for m in doc["matches"]] == ["default/api-1"]
    assert "no node address or pod IP" in doc["notes"][0]


def test_two_pods_with_one_ip_are_not_guessed_between(tmp_path):
    b = bundle(tmp_path, {"n0": line("10.40.0.9", 40000, "10.42.1.10", 443, "10.40.0.4", 40000)},
               [pod("a", "n0", "10.40.0.9"), pod("b", "n0", "10.40.0.9")], [node("n0", "10.40.0.4")])
    doc = json.loads(cli("10.40.0.4:40000", "--bundle", b, "-o", "json").stdout)
    assert doc["matches"][0]["pod"] is None
    assert any("several pods" in n for n in doc["notes"])


def test_ended_pods_do_not_shadow_the_live_one(tmp_path):
    b = bundle(tmp_path, {"n0": line("10.40.0.9", 40000, "10.42.1.10", 443, "10.40.0.4", 40000)},
               [pod("old", "n0", "10.40.0.9", phase="Succeeded"), pod("new", "n0", "10.40.0.9")],
               [node("n0", "10.40.0.4")])
    doc = json.loads(cli("10.40.0.4:40000", "--bundle", b, "-o", "json").stdout)
    assert doc["matches"][0]["pod"] == "default/new"


def test_dnat_the_destination_is_matched_on_either_side():
    table = ("ipv4     2 tcp      6 100 ESTABLISHED src=10.40.0.9 dst=10.0.0.80 sport=40000 dport=80 "
             "src=10.42.1.10 dst=10.40.0.4 sport=443 dport=40000 [ASSURED] mark=0 zone=0 use=2")
    for to in ("10.0.0.80:80", "10.42.1.10:443"):
        r = who_in_table(table, "t", WhoRequest(parse_address("10.40.0.4:40000", "O"), parse_address(to, "--to")))
        assert len(r.matches) == 1, to
    r = who_in_table(table, "t", WhoRequest(parse_address("10.40.0.4:40000", "O"), parse_address("10.0.0.80:443",
                                                                                                  "--to")))
    assert r.matches == []


def test_ipv6_addresses_in_any_spelling():
    text = ("ipv6     10 tcp      6 59 ESTABLISHED src=fd00:0009:0000:0000:0000:0000:0000:0001 "
            "dst=fd00:0009:0000:0000:0000:0000:0000:0002 sport=57888 dport=443 "
            "src=fd00:0009:0000:0000:0000:0000:0000:0002 dst=fd00:0009:0000:0000:0000:0000:0000:0004 sport=443 "
            "dport=61000 [ASSURED] mark=0 zone=0 use=2\n")
    r = cli("[fd00:9:0::4]:61000", "--to", "[fd00:9::2]:443", "--conntrack", "-", "-o", "json", stdin=text)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["observed"] == {"ip": "fd00:9::4", "port": 61000}
    assert doc["matches"][0]["orig_src"] == "fd00:9::1" and doc["matches"][0]["orig_sport"] == 57888


def test_duplicates_from_overlapping_outputs_are_one_connection():
    text = "\n".join([line("10.40.0.9", 40000, "10.42.1.10", 443, "10.40.0.4", 40000)] * 2)
    r = who_in_table(text, "t", WhoRequest(Endpoint("10.40.0.4", 40000)))
    assert len(r.matches) == 1 and r.exact
    assert any("listed twice" in n for n in r.notes)


# --------------------------------------------------------------------------- inputs refused (exit 2)


@pytest.mark.parametrize("args, code, where", [
    (["10.40.0.4:99999", "--conntrack", "x"], "E260", "OBSERVED"),
    (["node-1", "--conntrack", "x"], "E260", "OBSERVED"),
    (["0.0.0.0", "--conntrack", "x"], "E260", "OBSERVED"),
    (["10.40.0.4", "--to", "10.42.1.10:0", "--conntrack", "x"], "E260", "--to"),
    (["10.40.0.4", "--to", "fd00::1", "--conntrack", "x"], "E261", "--to"),
    (["10.40.0.4", "--proto", "gre", "--conntrack", "x"], "E261", "--proto"),
    (["10.40.0.4"], "E262", "OBSERVED"),
    (["10.40.0.4", "--conntrack", "x", "--bundle", HUB_SPOKE], "E262", "--conntrack"),
    (["10.40.0.4", "--conntrack", "/nonexistent/ct.txt"], "E310", "/nonexistent/ct.txt"),
    (["10.40.0.4", "--conntrack", HUB_SPOKE], "E310", HUB_SPOKE),
])
def test_bad_input_is_a_coded_error_and_exit_2(args, code, where):
    r = cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"{code} {where}" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert r.stdout == ""


def test_a_malformed_table_line_names_the_file_and_line(tmp_path):
    bad = line("10.40.0.9", 40000, "10.42.1.10", 443, "10.40.0.4", 40000) + "\ntcp 6 1 src=10.0.0.1\n"
    f = tmp_path / "ct.txt"
    f.write_text(bad)
    r = cli("10.40.0.4", "--conntrack", str(f))
    assert r.returncode == 2 and f"E318 {f} line 2:" in r.stderr
    b = bundle(tmp_path, {"n0": bad}, [], [node("n0", "10.40.0.4")])
    r = cli("10.40.0.4", "--bundle", b)
    assert r.returncode == 2 and "E318 nodes/n0/conntrack.txt line 2:" in r.stderr
    f.write_bytes(b"\x00\x01binary")
    r = cli("10.40.0.4", "--conntrack", str(f))
    assert r.returncode == 2 and "E311" in r.stderr


def test_request_checks():
    with pytest.raises(UsageError):
        parse_address("[fd00::1]x", "OBSERVED")
    with pytest.raises(UsageError):
        parse_address("10.0.0.1:", "OBSERVED")
    assert parse_address(" [fd00::1]:443 ", "x") == Endpoint("fd00::1", 443)
    assert parse_address("fd00::1", "x") == Endpoint("fd00::1", None)


# --------------------------------------------------------------------------- bundles


def test_conntrack_txt_survives_write_and_redaction(tmp_path):
    raw = read_bundle(HUB_SPOKE)
    original = raw.captures[NODE0].conntrack
    assert original and raw.captures["aks-system-20931744-vmss000001"].conntrack is None
    write_bundle(raw, str(tmp_path / "plain"))
    again = read_bundle(str(tmp_path / "plain"))
    assert again.captures[NODE0].conntrack == original
    write_bundle(raw, str(tmp_path / "redacted"), redact=True)
    red = read_bundle(str(tmp_path / "redacted"))
    assert red.captures[NODE0].conntrack == original     # addresses and ports are the evidence: kept
    manifest = json.loads((tmp_path / "redacted" / "manifest.json").read_text())
    assert f"nodes/{NODE0}/conntrack.txt" in manifest["files"]


def test_redaction_reaches_identifiers_inside_the_table(tmp_path):
    raw = read_bundle(HUB_SPOKE)
    guid = "3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c"
    cap = raw.captures[NODE0]
    from dataclasses import replace
    raw.captures[NODE0] = replace(cap, conntrack=cap.conntrack.replace("mark=0 zone=0", f"secctx={guid} mark=0 zone=0",
                                                                       1))
    write_bundle(raw, str(tmp_path / "r"), redact=True)
    text = read_bundle(str(tmp_path / "r")).captures[NODE0].conntrack
    assert guid not in text and "secctx=redacted-" in text
    snap = build_snapshot(read_bundle(str(tmp_path / "r")))
    r = who_on_snapshot(snap, WhoRequest(Endpoint("10.40.0.4", 51234)))
    assert r.exact and r.matches[0].pod.name == "invoice-client-6d4f9b8c7-t5rjp"


def test_an_oversized_conntrack_txt_is_refused_unread(tmp_path):
    b = bundle(tmp_path, {"n0": "x" * 2048}, [], [node("n0", "10.40.0.4")])
    with pytest.raises(InputError) as info:
        read_bundle(b, max_file_bytes=1024)
    assert info.value.code == "E340" and "conntrack.txt" in info.value.input


def test_a_pod_ip_with_no_match_does_not_point_at_preserve_source_ip(tmp_path):
    b = bundle(tmp_path, {"n0": line("10.40.0.9", 40000, "10.41.0.20", 443, "10.40.0.9", 40000)},
               [pod("api-1", "n0", "10.40.0.9")], [node("n0", "10.40.0.4")])
    r = cli("10.40.0.9:1", "--bundle", b, "-o", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["node"] == "n0" and not any("preserve-source-ip" in n for n in doc["notes"])
    r = cli("10.40.0.4:1", "--bundle", b, "-o", "json")
    assert any("preserve-source-ip" in n for n in json.loads(r.stdout)["notes"])
