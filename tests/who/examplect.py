"""Make examples/hub-spoke/nodes/aks-system-20931744-vmss000000/conntrack.txt from real traffic (root).

    python tests/who/examplect.py

The hub-spoke example's pods on that node open connections through a node namespace that runs
the agent's rules for the example's config (10.42.0.0/15, the hub, is masqueraded), and the
node namespace's /proc/net/nf_conntrack is written as the example's table. invoice-client calls
the hub's ingress from source port 51234 (the ingress logs 10.40.0.4:51234), orders-api from
the same port a moment later (the node translates it to another), coredns asks Azure DNS, the
node itself (a host-network pod) calls the hub too, and one connection is already closed.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for p in (ROOT, os.path.join(ROOT, "tests"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

from whonet import HUB, Estate, Pod  # noqa: E402

NODE = "aks-system-20931744-vmss000000"
AZURE_DNS = "168.63.129.16"
OUT = os.path.join(ROOT, "examples", "hub-spoke", "nodes", NODE, "conntrack.txt")
PODS = [Pod("billing", "invoice-client-6d4f9b8c7-t5rjp", "10.40.0.7"),
        Pod("orders", "orders-api-5b7c9d8f6-kq2xv", "10.40.0.9"),
        Pod("kube-system", "coredns-6bd9d8c8b6-xl7nq", "10.40.0.5")]
PLANS = {
    PODS[0].name: [("tcp", HUB, 51234), ("tcp", HUB, 0), ("tcp-closed", HUB, 0)],
    PODS[1].name: [("tcp", HUB, 51234), ("tcp", HUB, 0)],
    PODS[2].name: [("udp", AZURE_DNS, 0, 53), ("udp", AZURE_DNS, 0, 53)],
}


def main() -> int:
    with Estate(PODS, destinations=(HUB, AZURE_DNS)) as e:
        log = e.traffic(PLANS, node_plan=[("tcp", HUB, 0)])
        table = e.tables()["proc"]
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(table)
    for r in log:
        print(f"{r['who']:34} {r['proto']} seen as {r['ip']}:{r['port']} -> {r['to']}:{r['dport']}")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
