"""Kernel ground truth for `who`: pods open real TCP and UDP connections through a node that
masquerades with the agent's rules, the destination writes down who called it (the pod's name,
sent in the payload) and the address and port it saw, and the node's real connection-tracking
table is read back.

Layout: pod namespaces (each ``ip/32`` behind its own veth, default route to the node) --
node (``eth0`` NODE_IP/17 on the "VNet" link, /32 routes to each pod) -- dst (10.40.0.100/17
on the link, plus the destination addresses; /32 routes back to each pod via the node).
Addresses follow the hub-spoke example: node 10.40.0.4, pods 10.40.0.x, hub ingress 10.42.1.10
(masqueraded), 10.41.0.20 inside the VNet (not masqueraded).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass

from netns import NetNS, _counter

from masqctl.engine import AgentOptions, effective_config, render
from masqctl.engine.configdir import ConfigSource

NODE_IP = "10.40.0.4"
DST_LINK_IP = "10.40.0.100"
HUB = "10.42.1.10"            # masqueraded (outside the non-masquerade list)
IN_VNET = "10.41.0.20"        # inside 10.40.0.0/15: not masqueraded
CONFIG = "nonMasqueradeCIDRs:\n  - 10.40.0.0/17\n  - 10.0.0.0/16\n  - 10.40.0.0/15\nmasqLinkLocal: true\n"

_LISTENER = textwrap.dedent("""
    import json, selectors, socket, sys
    sel = selectors.DefaultSelector()
    for port in (443, 53):
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("0.0.0.0", port))
        t.listen(64)
        sel.register(t, selectors.EVENT_READ, "accept")
        for ip in sys.argv[1:]:   # one UDP socket per address, so each reply leaves from the address called
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((ip, port))
            sel.register(u, selectors.EVENT_READ, "udp")
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    print("ready", flush=True)
    conns = {}
    done = False
    while not done:
        for key, _ in sel.select(timeout=5):
            if key.data == "stdin":
                sys.stdin.readline(); done = True
            elif key.data == "accept":
                c, addr = key.fileobj.accept()
                conns[c] = addr
                sel.register(c, selectors.EVENT_READ, "conn")
            elif key.data == "udp":
                u = key.fileobj
                data, addr = u.recvfrom(2048)
                print(json.dumps({"proto": "udp", "who": data.decode(), "ip": addr[0], "port": addr[1],
                                  "to": u.getsockname()[0], "dport": u.getsockname()[1]}), flush=True)
                u.sendto(b"ok", addr)
            else:
                c = key.fileobj
                data = c.recv(2048)
                sel.unregister(c)
                addr = conns[c]
                print(json.dumps({"proto": "tcp", "who": data.decode().strip(), "ip": addr[0], "port": addr[1],
                                  "to": c.getsockname()[0], "dport": c.getsockname()[1]}), flush=True)
                c.sendall(b"ok")   # kept open: the entry stays ESTABLISHED until the end
""")

_CLIENT = textwrap.dedent("""
    import json, socket, sys, time
    name, plan = sys.argv[1], json.loads(sys.argv[2])
    keep = []
    for proto, dst, sport, *dport in plan:
        dport = dport[0] if dport else 443
        if proto in ("tcp", "tcp-closed"):
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if sport:
                s.bind(("0.0.0.0", sport))
            s.settimeout(5); s.connect((dst, dport)); s.sendall((name + "\\n").encode()); s.recv(16)
            if proto == "tcp-closed":
                s.close()
            else:
                keep.append(s)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            if sport:
                s.bind(("0.0.0.0", sport))
            s.settimeout(5); s.sendto(name.encode(), (dst, dport)); s.recv(16)
            keep.append(s)
    print("sent", flush=True)
    sys.stdin.readline()
""")


@dataclass
class Pod:
    namespace: str
    name: str
    ip: str
    ns: NetNS | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def agent_payload() -> str:
    """The agent's nat rules for the hub-spoke config, as the node-agent writes them."""
    opts = AgentOptions(flavor="azure-v2")
    config = effective_config([ConfigSource("ip-masq-agent-reconciled", CONFIG.encode())], opts)
    fam = render(config, opts).ipv4
    return fam.payload() + "*nat\n" + fam.jump.text + "\nCOMMIT\n"


