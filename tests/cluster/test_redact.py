"""--redact: identifiers replaced consistently, evidence (IPs, CIDRs, rules) kept."""

from __future__ import annotations

import dataclasses
import json
import os
import re

from clusterkit.offline import SUB
from test_bundle import NFT_DUMP, live_raw

from masqctl.cluster.build import build_snapshot
from masqctl.cluster.bundle import read_bundle, write_bundle
from masqctl.cluster.model import NodeCapture
from masqctl.cluster.redact import Redactor, redact_raw

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
FQDN = "t-rg-t-3f2a9c-abc12345.hcp.westeurope.azmk8s.io"


def rich_raw():
    raw = live_raw()
    raw.aks.update({
        "fqdn": FQDN, "azurePortalFqdn": "t-rg-t-3f2a9c-abc12345.portal.hcp.westeurope.azmk8s.io",
        "dnsPrefix": "t-rg-t-3f2a9c", "tags": {"owner": "alice@contoso.com", "costcenter": "4711"},
        "identity": {"type": "SystemAssigned", "tenantId": TENANT, "principalId": "0b1d0e2f-1111-2222-3333-444455556666"},
        "linuxProfile": {"adminUsername": "azureuser", "ssh": {"publicKeys": [{"keyData": "ssh-rsa AAAAB3Nza... alice@laptop"}]}},
        "identityProfile": {"kubeletidentity": {
            "clientId": "9a8b7c6d-0000-1111-2222-333344445555",
            "resourceId": f"/subscriptions/{SUB}/resourcegroups/MC_rg_t_westeurope/providers/"
                          "Microsoft.ManagedIdentity/userAssignedIdentities/t-agentpool"}},
    })
    raw.pods[1]["spec"]["containers"][0]["env"] = [{"name": "KUBERNETES_SERVICE_HOST", "value": FQDN}]
    raw.nodes[0]["metadata"]["labels"]["kubernetes.azure.com/cluster"] = "MC_rg_t_westeurope"
    raw.vnets["aks-vnet-1"]["virtualNetworkPeerings"] = [{
        "name": "to-hub", "peeringState": "Connected", "peeringSyncLevel": "FullyInSync",
        "remoteVirtualNetwork": {"id": f"/subscriptions/{SUB}/resourceGroups/RG-HUB/providers/Microsoft.Network/"
                                       "virtualNetworks/vnet-hub"},
        "remoteAddressSpace": {"addressPrefixes": ["10.42.0.0/15"]}}]
    raw.captures["n1"] = dataclasses.replace(raw.captures["n1"], iptables_save=NFT_DUMP.replace(
        "COMMIT\n# Completed", f"-A POSTROUTING -d 10.42.0.0/15 -m comment --comment \"to {FQDN}\" -j RETURN\nCOMMIT\n# Completed"))
    raw.source = "context t-admin"
    return raw


def all_text(folder) -> str:
    out = []
    for dirpath, _, files in os.walk(folder):
        for f in files:
            with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                out.append(fh.read())
    return "\n".join(out)


def test_redacted_bundle_shares_no_identifier_and_keeps_the_evidence(tmp_path):
    raw = rich_raw()
    write_bundle(raw, tmp_path / "r", redact=True)
    text = all_text(tmp_path / "r")
    for secret in (SUB, TENANT, FQDN, "MC_rg_t_westeurope", "mc_rg_t_westeurope", "rg-t", "RG-HUB", "alice",
                   "azureuser", "t-agentpool", "9a8b7c6d-0000-1111-2222-333344445555", "aks-vnet-1", "vnet-hub",
                   "context t-admin", "4711", "t-rg-t-3f2a9c", "aks-subnet"):
        assert secret.lower() not in text.lower(), secret
    assert "redacted-subnet-1" in text                      # subnet names are hidden like the VNet's
    for evidence in ("10.224.0.0/16", "10.224.0.0/12", "10.42.0.0/15", "10.0.0.0/16", "10.224.0.4",
                     "azure-ip-masq-agent-config-reconciled", "nodepool1", "n1", "-A IP-MASQ-AGENT -d 10.224.0.0/16"):
        assert evidence in text, evidence
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["redacted"] is True and manifest["redaction"]["replaced"]["subscription"] == 1


def test_the_same_identifier_maps_to_the_same_placeholder_everywhere(tmp_path):
    raw = rich_raw()
    red = redact_raw(raw)
    sub_in_aks = re.search(r"/subscriptions/([^/]+)/", red.aks["id"]).group(1)
    sub_in_vnet = re.search(r"/subscriptions/([^/]+)/", red.vnets[next(iter(red.vnets))]["id"]).group(1)
    sub_in_node = re.search(r"/subscriptions/([^/]+)/", red.nodes[0]["spec"]["providerID"]).group(1)
    assert sub_in_aks == sub_in_vnet == sub_in_node == "redacted-subscription-1"
    # the node resource group, however it is cased, is one placeholder
    node_rg = red.aks["nodeResourceGroup"]
    assert red.vnets[next(iter(red.vnets))]["resourceGroup"] == node_rg
    assert red.nodes[0]["metadata"]["labels"]["kubernetes.azure.com/cluster"] == node_rg
    assert f"/resourcegroups/{node_rg}/" in red.aks["identityProfile"]["kubeletidentity"]["resourceId"]
    assert red.pods[1]["spec"]["containers"][0]["env"][0]["value"] == red.aks["fqdn"]
    assert red.aks["fqdn"].endswith(".invalid") and red.aks["tags"] == {"owner": "redacted", "costcenter": "redacted"}
    assert red.captures["n1"].iptables_save.count(red.aks["fqdn"]) == 1
    # the VNet keeps its name consistently: the file, the id and the peering agree
    assert list(red.vnets) == [red.vnets[next(iter(red.vnets))]["name"]]
    # raw itself is untouched
    assert raw.aks["fqdn"] == FQDN


