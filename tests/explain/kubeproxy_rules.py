"""kube-proxy's nat rules (iptables mode) for one Service, as a node's iptables-save prints them.

The shapes follow the rules kube-proxy writes today, as upstream's own tests expect them:
kubernetes/kubernetes pkg/proxy/iptables/proxier_test.go, TestOverallIPTablesRules (commit
2bb4b1042dfd, the expected ``*nat`` block): ``KUBE-SERVICES`` matches the cluster IP
(``KUBE-SVC-…``) and the load-balancer IP (``KUBE-EXT-…``); ``KUBE-EXT-…`` of an
``externalTrafficPolicy: Cluster`` Service marks every packet ("masquerade traffic for …
external destinations") and jumps to ``KUBE-SVC-…``; one of ``Local`` sends pod traffic
("pod traffic for …") and the node's own ("masquerade LOCAL traffic", "route LOCAL traffic") to
``KUBE-SVC-…`` and everything else to ``KUBE-SVL-…``, which lists only this node's endpoints;
``KUBE-SEP-…`` marks hairpin traffic and DNATs; ``KUBE-POSTROUTING`` masquerades marked packets.
"""

from __future__ import annotations

import hashlib


def chain_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16].upper()


def service_nat(*, name: str, cluster_ip: str, lb_ip: str | None, port: int, node_port: int | None,
                endpoints: list[tuple[str, int, bool]], policy: str = "Cluster", proto: str = "tcp",
                cluster_cidr: str | None = None, agent: list[str] | None = None) -> str:
    """The nat table of a node for Service ``name`` (``ns/svc:port``); ``endpoints`` are
    (ip, port, on this node). ``agent``: non-masquerade CIDRs of an ip-masq-agent chain (None:
    no agent)."""
    chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
    lines = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    ]
    if agent is not None:
        chains.append("IP-MASQ-AGENT")
        lines.append('-A POSTROUTING -m comment --comment "\\"ip-masq-agent: ensure nat POSTROUTING directs all '
                     'non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain\\"" -m addrtype ! --dst-type '
                     'LOCAL -j IP-MASQ-AGENT')
    lines += [
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
        "--random-fully",
    ]
    tail = []
    for proto in (proto.split(",") if isinstance(proto, str) else proto):
        _one(chains, lines, tail, name, proto, cluster_ip, lb_ip, port, node_port, endpoints, policy, cluster_cidr)
    lines.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last '
                 'rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
    lines += tail
    if agent is not None:
        for cidr in agent:
            lines.append(f'-A IP-MASQ-AGENT -d {cidr} -m comment --comment "ip-masq-agent: local traffic is not '
                         'subject to MASQUERADE" -j RETURN')
        lines.append('-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to '
                     'MASQUERADE (must be last in chain)" -j MASQUERADE')
    head = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]"] + [f":{c} - [0:0]" for c in chains]
    return "\n".join(head + lines + ["COMMIT", ""])


def _one(chains, lines, tail, name, proto, cluster_ip, lb_ip, port, node_port, endpoints, policy, cluster_cidr):
    """The rules of one protocol of the Service port (``tail``: the nodeports rule, last in KUBE-SERVICES)."""
    sid = chain_id(name, proto)
    svc, ext, svl = f"KUBE-SVC-{sid}", f"KUBE-EXT-{sid}", f"KUBE-SVL-{sid}"
    chains.append(svc)
    lines.append(f'-A KUBE-SERVICES -d {cluster_ip}/32 -p {proto} -m comment --comment "{name} cluster IP" '
                 f"-m {proto} --dport {port} -j {svc}")
    external = lb_ip is not None or node_port is not None
    if external:
        chains.append(ext)
    if lb_ip is not None:
        lines.append(f'-A KUBE-SERVICES -d {lb_ip}/32 -p {proto} -m comment --comment "{name} loadbalancer IP" '
                     f"-m {proto} --dport {port} -j {ext}")
    if node_port is not None:
        lines.append(f"-A KUBE-NODEPORTS -p {proto} -m comment --comment {name} -m {proto} --dport {node_port} "
                     f"-j {ext}")
    if external and policy == "Cluster":
        lines.append(f'-A {ext} -m comment --comment "masquerade traffic for {name} external destinations" '
                     "-j KUBE-MARK-MASQ")
        lines.append(f"-A {ext} -j {svc}")
    elif external:
        chains.append(svl)
        if cluster_cidr:
            lines.append(f'-A {ext} -s {cluster_cidr} -m comment --comment "pod traffic for {name} external '
                         f'destinations" -j {svc}')
        lines.append(f'-A {ext} -m comment --comment "masquerade LOCAL traffic for {name} external destinations" '
                     "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
        lines.append(f'-A {ext} -m comment --comment "route LOCAL traffic for {name} external destinations" '
                     f"-m addrtype --src-type LOCAL -j {svc}")
        lines.append(f"-A {ext} -j {svl}")
    if cluster_cidr:
        lines.append(f'-A {svc} ! -s {cluster_cidr} -d {cluster_ip}/32 -p {proto} -m comment --comment "{name} '
                     f'cluster IP" -m {proto} --dport {port} -j KUBE-MARK-MASQ')
    seps = []
    for ip, ep_port, local in endpoints:
        sep = f"KUBE-SEP-{chain_id(name, ip, str(ep_port), proto)}"
        chains.append(sep)
        seps.append((sep, ip, ep_port, local))
        lines.append(f"-A {sep} -s {ip}/32 -m comment --comment {name} -j KUBE-MARK-MASQ")
        lines.append(f"-A {sep} -p {proto} -m comment --comment {name} -m {proto} -j DNAT --to-destination "
                     f"{ip}:{ep_port}")
    lines += _spread(svc, name, seps)
    if external and policy != "Cluster":
        lines += _spread(svl, name, [s for s in seps if s[3]])


def _spread(chain: str, name: str, seps: list) -> list[str]:
    """The statistic-random spread over ``seps`` (kube-proxy's 1/n, 1/(n-1), … probabilities)."""
    out = []
    n = len(seps)
    for i, (sep, ip, port, _) in enumerate(seps):
        stat = f" -m statistic --mode random --probability {1 / (n - i):.11f}" if i < n - 1 else ""
        out.append(f'-A {chain} -m comment --comment "{name} -> {ip}:{port}"{stat} -j {sep}')
    return out
