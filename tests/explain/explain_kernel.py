"""Kernel ground truth for `explain`: load rules into a node namespace, send real UDP and TCP
flows from a pod namespace, and read the source address each flow arrived with.

Built on the shared harness (tests/netns.py). One sender and one listener per namespace
handle a whole batch of flows: each flow gets its own final port, so the port a datagram (or a
TCP connection) arrives on names the flow, and a new socket per flow makes a new conntrack
entry, so nat is walked for each one.

Layout (Topology): pod 10.244.1.2/24 (+ extra pod addresses) -- node vpod 10.244.1.1/24,
eth0 192.168.100.1/24 -- dst 192.168.100.2/24 (+ extra destination addresses).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

from netns import Topology

from masqctl.analysis.explain import Request, explain

_LISTENER = textwrap.dedent("""
    import json, selectors, socket, sys, time
    ports = json.loads(sys.argv[1]); v6 = sys.argv[2] == "6"
    sel = selectors.DefaultSelector()
    for p, proto in ports:
        tcp = proto == "tcp"
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if v6 else "0.0.0.0", p))
        if tcp:
            s.listen(16)
        sel.register(s, selectors.EVENT_READ, (p, tcp))
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    print("ready", flush=True)
    seen = {}
    stop = None
    deadline = time.time() + float(sys.argv[3])
    while time.time() < deadline and (stop is None or time.time() < stop):
        for key, _ in sel.select(timeout=0.05):
            if key.data is None:
                if not sys.stdin.readline():
                    sel.unregister(sys.stdin)
                    stop = time.time() + 0.3
                continue
            port, tcp = key.data
            if tcp:
                conn, addr = key.fileobj.accept()
                conn.close()
            else:
                data, addr = key.fileobj.recvfrom(2048)
            seen[str(port)] = addr[0]
    print(json.dumps(seen), flush=True)
""")

_SENDER = textwrap.dedent("""
    import json, socket, sys, time
    pending = []
    for src, dst, port, proto in json.loads(sys.argv[1]):
        fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        if src:
            s.bind((src, 0))
        if proto == "tcp":
            s.setblocking(False)
            s.connect_ex((dst, port))     # the SYN is what nat sees; the handshake completes later
            pending.append(s)
        else:
            s.sendto(b"masqctl-explain", (dst, port))
            s.close()
        time.sleep(0.002)
    if pending:
        time.sleep(1.0)
