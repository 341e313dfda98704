"""`who --watch`: each new match as it appears, once; Ctrl-C (or --for) ends it with 0 when something
matched and 1 when nothing did. Offline against a file the test appends to, following a real
`conntrack -E` in a node namespace while its pods connect, and live against the local API server
whose node table changes between readings."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time

import pytest
from kubeapi import KubeAPI, objects
from netns import requires_netns
from whonet import HUB, NODE_IP, Estate, Pod

from cluster.kubekit import agent_programs

CLI = [sys.executable, "-m", "masqctl.cli.main", "who"]


def line(src: str, sport: int, dst: str, dport: int, seen: str, seen_port: int, proto: str = "tcp") -> str:
    state = " ESTABLISHED" if proto == "tcp" else ""
    number = {"tcp": 6, "udp": 17}[proto]
    return (f"ipv4     2 {proto}      {number} 431999{state} src={src} dst={dst} sport={sport} dport={dport} "
            f"src={dst} dst={seen} sport={dport} dport={seen_port} [ASSURED] mark=0 zone=0 use=2\n")


class Reader:
    """Lines of a child's stdout as they come, with a timeout."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.sel = selectors.DefaultSelector()
        self.sel.register(proc.stdout, selectors.EVENT_READ)
        self.buf = b""

    def lines(self, count: int, timeout: float = 30) -> list[str]:
        out: list[str] = []
        end = time.monotonic() + timeout
        while len(out) < count:
            while b"\n" in self.buf and len(out) < count:
                one, self.buf = self.buf.split(b"\n", 1)
                out.append(one.decode())
            if len(out) >= count:
                break
            left = end - time.monotonic()
            assert left > 0, f"only {out} within {timeout} s"
            if self.sel.select(left):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"stdout ended after {out}: {self.proc.stderr.read().decode()}"
                self.buf += chunk
        return out


def start(*args: str, **kw) -> tuple[subprocess.Popen, Reader]:
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    return proc, Reader(proc)


def stop(proc: subprocess.Popen, out: "Reader | None" = None) -> tuple[int, str]:
    """Ctrl-C; the exit status and stderr (what stdout still held goes to ``out.buf``)."""
    proc.send_signal(signal.SIGINT)
    try:
        rest, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    if out is not None:
        out.buf += rest
    return proc.returncode, err.decode()


def test_a_watched_file_prints_each_new_match_once_and_ctrl_c_exits_0(tmp_path):
    table = tmp_path / "ct.txt"
    first = line("10.40.0.7", 51234, "10.42.1.10", 443, "10.40.0.4", 51234)
    table.write_text(first + line("10.40.0.8", 40000, "10.0.0.10", 53, "10.40.0.5", 40000, "udp"))
    proc, out = start("10.40.0.4", "--to", "10.42.1.10:443", "--conntrack", str(table), "--watch", "0.2",
                      "-o", "json")
    try:
        (doc,) = [json.loads(x) for x in out.lines(1)]
        assert doc["match"]["orig_src"] == "10.40.0.7" and doc["observed"] == {"ip": "10.40.0.4", "port": None}
        assert doc["seen_at"].endswith("Z") and doc["node"] is None
        second = line("10.40.0.9", 51234, "10.42.1.10", 443, "10.40.0.4", 24762)
        with open(table, "a") as fh:
            fh.write(second[:40])          # a writer half-way through a line: not read yet
            fh.flush()
            time.sleep(0.5)
            fh.write(second[40:] + first)  # the first connection again: not printed again
        (doc,) = [json.loads(x) for x in out.lines(1)]
        assert doc["match"]["orig_src"] == "10.40.0.9" and doc["match"]["reply_dport"] == 24762
        time.sleep(0.6)
    finally:
        rc, err = stop(proc, out)
    assert rc == 0, err
    assert out.buf == b"", out.buf            # nothing more: each connection once
    assert "2 connections to 10.40.0.4 seen" in err and "Traceback" not in err


