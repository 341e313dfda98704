"""Ground truth for `who`: real connections, the node's real table, the pod named by `who`.

Several pods connect at once, over TCP and UDP, to the hub (masqueraded by the agent's rules) and
to an address inside the VNet (not masqueraded); two pods use the same source port, so the node
must translate one of them to another port. The destination writes down the address and port
each connection arrived from and which pod sent it (the pod's name is the payload). For every
line of that log, `who SEEN_IP:SEEN_PORT --to DST:443` over the node's table — as
/proc/net/nf_conntrack, `conntrack -L` (+ `-f ipv6`, overlapping) and `conntrack -L -o extended`
print it — must name exactly that pod.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from netns import requires_netns
from whonet import HUB, IN_VNET, NODE_IP, Estate, Pod, tempdir, write_bundle

from masqctl.analysis.who import Endpoint, WhoRequest, who_on_snapshot
from masqctl.cluster.gather import gather
from masqctl.cluster.options import GatherOptions

NODE = "aks-system-20931744-vmss000000"
PODS = [Pod("orders", "orders-api-5b7c9d8f6-kq2xv", "10.40.0.9"),
        Pod("billing", "invoice-client-6d4f9b8c7-t5rjp", "10.40.0.7"),
        Pod("orders", "orders-worker-7c8d9e0f1-x2b4n", "10.40.0.12")]
SAME_PORT = 40123

pytestmark = [requires_netns, pytest.mark.netns,
              pytest.mark.skipif(shutil.which("conntrack") is None, reason="conntrack is not installed")]


@pytest.fixture(scope="module")
def estate():
    plans = {
        PODS[0].name: [("tcp", HUB, SAME_PORT), ("tcp", HUB, 0), ("udp", HUB, 0), ("tcp", IN_VNET, 0)],
        PODS[1].name: [("tcp", HUB, SAME_PORT), ("udp", HUB, SAME_PORT), ("udp", IN_VNET, 0)],
        PODS[2].name: [("tcp", HUB, 0), ("tcp-closed", HUB, 0), ("udp", HUB, 0)],   # one closed by the pod
    }
    with Estate(PODS) as e:
        log = e.traffic(plans, node_plan=[("tcp", HUB, 0)])
        tables = e.tables()
        yield log, tables
    for path in _made:
        shutil.rmtree(path, ignore_errors=True)


_made: list[str] = []


def bundle_of(text: str) -> str:
    path = write_bundle(tempdir(), PODS, NODE, text)
    _made.append(path)
    return path


def test_the_traffic_went_as_planned(estate):
    log, _ = estate
    assert len(log) == 4 + 3 + 3 + 1
    assert {r["ip"] for r in log if r["to"] == HUB} == {NODE_IP}, log      # masqueraded to the node's address
    assert {(r["who"], r["ip"]) for r in log if r["to"] == IN_VNET} == {   # not masqueraded: the pod's own
        (PODS[0].name, PODS[0].ip), (PODS[1].name, PODS[1].ip)}
    same = [r for r in log if r["proto"] == "tcp" and r["to"] == HUB and r["who"] in (PODS[0].name, PODS[1].name)]
    assert len({r["port"] for r in same}) == len(same) == 3  # the node told the same-port connections apart
    assert any(r["port"] != SAME_PORT for r in same)


@pytest.mark.parametrize("shape", ["proc", "conntrack-L", "extended"])
def test_the_table_holds_every_connection_in_each_shape(estate, shape):
    from masqctl.netfilter.conntrack import parse_table

    log, tables = estate
    table = parse_table(tables[shape], shape)
    seen = {(e.proto, e.reply_dst, e.reply_dport) for e in table.entries}
    assert all((r["proto"], r["ip"], r["port"]) in seen for r in log)
    states = {e.state for e in table.entries if e.proto == "tcp"}
    assert "ESTABLISHED" in states and states - {"ESTABLISHED"}, states   # the closed one is on its way out


@pytest.mark.parametrize("shape", ["proc", "conntrack-L", "extended"])
def test_who_names_exactly_the_pod_that_opened_each_connection(estate, shape):
    log, tables = estate
    snapshot = gather(GatherOptions(bundle=bundle_of(tables[shape])))
    by_name = {p.name: p for p in PODS}
    for record in log:
        dst = record["to"]
        req = WhoRequest(observed=Endpoint(record["ip"], record["port"]), to=Endpoint(dst, 443),
                         proto=record["proto"])
        result = who_on_snapshot(snapshot, req)
        assert result.node == NODE, (record, result.notes)
        assert len(result.matches) == 1 and result.exact, (record, [m.to_dict() for m in result.matches])
        m = result.matches[0]
        if record["who"] == "node":
            assert m.pod is None and "address of node" in m.why
            continue
        pod = by_name[record["who"]]
        assert f"{m.pod.namespace}/{m.pod.name}" == pod.ref, record
        assert m.entry.orig_src == pod.ip
        assert m.entry.masqueraded == (record["ip"] == NODE_IP)
        assert m.to_dict()["owner"] == f"ReplicaSet {pod.namespace}/{pod.name.rsplit('-', 1)[0]}"


def test_the_cli_answers_from_the_bundle_and_from_the_file(estate, tmp_path):
    log, tables = estate
    record = next(r for r in log if r["who"] == PODS[1].name and r["proto"] == "tcp")
    observed = f"{record['ip']}:{record['port']}"
    bundle = bundle_of(tables["proc"])
    cli = [sys.executable, "-m", "masqctl.cli.main", "who", observed, "--to", f"{HUB}:443"]
    r = subprocess.run([*cli, "--bundle", bundle, "-o", "json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["node"] == NODE and doc["exact"] is True
    assert [m["pod"] for m in doc["matches"]] == [PODS[1].ref]
    assert doc["matches"][0]["reply_dst"] == NODE_IP and doc["matches"][0]["reply_dport"] == record["port"]
    human = subprocess.run([*cli, "--bundle", bundle], capture_output=True, text=True, timeout=120)
    assert human.returncode == 0 and human.stdout.splitlines()[0].find(PODS[1].ref) > 0, human.stdout
    table = tmp_path / "ct.txt"
    table.write_text(tables["conntrack-L"])
    offline = subprocess.run([*cli, "--conntrack", str(table), "-o", "json"], capture_output=True, text=True,
                             timeout=120)
    assert offline.returncode == 0
    doc = json.loads(offline.stdout)
    assert doc["node"] is None and [m["orig_src"] for m in doc["matches"]] == [PODS[1].ip]
    assert doc["matches"][0]["pod"] is None       # no snapshot: the IP, not a pod
    gone = subprocess.run([*cli[:4], f"{NODE_IP}:1", "--to", f"{HUB}:443", "--bundle", bundle, "-o", "json"],
                          capture_output=True, text=True, timeout=120)
    assert gone.returncode == 1
    doc = json.loads(gone.stdout)
    assert doc["matches"] == [] and doc["exact"] is False
    assert {c["pod"] for c in doc["candidates"]} == {p.ref for p in PODS}
    assert any("2 minutes" in n for n in doc["notes"]) and any("preserve-source-ip" in n for n in doc["notes"])
