"""deploy/: the DaemonSet is valid Kubernetes (schema checked offline) and equivalent to AKS's;
the iptables wrapper picks the backend the "host" (a namespace) uses.

Schema: derived at test time from the installed ``kubernetes`` client's own models (they are
generated from the Kubernetes OpenAPI document; ``model_json_schema(by_alias=True)`` gives the
JSON field names, the required fields and ``additionalProperties: false``), then checked with
``jsonschema``. No network is needed.
"""

from __future__ import annotations

import copy
import os
import subprocess

import jsonschema
import pytest
import yaml
from agentlib import ROOT
from netns import requires_netns

from masqctl.agent.health import DEFAULT_BIND
from masqctl.agent.flags import flag_set

DEPLOY = os.path.join(ROOT, "deploy")
MODELS = {("apps/v1", "DaemonSet"): "V1DaemonSet"}


def schema_for(doc: dict) -> dict:
    import kubernetes.client

    model = getattr(kubernetes.client, MODELS[(doc["apiVersion"], doc["kind"])])
    return model.model_json_schema(by_alias=True)


def _leaves(error):
    """Optional fields are ``anyOf: [<schema>, null]``: report the errors inside, not the anyOf."""
    if not error.context:
        yield error
        return
    for sub in error.context:
        if sub.validator == "type" and sub.validator_value == "null":
            continue
        yield from _leaves(sub)


def errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema_for(doc))
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for top in validator.iter_errors(doc) for e in _leaves(top))


@pytest.fixture(scope="module")
def daemonset() -> dict:
    with open(os.path.join(DEPLOY, "daemonset.yaml")) as fh:
        return yaml.safe_load(fh)


def test_daemonset_is_valid_against_the_kubernetes_schema(daemonset):
    assert errors(daemonset) == []


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["spec"]["template"]["spec"].update(hostNetwrok=True), "'hostNetwrok' was unexpected"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"), "'name' is a required property"),
    (lambda d: d["spec"]["template"]["spec"].update(hostNetwork="yes"), "is not of type 'boolean'"),
])
def test_the_schema_check_catches_mistakes(daemonset, mutate, where):
    broken = copy.deepcopy(daemonset)
    mutate(broken)
    assert any(where in e for e in errors(broken)), errors(broken)


def test_daemonset_is_equivalent_to_aks(daemonset):
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    caps = container["securityContext"]["capabilities"]["add"]
    assert sorted(caps) == ["NET_ADMIN", "NET_RAW"]
    assert container["securityContext"].get("privileged") is False
    # the AKS arguments, accepted by the agent's flag parser
    assert container["args"][:2] == ["--v=2", "--resync-interval=60"]
    values = flag_set().parse(container["args"])
    assert values["config_dir"] == "/etc/config/" and values["resync_interval"] == 60
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_mount = next(m for m in mounts.values() if m["mountPath"] == "/etc/config")
    assert config_mount.get("readOnly") is True
    sources = volumes[config_mount["name"]]["projected"]["sources"]
    projected = {(s["configMap"]["name"], i["key"], i["path"], s["configMap"]["optional"])
                 for s in sources for i in s["configMap"]["items"]}
    assert projected == {("azure-ip-masq-agent-config", "ip-masq-agent", "ip-masq-agent", True),
                         ("azure-ip-masq-agent-config-reconciled", "ip-masq-agent-reconciled",
                          "ip-masq-agent-reconciled", True)}
    lock = next(m for m in mounts.values() if m["mountPath"] == "/run/xtables.lock")
    assert volumes[lock["name"]]["hostPath"]["path"] == "/run/xtables.lock"
    # probes on the agent's endpoints, at the address it listens on
    host, port = values["health_bind"].rsplit(":", 1)
    assert values["health_bind"] == DEFAULT_BIND
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"], get.get("host")) == (path, int(port), host)


def test_dockerfile_runs_the_lean_entry_point():
    with open(os.path.join(DEPLOY, "Dockerfile")) as fh:
        text = fh.read()
    assert 'ENTRYPOINT ["python3", "-S", "-m", "masqctl.agent"]' in text
    assert "iptables-wrapper install" in text
    assert "--no-deps" in text  # no typer/rich/kubernetes/azure in the image


def wrapper_dir(tmp_path) -> str:
    """A copy of /usr/sbin's iptables names pointing at the real backends, plus the wrapper."""
    d = tmp_path / "sbin"
    d.mkdir()
    for fam in ("iptables", "ip6tables"):
        for mode in ("legacy", "nft"):
            for tool in ("", "-save", "-restore"):
                real = subprocess.run(["sh", "-c", f"command -v {fam}-{mode}{tool}"], capture_output=True,
                                      text=True).stdout.strip()
                os.symlink(real, d / f"{fam}-{mode}{tool}")
    os.symlink(os.path.join(DEPLOY, "iptables-wrapper"), d / "iptables-wrapper")
    env = dict(os.environ, IPTABLES_WRAPPER_DIR=str(d))
    subprocess.run([str(d / "iptables-wrapper"), "install"], check=True, env=env)
    return str(d)


@requires_netns
@pytest.mark.parametrize("host_backend, seed", [
    ("legacy", "*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n"),
    ("nft", "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n"),
])
def test_iptables_wrapper_follows_the_host_backend(node, tmp_path, lockfile, host_backend, seed):
    node.run(f"iptables-{host_backend}-restore", "--noflush", input=seed)
    d = wrapper_dir(tmp_path)
    env = dict(os.environ, IPTABLES_WRAPPER_DIR=d, XTABLES_LOCKFILE=lockfile)
    r = subprocess.run(node.cmd(os.path.join(d, "iptables-save"), "-t", "nat"), capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert f"using iptables-{host_backend}" in r.stderr
    assert os.readlink(os.path.join(d, "iptables-restore")) == f"iptables-{host_backend}-restore"
    assert os.readlink(os.path.join(d, "ip6tables")) == f"ip6tables-{host_backend}"
    # the agent, through the wrapper, writes into the host's backend
    from agentlib import ConfigVolume, run_once, yaml_config

    cfg = ConfigVolume(str(tmp_path / "config"), {"ip-masq-agent": yaml_config(["10.0.0.0/8"])})
    r = run_once(node, cfg.path, lockfile, env={"PATH": d + os.pathsep + os.environ["PATH"],
                                                "IPTABLES_WRAPPER_DIR": d})
    assert r.returncode == 0, r.stderr
    assert "IP-MASQ-AGENT" in node.run(f"iptables-{host_backend}-save", "-t", "nat").stdout
