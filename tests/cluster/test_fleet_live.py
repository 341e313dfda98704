"""Several live clusters in one run: two local API servers behind two kubeconfig contexts, each
with its own Azure facts from the local ARM (``--azure CONTEXT=…``), gathered by
``ops.fleet.gather_clusters`` with the real kubernetes and Azure SDK clients."""

from __future__ import annotations

import os

import pytest
import yaml

from azurearm.fixtures import *  # noqa: F401,F403 - fixtures and the estate
from azurearm.fixtures import MANAGED_RG, SPOKE_RG, SUB, add_managed_cluster, add_spoke_cluster
from clusterkit import served
from clusterkit.objects import endpointslice, service
from kubeapi import KubeAPI

from masqctl.cli.gathering import GatherFlags
from masqctl.errors import UsageError
from masqctl.ops.fleet import gather_clusters


def two_contexts(tmp_path, a: KubeAPI, b: KubeAPI) -> str:
    docs = [yaml.safe_load(open(a.write_kubeconfig(tmp_path / "a", context="spoke1"))),
            yaml.safe_load(open(b.write_kubeconfig(tmp_path / "b", context="akscal")))]
    merged = {**docs[0], **{k: docs[0][k] + docs[1][k] for k in ("clusters", "users", "contexts")}}
    path = os.path.join(str(tmp_path), "config")
    with open(path, "w") as fh:
        yaml.safe_dump(merged, fh)
    return path


@pytest.fixture
def servers():
    with KubeAPI() as a, KubeAPI() as b:
        served.small_cluster(a, 1, workloads_per_node=0)
        served.small_cluster(b, 1, workloads_per_node=0)
        b.add(service("ingress-nginx-controller", "ingress-nginx", type="LoadBalancer", cluster_ip="10.0.12.34",
                      ports=(("https", "TCP", 443, "https", 31443),), lb_ips=("10.224.1.10",)))
        b.add(endpointslice("ingress-nginx-controller", "ingress-nginx", ports=(("https", 443, "TCP"),),
                            endpoints=(("10.224.0.30", "aks-nodepool1-00000000", "ingress-0", True),)))
        yield a, b


def test_each_context_with_its_own_azure_facts(env, servers, tmp_path):
    add_managed_cluster(env.arm)
    add_spoke_cluster(env.arm)
    kubeconfig = two_contexts(tmp_path, *servers)
    flags = GatherFlags(kubeconfig=kubeconfig, contexts=["spoke1", "akscal"], no_capture=True,
                        azure_of=[f"spoke1={SUB}/{SPOKE_RG}/spoke1-aks", f"akscal={MANAGED_RG}/akscal"],
                        arm_endpoint=env.arm.url)
    opts = flags.cluster_options()
    assert [(o.context, o.subscription, o.resource_group, o.cluster) for o in opts] == [
        ("spoke1", SUB, SPOKE_RG, "spoke1-aks"), ("akscal", None, MANAGED_RG, "akscal")]
    clusters = gather_clusters(opts)
    assert [c.name for c in clusters] == ["spoke1-aks", "akscal"]          # named by AKS, not by context
    spoke, cal = (c.snapshot for c in clusters)
    assert spoke.azure.cluster.resource_group.lower() == SPOKE_RG.lower() and spoke.azure.vnets
    assert cal.azure.cluster.name == "akscal"
    assert [s.ref for s in cal.services if s.type == "LoadBalancer"] == ["ingress-nginx/ingress-nginx-controller"]
    assert [s.ref for s in spoke.services] == []
    assert len(servers[0].requests("GET", r"^/api/v1/services$")) == 1


def test_without_azure_the_contexts_name_the_clusters(servers, tmp_path):
    kubeconfig = two_contexts(tmp_path, *servers)
    flags = GatherFlags(kubeconfig=kubeconfig, contexts=["spoke1", "akscal"], no_capture=True, no_azure=True)
    clusters = gather_clusters(flags.cluster_options())
    assert [c.name for c in clusters] == ["spoke1", "akscal"]
    assert clusters[1].snapshot.endpointslices[0].endpoints[0].target_pod == "ingress-nginx/ingress-0"


def test_the_same_context_twice_is_refused(servers, tmp_path):
    kubeconfig = two_contexts(tmp_path, *servers)
    flags = GatherFlags(kubeconfig=kubeconfig, contexts=["akscal", "akscal"], no_capture=True, no_azure=True)
    with pytest.raises(UsageError) as e:
        gather_clusters(flags.cluster_options())
    assert e.value.code == "E405"
