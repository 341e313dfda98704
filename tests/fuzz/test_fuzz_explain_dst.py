"""Property test of explain's DST across clusters: any text gives a resolved destination or a coded
error naming DST (or SRC) — never another exception, never a hang."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from timelimit import time_limit

from masqctl.analysis.explain_cluster import ClusterRequest
from masqctl.analysis.explain_path import resolve_target
from masqctl.cluster.model import ClusterSnapshot, Node, WorkloadPod
from masqctl.errors import MasqctlError

EXAMPLES = int(os.environ.get("MASQCTL_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

SPOKE = ClusterSnapshot(source="bundle spoke1", nodes=(Node("s0", "10.40.0.4"),),
                        workloads=(WorkloadPod("shop", "orders-api", "s0", ("10.40.0.12",)),))
HUB = ClusterSnapshot(source="bundle hub", nodes=(Node("h0", "10.42.0.4"),),
                      workloads=(WorkloadPod("ingress-nginx", "ingress-nginx-controller-0", "h0", ("10.42.1.20",)),))
CLUSTERS = [("spoke1", SPOKE), ("hub", HUB)]

PIECES = st.sampled_from(["ingress-nginx", "ingress-nginx-controller", "ingress-nginx-controller-0", "svc",
                          "cluster", "local", "kube-dns", "kube-system", "10.42.0.4", "10.42.1.20", "443", "https",
                          "53", "0", "65536", "", "fd00::1", "[fd00::1]", "x" * 70])
SEPS = st.sampled_from(["/", ".", ":", "", "//", "::", " ", "\n", "\x00"])
TEXT = st.one_of(st.text(max_size=60),
                 st.lists(st.tuples(PIECES, SEPS), max_size=6).map(lambda parts: "".join(a + b for a, b in parts)))


@FUZZ
@given(TEXT, st.sampled_from([None, "tcp", "udp"]))
def test_any_dst_resolves_or_is_a_coded_error(text, proto):
    with time_limit(10, f"DST {text!r}"):
        try:
            t = resolve_target(CLUSTERS, text, ClusterRequest("shop/orders-api", text, proto=proto), "spoke1", 4)
        except MasqctlError as exc:
            assert exc.code.startswith("E") and exc.input in ("DST", "SRC"), (exc.code, exc.input)
            return
        assert t.kind in ("pod", "service", "lb", "external-ip", "node-port", "node", "address")
        assert t.cluster in (None, "spoke1", "hub")
