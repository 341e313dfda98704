"""Network namespaces for tests: real iptables, real packets, never the host's tables.

Every namespace is created by the test (``ip netns add``) with a unique name and deleted
afterwards. Packets only travel between these namespaces, over veth pairs the test makes.

    with Topology() as t:          # pod --veth-- node --veth-- dst
        t.node.iptables_restore("*nat\\n...COMMIT\\n")
        assert t.probe_udp("203.0.113.7") == "10.244.1.2"

Addresses: pod 10.244.1.2/24 (gateway 10.244.1.1 on the node); node uplink 192.168.100.1/24
towards dst 192.168.100.2/24; extra destination addresses are added to dst and routed via
the uplink. Use documentation (TEST-NET) or private ranges only.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

_counter = itertools.count()


def netns_available() -> str | None:
    """None when namespaces and iptables can be used, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = f"mqprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


requires_netns = pytest.mark.skipif(
    os.environ.get("MASQCTL_REQUIRE_NETNS") != "1" and netns_available() is not None,
    reason="network namespaces unavailable",
)


class NetNS:
    """One namespace. ``run`` executes a command inside it."""

    def __init__(self, role: str):
        self.name = f"mq{os.getpid() % 100000}-{next(_counter)}-{role}"[:15]
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run("ip", "link", "set", "lo", "up")

    def cmd(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
        r = subprocess.run(self.cmd(*args), input=input, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed in {self.name} ({r.returncode}): {r.stderr}")
        return r

    def popen(self, *args: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(self.cmd(*args), **kw)

    def iptables_restore(self, payload: str, *, noflush: bool = True, family: int = 4) -> None:
        binary = "iptables-restore" if family == 4 else "ip6tables-restore"
        self.run(binary, *(["--noflush"] if noflush else []), "-w", input=payload)

    def iptables_save(self, table: str = "nat", family: int = 4) -> str:
        binary = "iptables-save" if family == 4 else "ip6tables-save"
        return self.run(binary, "-t", table).stdout

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-q", "-w", f"{key}={value}")

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


_LISTENER = textwrap.dedent("""
    import socket, sys
    fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2])))
    print("ready", flush=True)
    s.settimeout(float(sys.argv[3]))
    try:
        data, addr = s.recvfrom(2048)
        print(addr[0], flush=True)
    except socket.timeout:
        print("timeout", flush=True)
""")

_SENDER = textwrap.dedent("""
    import socket, sys
    fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if len(sys.argv) > 3 and sys.argv[3]:
        s.bind((sys.argv[3], 0))
    s.sendto(b"masqctl-probe", (sys.argv[1], int(sys.argv[2])))
""")


def probe_udp(src: NetNS, dst: NetNS, dst_ip: str, port: int = 9999, *, bind_src: str = "",
              timeout: float = 3.0) -> str | None:
    """Send one UDP datagram from ``src`` to ``dst_ip`` (an address of ``dst``); return the
    source address ``dst`` saw, or None if nothing arrived."""
    listener = dst.popen(sys.executable, "-c", _LISTENER, dst_ip, str(port), str(timeout),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = listener.stdout.readline().strip()
        if line != "ready":
            raise AssertionError(f"listener on {dst_ip}:{port} failed: {line} {listener.stderr.read()}")
        src.run(sys.executable, "-c", _SENDER, dst_ip, str(port), bind_src)
        seen = listener.stdout.readline().strip()
    finally:
        listener.wait(timeout=timeout + 5)
    return None if seen in ("", "timeout") else seen


class Topology:
    """pod --veth-- node --veth-- dst, with the node forwarding between them."""

    POD_IP = "10.244.1.2"
    POD_GW = "10.244.1.1"
    NODE_UPLINK = "192.168.100.1"
    DST_IP = "192.168.100.2"

    def __enter__(self) -> "Topology":
        self.pod, self.node, self.dst = NetNS("pod"), NetNS("node"), NetNS("dst")
        self._link(self.pod, "eth0", self.node, "vpod", f"{self.POD_IP}/24", f"{self.POD_GW}/24")
        self._link(self.node, "eth0", self.dst, "eth0", f"{self.NODE_UPLINK}/24", f"{self.DST_IP}/24")
        self.pod.run("ip", "route", "add", "default", "via", self.POD_GW)
        self.dst.run("ip", "route", "add", "default", "via", self.NODE_UPLINK)
        self.node.sysctl("net.ipv4.ip_forward", "1")
        return self

    def _link(self, a: NetNS, a_if: str, b: NetNS, b_if: str, a_ip: str, b_ip: str) -> None:
        tmp_a, tmp_b = f"v{next(_counter)}a{os.getpid() % 10000}", f"v{next(_counter)}b{os.getpid() % 10000}"
        subprocess.run(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b], check=True)
        subprocess.run(["ip", "link", "set", tmp_a, "netns", a.name, "name", a_if], check=True)
        subprocess.run(["ip", "link", "set", tmp_b, "netns", b.name, "name", b_if], check=True)
        a.run("ip", "addr", "add", a_ip, "dev", a_if)
        b.run("ip", "addr", "add", b_ip, "dev", b_if)
        a.run("ip", "link", "set", a_if, "up")
        b.run("ip", "link", "set", b_if, "up")

    def add_destination(self, ip: str) -> None:
        """Give dst another address (reachable from the pod through the node)."""
        self.dst.run("ip", "addr", "add", f"{ip}/32", "dev", "eth0")
        self.node.run("ip", "route", "add", f"{ip}/32", "via", self.DST_IP)

    def probe_udp(self, dst_ip: str, port: int = 9999) -> str | None:
        return probe_udp(self.pod, self.dst, dst_ip, port)

    def __exit__(self, *exc) -> None:
        for ns in (self.pod, self.node, self.dst):
            ns.delete()
