"""A two-cluster lab of network namespaces: a spoke pod, its node, a hub node and an ingress pod.

    spod 10.40.0.12 --veth-- snode (eth0 10.40.0.4) --veth-- hnode (eth0 10.42.0.4) --veth-- ing 10.42.1.20

The spoke node runs the masquerade agent's rules, the hub node kube-proxy's rules for a
load-balancer Service whose frontend 10.42.0.100 is routed to the hub node (an Azure load
balancer with floating IP delivers the frontend address unchanged). Pods are addressed as Azure
CNI does it (no address on the host side of the veth, a /32 route, proxy ARP), so MASQUERADE on
either node picks the node's own address. The ingress pod records the source each flow
arrived with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from netns import NetNS, _counter

SPOD, SNODE, HNODE, ING, LB = "10.40.0.12", "10.40.0.4", "10.42.0.4", "10.42.1.20", "10.42.0.100"

_LISTEN = textwrap.dedent("""
    import json, selectors, socket, sys, time
    port = int(sys.argv[1]); seen = {}
    sel = selectors.DefaultSelector()
    for kind in ("udp", "tcp"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        if kind == "tcp":
            s.listen(4)
        sel.register(s, selectors.EVENT_READ, kind)
    print("ready", flush=True)
    deadline = time.time() + float(sys.argv[2])
    while time.time() < deadline and len(seen) < 2:
        for key, _ in sel.select(timeout=0.05):
            if key.data == "tcp":
                conn, addr = key.fileobj.accept(); conn.close()
            else:
                _, addr = key.fileobj.recvfrom(2048)
            seen[key.data] = addr[0]
    print(json.dumps(seen), flush=True)
""")

_SEND = textwrap.dedent("""
    import socket, sys
    dst, port = sys.argv[1], int(sys.argv[2])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"probe", (dst, port)); u.close()
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.settimeout(3)
    try:
        t.connect((dst, port))
    except OSError as exc:
        print("tcp:", exc)
    t.close()
""")


def _veth(a: NetNS, a_if: str, b: NetNS, b_if: str) -> None:
    tmp_a, tmp_b = f"f{next(_counter)}a{os.getpid() % 10000}", f"f{next(_counter)}b{os.getpid() % 10000}"
    subprocess.run(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b], check=True)
    subprocess.run(["ip", "link", "set", tmp_a, "netns", a.name, "name", a_if], check=True)
    subprocess.run(["ip", "link", "set", tmp_b, "netns", b.name, "name", b_if], check=True)
    a.run("ip", "link", "set", a_if, "up")
    b.run("ip", "link", "set", b_if, "up")


class FleetLab:
    def __enter__(self) -> "FleetLab":
        self.spod, self.snode, self.hnode, self.ing = NetNS("spod"), NetNS("snode"), NetNS("hnode"), NetNS("ing")
        _veth(self.spod, "eth0", self.snode, "azv1")
        _veth(self.snode, "eth0", self.hnode, "eth0")
        _veth(self.ing, "eth0", self.hnode, "azv2")
        for ns in (self.spod, self.snode, self.hnode, self.ing):
            ns.sysctl("net.ipv4.conf.all.rp_filter", "0")
            ns.sysctl("net.ipv4.conf.default.rp_filter", "0")
        # pods: a /32 and a device default route; the node side answers ARP for everything
        for pod, ip in ((self.spod, SPOD), (self.ing, ING)):
            pod.run("ip", "addr", "add", f"{ip}/32", "dev", "eth0")
            pod.run("ip", "route", "add", "default", "dev", "eth0")
        self.snode.run("ip", "addr", "add", f"{SNODE}/17", "dev", "eth0")
        self.snode.run("ip", "route", "add", f"{SPOD}/32", "dev", "azv1")
        self.snode.run("ip", "route", "add", "10.42.0.0/16", "via", HNODE, "dev", "eth0", "onlink")
        self.snode.sysctl("net.ipv4.conf.azv1.proxy_arp", "1")
        self.hnode.run("ip", "addr", "add", f"{HNODE}/24", "dev", "eth0")
        self.hnode.run("ip", "route", "add", f"{ING}/32", "dev", "azv2")
        self.hnode.run("ip", "route", "add", "10.40.0.0/15", "via", SNODE, "dev", "eth0", "onlink")
        self.hnode.sysctl("net.ipv4.conf.azv2.proxy_arp", "1")
        for node in (self.snode, self.hnode):
            node.sysctl("net.ipv4.ip_forward", "1")
            node.sysctl("net.ipv4.conf.all.rp_filter", "0")
        return self

    def load(self, ns: NetNS, nat: str) -> None:
        ns.iptables_restore(nat, noflush=False)

    def capture(self, ns: NetNS) -> dict[str, str]:
        return {"iptables-save.txt": ns.run("iptables-save").stdout, "ip-addr.txt": ns.run("ip", "-o", "addr").stdout}

    def probe(self, dst: str, port: int, listen_port: int, wait: float = 4.0) -> dict:
        """Send a UDP datagram and a TCP connection from the spoke pod to ``dst:port``; return what
        the ingress pod saw on ``listen_port`` ({"udp": source, "tcp": source})."""
        proc = self.ing.popen(sys.executable, "-c", _LISTEN, str(listen_port), str(wait),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline().strip()
            assert line == "ready", f"listener failed: {line} {proc.stderr.read()}"
            self.spod.run(sys.executable, "-c", _SEND, dst, str(port))
            out = proc.stdout.readline().strip()
        finally:
            proc.wait(timeout=wait + 5)
        return json.loads(out or "{}")

    def __exit__(self, *exc) -> None:
        for ns in (self.spod, self.snode, self.hnode, self.ing):
            ns.delete()
