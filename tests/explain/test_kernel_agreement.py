"""`explain` agrees with the kernel: the source address a destination really saw equals the
one `explain` computes from the node's own iptables-save (every disagreement is a bug)."""

from __future__ import annotations

import itertools
import random

import pytest
from explain_kernel import Flow, compare, node_facts_files, send_batch, setup_topology
from netns import Topology, requires_netns

from masqctl.analysis.explain import Request, explain
from masqctl.engine import AgentOptions, load_config_dir, parse_to_ports, render

_ports = itertools.count(21000)

POD = Topology.POD_IP            # 10.244.1.2
POD_OFF_CLUSTER = "172.31.0.2"   # a second pod-side address outside the cluster CIDR


def _load_agent(t: Topology, config_dir, options: AgentOptions, flush: bool = True) -> None:
    rules = render(load_config_dir(str(config_dir), options), options).ipv4
    t.node.iptables_restore(rules.payload(), noflush=not flush)
    t.node.iptables_restore(f"*nat\n{rules.jump.text}\nCOMMIT\n")


def _assert_agree(t, tmp_path, flows, **request):
    seen = send_batch(t, flows)
    dump, addrs = node_facts_files(t, tmp_path)
    problems = compare(t, flows, dump, addrs, seen, **request)
    assert not problems, "\n".join(problems)
    return len(flows)


# --- agent-only ------------------------------------------------------------------------------------

@requires_netns
def test_agent_chain_only(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - 10.240.0.0/16\n  - 198.51.100.0/25\n"
                                       "  - 192.168.100.0/24\nmasqLinkLocal: false\n")
    dests = ["10.240.0.5", "10.241.0.5", "198.51.100.7", "198.51.100.200", "203.0.113.9", "169.254.10.1"]
    with Topology() as t:
        setup_topology(t, dests)
        _load_agent(t, cfg, AgentOptions())
        flows = [Flow(POD, d, 53, next(_ports)) for d in dests + [Topology.DST_IP]]
        for f in flows:
            f.port = f.final_port
        flows += [Flow("10.244.1.1", "203.0.113.9", p, p, from_host=True) for p in [next(_ports)]]
        flows += [Flow("10.244.1.1", Topology.NODE_UPLINK, p, p, from_host=True) for p in [next(_ports)]]
        flows += [Flow(POD, d, p, p, proto="tcp") for d, p in (("10.240.0.5", next(_ports)),
                                                               ("203.0.113.9", next(_ports)))]
        _assert_agree(t, tmp_path, flows)


# --- kube-proxy-like -------------------------------------------------------------------------------

def _service(lines: list, chains: list, name: str, vip: str, port: int, endpoints: list[tuple[str, int]],
             cluster_cidr: str = "10.244.0.0/16", proto: str = "udp") -> None:
    svc = f"KUBE-SVC-{name}"
    chains.append(svc)
    lines.append(f'-A KUBE-SERVICES -d {vip}/32 -p {proto} -m comment --comment "default/{name.lower()} cluster IP" '
                 f"-m {proto} --dport {port} -j {svc}")
    lines.append(f'-A {svc} ! -s {cluster_cidr} -d {vip}/32 -p {proto} -m comment --comment '
                 f'"default/{name.lower()} cluster IP" -m {proto} --dport {port} -j KUBE-MARK-MASQ')
    n = len(endpoints)
    for i, (ip, eport) in enumerate(endpoints):
        sep = f"KUBE-SEP-{name}{i}"
        chains.append(sep)
        stat = f" -m statistic --mode random --probability {1 / (n - i):.11f}" if i < n - 1 else ""
        lines.append(f'-A {svc} -m comment --comment "default/{name.lower()} -> {ip}:{eport}"{stat} -j {sep}')
        lines.append(f'-A {sep} -s {ip}/32 -m comment --comment "default/{name.lower()}" -j KUBE-MARK-MASQ')
        lines.append(f'-A {sep} -p {proto} -m comment --comment "default/{name.lower()}" -m {proto} '
                     f"-j DNAT --to-destination {ip}:{eport}")