def test_redacted_round_trip_is_the_redacted_snapshot(tmp_path):
    raw = rich_raw()
    write_bundle(raw, tmp_path / "r", redact=True)
    got = build_snapshot(read_bundle(str(tmp_path / "r")))
    want = build_snapshot(redact_raw(raw))
    assert dataclasses.replace(got, source=want.source) == want
    plain = build_snapshot(raw)
    # CIDRs, addresses, ConfigMap data and rules are exactly the original ones
    assert got.configmaps == plain.configmaps
    assert got.daemonsets == plain.daemonsets
    assert [(n.name, n.internal_ip, n.addresses, n.pod_cidrs) for n in got.nodes] == \
        [(n.name, n.internal_ip, n.addresses, n.pod_cidrs) for n in plain.nodes]
    assert got.azure.vnets[0].address_prefixes == ("10.224.0.0/12",)
    assert got.azure.vnets[0].managed is True          # still recognised as AKS-managed
    assert got.azure.vnets[0].peerings[0].remote_address_space == ("10.42.0.0/15",)
    assert got.azure.cluster.network_profile == plain.azure.cluster.network_profile
    assert got.azure.subscription == "redacted-subscription-1"


def test_whole_tokens_only_and_addresses_never():
    r = Redactor()
    r.add("rg", "rg-prod")
    r.add("cluster", "10.0.0.0/8")   # an address is never an identifier
    r.add("cluster", "10.1.2.3")
    assert r.text("rg-prod rg-prod-2 my-rg-prod /resourceGroups/RG-PROD/x rg-prod.") == \
        "redacted-rg-1 rg-prod-2 my-rg-prod /resourceGroups/redacted-rg-1/x redacted-rg-1."
    assert r.text("-d 10.0.0.0/8 -s 10.1.2.3") == "-d 10.0.0.0/8 -s 10.1.2.3"


def test_same_input_same_output():
    a = redact_raw(rich_raw())
    b = redact_raw(rich_raw())
    assert a == b


def test_capture_errors_and_via_are_redacted():
    raw = rich_raw()
    raw.captures["n2"] = NodeCapture("n2", errors={"node": f"dial tcp: lookup {FQDN}: no such host"})
    red = redact_raw(raw)
    assert FQDN not in red.captures["n2"].errors["node"]


def test_services_and_endpointslices_are_redacted_like_the_rest(tmp_path):
    raw = live_raw()
    raw.services = [{
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx", "uid": TENANT,
                     "annotations": {"service.beta.kubernetes.io/azure-load-balancer-resource-group": "rg-hub-lb",
                                     "service.beta.kubernetes.io/azure-pip-prefix-id":
                                         f"/subscriptions/{SUB}/resourceGroups/rg-t/providers/Microsoft.Network/"
                                         "publicIPPrefixes/pfx"}},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.0.12.34", "externalTrafficPolicy": "Cluster",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https", "nodePort": 31443}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.42.1.10", "ipMode": "VIP"}]}}}]
    raw.endpointslices = [{
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "ingress-nginx-controller-abcde", "namespace": "ingress-nginx",
                     "labels": {"kubernetes.io/service-name": "ingress-nginx-controller"}},
        "ports": [{"name": "https", "port": 443, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.42.0.20"], "conditions": {"ready": True}, "nodeName": "n1",
                       "targetRef": {"kind": "Pod", "namespace": "ingress-nginx", "name": "ingress-nginx-controller-x",
                                     "uid": "0b1d0e2f-1111-2222-3333-444455556666"}}]}]
    write_bundle(raw, tmp_path / "r", redact=True)
    text = all_text(tmp_path / "r")
    for secret in (SUB, TENANT, "rg-hub-lb", "0b1d0e2f-1111-2222-3333-444455556666"):
        assert secret not in text, secret
    snap = build_snapshot(read_bundle(str(tmp_path / "r")))
    (svc,) = snap.services
    assert (svc.ref, svc.lb_ingress_ips, svc.cluster_ips, svc.ports[0].node_port) == (
        "ingress-nginx/ingress-nginx-controller", ("10.42.1.10",), ("10.0.12.34",), 31443)
    assert svc.annotations["service.beta.kubernetes.io/azure-load-balancer-resource-group"].startswith("redacted-rg-")
    (sl,) = snap.endpointslices
    assert sl.endpoints[0].target_pod == "ingress-nginx/ingress-nginx-controller-x"
    assert sl.endpoints[0].addresses == ("10.42.0.20",)
