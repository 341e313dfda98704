"""pytest fixtures: a running local ARM, a clean Azure environment, and a realistic estate.

Import the fixtures into a test module (``from azurearm.fixtures import *``). Everything a real
user's machine could leak in is replaced: ``HOME`` (so no ``~/.azure`` or ``~/.kube``), every
``AZURE_*`` variable, and ``PATH`` (only the stand-in ``az`` and the system's /usr/bin:/bin). The
clients trust the test CA through ``REQUESTS_CA_BUNDLE``, the variable ``requests`` (which
azure-core and MSAL use) reads; nothing in the SDK is patched.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from azurearm.fakeaz import FakeAz
from azurearm.pki import TestPKI, make_pki
from azurearm.server import (ARM, arm_cluster, arm_peering, arm_pool, arm_subnet, arm_vnet, subnet_id,
                             vnet_id)

from masqctl.cluster.options import GatherOptions
from masqctl.cluster.raw import RawCluster

SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"      # the clusters' subscription
NET_SUB = "7d4c9a10-5e2b-4c8f-9a61-444455556666"  # the hub's (networking team's) subscription
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "5b1c2d3e-0000-4000-8000-00000000c11e"
CLIENT_SECRET = "not-a-real-secret"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_pki(tmp_path_factory.mktemp("azure-pki"))


@pytest.fixture
def arm(pki: TestPKI):
    with ARM(pki, tenant=TENANT) as server:
        yield server


@dataclass
class Env:
    """The test's Azure environment: the ARM, the stand-in ``az`` and a home directory."""

    arm: ARM
    az: FakeAz
    home: Path
    monkeypatch: pytest.MonkeyPatch

    def options(self, **kw) -> GatherOptions:
        kw.setdefault("arm_endpoint", self.arm.url)
        return GatherOptions(**kw)

    def kubeconfig(self, context: str, *, server: str, cluster_entry: str | None = None,
                   user: str | None = None, name: str = "config") -> str:
        path = self.home / ".kube" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cluster_entry = cluster_entry or context
        user = user or f"clusterUser_x_{context}"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": cluster_entry, "cluster": {"server": server,
                                                             "certificate-authority-data": "LS0t"}}],
            "contexts": [{"name": context, "context": {"cluster": cluster_entry, "user": user}}],
            "users": [{"name": user, "user": {"token": "t"}}]}))
        return str(path)

    def use_service_principal(self, secret: str = CLIENT_SECRET) -> None:
        """``--azure-auth default`` through EnvironmentCredential → ClientSecretCredential (MSAL).

        Tenant ``adfs`` is the authority path Azure Stack Hub uses: MSAL then reads the OpenID
        configuration from ``AZURE_AUTHORITY_HOST`` itself instead of asking
        login.microsoftonline.com for instance discovery (which would need the internet)."""
        self.arm.register_client(CLIENT_ID, CLIENT_SECRET)
        for k, v in {"AZURE_TENANT_ID": "adfs", "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": secret,
                     "AZURE_AUTHORITY_HOST": self.arm.url}.items():
            self.monkeypatch.setenv(k, v)

    def remove_az(self) -> None:
        (self.az.bin_dir / "az").unlink()


@pytest.fixture
def env(arm: ARM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pki: TestPKI) -> Env:
    for k in list(os.environ):
        if k.startswith(("AZURE_", "MSI_", "IDENTITY_")) or k in ("KUBECONFIG", "AZURE_CONFIG_DIR"):
            monkeypatch.delenv(k, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca_pem))
    token = arm.register_token("operator@example.com")
    az = FakeAz.install(tmp_path / "bin", token=token, subscription=SUB, tenant=TENANT)
    monkeypatch.setenv("PATH", az.path_with("/usr/bin:/bin"))
    return Env(arm, az, home, monkeypatch)


def raw_for(context: str | None = None) -> RawCluster:
    return RawCluster(source=f"context {context}" if context else "")


# --------------------------------------------------------------------------- the estate

MANAGED_RG = "rg-akscal"
MANAGED_NODE_RG = "MC_rg-akscal_akscal_swedencentral"
MANAGED_VNET = "aks-vnet-39458073"

SPOKE_RG = "rg-spoke1-aks"
SPOKE_NET_RG = "rg-spoke1-net"
SPOKE_VNET = "spoke1-vnet"
HUB_RG = "rg-hub-net"
WIN_VNET = "win-vnet"
SPOKE_FQDN = "spoke1-aks-dns-4kq2x7.hcp.westeurope.azmk8s.io"