def kube_proxy_like(services: list[tuple], nodeports: list[tuple] = ()) -> str:
    chains = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS", "IP-MASQ-AGENT"]
    lines: list[str] = []
    for svc in services:
        _service(lines, chains, *svc)
    for name, port, ep in nodeports:
        ext = f"KUBE-EXT-{name}"
        chains.append(ext)
        lines.append(f'-A KUBE-NODEPORTS -p udp -m comment --comment "default/{name.lower()}" -m udp --dport {port} '
                     f"-j {ext}")
        lines.append(f'-A {ext} -m comment --comment "masquerade traffic for default/{name.lower()} external '
                     f'destinations" -j KUBE-MARK-MASQ')
        _service(lines, chains, name + "N", "10.96.99.99", port, [ep])
        lines.append(f"-A {ext} -j KUBE-SVC-{name}N")
    head = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]"] + [f":{c} - [0:0]" for c in chains]
    fixed = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        '-A POSTROUTING -m comment --comment "\\"ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL '
        'destination traffic to our custom IP-MASQ-AGENT chain\\"" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT',
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
        "--random-fully",
        '-A IP-MASQ-AGENT -d 10.244.0.0/16 -m comment --comment "ip-masq-agent: local traffic is not subject to '
        'MASQUERADE" -j RETURN',
        '-A IP-MASQ-AGENT -d 192.168.100.0/24 -m comment --comment "ip-masq-agent: local traffic is not subject '
        'to MASQUERADE" -j RETURN',
        '-A IP-MASQ-AGENT -d 10.240.0.0/16 -m comment --comment "ip-masq-agent: local traffic is not subject to '
        'MASQUERADE" -j RETURN',
        '-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE (must be '
        'last in chain)" -j MASQUERADE',
    ]
    tail = ['-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule '
            'in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS', "COMMIT"]
    return "\n".join(head + fixed + lines + tail) + "\n"


@requires_netns
def test_kube_proxy_dnat_hairpin_local_and_marks(tmp_path):
    dests = ["203.0.113.50", "10.240.0.5"]
    flows, services, nodeports = [], [], []
    # (src, vip, endpoint ip) — one service per flow so each flow has its own final port
    plan = [
        (POD, "10.96.0.10", POD),                    # hairpin: the pod calls a service it backs
        (POD, "10.96.0.20", Topology.DST_IP),        # remote endpoint, in a non-masquerade CIDR
        (POD_OFF_CLUSTER, "10.96.0.21", Topology.DST_IP),  # off-cluster source: KUBE-MARK-MASQ
        (POD, "10.96.0.30", Topology.NODE_UPLINK),   # endpoint on the node: local delivery
        (POD, "10.96.0.31", Topology.POD_GW),        # endpoint on the node's pod-side address
        (POD, "10.96.0.40", "203.0.113.50"),         # external endpoint: IP-MASQ-AGENT masquerades
        (POD, "10.96.0.50", "10.240.0.5"),           # endpoint in a non-masquerade CIDR
    ]
    for i, (src, vip, ep) in enumerate(plan):
        port = next(_ports)
        services.append((f"S{i}", vip, 80 + i, [(ep, port)]))
        flows.append(Flow(src, vip, 80 + i, port))
    # host traffic to a ClusterIP: nat OUTPUT DNAT, then KUBE-MARK-MASQ for a non-cluster source
    port = next(_ports)
    services.append(("H0", "10.96.1.10", 7000, [(Topology.DST_IP, port)]))
    flows.append(Flow("10.244.1.1", "10.96.1.10", 7000, port, from_host=True))
    port = next(_ports)
    services.append(("H1", "10.96.1.11", 7001, [("203.0.113.50", port)]))
    flows.append(Flow(Topology.NODE_UPLINK, "10.96.1.11", 7001, port, from_host=True))
    # a NodePort on the node's own address (addrtype LOCAL), endpoint remote: masqueraded by the mark
    port = next(_ports)
    nodeports.append(("NP", 30080, (Topology.DST_IP, port)))
    flows.append(Flow(POD, Topology.NODE_UPLINK, 30080, port))
    # TCP: a service with TCP rules (the SYN is what nat sees), remote and hairpin endpoints
    for i, (src, ep) in enumerate([(POD, Topology.DST_IP), (POD_OFF_CLUSTER, "203.0.113.50"), (POD, POD)]):
        port = next(_ports)
        services.append((f"T{i}", f"10.96.3.{10 + i}", 443, [(ep, port)], "10.244.0.0/16", "tcp"))
        flows.append(Flow(src, f"10.96.3.{10 + i}", 443, port, proto="tcp"))
    # a two-endpoint service: the kernel picks one branch; the source seen must be one of explain's
    port = next(_ports)
    services.append(("R0", "10.96.2.10", 9100, [(POD, port), (Topology.DST_IP, port)]))
    flows.append(Flow(POD, "10.96.2.10", 9100, port))
    with Topology() as t:
        setup_topology(t, dests, [POD_OFF_CLUSTER])
        t.node.iptables_restore(kube_proxy_like(services, nodeports), noflush=False)
        _assert_agree(t, tmp_path, flows)


