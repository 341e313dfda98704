"""Fixtures of the end-to-end tests: the hub-spoke estate live on both local servers at once."""

import os
import sys
import tempfile
from pathlib import Path

import pytest

# helpers of these tests (e2e_estate.py) live beside them
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import e2e_estate as es
from azurearm import ARM, FakeAz, make_pki
from kubeapi import KubeAPI


@pytest.fixture(scope="session")
def e2e_pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("e2e-pki"))


def _estate(tmp_path, pki, *, azure_login: bool, converge_after: int):
    tmp_path = Path(tempfile.mkdtemp(prefix="estate-", dir=tmp_path))    # several estates in one test
    with KubeAPI(tls=True) as api, ARM(pki, tenant=es.TENANT) as arm:
        es.load_kube(api)
        es.load_azure(arm)
        nodes = es.serve_nodes(api, converge_after=converge_after)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", context=es.CONTEXT)
        home = tmp_path / "home"
        home.mkdir()
        if azure_login:
            az = FakeAz.install(tmp_path / "azbin", token=arm.register_token("operator@example.com"),
                                subscription=es.SUBSCRIPTION, tenant=es.TENANT)
            env = es.base_env(home, az.path_with("/usr/bin:/bin"))
            env["REQUESTS_CA_BUNDLE"] = str(pki.ca_pem)
            env["MASQCTL_ARM_ENDPOINT"] = arm.url     # the documented variable: runs without --arm-endpoint too
        else:
            az = None
            empty = tmp_path / "empty-path"
            empty.mkdir()
            env = es.base_env(home, str(empty))      # no az anywhere, no Azure variables
        yield es.Estate(api, arm, nodes, kubeconfig, home, env, az)


@pytest.fixture
def estate(tmp_path, e2e_pki):
    """Kubernetes + Azure; nodes show a changed config on the first poll after it changed."""
    yield from _estate(tmp_path, e2e_pki, azure_login=True, converge_after=0)


@pytest.fixture
def slow_estate(tmp_path, e2e_pki):
    """As ``estate``, but nodes keep their old chain for 3 polls after the config changed."""
    yield from _estate(tmp_path, e2e_pki, azure_login=True, converge_after=3)


@pytest.fixture
def estate_without_azure(tmp_path, e2e_pki):
    """Kubernetes only: no ``az`` on PATH, no Azure environment variables."""
    yield from _estate(tmp_path, e2e_pki, azure_login=False, converge_after=0)