def add_managed_cluster(arm: ARM) -> None:
    """akscal: Azure CNI node subnet on the AKS-managed VNet (the field capture in seed 003),
    with a Windows pool besides the Linux system pool."""
    arm.add(arm_cluster(SUB, MANAGED_RG, "akscal", node_resource_group=MANAGED_NODE_RG,
                        pools=[arm_pool("nodepool1", mode="System", count=1),
                               arm_pool("win1", os_type="Windows", count=2)]))
    arm.add(arm_vnet(SUB, MANAGED_NODE_RG, MANAGED_VNET, ["10.224.0.0/12"],
                     subnets=[arm_subnet("aks-subnet", "10.224.0.0/16")]))


def add_spoke_cluster(arm: ARM, *, embed: bool = True) -> None:
    """spoke1-aks: BYO VNet in another resource group, a pod subnet, a multi-prefix node subnet,
    a Windows pool on its own VNet (never read), and peerings: to the hub (Connected,
    FullyInSync) and to spoke2 (Disconnected, LocalNotInSync)."""
    nodes = subnet_id(SUB, SPOKE_NET_RG, SPOKE_VNET, "nodes")
    pods = subnet_id(SUB, SPOKE_NET_RG, SPOKE_VNET, "pods")
    arm.add(arm_cluster(
        SUB, SPOKE_RG, "spoke1-aks", location="westeurope", fqdn=SPOKE_FQDN,
        network_profile={"networkPlugin": "azure", "networkPolicy": "cilium", "networkDataplane": "cilium",
                         "serviceCidr": "10.0.0.0/16", "serviceCidrs": ["10.0.0.0/16"], "dnsServiceIP": "10.0.0.10",
                         "outboundType": "userDefinedRouting", "ipFamilies": ["IPv4"],
                         "advancedNetworking": {"enabled": True, "observability": {"enabled": False},
                                                "performance": {"accelerationMode": "None"}}},
        pools=[arm_pool("system", mode="System", vnet_subnet_id=nodes, pod_subnet_id=pods,
                        pod_ip_allocation_mode="DynamicIndividual"),
               arm_pool("user1", vnet_subnet_id=nodes.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/"),
                        pod_subnet_id=pods),
               arm_pool("win", os_type="Windows",
                        vnet_subnet_id=subnet_id(SUB, SPOKE_NET_RG, WIN_VNET, "win"))]))
    hub = vnet_id(NET_SUB, HUB_RG, "hub-vnet")
    spoke2 = vnet_id(SUB, "rg-spoke2-net", "spoke2-vnet")
    arm.add(arm_vnet(
        SUB, SPOKE_NET_RG, SPOKE_VNET, ["10.40.0.0/15"], location="westeurope", embed=embed,
        subnets=[arm_subnet("nodes", prefixes=["10.40.0.0/17", "10.41.0.0/24"]),
                 arm_subnet("pods", "10.40.128.0/17", delegations=["Microsoft.ContainerService/managedClusters"])],
        peerings=[arm_peering("to-hub", hub, remote_prefixes=["10.100.0.0/16"], allow_forwarded_traffic=True,
                              use_remote_gateways=True),
                  arm_peering("to-spoke2", spoke2, state="Disconnected", sync="LocalNotInSync",
                              remote_prefixes=["10.50.0.0/16"], remote_vnet_prefixes=["10.50.0.0/16", "10.51.0.0/16"],
                              peer_complete_vnets=False, local_subnet_names=["nodes"],
                              remote_subnet_names=["apps"])]))
    arm.add(arm_vnet(SUB, SPOKE_NET_RG, WIN_VNET, ["172.20.0.0/16"], subnets=[arm_subnet("win", "172.20.0.0/24")]))


__all__ = ["pki", "arm", "env", "Env", "raw_for", "SUB", "NET_SUB", "TENANT", "CLIENT_ID", "CLIENT_SECRET",
           "add_managed_cluster", "add_spoke_cluster", "MANAGED_RG", "MANAGED_NODE_RG", "MANAGED_VNET",
           "SPOKE_RG", "SPOKE_NET_RG", "SPOKE_VNET", "HUB_RG", "WIN_VNET", "SPOKE_FQDN"]