def test_nothing_seen_exits_1_by_ctrl_c_or_by_the_bound(tmp_path):
    table = tmp_path / "ct.txt"
    table.write_text(line("10.40.0.7", 51234, "10.42.1.10", 443, "10.40.0.4", 51234))
    proc, _ = start("10.40.0.4:1", "--conntrack", str(table), "--watch", "0.2")
    time.sleep(1.5)
    rc, err = stop(proc)
    assert rc == 1 and "0 connections" in err and "Traceback" not in err
    t0 = time.monotonic()
    r = subprocess.run([*CLI, "10.40.0.4:1", "--conntrack", str(table), "--watch", "0.2", "--for", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "" and time.monotonic() - t0 < 20
    r = subprocess.run([*CLI, "10.40.0.4", "--conntrack", str(table), "--watch", "0.2", "--for", "0.5"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "10.40.0.7:51234" in r.stdout and "pod not known" in r.stdout


def test_a_bad_line_appearing_in_a_watched_file_is_e318(tmp_path):
    table = tmp_path / "ct.txt"
    table.write_text(line("10.40.0.7", 51234, "10.42.1.10", 443, "10.40.0.4", 51234))
    proc, out = start("10.40.0.4", "--conntrack", str(table), "--watch", "0.2")
    out.lines(1)
    with open(table, "a") as fh:
        fh.write("ipv4 2 tcp 6 1 src=1.2.3.400 dst=1.2.3.5 sport=1 dport=9 src=1.2.3.5 dst=1.2.3.4 sport=1 dport=1\n")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and f"E318 {table} line 2" in err.decode() and "Traceback" not in err.decode()


@pytest.mark.parametrize("args, code, flag", [
    (["--watch", "0"], "E364", "--watch"),
    (["--watch", "-1"], "E364", "--watch"),
    (["--watch", "nan"], "E364", "--watch"),
    (["--watch", "0.01"], "E364", "--watch"),
    (["--for", "5"], "E364", "--for"),
    (["--watch", "1", "--for", "0"], "E364", "--for"),
    (["--watch", "1", "--bundle", "examples/hub-spoke"], "E363", "--watch"),
])
def test_watch_flags_that_make_no_sense_are_refused(args, code, flag, tmp_path):
    table = tmp_path / "ct.txt"
    table.write_text("")
    conntrack = [] if "--bundle" in args else ["--conntrack", str(table)]
    r = subprocess.run([*CLI, "10.40.0.4", *conntrack, *args], capture_output=True, text=True, timeout=60,
                       cwd=os.path.join(os.path.dirname(__file__), "..", ".."))
    assert r.returncode == 2 and f"{code} {flag}" in r.stderr, r.stderr


def test_a_stream_is_followed_line_by_line_to_its_end():
    """``conntrack -E | masqctl who … --conntrack - --watch 1``: event lines as they come."""
    seen = line("10.40.0.7", 51234, "10.42.1.10", 443, "10.40.0.4", 51234)
    proc, out = start("10.40.0.4:51234", "--conntrack", "-", "--watch", "1", "-o", "json", stdin=subprocess.PIPE)
    proc.stdin.write(b"    [NEW] " + seen.replace(" 431999 ESTABLISHED", " 120 SYN_SENT").encode())
    proc.stdin.flush()
    (doc,) = [json.loads(x) for x in out.lines(1)]
    assert doc["match"]["state"] == "SYN_SENT"
    proc.stdin.write(b" [UPDATE] " + seen.encode())      # the same connection, later: not again
    proc.stdin.close()
    proc.stdin = None
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out.buf + rest == b"" and "1 connection to" in err.decode()


PODS = [Pod("orders", "orders-api-5b7c9d8f6-kq2xv", "10.40.0.9"),
        Pod("billing", "invoice-client-6d4f9b8c7-t5rjp", "10.40.0.7")]


@requires_netns
@pytest.mark.netns
@pytest.mark.skipif(shutil.which("conntrack") is None, reason="conntrack is not installed")
def test_following_conntrack_e_on_a_node_names_each_connection_made_during_the_watch():
    with Estate(PODS, destinations=(HUB,)) as e:
        events = e.node.popen("conntrack", "-E", "-e", "NEW,UPDATE", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc, out = start(NODE_IP, "--to", f"{HUB}:443", "--conntrack", "-", "--watch", "1", "-o", "json",
                          stdin=events.stdout)
        events.stdout.close()
        try:
            time.sleep(1.0)            # conntrack -E has joined the event group
            log = e.traffic({PODS[0].name: [("tcp", HUB, 0), ("udp", HUB, 0)], PODS[1].name: [("tcp", HUB, 0)]})
            docs = [json.loads(x) for x in out.lines(len(log))]
        finally:
            events.terminate()
            events.wait(timeout=30)
            rest, err = proc.communicate(timeout=30)
            out.buf += rest
    assert proc.returncode == 0, err
    by_ip = {p.ip: p for p in PODS}
    got = sorted((d["match"]["proto"], d["match"]["reply_dport"], d["match"]["orig_src"]) for d in docs)
    want = sorted((r["proto"], r["port"], by_ip[next(p.ip for p in PODS if p.name == r["who"])].ip) for r in log)
    assert got == want, (got, want)
    assert all(d["match"]["reply_dst"] == NODE_IP for d in docs)
    assert out.buf == b""      # the SYN_RECV / ESTABLISHED updates of each connection: not again


N0 = "aks-nodepool1-00000000"
CONN = line("10.100.0.10", 40000, "10.42.1.10", 443, "10.224.0.4", 61000)


def test_live_watch_reads_the_nodes_table_again_and_names_the_pod(tmp_path):
    readings = []

    def cat(argv):
        readings.append(argv)
        return "" if len(readings) < 3 else CONN      # the connection appears at the third reading

    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["HOME"] = str(tmp_path)
    with KubeAPI() as api:
        objects.small_cluster(api, 2)
        programs = agent_programs(cat=cat)
        api.on_exec(programs, node=N0)
        other = agent_programs(cat=cat)
        api.on_exec(other, node="aks-nodepool1-00000001")
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        proc, out = start("10.224.0.4", "--to", "10.42.1.10:443", "--kubeconfig", str(kubeconfig), "--watch", "0.3",
                          "-o", "json", env=env)
        try:
            (doc,) = [json.loads(x) for x in out.lines(1, timeout=60)]
            time.sleep(1.0)
        finally:
            rc, err = stop(proc, out)
    assert rc == 0, err
    assert doc["node"] == N0 and doc["match"]["pod"] == "default/web-0-0" and doc["match"]["reply_dport"] == 61000
    assert len(readings) >= 3 and not other.calls        # only the node that owns the address, again and again
    assert out.buf == b""
