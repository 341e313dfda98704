"""``--nodes`` means the same on a bundle as live: names (unknown ones are E619), a Kubernetes
label selector with the API server's grammar and matching (malformed: E208), a deterministic
sample over the node pools; empty text and a sample under 1 are E208.

The label selector parser is checked against a table that includes the API server's own edge
cases (k8s.io/apimachinery labels tests: empty values, ``in``/``notin`` as words, blanks, keys
with prefixes, integer comparisons)."""

from __future__ import annotations

import json
import re

import pytest
import qakit

from clusterkit import served
from kubeapi import KubeAPI, Programs
from masqctl.analysis.inspect import nodes_in_scope
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.live.kube import gather_kube
from masqctl.cluster.options import GatherOptions, NodeSelection, parse_node_selection
from masqctl.cluster.selection import (NodeRef, SelectorError, choose, label_key_errors, parse_label_selector,
                                       sample)
from masqctl.errors import UsageError
from errordoc import no_result

KUBENET = ("aks-nodepool1-10522532-vmss000000", "aks-nodepool1-10522532-vmss000001",
           "aks-nodepool1-10522532-vmss000002")

# --------------------------------------------------------------------------- the parser

# text → the selector as the API server prints it back (requirements sorted by key, values sorted)
VALID = [
    ("", ""),
    ("x=a,y=b,z=c", "x=a,y=b,z=c"),
    ("x!=a,y=b", "x!=a,y=b"),
    ("x=", "x="),
    ("x= ", "x="),
    ("x=,z= ", "x=,z="),
    ("x= ,z= ", "x=,z="),
    ("x==a", "x==a"),
    ("!x", "!x"),
    ("x>1", "x>1"),
    ("x>1,z<5", "x>1,z<5"),
    ("x<007", "x<007"),
    ("x<9223372036854775807", "x<9223372036854775807"),
    ("\rx", "x"),
    ("a ", "a"),
    ("this-is-a-dns.domain.com/key-with-dash", "this-is-a-dns.domain.com/key-with-dash"),
    ("this-is-another-dns.domain.com/key-with-dash in (so,what)",
     "this-is-another-dns.domain.com/key-with-dash in (so,what)"),
    ("0.1.2.domain/99 notin (10.10.100.1, tick.tock.clock)", "0.1.2.domain/99 notin (10.10.100.1,tick.tock.clock)"),
    ("foo  in\t (abc)", "foo in (abc)"),
    ("x notin\n (abc)", "x notin (abc)"),
    ("x  notin\t\t(abc,def)", "x notin (abc,def)"),
    ("x in (abc,def)", "x in (abc,def)"),
    ("x in (abc,)", "x in (,abc)"),
    ("x in ()", "x in ()"),
    ("x notin ( )", "x notin ()"),
    ("x notin (, a)", "x notin (,a)"),
    ("x in (b,a,b)", "x in (a,b)"),
    ("x notin (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()"),
    ("x,y in (a)", "x,y in (a)"),
    ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
    ("in in (in)", "in in (in)"),
    ("notin", "notin"),
    ("agentpool in (system)", "agentpool in (system)"),
    ("kubernetes.azure.com/mode=system,!kubernetes.azure.com/spot", "kubernetes.azure.com/mode=system,"
     "!kubernetes.azure.com/spot"),
    ("k=v\0anything", "k=v"),     # the API server's lexer stops at a NUL
]

INVALID = [
    "x=a||y=b", "x==a==b", "!x=a", "x<a", "x,,y", ",x,y", "x nott in (y)", "a in (xyz),",
    "a in (xyz)b notin ()", "a in (xyz abc)", "a notin(", "a (", "(", ")", "=", "==", "!=", "!", "!!x", "x!",
    "x=>1", "x>=1", "x>", "x<-1", "x<9223372036854775808", "x in (a", "x in a", "x in", ",", "x,", "x=a,",
    "x=a b", "k=v=w", "a=b|c", "a=-b", "a=" + "v" * 64, "/x", "a/b/c", "Example.com/x", "example.com/",
    "-x", "x-", "x" * 64, "a" * 250 + ".com/x", "a b", "k in (a)(b)", "é=1",
]


@pytest.mark.parametrize("text,printed", VALID, ids=[repr(t) for t, _ in VALID])
def test_valid_selectors_parse_as_the_api_server_parses_them(text, printed):
    assert str(parse_label_selector(text)) == printed


@pytest.mark.parametrize("text", INVALID, ids=repr)
def test_invalid_selectors_are_refused(text):
    with pytest.raises(SelectorError):
        parse_label_selector(text)


