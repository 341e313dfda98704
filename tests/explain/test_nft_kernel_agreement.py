"""`explain --nft` agrees with the kernel: random kube-proxy-nftables-like rule sets (a service
vmap with DNAT, kube-proxy's mark-and-masquerade chain, a kindnet-like non-masquerade set with
intervals in a second table, tied and staggered srcnat priorities) are loaded with the real
`nft -f` into a node namespace; real UDP flows from a pod namespace decide which source the
destination saw; explain reads the node's own `nft -j list ruleset` (and `nft list ruleset`)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from explain_kernel import Flow, send_batch, setup_topology
from netns import Topology, requires_netns

from masqctl.analysis.explain import Request, explain

_ports = itertools.count(24000)
POD = Topology.POD_IP
DESTS = ["10.240.0.5", "198.51.100.7", "203.0.113.9", "203.0.113.200"]


def _ruleset(rng: random.Random, services: list[tuple[str, int, str, int]]) -> str:
    """kube-proxy's table (services → DNAT, mark 0x4000 → masquerade) and a masquerade table."""
    svc_chains, elements = [], []
    for n, (vip, port, ep, eport) in enumerate(services):
        name = f"service-{n}"
        hairpin = "ip saddr != 10.244.0.0/16 " if rng.random() < 0.7 else ""
        svc_chains.append(f"add chain ip kube-proxy {name}\n"
                          f"add rule ip kube-proxy {name} ip daddr {vip} {hairpin}jump mark-for-masquerade\n"
                          f"add chain ip kube-proxy endpoint-{n}\n"
                          f"add rule ip kube-proxy endpoint-{n} meta l4proto udp dnat to {ep}:{eport}\n"
                          f"add rule ip kube-proxy {name} numgen random mod 1 vmap {{ 0 : goto endpoint-{n} }}\n")
        elements.append(f"add element ip kube-proxy service-ips {{ {vip} . udp . {port} : goto {name} }}\n")
    kp = ("add table ip kube-proxy\n"
          "add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }\n"
          "add chain ip kube-proxy mark-for-masquerade\n"
          "add chain ip kube-proxy masquerading\n"
          "add chain ip kube-proxy services\n"
          "add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }\n"
          "add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }\n"
          "add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000\n"
          "add rule ip kube-proxy masquerading mark and 0x4000 == 0 return\n"
          "add rule ip kube-proxy masquerading mark set mark xor 0x4000\n"
          "add rule ip kube-proxy masquerading masquerade fully-random\n"
          "add rule ip kube-proxy nat-prerouting jump services\n"
          "add rule ip kube-proxy nat-postrouting jump masquerading\n"
          "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips\n"
          + "".join(svc_chains) + "".join(elements))
    prio = rng.choice(["srcnat - 10", "srcnat", "srcnat + 10"])
    exempt = rng.sample(["10.240.0.0/16", "198.51.100.0/24", "203.0.113.0/25", "192.168.100.0/24",
                         "203.0.113.128-203.0.113.250"], rng.randint(1, 3))
    end = rng.choice(["accept", "return"])
    action = rng.choice(["masquerade", f"snat to {Topology.NODE_UPLINK}", "masquerade random"])
    masq = ("add table inet masq\n"
            "add set inet masq nomasq { type ipv4_addr ; flags interval ; }\n"
            f"add element inet masq nomasq {{ {', '.join(exempt)} }}\n"
            f"add chain inet masq post {{ type nat hook postrouting priority {prio} ; policy accept ; }}\n"
            "add chain inet masq check\n"
            "add rule inet masq post ip saddr 10.244.0.0/16 jump check\n"
            f"add rule inet masq check ip daddr @nomasq {end}\n"
            f"add rule inet masq check fib daddr type local {end}\n"
            f"add rule inet masq check {action}\n")
    order = [kp, masq]
    rng.shuffle(order)      # which table is created first: the tie at srcnat depends on it
    return "".join(order)


