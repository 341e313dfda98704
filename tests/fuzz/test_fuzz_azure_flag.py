"""Property test of ``--azure CONTEXT=[SUB/]RG/CLUSTER``: any text gives per-context Azure facts or a
coded usage error (E264/E265) naming the value — never another exception."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from timelimit import time_limit

from masqctl.cli.gathering import GatherFlags
from masqctl.errors import UsageError

EXAMPLES = int(os.environ.get("MASQCTL_FUZZ_EXAMPLES", "200"))
PARTS = st.text(alphabet="ab=/ -_.()é", max_size=12)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(values=st.lists(st.one_of(PARTS, st.builds(lambda c, f: f"{c}={f}", st.sampled_from(["a", "b", "c", ""]), PARTS)),
                       max_size=3))
def test_any_azure_value_gives_facts_or_a_coded_error(values):
    flags = GatherFlags(contexts=["a", "b"], azure_of=values, no_capture=True)
    with time_limit(10, "--azure"):
        try:
            opts = flags.cluster_options()
        except UsageError as e:
            assert e.code in ("E264", "E265"), e.code
            assert e.input
            return
    assert [o.context for o in opts] == ["a", "b"]
    for o in opts:
        assert o.cluster is None or o.cluster.strip()


def test_the_forms():
    opts = GatherFlags(contexts=["a", "b"], azure_of=["a=rg/aks-a", "b=sub/rg-b/aks-b"]).cluster_options()
    assert [(o.subscription, o.resource_group, o.cluster) for o in opts] == [(None, "rg", "aks-a"),
                                                                            ("sub", "rg-b", "aks-b")]
    rid = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/x"
    (o,) = GatherFlags(contexts=["a"], azure_of=[f"a={rid}"]).cluster_options()
    assert (o.resource_group, o.cluster) == (None, rid)