@pytest.mark.parametrize("text,message", [
    ("=", "found '=', expected: !, identifier, or 'end of string'"),
    ("x,,y", "found ',', expected: identifier after ','"),
    ("x==a==b", "found '==', expected: ',' or 'end of string'"),
    ("a in (xyz abc)", "unable to parse requirement: found 'abc', expected: ',' or ')'"),
    ("x y", "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"),
    ("x in a", "unable to parse requirement: found 'a' expected: '('"),
    ("x<a", "the value must be an integer"),
    ("/x", "prefix part must be non-empty"),
])
def test_refusals_give_the_api_servers_reason(text, message):
    with pytest.raises(SelectorError) as e:
        parse_label_selector(text)
    assert message in str(e.value)


LABELS = {"agentpool": "system", "mode": "", "gen": "5", "odd": "x5"}
MATCHES = [
    ("agentpool=system", True), ("agentpool==system", True), ("agentpool=user", False),
    ("agentpool!=user", True), ("agentpool!=system", False), ("missing!=x", True),
    ("agentpool in (user,system)", True), ("agentpool in (user)", False), ("missing in (a)", False),
    ("agentpool notin (user)", True), ("agentpool notin (system)", False), ("missing notin (a)", True),
    ("agentpool", True), ("missing", False), ("!agentpool", False), ("!missing", True),
    ("mode=", True), ("mode in ()", True), ("mode notin ()", False), ("missing=", False),
    ("gen>4", True), ("gen>5", False), ("gen<6", True), ("gen<05", False), ("odd>1", False), ("missing>1", False),
    ("agentpool=system,gen>4", True), ("agentpool=system,gen>5", False), ("", True),
]


@pytest.mark.parametrize("text,expected", MATCHES, ids=[t for t, _ in MATCHES])
def test_matching_follows_the_api_server(text, expected):
    assert parse_label_selector(text).matches(LABELS) is expected


def test_label_keys():
    assert label_key_errors("kubernetes.azure.com/agentpool") == []
    assert label_key_errors("a" * 63) == [] and label_key_errors("a" * 64)
    assert label_key_errors("UPPER.case_ok-1") == []
    assert label_key_errors("Upper.com/x") and label_key_errors("x/") and label_key_errors("_x")


# --------------------------------------------------------------------------- --nodes text


@pytest.mark.parametrize("text,expected", [
    (None, NodeSelection()),
    ("a,b", NodeSelection(names=("a", "b"))),
    (" a , ,b ", NodeSelection(names=("a", "b"))),
    ("agentpool", NodeSelection(names=("agentpool",))),          # a bare word is a node name
    ("5", NodeSelection(sample=5)),
    (" 5 ", NodeSelection(sample=5)),
    ("+3", NodeSelection(sample=3)),
    ("agentpool=system", NodeSelection(selector="agentpool=system")),
    ("agentpool in (system)", NodeSelection(selector="agentpool in (system)")),
    ("!kubernetes.azure.com/spot", NodeSelection(selector="!kubernetes.azure.com/spot")),
    ("gen>4", NodeSelection(selector="gen>4")),
])
def test_nodes_text(text, expected):
    assert parse_node_selection(text) == expected


@pytest.mark.parametrize("text,message", [
    ("", "is empty"),
    (" ", "is empty"),
    ("\t", "is empty"),
    ("0", "a sample must be at least 1 node"),
    ("-1", "a sample must be at least 1 node"),
    ("-0", "a sample must be at least 1 node"),
    (",", "no node names given"),
    ("=", "not a valid label selector: found '='"),
    ("a in b", "not a valid label selector"),
    ("agentpool in (system", "not a valid label selector"),
    ("agentpool=sys tem", "not a valid label selector"),
    ("x=a||y=b", "not a valid label selector"),
])
def test_unusable_nodes_text_is_e208(text, message):
    with pytest.raises(UsageError) as e:
        parse_node_selection(text)
    assert e.value.code == "E208" and message in e.value.message
    assert e.value.input.startswith("--nodes")


def test_a_selection_built_in_code_is_checked_too():
    for bad in (dict(selector="="), dict(selector=" "), dict(sample=0)):
        with pytest.raises(UsageError) as e:
            NodeSelection(**bad)
        assert e.value.code == "E208"


# --------------------------------------------------------------------------- choosing