@requires_netns
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_kube_proxy_nft(tmp_path, seed):
    rng = random.Random(seed)
    with Topology() as t:
        setup_topology(t, DESTS)
        flows, services = [], []
        for d in DESTS + [Topology.DST_IP]:
            p = next(_ports)
            flows.append(Flow(POD, d, p, p))
        for k in range(3):
            ep = rng.choice(DESTS)
            vip, port, eport = f"172.30.0.{40 + k}", 80 + k, next(_ports)
            services.append((vip, port, ep, eport))
            flows.append(Flow(POD, vip, port, eport))
        flows.append(Flow("10.244.1.1", "203.0.113.9", p := next(_ports), p, from_host=True))
        t.node.run("nft", "-f", "-", input=_ruleset(rng, services))
        seen = send_batch(t, flows)
        js = tmp_path / "nft-ruleset.json"
        js.write_text(t.node.run("nft", "-j", "list", "ruleset").stdout)
        txt = tmp_path / "nft-ruleset.txt"
        txt.write_text(t.node.run("nft", "list", "ruleset").stdout)
        addr = tmp_path / "ip-addr.txt"
        addr.write_text(t.node.run("ip", "-o", "addr").stdout)
        problems = []
        for f in flows:
            got = seen.get(f.final_port)
            for rules in (js, txt):
                ex = explain(Request(src=f.src, dst=f"{f.dst}:{f.port}", proto="udp", nft=str(rules),
                                     ip_addr=str(addr), node_ip=Topology.NODE_UPLINK, from_host=f.from_host))
                ev = ex.evaluation
                where = f"seed {seed} {rules.name}: {f.src} -> {f.dst}:{f.port}"
                if got is None:
                    problems.append(f"{where}: nothing arrived ({ex.summary})")
                    continue
                options = {o.source_ip_seen for o in ev.outcomes}
                if ev.agreed and ev.source_ip_seen != got[1]:
                    problems.append(f"{where}: kernel {got[1]}, explain {ev.source_ip_seen} ({ex.summary})")
                elif not ev.agreed and (any(o.kind == "unknown" for o in ev.outcomes) or got[1] not in options):
                    problems.append(f"{where}: kernel {got[1]}, explain undecided: {ex.summary}")
        assert not problems, "\n".join(problems)


def _agree(t, tmp_path, flows, **request) -> list[str]:
    seen = send_batch(t, flows)
    files = {"json": tmp_path / "nft-ruleset.json", "txt": tmp_path / "nft-ruleset.txt"}
    files["json"].write_text(t.node.run("nft", "-j", "list", "ruleset").stdout)
    files["txt"].write_text(t.node.run("nft", "list", "ruleset").stdout)
    addr = tmp_path / "ip-addr.txt"
    addr.write_text(t.node.run("ip", "-o", "addr").stdout)
    ipt = None
    if request.pop("with_iptables", False):
        ipt = tmp_path / "iptables-save.txt"
        ipt.write_text(t.node.run("iptables-save").stdout)
    problems = []
    for f in flows:
        got = seen.get(f.final_port)
        for form, rules in files.items():
            ex = explain(Request(src=f.src, dst=f"{f.dst}:{f.port}", proto="udp", nft=str(rules), ip_addr=str(addr),
                                 node_ip=Topology.NODE_UPLINK, iptables=str(ipt) if ipt else None))
            ev = ex.evaluation
            where = f"{form}: {f.src} -> {f.dst}:{f.port}"
            if got is None:
                problems.append(f"{where}: nothing arrived ({ex.summary})")
            elif not ev.agreed:
                if any(o.kind == "unknown" for o in ev.outcomes) or got[1] not in {o.source_ip_seen for o in ev.outcomes}:
                    problems.append(f"{where}: kernel {got[1]}, explain undecided: {ex.summary}")
            elif ev.source_ip_seen != got[1]:
                problems.append(f"{where}: kernel {got[1]}, explain {ev.source_ip_seen} ({ex.summary})")
    return problems


@requires_netns
def test_kindnet_golden_table(tmp_path):
    # kubernetes-sigs/kindnet pkg/masq/masq_test.go, case "ipv4 - ipv6 node and no cidr masqs": exempts
    # 10.1.1.0/24 and 192.168.0.0/24 (accept at srcnat - 10), masquerades the rest
    text = (Path(__file__).parent.parent / "fixtures" / "nft" / "kindnet-ipmasq.txt").read_text()
    dests = ["10.1.1.7", "192.168.0.9", "203.0.113.9"]
    with Topology() as t:
        setup_topology(t, dests)
        # nft 1.0.6 refuses a statement after a terminal one ("masquerade counter …", as newer nft lists
        # kindnet's rule): the counter goes first for loading; explain reads the node's own listing
        t.node.run("nft", "-f", "-", input=text.replace("masquerade counter packets 0 bytes 0", "counter masquerade"))
        flows = [Flow(POD, d, p, p) for d in dests + [Topology.DST_IP] for p in [next(_ports)]]
        problems = _agree(t, tmp_path, flows)
        assert not problems, "\n".join(problems)


@requires_netns
@pytest.mark.parametrize("prio", ["srcnat - 5", "srcnat", "srcnat + 5"])
def test_iptables_agent_and_a_native_table_together(tmp_path, prio):
    """The agent's chain in iptables (nft backend: `table ip nat` in the ruleset, with xt expressions)
    and a native table that SNATs part of the traffic to another node address, before, tied with or
    after iptables' POSTROUTING: explain reads iptables-save and the ruleset together."""
    dests = ["10.240.0.5", "198.51.100.7", "203.0.113.9"]
    with Topology() as t:
        setup_topology(t, dests)
        t.node.run("ip", "addr", "add", "192.168.100.50/24", "dev", "eth0")
        t.node.iptables_restore("*nat\n:IP-MASQ-AGENT - [0:0]\n-A POSTROUTING -j IP-MASQ-AGENT\n"
                                "-A IP-MASQ-AGENT -d 10.240.0.0/16 -j RETURN\n-A IP-MASQ-AGENT -j MASQUERADE\nCOMMIT\n")
        t.node.run("nft", "-f", "-", input=(
            "table ip other {\n chain post {\n"
            f"  type nat hook postrouting priority {prio}; policy accept;\n"
            "  ip daddr { 198.51.100.0/24, 10.240.0.0/16 } snat to 192.168.100.50\n }\n}\n"))
        flows = [Flow(POD, d, p, p) for d in dests for p in [next(_ports)]]
        problems = _agree(t, tmp_path, flows, with_iptables=True)
        assert not problems, "\n".join(problems)


