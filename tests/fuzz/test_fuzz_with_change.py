"""`explain --with-change FILE` reads any file as a plan or a coded error: the agent config text
(validated as apply validates it) or a ConfigMap manifest, never a traceback."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from timelimit import time_limit

from masqctl.analysis.explain_cluster import ClusterRequest, explain_snapshot
from masqctl.cli.explain import _change_request
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle
from masqctl.errors import MasqctlError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SNAPSHOT = build_snapshot(read_bundle(os.path.join(ROOT, "examples", "hub-spoke")))
EXAMPLES = int(os.environ.get("MASQCTL_FUZZ_EXAMPLES", "60"))

cidr = st.builds(lambda a, b, n: f"{a}.{b}.0.0/{n}", st.integers(0, 255), st.integers(0, 255), st.integers(0, 33))
config = st.builds(lambda cs, ll: "nonMasqueradeCIDRs:\n" + "".join(f"  - {c}\n" for c in cs)
                   + (f"masqLinkLocal: {ll}\n" if ll is not None else ""),
                   st.lists(cidr, max_size=4), st.one_of(st.none(), st.sampled_from(["true", "false", "maybe"])))
manifest = st.builds(lambda name, body: f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
                     f"  namespace: kube-system\ndata:\n  ip-masq-agent: |\n" + "".join(
                         f"    {line}\n" for line in body.splitlines()),
                     st.sampled_from(["azure-ip-masq-agent-config", "other"]), config)
noise = st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace")))


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(config.map(str.encode), manifest.map(str.encode), noise))
def test_any_file_is_a_plan_or_a_coded_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("change") / "change.yaml"
    path.write_bytes(data)
    with time_limit(20, "explain --with-change"):
        try:
            change, target = _change_request(None, str(path))
            result = explain_snapshot(SNAPSHOT, ClusterRequest(src="10.40.0.9", dst="10.42.1.10", change=change,
                                                               change_target=target))
        except MasqctlError as exc:
            assert exc.code.startswith("E") and exc.input, exc
            return
    assert result.change is not None and result.base.evaluation is not None