def refs(n_user: int = 3) -> list[NodeRef]:
    out = [NodeRef("aks-system-0", {"agentpool": "system", "kubernetes.azure.com/agentpool": "system"}),
           NodeRef("aks-system-1", {"agentpool": "system", "kubernetes.azure.com/agentpool": "system"}),
           NodeRef("akswin000000", {"agentpool": "win"}, "windows")]
    out += [NodeRef(f"aks-user-{i}", {"kubernetes.azure.com/agentpool": "user", "team": "a" if i % 2 else "b"})
            for i in range(n_user)]
    return out


def test_choose_names_selector_sample_and_all():
    nodes = refs()
    assert choose(nodes, None).names == ("aks-system-0", "aks-system-1", "aks-user-0", "aks-user-1", "aks-user-2")
    chosen = choose(nodes, NodeSelection(names=("aks-user-1", "akswin000000", "aks-user-1")))
    assert chosen.names == ("aks-user-1",) and chosen.not_linux == (("akswin000000", "windows"),)
    assert "akswin000000 is a windows node" in chosen.notes[0]
    assert choose(nodes, NodeSelection(selector="team=b")).names == ("aks-user-0", "aks-user-2")
    assert choose(nodes, NodeSelection(selector="agentpool")).names == ("aks-system-0", "aks-system-1")
    with pytest.raises(UsageError) as nothing:                                  # Windows is never selected
        choose(nodes, NodeSelection(selector="agentpool=win"))
    assert nothing.value.code == "E209" and "matches no Linux node" in nothing.value.message
    assert "agentpool = " in nothing.value.hint                                 # what the Linux nodes carry
    # live: the API server evaluated the selector; its answer is used, Linux nodes only
    assert choose(nodes, NodeSelection(selector="team=b"), matched={"aks-user-2", "akswin000000"}).names == (
        "aks-user-2",)


def test_unknown_names_are_e619_listing_some_known_nodes():
    nodes = refs(20)
    with pytest.raises(UsageError) as e:
        choose(nodes, NodeSelection(names=("aks-user-1", "nope", "nope2")), where="the cluster")
    err = e.value
    assert err.code == "E619" and err.input == "--nodes aks-user-1,nope,nope2"
    assert err.message.startswith("no node named nope, nope2 in the cluster; nodes: aks-system-0, aks-system-1, ")
    assert err.message.endswith("… (23 in all)")


def test_the_sample_is_deterministic_and_spread_over_pools():
    linux = [n for n in refs() if n.linux]
    assert sample(linux, 1) == ["aks-system-0"]
    assert sample(linux, 2) == ["aks-system-0", "aks-user-0"]          # every pool before a second node
    assert sample(linux, 3) == ["aks-system-0", "aks-system-1", "aks-user-0"]
    assert sample(linux, 4) == ["aks-system-0", "aks-system-1", "aks-user-0", "aks-user-1"]
    assert sample(linux, 99) == sorted(n.name for n in linux)
    assert sample(list(reversed(linux)), 3) == sample(linux, 3)        # input order does not matter
    # --nodes N picks among Linux nodes only
    nodes = refs()
    assert choose(nodes, NodeSelection(sample=3)).names == ("aks-system-0", "aks-system-1", "aks-user-0")
    assert "akswin000000" not in choose(nodes, NodeSelection(sample=99)).names


# --------------------------------------------------------------------------- on a bundle (the CLI)


def _inspect(*args: str):
    proc = qakit.run("inspect", "--bundle", "examples/aks-kubenet", "-o", "json", *args)
    qakit.assert_clean(proc)
    return proc


@pytest.mark.parametrize("nodes,scope,note", [
    ("aks-nodepool1-10522532-vmss000001", KUBENET[1:2], None),
    ("kubernetes.azure.com/mode in (system)", KUBENET, None),
    ("kubernetes.azure.com/mode=system,agentpool==nodepool1", KUBENET, None),
    ("!kubernetes.azure.com/spot", KUBENET, None),
    ("2", KUBENET[:2], None),
    ("99", KUBENET, None),
])
def test_bundle_selection(nodes, scope, note):
    proc = _inspect("--nodes", nodes)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["summary"]["nodes"] == len(scope)
    groups = (doc["nodes"] or {}).get("groups") or []
    assert sorted(n for g in groups for n in g["nodes"]) == sorted(scope)
    if note:
        assert any(note in n for n in doc["notes"]), doc["notes"]
    else:
        assert not any("--nodes" in n for n in doc["notes"]), doc["notes"]


