"""masqctl's own node-agent is recognised: by its image, or by a command that runs it in any image,
with the flavour its --flavor flag selects (through the real snapshot builder)."""

from __future__ import annotations

import os

import pytest
import yaml
from clusterkit.offline import daemonset

from masqctl.cluster.build import build_snapshot
from masqctl.cluster.model import ConfigMapProjection, KeyToPath
from masqctl.cluster.raw import RawCluster
from masqctl.cluster.recognise import (KIND_NODE_AGENT, flavor_of, kind_of_image, node_agent_flags,
                                       node_agent_invocation, recognise)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
V2_IMAGE = "mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2"


def deploy_daemonset() -> dict:
    with open(os.path.join(ROOT, "deploy", "daemonset.yaml")) as fh:
        return yaml.safe_load(fh)


def built(*daemonsets):
    raw = RawCluster(source="test")
    raw.daemonsets = list(daemonsets)
    raw.origin["daemonsets"] = "daemonsets.yaml"
    return build_snapshot(raw).daemonsets


def with_container(ds: dict, **fields) -> dict:
    c = ds["spec"]["template"]["spec"]["containers"][0]
    for k, v in fields.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return ds


@pytest.mark.parametrize("image", [
    "registry.example.com/masqctl-node-agent:0.1.0",
    "masqctl-node-agent",
    "localhost:5000/ops/masqctl-node-agent@sha256:" + "b" * 64,
    "REGISTRY.EXAMPLE.COM/Masqctl-Node-Agent:v1",
])
def test_image_of_the_node_agent(image):
    assert kind_of_image(image) == KIND_NODE_AGENT


@pytest.mark.parametrize("image", ["registry.example.com/masqctl:0.1.0", "example.com/node-agent:1",
                                   "example.com/masqctl-node-agent-docs/nginx:1"])
def test_other_images_are_not_the_node_agent(image):
    assert kind_of_image(image) != KIND_NODE_AGENT


@pytest.mark.parametrize("command, args, flags", [
    (["masqctl", "node-agent"], ["--v=2"], ("--v=2",)),
    (["/usr/local/bin/masqctl", "node-agent", "--flavor=upstream"], ["--v=2"], ("--flavor=upstream", "--v=2")),
    (["python3", "-S", "-m", "masqctl.agent"], ["--resync-interval=30"], ("--resync-interval=30",)),
    (["/usr/bin/python3.11", "-mmasqctl.agent", "--v", "4"], [], ("--v", "4")),
    (["python3", "-m", "masqctl.cli.main", "node-agent"], ["--v=2"], ("--v=2",)),   # what the masqctl script runs
    ([], ["masqctl", "node-agent", "--enable-ipv6"], ("--enable-ipv6",)),          # args after an env entry point
    (["/bin/sh", "-c", "exec masqctl node-agent --v=2 --flavor=tke && echo done"], [], ("--v=2", "--flavor=tke")),
    (["bash", "-c", "python3 -m masqctl.agent --config-dir '/etc/masq conf' ; sleep 1"], [],
     ("--config-dir", "/etc/masq conf")),
])
def test_invocations_in_any_image(command, args, flags):
    assert recognise("sidecar", "python:3.11-slim", [], command, args) == KIND_NODE_AGENT
    assert node_agent_invocation(command, args).flags == flags


@pytest.mark.parametrize("command, args", [
    (["masqctl", "inspect"], ["--bundle", "/b"]),
    (["python3", "-m", "masqctl.cli.main", "inspect"], []),
    (["masqctl"], ["node-agent-docs"]),
    (["python3", "-m", "masqctl.agent.worker"], []),
    (["python3", "-m", "masqctl.agentx"], []),
    (["echo", "masqctl node-agent"], []),                    # not a shell: one word, not an invocation
    (["node-agent"], ["--v=2"]),
])
def test_look_alikes_are_not_the_node_agent(command, args):
    assert recognise("app", "python:3.11-slim", [], command, args) is None


def test_recognise_keeps_its_old_call():
    """Existing callers pass three arguments; the Go agents are recognised as before."""
    assert recognise("azure-ip-masq-agent", V2_IMAGE, []) == "azure-ip-masq-agent"
    assert recognise("x", "nginx:1", [("azure-ip-masq-agent-config", ("ip-masq-agent",))]) == "unknown"


