"""Connecting like kubectl: kubeconfig resolution, contexts, in-cluster, and the errors a user
gets when the server cannot be reached, TLS fails or the credentials are refused."""

from __future__ import annotations

import os
import socket

import pytest
from kubekit import agent_programs

from clusterkit import served
from kubeapi import KubeAPI, write_kubeconfig, write_serviceaccount
from masqctl.cluster.live.kube import gather_kube
from masqctl.cluster.live.kubeconfig import load_client_config
from masqctl.cluster.options import GatherOptions
from masqctl.errors import GatherError, InputError, UsageError


@pytest.fixture
def api():
    with KubeAPI() as server:
        served.small_cluster(server, 1, workloads_per_node=0)
        server.on_exec(agent_programs())
        yield server


def live(kubeconfig=None, context=None, environ=None, **kw):
    return gather_kube(GatherOptions(kubeconfig=kubeconfig, context=context, **kw), None, environ=environ or {})


def test_context_selection(api, tmp_path):
    path = api.write_kubeconfig(tmp_path / "config", context="aks-prod", extra_contexts=("aks-dev",))
    assert live(path, environ={"HOME": str(tmp_path)}).source == "context aks-prod"
    raw = live(path, "aks-dev")
    assert raw.source == "context aks-dev" and raw.origin["configmaps"] == "the Kubernetes API (context aks-dev)"
    with pytest.raises(UsageError) as e:
        live(path, "aks-stage")
    assert e.value.code == "E611" and e.value.input == "--context aks-stage"
    assert e.value.message == f"no context named 'aks-stage' in {path}; available: aks-prod, aks-dev"


def test_kubeconfig_from_KUBECONFIG_and_home(api, tmp_path):
    a = api.write_kubeconfig(tmp_path / "a", context="first")
    b = api.write_kubeconfig(tmp_path / "b", context="second", current="")
    env = {"KUBECONFIG": f"{tmp_path / 'missing'}{os.pathsep}{a}{os.pathsep}{b}", "HOME": str(tmp_path)}
    assert live(environ=env).source == "context first"
    assert live(context="second", environ=env).source == "context second"
    home = tmp_path / "home"
    api.write_kubeconfig(home / ".kube" / "config", context="from-home")
    assert live(environ={"HOME": str(home)}).source == "context from-home"
    with pytest.raises(InputError) as e:
        live(environ={"KUBECONFIG": str(tmp_path / "nope"), "HOME": str(home)})
    assert e.value.code == "E610" and e.value.input == f"KUBECONFIG={tmp_path / 'nope'}"


@pytest.mark.parametrize("content, message", [
    ("clusters: [\n  - name: x\n   bad", "not valid YAML"),
    ("- just\n- a list\n", "not a kubeconfig (the document is not a mapping)"),
    ("", "the kubeconfig is empty"),
    ("contexts: {a: b}\n", "`contexts` must be a list of entries that each have a name"),
])
def test_broken_kubeconfig_files_are_named(tmp_path, content, message):
    path = tmp_path / "config"
    path.write_text(content)
    with pytest.raises(InputError) as e:
        live(str(path))
    assert e.value.code == "E610" and message in e.value.message and str(path) in e.value.input


def test_missing_file_no_current_context_and_no_config(api, tmp_path):
    with pytest.raises(InputError) as e:
        live(str(tmp_path / "nope.yaml"))
    assert e.value.one_line() == f"E610 --kubeconfig {tmp_path / 'nope.yaml'}: kubeconfig file not found"
    path = api.write_kubeconfig(tmp_path / "config", context="a", extra_contexts=("b",), current="")
    with pytest.raises(UsageError) as e:
        live(path)
    assert e.value.code == "E611" and "no current context; choose one with --context (a, b)" in e.value.message
    with pytest.raises(UsageError) as e:
        live(environ={"HOME": str(tmp_path / "empty")})
    assert e.value.code == "E612" and "not running inside a cluster" in e.value.message
    with pytest.raises(UsageError) as e:
        live(context="x", environ={"HOME": str(tmp_path / "empty")})
    assert e.value.code == "E611"


def test_a_context_whose_user_is_missing(tmp_path):
    path = write_kubeconfig(tmp_path / "config", server="http://127.0.0.1:1")
    text = (tmp_path / "config").read_text().replace("user: test-user", "user: ghost")
    (tmp_path / "config").write_text(text)
    with pytest.raises(InputError) as e:
        live(path)
    assert e.value.code == "E610" and e.value.message == "context 'test' refers to user 'ghost', which is not defined"


def test_in_cluster_service_account_over_tls(tmp_path):
    with KubeAPI(tls=True) as api:
        served.small_cluster(api, 1, workloads_per_node=0)
        api.on_exec(agent_programs())
        sa = tmp_path / "sa"
        write_serviceaccount(sa, token=api.token, ca_pem=api.ca_pem)
        env = {"HOME": str(tmp_path / "nohome"), "KUBERNETES_SERVICE_HOST": "127.0.0.1",
               "KUBERNETES_SERVICE_PORT": str(api.port)}
        raw = gather_kube(GatherOptions(), None, environ=env, serviceaccount_dir=str(sa))
        assert raw.source == "in-cluster service account"
        assert raw.captures["aks-nodepool1-00000000"].iptables_save
        assert api.requests()[0].path  # it really talked HTTPS to the server
        with pytest.raises(UsageError) as e:
            gather_kube(GatherOptions(), None, environ=env, serviceaccount_dir=str(tmp_path / "none"))
        assert e.value.code == "E612" and "in-cluster configuration is incomplete" in e.value.message


def test_unreachable_server(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                          # nothing listens there now
    path = write_kubeconfig(tmp_path / "config", server=f"http://127.0.0.1:{port}", context="gone")
    with pytest.raises(GatherError) as e:
        live(path)
    assert e.value.code == "E613" and e.value.input == "the Kubernetes API (context gone)"
    assert "cannot reach the API server" in e.value.message and "private-cluster" in e.value.hint


def test_tls_with_the_wrong_ca(tmp_path):
    from kubeapi.tlsutil import make_ca_and_cert

    other_ca = make_ca_and_cert()[0]
    with KubeAPI(tls=True) as api:
        path = write_kubeconfig(tmp_path / "config", server=api.url, ca_pem=other_ca)
        with pytest.raises(GatherError) as e:
            live(path)
    assert e.value.code == "E614" and "TLS failed" in e.value.message
    assert "CERTIFICATE_VERIFY_FAILED" in e.value.message


def test_refused_credentials(api, tmp_path):
    path = api.write_kubeconfig(tmp_path / "config", token="expired")
    with pytest.raises(GatherError) as e:
        live(path)
    assert e.value.code == "E615" and "401 Unauthorized" in e.value.message and "kubelogin" in e.value.hint


def test_the_loader_is_the_one_apply_uses(api, tmp_path):
    cc = load_client_config(api.write_kubeconfig(tmp_path / "c", context="x"), None, environ={})
    assert cc.context == "x" and cc.source == "context x" and cc.configuration.host == api.url