@pytest.mark.parametrize("nodes,code,pattern", [
    ("nonexistent", "E619", r"no node named nonexistent in the snapshot \(bundle examples/aks-kubenet\); nodes: "
                            r"aks-nodepool1-10522532-vmss000000, aks-nodepool1-10522532-vmss000001"),
    ("aks-nodepool1-10522532-vmss000000,aks-nodepool1-10522532-vmss000009", "E619",
     r"no node named aks-nodepool1-10522532-vmss000009 in"),
    ("=", "E208", r"not a valid label selector: found '=', expected: !, identifier, or 'end of string'"),
    ("agentpool in (system", "E208", r"not a valid label selector"),
    ("", "E208", r"--nodes '': is empty"),
    (" ", "E208", r"--nodes ' ': is empty"),
    ("-1", "E208", r"--nodes -1: a sample must be at least 1 node"),
    ("0", "E208", r"--nodes 0: a sample must be at least 1 node"),
    ("agentpool notin (nodepool1)", "E209", r"matches no Linux node of the snapshot .*\n.*agentpool = nodepool1"),
    ("agentpool in (system)", "E209", r"matches no Linux node"),
])
def test_bundle_selection_errors(nodes, code, pattern):
    proc = _inspect("--nodes", nodes)
    assert proc.returncode == 2 and no_result(proc)
    assert code in proc.stderr and re.search(pattern, proc.stderr), proc.stderr


def test_a_selector_needs_node_labels(tmp_path):
    import os
    b = qakit.bundle(tmp_path, "aks-kubenet")
    os.remove(os.path.join(b, "nodes.yaml"))
    proc = qakit.run("inspect", "--bundle", b, "-o", "json", "--nodes", "agentpool=nodepool1")
    qakit.assert_clean(proc)
    assert proc.returncode == 2 and "E208" in proc.stderr and "no Node objects" in proc.stderr
    proc = qakit.run("inspect", "--bundle", b, "-o", "json", "--nodes", "ghost")
    assert proc.returncode == 2 and "E619" in proc.stderr and "only nodes with a capture or an agent pod" in proc.stderr
    proc = qakit.run("inspect", "--bundle", b, "-o", "json", "--nodes", KUBENET[2])
    assert proc.returncode == 0 and json.loads(proc.stdout)["summary"]["nodes"] == 1


# --------------------------------------------------------------------------- live and bundle agree


def _cluster(api: KubeAPI) -> None:
    served.small_cluster(api, 3, workloads_per_node=0, windows=("akswin000000",))
    for i in range(4):
        name = f"aks-user-{i}"
        api.add(served.node(name, ip=f"10.224.1.{i + 4}", pool="user", labels={"team": "a" if i < 2 else "b"}))
        api.add(served.agent_pod(name, f"10.224.1.{i + 4}"))
    api.on_exec(Programs({"iptables-save": "*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n", "ip6tables-save": ""}))


@pytest.mark.parametrize("selection", [
    NodeSelection(sample=2), NodeSelection(sample=3), NodeSelection(sample=5),
    NodeSelection(selector="team in (b),agentpool=user"), NodeSelection(selector="agentpool!=user"),
    NodeSelection(selector="!team"), NodeSelection(names=("aks-user-3", "aks-nodepool1-00000001")),
], ids=str)
def test_live_captures_exactly_the_nodes_a_report_on_the_snapshot_covers(tmp_path, selection):
    """The nodes captured live and the nodes inspect covers (on that snapshot, or on a bundle of
    it) are the same: before, a sample covered the first N names while other nodes were captured."""
    with KubeAPI() as api:
        _cluster(api)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        raw = gather_kube(GatherOptions(kubeconfig=kubeconfig, nodes=selection, azure=False),
                          environ={"HOME": str(tmp_path)})
    captured = sorted(n for n, c in raw.captures.items() if c.iptables_save is not None)
    assert captured
    scope, _ = nodes_in_scope(build_snapshot(raw), selection)
    assert scope == captured


def test_live_malformed_selector_is_refused_before_any_request(tmp_path):
    with KubeAPI() as api:
        _cluster(api)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        for text in ("=", "agentpool in (user", "team=a b"):
            proc = qakit.run("inspect", "--kubeconfig", kubeconfig, "--no-azure", "--nodes", text)
            qakit.assert_clean(proc)
            assert proc.returncode == 2 and "E208" in proc.stderr, proc.stderr
        proc = qakit.run("inspect", "--kubeconfig", kubeconfig, "--no-azure", "--nodes", "aks-user-1,ghost")
        assert proc.returncode == 2 and "E619" in proc.stderr and "no node named ghost in the cluster" in proc.stderr
        assert api.count("GET", r"/exec$") == 0
        before = api.count()
        proc = qakit.run("inspect", "--kubeconfig", kubeconfig, "--no-azure", "--nodes", "=")
        assert api.count() == before
