"""Property tests of the agent config reader: any bytes or text as a config file, a folder or a
ConfigMap data value gives either a config (that renders, with warnings naming the file) or a
coded ``ConfigError`` naming the input — never another exception, never a hang."""

from __future__ import annotations

import json
import os
import re
import tempfile

import yaml
from clusterkit.offline import configmap, daemonset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masqctl.analysis.agentconfig import agent_configs
from masqctl.cluster.build import build_snapshot
from masqctl.cluster.raw import RawCluster
from masqctl.engine import AgentOptions, ConfigSource, effective_config, load_config_dir, render
from masqctl.errors import ConfigError

NAME = "ip-masq-agent"
OPTIONS = st.builds(AgentOptions, flavor=st.sampled_from(["azure-v2", "upstream", "tke"]), enable_ipv6=st.booleans(),
                    nomasq_all_reserved_ranges=st.booleans())
# MASQCTL_FUZZ_EXAMPLES=5000 searches harder (the default keeps the file well under 30 s on 2 cores)
EXAMPLES = int(os.environ.get("MASQCTL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- inputs

KEYS = ["nonMasqueradeCIDRs", "masqLinkLocal", "masqLinkLocalIPv6", "cidrLimit", "resyncInterval",
        "nonMasqueradeSrcCIDRs", "apiVersion", "kind", "metadata", "data", "items"]


def spelled(key: str):
    """A key as written: exact, in another case, or with a typo."""
    return st.sampled_from([key, key.lower(), key.upper(), key[:-1], key + "s", key[0].upper() + key[1:]])


CIDRS = st.one_of(
    st.builds("{}.{}.{}.{}/{}".format, *[st.integers(0, 300)] * 4, st.integers(-1, 40)),
    st.sampled_from(["10.0.0.0/8", "10.0.0.1/8", "fd00::/8", "::ffff:10.0.0.0/104", "", " 10.0.0.0/8",
                     "010.0.0.0/8", "10.0.0.0/255.0.0.0", "fe80::1%eth0/64", "0.0.0.0/0", "::/0"]),
    st.text(max_size=20),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), CIDRS,
                    st.sampled_from(["60s", "1m0s", "-5s", "1e3s", "yes", "off", "y", "~", "0x40", "0o17"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=20)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS).flatmap(spelled) | st.text(max_size=10), VALUES, max_size=6)


@st.composite
def config_texts(draw) -> bytes:
    """Config files as people write them, then damaged: YAML or JSON, later documents,
    anchors, stray characters at a random place, a BOM, CRLF line ends."""
    doc = draw(DOCUMENTS)
    if draw(st.booleans()):
        text = json.dumps(doc, indent=draw(st.sampled_from([None, 2])))
    else:
        text = yaml.safe_dump(doc, default_flow_style=draw(st.sampled_from([None, False, True])))
    if draw(st.booleans()):
        text += "---\n" + yaml.safe_dump(draw(DOCUMENTS))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(["&a ", "*a", "<<: *a\n", "\t", ": ", "- ", "{", "]", "'", '"', "%YAML 1.1\n",
                                     "---\n", "...\n", "\x00", "\ufeff", "!!binary ", "? ", "#", "\\"]))
        text = text[:at] + junk + text[at:]
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data


ANY_BYTES = st.one_of(st.binary(max_size=600), config_texts(),
                      st.text(alphabet="abkn:- \n\t[]{},'\"&*!|>#%@`?~0123456789./", max_size=300).map(str.encode))

# --------------------------------------------------------------------------- the property


def check_file(data: bytes, options: AgentOptions) -> None:
    try:
        config = effective_config([ConfigSource(NAME, data)], options)
    except ConfigError as exc:
        assert re.fullmatch(r"E1[01]\d", exc.code), exc.one_line()
        assert exc.file == NAME and exc.input.startswith(NAME), exc.one_line()
        lines = len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", data.decode("utf-8", "replace"))) + 1
        assert exc.line is None or 1 <= exc.line <= lines, exc.one_line()
        return
    json.dumps(config.to_dict())             # plain data all the way down
    for w in config.warnings:
        assert re.fullmatch(r"W1[01]\d", w.code) and w.file == NAME, w.describe()
    rules = render(config, options)
    assert rules.families()


@FUZZ
@given(ANY_BYTES, OPTIONS)
def test_any_config_file_is_a_config_or_a_coded_error(data, options):
    check_file(data, options)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["ip-masq-agent", "ip-masq-agent-reconciled", "ip-masq-x", "config.yaml",
                                           "ip-masq-agent.yaml", "README"]), ANY_BYTES),
                max_size=4, unique_by=lambda t: t[0]),
       OPTIONS)
def test_any_config_folder_is_a_config_or_a_coded_error(files, options):
    with tempfile.TemporaryDirectory() as d:
        for name, data in files:
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(data)
        try:
            config = load_config_dir(d, options)
        except ConfigError as exc:
            assert re.fullmatch(r"E1[01]\d", exc.code), exc.one_line()
            assert exc.file in {name for name, _ in files}, exc.one_line()
            return
        names = {name for name, _ in files}
        for w in config.warnings:
            assert w.file in names, w.describe()
        unread = names - {f.name for f in config.files}
        assert {w.file for w in config.warnings if w.code == "W104"} == (
            unread - ({"ip-masq-agent"} if options.flavor == "azure-v2" else set())
            if options.flavor == "azure-v2" else unread)
        render(config, options)


USER = "ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent"


@settings(max_examples=max(1, EXAMPLES * 2 // 5), deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(config_texts().map(lambda b: b.decode("utf-8", "replace")), st.text(max_size=300)))
def test_any_configmap_value_is_a_config_or_an_error_naming_the_key(value):
    raw = RawCluster(source="fuzz", configmaps=[
        configmap("azure-ip-masq-agent-config-reconciled",
                  {"ip-masq-agent-reconciled": "nonMasqueradeCIDRs:\n  - 10.224.0.0/16\nmasqLinkLocal: true\n"}),
        configmap("azure-ip-masq-agent-config", {"ip-masq-agent": value})], daemonsets=[daemonset()])
    [view] = agent_configs(build_snapshot(raw))
    if view.error is not None:
        assert isinstance(view.error, ConfigError) and re.fullmatch(r"E1[01]\d", view.error.code)
        assert view.error.file == USER, view.error.one_line()
        return
    assert view.config is not None
    for w in view.config.warnings:
        assert view.where(w.file, w.line).startswith(USER), w.describe()
    assert "10.224.0.0/16" in view.config.cidrs()     # the reconciled file always counts