@requires_netns
def test_calico_nft_table(tmp_path):
    # felix's nftables dataplane, nat part (tests/fixtures/nft/calico-nat.nft): natOutgoing masquerades
    # pool 10.244.0.0/16 except to any pool (10.96.0.0/24 is one), jumping through nat-cali-POSTROUTING
    text = (Path(__file__).parent.parent / "fixtures" / "nft" / "calico-nat.nft").read_text()
    dests = ["10.96.0.5", "203.0.113.9"]
    with Topology() as t:
        setup_topology(t, dests)
        t.node.run("nft", "-f", "-", input=text)
        flows = [Flow(POD, d, p, p) for d in dests + [Topology.DST_IP] for p in [next(_ports)]]
        problems = _agree(t, tmp_path, flows)
        assert not problems, "\n".join(problems)


EXPRESSIONS = """
table ip a {
 set svc {
  type ipv4_addr . inet_service
  flags interval
  elements = { 203.0.113.0/25 . 30000-30999 }
 }
 chain pre {
  type nat hook prerouting priority dstnat; policy accept;
  ip daddr 172.30.0.50 udp dport 80 dnat to 203.0.113.200:DNATPORT
  ip daddr . udp dport @svc meta mark set mark or 0x10
 }
}
table inet b {
 chain post {
  type nat hook postrouting priority srcnat + 5; policy accept;
  meta nfproto ipv4 ct state new goto check
 }
 chain check {
  ct status dnat masquerade
  meta mark & 0x10 == 0x10 return
  meta l4proto udp jump inner
  snat ip to 192.168.100.50
 }
 chain inner {
  ip daddr 198.51.100.0/24 return
  masquerade
 }
}
"""


@requires_netns
def test_every_expression_kind_against_the_kernel(tmp_path):
    """One rule set with what the walk must know beyond the kube-proxy and kindnet tables: a DNAT in one
    table seen as `ct status dnat` in another, a mark set in prerouting (in table a) matched at
    postrouting (in table b) with `meta mark & M == M`, a concatenation with an interval in a named set,
    `goto` then `return` (ends the base chain: its policy, no NAT), `jump` then `return` (resumes after
    the jump), `meta nfproto`, `meta l4proto`, `ct state new`, `snat`, `masquerade`, `dnat`."""
    dnat_port = next(_ports)
    dests = ["203.0.113.9", "203.0.113.200", "198.51.100.7"]
    with Topology() as t:
        setup_topology(t, dests)
        t.node.run("ip", "addr", "add", "192.168.100.50/24", "dev", "eth0")
        t.node.run("nft", "-f", "-", input=EXPRESSIONS.replace("DNATPORT", str(dnat_port)))
        p1, p2, p3 = next(_ports), next(_ports), next(_ports)
        flows = [Flow(POD, "203.0.113.9", 30500, 30500),        # marked through the concat interval set: no NAT
                 Flow(POD, "203.0.113.9", p1, p1),              # not marked: inner masquerades
                 Flow(POD, "203.0.113.200", p2, p2),            # outside the /25: inner masquerades
                 Flow(POD, "198.51.100.7", p3, p3),             # inner returns: snat to 192.168.100.50
                 Flow(POD, "172.30.0.50", 80, dnat_port)]       # DNATed: ct status dnat masquerades
        problems = _agree(t, tmp_path, flows)
        assert not problems, "\n".join(problems)
        seen = {}
        for f in flows:     # and the answers are the distinct ones the comment names
            ex = explain(Request(src=f.src, dst=f"{f.dst}:{f.port}", proto="udp",
                                 nft=str(tmp_path / "nft-ruleset.json"), ip_addr=str(tmp_path / "ip-addr.txt"),
                                 node_ip=Topology.NODE_UPLINK))
            seen[(f.dst, f.port)] = ex.evaluation.source_ip_seen
        assert seen == {("203.0.113.9", 30500): POD, ("203.0.113.9", p1): Topology.NODE_UPLINK,
                        ("203.0.113.200", p2): Topology.NODE_UPLINK, ("198.51.100.7", p3): "192.168.100.50",
                        ("172.30.0.50", 80): Topology.NODE_UPLINK}