def test_the_invocation_wins_over_the_image():
    """The node-agent run in the Go agent's image (or any other) is the node-agent."""
    assert recognise("azure-ip-masq-agent", V2_IMAGE, [], ["masqctl", "node-agent"], []) == KIND_NODE_AGENT


@pytest.mark.parametrize("command, args, flavor", [
    ([], [], "azure-v2"),
    ([], ["--v=2", "--resync-interval=60", "--health-bind=127.0.0.1:8679"], "azure-v2"),
    ([], ["--flavor=upstream"], "upstream"),
    ([], ["-flavor", "tke"], "tke"),
    (["masqctl", "node-agent", "--flavor", "upstream"], ["--enable-ipv6"], "upstream"),
    ([], ["--flavor=upstream", "--flavor=azure-v2"], "azure-v2"),          # the last one wins, as in Go
    ([], ["--flavor=gke"], None),                                          # no such flavour: it exits at start
    ([], ["--no-such-flag", "--flavor=upstream"], "upstream"),             # unreadable flags: the --flavor given
    ([], ["--flavor=upstream", "--no-such-flag"], "upstream"),
    ([], ["--no-such-flag"], "azure-v2"),
])
def test_flavour_comes_from_the_flag(command, args, flavor):
    assert flavor_of(KIND_NODE_AGENT, command, args) == flavor


def test_flags_parsed_with_the_node_agents_own_definitions():
    values, error, inv = node_agent_flags([], ["--v=2", "--health-bind=127.0.0.1:8679", "--on-invalid-config",
                                               "exit", "--cleanup-on-exit", "--iptables-backend=nft",
                                               "--config-dir=/etc/masq", "--logtostderr"])
    assert error is None and inv.flags[0] == "--v=2"
    assert (values["health_bind"], values["on_invalid_config"], values["cleanup_on_exit"],
            values["iptables_backend"], values["config_dir"], values["v"]) == (
        "127.0.0.1:8679", "exit", True, "nft", "/etc/masq", 2)
    values, error, _ = node_agent_flags([], ["--v=2", "--bogus=1"])
    assert values is None and error.code == "E204" and "-bogus" in error.message
    values, error, _ = node_agent_flags([], ["--v=2", "positional"])   # the node-agent refuses extra words
    assert values is None and "positional" in error.message


def test_deploy_daemonset_builds_as_the_node_agent():
    (ds,) = built(deploy_daemonset())
    assert (ds.kind, ds.flavor, ds.container, ds.name) == (KIND_NODE_AGENT, "azure-v2", "masqctl-node-agent",
                                                           "masqctl-node-agent")
    assert ds.args == ("--v=2", "--resync-interval=60", "--health-bind=127.0.0.1:8679")
    (mount,) = ds.mounts
    assert mount.mount_path == "/etc/config"
    assert mount.sources == (
        ConfigMapProjection("azure-ip-masq-agent-config", (KeyToPath("ip-masq-agent", "ip-masq-agent", 0o444),), True),
        ConfigMapProjection("azure-ip-masq-agent-config-reconciled",
                            (KeyToPath("ip-masq-agent-reconciled", "ip-masq-agent-reconciled", 0o444),), True))


@pytest.mark.parametrize("fields, flavor", [
    ({"args": ["--v=2", "--flavor=upstream"]}, "upstream"),
    ({"image": "python:3.11-slim", "command": ["python3", "-S", "-m", "masqctl.agent"], "args": ["--flavor=tke"]},
     "tke"),
    ({"image": "ghcr.io/example/tools:1", "command": ["masqctl", "node-agent", "--flavor", "upstream"], "args": None},
     "upstream"),
    ({"args": ["--flavor=nope"]}, None),
])
def test_model_flavour_is_what_the_container_runs(fields, flavor):
    (ds,) = built(with_container(deploy_daemonset(), **fields))
    assert (ds.kind, ds.flavor) == (KIND_NODE_AGENT, flavor)


def test_go_agent_daemonsets_unchanged():
    (ds,) = built(daemonset())
    assert (ds.kind, ds.flavor) == ("azure-ip-masq-agent", "azure-v2")
    (ds,) = built(daemonset("ip-masq-agent", "registry.k8s.io/networking/ip-masq-agent:v2.10.0",
                            args=["--flavor=tke"]))
    assert (ds.kind, ds.flavor) == ("ip-masq-agent", "upstream")      # a Go agent's flags do not pick a flavour