# --- several masquerading systems, goto, SNAT, ACCEPT, marks --------------------------------------

MIXED = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:MARKER - [0:0]
:CNI-POST - [0:0]
:CNI-X - [0:0]
:FLANNEL-POSTRTG - [0:0]
:IP-MASQ-AGENT - [0:0]
-A PREROUTING -d 198.51.100.64/26 -j MARKER
-A MARKER -j MARK --set-xmark 0x2000/0x2000
-A POSTROUTING -d 203.0.113.77/32 -j ACCEPT
-A POSTROUTING -d 203.0.113.0/24
-A POSTROUTING -m mark --mark 0x2000/0x2000 -j SNAT --to-source 192.168.100.9
-A POSTROUTING -m comment --comment "CNI portmap \\"quoted\\" it\\'s" -j CNI-POST
-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A POSTROUTING -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT
-A CNI-POST -d 10.240.0.0/16 -g CNI-X
-A CNI-POST -d 10.240.0.0/16 -j SNAT --to-source 192.168.100.8
-A CNI-POST -d 10.241.0.0/16 -j RETURN
-A CNI-POST -s 10.244.1.0/24 -d 203.0.113.0/25 -j MASQUERADE
-A CNI-X -d 10.240.1.0/24 -j RETURN
-A CNI-X -j MASQUERADE
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -j RETURN
-A FLANNEL-POSTRTG -d 198.51.100.0/24 -j RETURN
-A FLANNEL-POSTRTG -d 10.240.0.0/16 -j SNAT --to-source 192.168.100.7
-A IP-MASQ-AGENT -d 192.168.100.0/24 -j RETURN
-A IP-MASQ-AGENT -p udp -m multiport --dports 5000:5010,6000 -d 10.242.0.0/16 -j RETURN
-A IP-MASQ-AGENT -j MASQUERADE
COMMIT
"""


@requires_netns
@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_two_masquerading_systems_goto_snat_accept_marks(tmp_path, backend):
    dests = ["203.0.113.77", "203.0.113.5", "203.0.113.200", "198.51.100.70", "198.51.100.5", "10.240.1.5",
             "10.240.2.5", "10.241.0.5", "10.242.0.5"]
    flows = []
    for d in dests:
        for src in (POD, POD_OFF_CLUSTER):
            p = next(_ports)
            flows.append(Flow(src, d, p, p))
    p = next(_ports)
    flows.append(Flow(POD, Topology.DST_IP, p, p))
    flows.append(Flow(POD, "10.242.0.5", 5005, 5005))
    flows.append(Flow(POD, "10.242.0.5", 6000, 6000))
    with Topology() as t:
        setup_topology(t, dests, [POD_OFF_CLUSTER])
        restore = "iptables-restore" if backend == "nft" else "iptables-legacy-restore"
        t.node.run(restore, "-w", input=MIXED)
        seen = send_batch(t, flows)
        save = "iptables-save" if backend == "nft" else "iptables-legacy-save"
        dump = tmp_path / "dump.txt"
        dump.write_text(t.node.run(save).stdout)
        addrs = tmp_path / "ip-addr.txt"
        addrs.write_text(t.node.run("ip", "-o", "addr").stdout)
        problems = compare(t, flows, str(dump), str(addrs), seen)
        assert not problems, "\n".join(problems)


# --- random configs generated by the engine --------------------------------------------------------

CIDR_POOL = ["10.240.0.0/16", "10.240.5.0/24", "203.0.113.0/25", "203.0.113.128/26", "198.51.100.0/24",
             "192.168.100.0/24", "172.20.0.0/14", "100.64.0.0/10", "10.0.0.0/8"]
DEST_POOL = ["10.240.5.9", "10.240.9.9", "203.0.113.9", "203.0.113.140", "203.0.113.250", "198.51.100.33",
             "172.21.3.4", "100.100.1.1", "169.254.20.1", "10.9.8.7", Topology.DST_IP]


@requires_netns
def test_random_engine_configs(tmp_path):
    rng = random.Random(4242)
    dests = [d for d in DEST_POOL if d != Topology.DST_IP]
    total = 0
    with Topology() as t:
        setup_topology(t, dests)
        for n in range(8):
            cfg = tmp_path / f"cfg{n}"
            cfg.mkdir()
            flavor = rng.choice(["azure-v2", "azure-v2", "upstream"])
            cidrs = rng.sample(CIDR_POOL, rng.randint(0, 4))
            body = "nonMasqueradeCIDRs:\n" + "".join(f"  - {c}\n" for c in cidrs) if cidrs else \
                "nonMasqueradeCIDRs: []\n"
            body += f"masqLinkLocal: {rng.choice(['true', 'false'])}\n"
            if flavor == "azure-v2" and rng.random() < 0.5 and cidrs:
                (cfg / "ip-masq-agent-reconciled").write_text(f"nonMasqueradeCIDRs:\n  - {cidrs[0]}\n")
            (cfg / ("ip-masq-agent" if flavor == "upstream" or rng.random() < 0.5 else "ip-masq-agent-2")
             ).write_text(body)
            options = AgentOptions(flavor=flavor, random_fully=rng.random() < 0.5,
                                   to_ports=parse_to_ports("1024-29999,32768-65535") if flavor == "upstream"
                                   and rng.random() < 0.5 else ())
            _load_agent(t, cfg, options)
            flows = []
            for d in rng.sample(DEST_POOL, 6):
                p = next(_ports)
                flows.append(Flow(POD, d, p, p))
            total += _assert_agree(t, tmp_path, flows)
            # the same verdicts in what-if mode, straight from the config folder
            for f in flows:
                dump_verdict = explain(Request(src=f.src, dst=f"{f.dst}:{f.port}", proto="udp",
                                               iptables=str(tmp_path / "iptables-save.txt"),
                                               ip_addr=str(tmp_path / "ip-addr.txt"), node_ip=Topology.NODE_UPLINK))
                what_if = explain(Request(src=f.src, dst=f"{f.dst}:{f.port}", proto="udp", config_dir=str(cfg),
                                          agent_options=options, ip_addr=str(tmp_path / "ip-addr.txt"),
                                          node_ip=Topology.NODE_UPLINK))
                assert what_if.evaluation.source_ip_seen == dump_verdict.evaluation.source_ip_seen, what_if.summary
    assert total == 48


# --- a second, invisible rule set --------------------------------------------------------------------

@requires_netns
def test_legacy_tables_present_is_reported(tmp_path):
    with Topology() as t:
        setup_topology(t, ["203.0.113.9"])
        t.node.run("iptables-legacy-restore", "-w", input="*nat\n-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE\n"
                                                              "COMMIT\n")
        t.node.run("iptables-restore", "-w", input="*nat\n-A POSTROUTING -d 203.0.113.9/32 -j ACCEPT\nCOMMIT\n")
        p = next(_ports)
        seen = send_batch(t, [Flow(POD, "203.0.113.9", p, p)])
        assert seen[p] == ("dst", Topology.NODE_UPLINK)   # the legacy table masqueraded it
        r = t.node.run("sh", "-c", "iptables-nft-save 2>&1")
        dump = tmp_path / "dump.txt"
        dump.write_text(r.stdout)
        ex = explain(Request(src=POD, dst=f"203.0.113.9:{p}", proto="udp", iptables=str(dump),
                             local_addresses=["192.168.100.1/24@eth0"], node_ip=Topology.NODE_UPLINK))
        assert ex.evaluation.masqueraded is False    # what the visible (nft) table says ...
        assert any("iptables-legacy tables are present" in n for n in ex.notes)   # ... and the warning
        assert ex.to_dict()["input"]["legacy_tables_present"] is True



@requires_netns
def test_a_legacy_and_an_nft_dump_concatenated_are_walked_as_two_tables(tmp_path):
    with Topology() as t:
        setup_topology(t, ["203.0.113.9", "203.0.113.20"])
        t.node.run("iptables-legacy-restore", "-w", input="*nat\n-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE\n"
                                                              "COMMIT\n")
        t.node.run("iptables-restore", "-w", input="*nat\n-A POSTROUTING -d 203.0.113.9/32 -j ACCEPT\n"
                                                   "-A POSTROUTING -d 203.0.113.20/32 -j SNAT --to-source 192.0.2.7\n"
                                                   "COMMIT\n")
        p, q = next(_ports), next(_ports)
        seen = send_batch(t, [Flow(POD, "203.0.113.9", p, p), Flow(POD, "203.0.113.20", q, q)])
        assert seen[p] == ("dst", Topology.NODE_UPLINK)   # nft's ACCEPT ends only its own table
        dump = tmp_path / "both.txt"
        dump.write_text(t.node.run("iptables-legacy-save", "-t", "nat").stdout
                        + t.node.run("iptables-nft-save", "-t", "nat").stdout)

        def ask(dst):
            return explain(Request(src=POD, dst=dst, proto="udp", iptables=str(dump),
                                   local_addresses=["192.168.100.1/24@eth0", "10.244.1.1/24@vpod"],
                                   node_ip=Topology.NODE_UPLINK))

        ex = ask(f"203.0.113.9:{p}")
        assert ex.evaluation.masqueraded is True and ex.evaluation.source_ip_seen == seen[p][1]
        # both tables NAT the second flow, each its own way: the kernel's order decides, no dump shows it
        ex = ask(f"203.0.113.20:{q}")
        assert ex.evaluation.masqueraded is None
        assert seen[q][1] in {o.source_ip_seen for o in ex.evaluation.outcomes}


# --- IPv6 --------------------------------------------------------------------------------------------

@requires_netns
def test_ipv6_agent_chain_and_dnat_hairpin(tmp_path):
    from explain_kernel import Topology6

    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - 10.244.0.0/16\n  - fd00:240::/32\n"
                                       "  - fd00:100::/64\n")
    dests = ["fd00:240::5", "fd00:241::5", "2001:db8::9"]
    with Topology6() as t:
        for d in dests:
            t.add_destination6(d)
        options = AgentOptions(enable_ipv6=True)
        rules = render(load_config_dir(str(cfg), options), options).ipv6
        t.node.iptables_restore(rules.payload(), family=6)
        t.node.iptables_restore(f"*nat\n{rules.jump.text}\nCOMMIT\n", family=6)
        hairpin, remote = next(_ports), next(_ports)
        t.node.iptables_restore("\n".join([
            "*nat", ":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]",
            ":KUBE-SEP-A - [0:0]", ":KUBE-SEP-B - [0:0]",
            "-I PREROUTING 1 -j KUBE-SERVICES",
            "-I POSTROUTING 1 -j KUBE-POSTROUTING",
            "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
            "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
            "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
            "-A KUBE-POSTROUTING -j MASQUERADE --random-fully",
            "-A KUBE-SERVICES -d fd00:96::10/128 -p udp -m udp --dport 53 -j KUBE-SEP-A",
            "-A KUBE-SERVICES -d fd00:96::20/128 -p udp -m udp --dport 80 -j KUBE-SEP-B",
            f"-A KUBE-SEP-A -s {t.POD6}/128 -j KUBE-MARK-MASQ",
            f"-A KUBE-SEP-A -p udp -m udp -j DNAT --to-destination [{t.POD6}]:{hairpin}",
            f"-A KUBE-SEP-B -p udp -m udp -j DNAT --to-destination [2001:db8::9]:{remote}",
            "COMMIT", ""]), family=6)
        flows = []
        for d in dests + [t.DST6]:
            p = next(_ports)
            flows.append(Flow(t.POD6, d, p, p))
        flows += [Flow(t.POD6, "fd00:96::10", 53, hairpin), Flow(t.POD6, "fd00:96::20", 80, remote)]
        seen = send_batch(t, flows, v6=True)
        dump = tmp_path / "ip6tables-save.txt"
        dump.write_text(t.node.run("ip6tables-save").stdout)
        addrs = tmp_path / "ip-addr.txt"
        addrs.write_text(t.node.run("ip", "-o", "addr").stdout)
        problems = compare(t, flows, str(dump), str(addrs), seen, node_ip=t.NODE6)
        assert not problems, "\n".join(problems)
        assert seen[hairpin] == ("pod", t.GW6)     # the hairpin really was masqueraded to the bridge side


@requires_netns
def test_snat_and_dnat_ranges_are_not_their_first_address(tmp_path):
    # the kernel hashes each connection's tuple to pick an address of the range: explain must not
    # claim the first one (SNAT: the source is left open; DNAT: the verdict is unknown)
    dests = [f"203.0.113.{i}" for i in range(10, 22)]
    with Topology() as t:
        setup_topology(t, dests)
        t.node.iptables_restore("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
                                "-A PREROUTING -d 198.51.100.50/32 -j DNAT --to-destination 203.0.113.10-203.0.113.13\n"
                                "-A POSTROUTING -s 10.244.1.2/32 -j SNAT --to-source 192.0.2.10-192.0.2.20\n"
                                "COMMIT\n", noflush=False)
        flows = [Flow(POD, d, p, p) for d, p in ((d, next(_ports)) for d in dests)]
        seen = send_batch(t, flows)
        dump, addrs = node_facts_files(t, tmp_path)
        sources = {seen[f.final_port][1] for f in flows}
        assert sources <= {f"192.0.2.{i}" for i in range(10, 21)} and sources != {"192.0.2.10"}, sources
        for f in flows:
            ex = explain(Request(src=f.src, dst=f"{f.dst}:{f.port}", proto="udp", iptables=dump, ip_addr=addrs,
                                 node_ip=Topology.NODE_UPLINK))
            assert ex.evaluation.masqueraded is True and ex.evaluation.source_ip_seen is None, ex.summary
            assert "192.0.2.10-192.0.2.20" in ex.summary
        ex = explain(Request(src=POD, dst="198.51.100.50:53", proto="udp", iptables=dump, ip_addr=addrs,
                             node_ip=Topology.NODE_UPLINK))
        assert ex.evaluation.masqueraded is None and "range" in ex.summary


@requires_netns
def test_ip6tables_legacy_tables_present_is_reported(tmp_path):
    # ip6tables-nft-save words its warning "ip6tables-legacy tables present"
    with Topology() as t:
        t.node.run("ip6tables-legacy-restore", "-w", input="*nat\n-A POSTROUTING -s fd00:244::/64 -j MASQUERADE\n"
                                                               "COMMIT\n")
        t.node.run("ip6tables-restore", "-w", input="*nat\n-A POSTROUTING -d 2001:db8::9/128 -j ACCEPT\nCOMMIT\n")
        r = t.node.run("sh", "-c", "ip6tables-nft-save 2>&1")
        assert "ip6tables-legacy tables present" in r.stdout
        dump = tmp_path / "dump.txt"
        dump.write_text(r.stdout)
        ex = explain(Request(src="fd00:244::5", dst="2001:db8::9", proto="udp", iptables=str(dump),
                             local_addresses=["fd00:10::4/64@eth0"], node_ip="fd00:10::4"))
        assert any("iptables-legacy tables are present" in n for n in ex.notes)
        assert ex.to_dict()["input"]["legacy_tables_present"] is True


@requires_netns
def test_redirect_of_host_traffic_still_walks_postrouting(tmp_path):
    # OUTPUT REDIRECT maps host traffic to 127.0.0.1, which leaves over lo: nat POSTROUTING runs
    with Topology() as t:
        setup_topology(t, ["203.0.113.9"])
        t.node.sysctl("net.ipv4.conf.all.route_localnet", "1")
        t.node.iptables_restore("*nat\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
                                "-A OUTPUT -d 203.0.113.9/32 -p udp -j REDIRECT\n"
                                "-A POSTROUTING -s 10.244.1.1/32 -o lo -j SNAT --to-source 127.0.0.7\n"
                                "COMMIT\n", noflush=False)
        p = next(_ports)
        flows = [Flow("10.244.1.1", "203.0.113.9", p, p, from_host=True)]
        _assert_agree(t, tmp_path, flows)


@requires_netns
def test_raw_notrack_skips_nat(tmp_path):
    with Topology() as t:
        setup_topology(t, ["203.0.113.9"])
        p1, p2, p3 = next(_ports), next(_ports), next(_ports)
        t.node.iptables_restore("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:UNTRACK - [0:0]\n"
                                "-A PREROUTING -j UNTRACK\n"
                                f"-A UNTRACK -p udp -m udp --dport {p1} -j CT --notrack\n"
                                f"-A OUTPUT -p udp -m udp --dport {p3} -j NOTRACK\nCOMMIT\n"
                                "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n", noflush=False)
        flows = [Flow(POD, "203.0.113.9", p, p) for p in (p1, p2)]
        flows.append(Flow("10.244.1.1", "203.0.113.9", p3, p3, from_host=True))
        _assert_agree(t, tmp_path, flows)
        dump, addrs = node_facts_files(t, tmp_path)
        ex = explain(Request(src=POD, dst=f"203.0.113.9:{p1}", proto="udp", iptables=dump, ip_addr=addrs,
                             node_ip=Topology.NODE_UPLINK))
        assert ex.evaluation.primary.kind == "untracked" and "untracks" in ex.summary