""")


@dataclass
class Flow:
    src: str
    dst: str
    port: int            # destination port sent to
    final_port: int      # port the flow arrives on (after DNAT)
    from_host: bool = False
    proto: str = "udp"


def send_batch(t: Topology, flows: list[Flow], v6: bool = False, wait: float = 6.0) -> dict:
    """Send every flow; return {final_port: (namespace role, source seen)}."""
    ports = sorted({(f.final_port, f.proto) for f in flows})
    assert len({p for p, _ in ports}) == len(ports), "two flows share a final port"
    listeners = {}
    for role, ns in (("dst", t.dst), ("node", t.node), ("pod", t.pod)):
        proc = ns.popen(sys.executable, "-c", _LISTENER, json.dumps(ports), "6" if v6 else "4", str(wait),
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline().strip()
        assert line == "ready", f"listener in {role} failed: {line} {proc.stderr.read()}"
        listeners[role] = proc
    try:
        pod_flows = [[f.src, f.dst, f.port, f.proto] for f in flows if not f.from_host]
        host_flows = [[f.src, f.dst, f.port, f.proto] for f in flows if f.from_host]
        if pod_flows:
            t.pod.run(sys.executable, "-c", _SENDER, json.dumps(pod_flows))
        if host_flows:
            t.node.run(sys.executable, "-c", _SENDER, json.dumps(host_flows))
        time.sleep(0.2)
    finally:
        seen: dict = {}
        for role, proc in listeners.items():
            proc.stdin.close()
        for role, proc in listeners.items():
            out = proc.stdout.read()
            proc.wait(timeout=wait + 10)
            got = json.loads(out.strip().splitlines()[-1])
            for port, addr in got.items():
                assert int(port) not in seen, f"flow on port {port} arrived twice"
                seen[int(port)] = (role, addr)
    return seen


def node_facts_files(t: Topology, tmp_path) -> tuple[str, str]:
    """(iptables-save path, ip -o addr path) of the node namespace, as a user would capture them."""
    dump = tmp_path / "iptables-save.txt"
    dump.write_text(t.node.run("iptables-save").stdout)
    addr = tmp_path / "ip-addr.txt"
    addr.write_text(t.node.run("ip", "-o", "addr").stdout)
    return str(dump), str(addr)


def setup_topology(t: Topology, destinations: list[str], pod_extra: list[str] = ()) -> None:
    for ip in destinations:
        t.add_destination(ip)
    for ip in pod_extra:
        t.pod.run("ip", "addr", "add", f"{ip}/32", "dev", "eth0")
        t.node.run("ip", "route", "add", f"{ip}/32", "via", Topology.POD_IP)
    t.node.run("ip", "route", "add", "default", "via", Topology.DST_IP)
    t.pod.sysctl("net.ipv4.conf.all.accept_local", "1")
    t.pod.sysctl("net.ipv4.conf.eth0.accept_local", "1")
    t.pod.sysctl("net.ipv4.conf.all.rp_filter", "0")
    t.pod.sysctl("net.ipv4.conf.eth0.rp_filter", "0")


def compare(t: Topology, flows: list[Flow], dump_path: str, addr_path: str, seen: dict,
            node_ip: str = Topology.NODE_UPLINK, **request) -> list[str]:
    """Explain every flow on the dump and compare with what the kernel did; return disagreements."""
    problems = []
    for f in flows:
        dst = f"[{f.dst}]:{f.port}" if ":" in f.dst else f"{f.dst}:{f.port}"
        ex = explain(Request(src=f.src, dst=dst, proto=f.proto, iptables=dump_path,
                             ip_addr=addr_path, node_ip=node_ip, from_host=f.from_host,
                             **request))
        ev = ex.evaluation
        got = seen.get(f.final_port)
        where = f"{f.src} -> {dst}{' (host)' if f.from_host else ''}"
        if got is None:
            problems.append(f"{where}: nothing arrived (explain: {ex.summary})")
            continue
        role, addr = got
        if ev.agreed:
            o = ev.primary
            if o.source_ip_seen != addr:
                problems.append(f"{where}: kernel source {addr}, explain {o.source_ip_seen} ({ex.summary})")
            if (o.kind == "local") != (role == "node" and not f.from_host):
                problems.append(f"{where}: arrived in {role}, explain says {o.kind}")
            continue
        if any(o.assumed or o.kind == "unknown" for o in ev.outcomes):
            problems.append(f"{where}: explain could not decide with full facts: {ex.summary}; {ex.notes}")
            continue
        options = {o.source_ip_seen for o in ev.outcomes}
        if addr not in options:
            problems.append(f"{where}: kernel source {addr} is on no branch {sorted(map(str, options))}")
    return problems


class Topology6(Topology):
    """The same pod -- node -- dst layout with IPv6 addresses beside the IPv4 ones."""

    POD6 = "fd00:244:1::2"
    GW6 = "fd00:244:1::1"
    NODE6 = "fd00:100::1"
    DST6 = "fd00:100::2"

    def __enter__(self) -> "Topology6":
        super().__enter__()
        for ns in (self.pod, self.node, self.dst):
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "0")
            ns.sysctl("net.ipv6.conf.default.accept_dad", "0")
            ns.sysctl("net.ipv6.conf.all.accept_dad", "0")
        self.pod.run("ip", "-6", "addr", "add", f"{self.POD6}/64", "dev", "eth0", "nodad")
        self.node.run("ip", "-6", "addr", "add", f"{self.GW6}/64", "dev", "vpod", "nodad")
        self.node.run("ip", "-6", "addr", "add", f"{self.NODE6}/64", "dev", "eth0", "nodad")
        self.dst.run("ip", "-6", "addr", "add", f"{self.DST6}/64", "dev", "eth0", "nodad")
        self.pod.run("ip", "-6", "route", "add", "default", "via", self.GW6)
        self.node.run("ip", "-6", "route", "add", "default", "via", self.DST6)
        self.dst.run("ip", "-6", "route", "add", "default", "via", self.NODE6)
        self.node.sysctl("net.ipv6.conf.all.forwarding", "1")
        # link-local addresses made before DAD was switched off stay tentative for a moment;
        # neighbour discovery needs them
        deadline = time.time() + 10
        while time.time() < deadline and any(ns.run("ip", "-6", "addr", "show", "tentative").stdout.strip()
                                             for ns in (self.pod, self.node, self.dst)):
            time.sleep(0.1)
        return self

    def add_destination6(self, ip: str) -> None:
        self.dst.run("ip", "-6", "addr", "add", f"{ip}/128", "dev", "eth0", "nodad")