class Estate:
    """Pods, one node that runs the agent's rules, one destination."""

    def __init__(self, pods: list[Pod], destinations: tuple[str, ...] = (HUB, IN_VNET)):
        self.pods = pods
        self.destinations = destinations

    def __enter__(self) -> "Estate":
        self.node, self.dst = NetNS("node"), NetNS("dst")
        made = [self.node, self.dst]
        try:
            self._link(self.node, "eth0", self.dst, "eth0")
            self.node.run("ip", "addr", "add", f"{NODE_IP}/17", "dev", "eth0")
            self.dst.run("ip", "addr", "add", f"{DST_LINK_IP}/17", "dev", "eth0")
            for ns in (self.node, self.dst):
                ns.run("ip", "link", "set", "eth0", "up")
            for ip in self.destinations:
                self.dst.run("ip", "addr", "add", f"{ip}/32", "dev", "eth0")
                self.node.run("ip", "route", "add", f"{ip}/32", "via", DST_LINK_IP)
            self.node.sysctl("net.ipv4.ip_forward", "1")
            for i, pod in enumerate(self.pods):
                pod.ns = NetNS("pod")
                made.append(pod.ns)
                host_if = f"vp{i}"
                self._link(pod.ns, "eth0", self.node, host_if)
                pod.ns.run("ip", "addr", "add", f"{pod.ip}/32", "dev", "eth0")
                pod.ns.run("ip", "link", "set", "eth0", "up")
                self.node.run("ip", "link", "set", host_if, "up")
                self.node.run("ip", "addr", "add", "169.254.1.1/32", "dev", host_if)
                pod.ns.run("ip", "route", "add", "169.254.1.1", "dev", "eth0")
                pod.ns.run("ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
                self.node.run("ip", "route", "add", f"{pod.ip}/32", "dev", host_if)
                self.dst.run("ip", "route", "add", f"{pod.ip}/32", "via", NODE_IP)
            self.node.iptables_restore(agent_payload())
        except BaseException:
            for ns in made:
                ns.delete()
            raise
        return self

    def _link(self, a: NetNS, a_if: str, b: NetNS, b_if: str) -> None:
        tmp_a, tmp_b = f"w{next(_counter)}a{os.getpid() % 10000}", f"w{next(_counter)}b{os.getpid() % 10000}"
        subprocess.run(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b], check=True)
        subprocess.run(["ip", "link", "set", tmp_a, "netns", a.name, "name", a_if], check=True)
        subprocess.run(["ip", "link", "set", tmp_b, "netns", b.name, "name", b_if], check=True)

    def traffic(self, plans: dict[str, list], node_plan: list | None = None) -> list[dict]:
        """Each pod (by name; ``"node"`` for the node itself) opens its connections
        ``(proto, dst, sport|0)`` (proto ``tcp``, ``udp``, or ``tcp-closed``: closed by the pod
        after the exchange) and keeps them open; returns the destination's log: who, proto,
        the address and port it saw, the address it was called on. The connections stay open
        until ``close()``."""
        listener = self.dst.popen(sys.executable, "-c", _LISTENER, *self.destinations, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        assert listener.stdout.readline().strip() == "ready", listener.stderr.read()
        self._listener = listener
        self._clients = []
        senders = [(p.ns, p.name, plans[p.name]) for p in self.pods if p.name in plans]
        if node_plan:
            senders.append((self.node, "node", node_plan))
        for ns, name, plan in senders:
            c = ns.popen(sys.executable, "-c", _CLIENT, name, json.dumps(plan), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self._clients.append(c)
            line = c.stdout.readline().strip()
            assert line == "sent", f"{name}: {line} {c.stderr.read()}"
        log = []
        for _ in range(sum(len(plan) for _, _, plan in senders)):
            line = listener.stdout.readline()
            assert line, f"the destination stopped: {listener.stderr.read()}"
            log.append(json.loads(line))
        for r in log:
            if r["proto"] == "tcp-closed":
                r["proto"] = "tcp"
        return log

    def tables(self) -> dict[str, str]:
        """The node's table as /proc/net/nf_conntrack, conntrack -L (+ -f ipv6, overlapping) and
        conntrack -L -o extended print it."""
        proc = self.node.run("cat", "/proc/net/nf_conntrack").stdout
        listed = self.node.run("conntrack", "-L").stdout + self.node.run("conntrack", "-L", "-f", "ipv6").stdout
        ext = self.node.run("conntrack", "-L", "-o", "extended").stdout
        return {"proc": proc, "conntrack-L": listed, "extended": ext}

    def close(self) -> None:
        listener = getattr(self, "_listener", None)
        if listener is not None:
            try:
                listener.communicate("stop\n", timeout=30)
            except Exception:  # noqa: BLE001
                listener.kill()
            self._listener = None
        for c in getattr(self, "_clients", []):
            try:
                c.communicate("\n", timeout=10)
            except Exception:  # noqa: BLE001
                c.kill()
        self._clients = []

    def __exit__(self, *exc) -> None:
        self.close()
        for ns in (self.node, self.dst, *(p.ns for p in self.pods if p.ns is not None)):
            ns.delete()


def write_bundle(path: str, pods: list[Pod], node_name: str, conntrack: str) -> str:
    """A bundle of the estate: nodes.yaml, pods.yaml (ReplicaSet owners) and the node's table."""
    from cluster.bundlekit import kube_list, node, pod
    import yaml

    docs = []
    for p in pods:
        d = pod(p.name, node_name, p.ip, namespace=p.namespace)
        rs = p.name.rsplit("-", 1)[0]
        d["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                             "controller": True, "uid": f"uid-{rs}"}]
        docs.append(d)
    os.makedirs(os.path.join(path, "nodes", node_name), exist_ok=True)
    with open(os.path.join(path, "pods.yaml"), "w") as fh:
        yaml.safe_dump(kube_list(docs), fh)
    with open(os.path.join(path, "nodes.yaml"), "w") as fh:
        yaml.safe_dump(kube_list([node(node_name, NODE_IP)]), fh)
    with open(os.path.join(path, "nodes", node_name, "conntrack.txt"), "w") as fh:
        fh.write(conntrack)
    return path


def tempdir() -> str:
    return tempfile.mkdtemp(prefix="masqctl-who-")
