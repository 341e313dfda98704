"""Native documents → ClusterSnapshot: recognition, projections, pods, nodes, Azure facts, errors."""

from __future__ import annotations

import copy

import pytest
from clusterkit.offline import SUB, configmap, daemonset, node, pod

from masqctl.cluster.build import build_snapshot
from masqctl.cluster.dumpheader import detect_backend
from masqctl.cluster.model import (
    ConfigMapProjection,
    ConfigMount,
    KeyToPath,
    MissingKey,
    NodeCapture,
)
from masqctl.cluster.raw import RawCluster
from masqctl.cluster.recognise import kind_of_image
from masqctl.errors import InputError

RECONCILED = "nonMasqueradeCIDRs:\n  - 10.224.0.0/16\nmasqLinkLocal: true\n"


def raw_of(**kw) -> RawCluster:
    raw = RawCluster(source="test")
    raw.configmaps = kw.pop("configmaps", [])
    raw.daemonsets = kw.pop("daemonsets", [])
    raw.pods = kw.pop("pods", [])
    raw.nodes = kw.pop("nodes", [])
    for k, v in kw.items():
        setattr(raw, k, v)
    for attr in ("configmaps", "daemonsets", "pods", "nodes"):
        raw.origin[attr] = f"{attr}.yaml"
    return raw


# --------------------------------------------------------------------------- recognition


@pytest.mark.parametrize("image,kind", [
    ("mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2", "azure-ip-masq-agent"),
    ("mcr.microsoft.com/aks/ip-masq-agent-v2:v0.1.11", "azure-ip-masq-agent"),
    ("myregistry.example/azure-ip-masq-agent@sha256:" + "a" * 64, "azure-ip-masq-agent"),
    ("registry.k8s.io/networking/ip-masq-agent:v2.9.3", "ip-masq-agent"),
    ("mcr.microsoft.com/oss/kubernetes/ip-masq-agent:v2.5.0.12", "ip-masq-agent"),
    ("gcr.io/google-containers/ip-masq-agent-amd64:v2.4.1", "ip-masq-agent"),
    ("ccr.ccs.tencentyun.com/library/ip-masq-agent:v2.6.2", "tke"),
    ("example.com/tke-ip-masq-agent:v1", "tke"),
    ("localhost:5000/ip-masq-agent:dev", "ip-masq-agent"),
    # AKS Cilium eBPF's sidecar: it merges the ConfigMaps for Cilium (flavour azure-cilium)
    ("mcr.microsoft.com/containernetworking/azure-ip-masq-merger:v0.0.1", "azure-ip-masq-merger"),
    ("nginx:1.27", None),
])
def test_images_are_recognised(image, kind):
    assert kind_of_image(image) == kind


@pytest.mark.parametrize("image,container,kind,flavor", [
    ("mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2", "azure-ip-masq-agent", "azure-ip-masq-agent", "azure-v2"),
    ("registry.k8s.io/networking/ip-masq-agent:v2.9.3", "agent", "ip-masq-agent", "upstream"),
    ("ccr.ccs.tencentyun.com/library/ip-masq-agent:v2.6.2", "agent", "tke", "tke"),
    ("example.com/custom/snat:v1", "my-ip-masq", "unknown", None),
    ("example.com/custom/snat:v1", "snat", "unknown", None),   # projects an ip-masq ConfigMap
])
def test_daemonset_kind_and_flavour(image, container, kind, flavor):
    snap = build_snapshot(raw_of(daemonsets=[daemonset("agent", image, container=container)]))
    (ds,) = snap.daemonsets
    assert (ds.kind, ds.flavor, ds.container, ds.image) == (kind, flavor, container, image)


def test_unrelated_daemonsets_are_not_agents():
    other = daemonset("kube-proxy", "mcr.microsoft.com/oss/kubernetes/kube-proxy:v1.31.1", volumes=[], mounts=[])
    assert build_snapshot(raw_of(daemonsets=[other])).daemonsets == ()


def test_aks_daemonset_projection_is_recorded_exactly():
    snap = build_snapshot(raw_of(daemonsets=[daemonset()]))
    (ds,) = snap.daemonsets
    assert ds.args == ("--v=2", "--resync-interval=60")
    assert ds.selector == {"k8s-app": "azure-ip-masq-agent", "tier": "node"}
    assert ds.host_network and (ds.desired, ds.ready) == (3, 3)
    assert ds.node_selector == {"kubernetes.io/os": "linux"}
    assert ds.mounts == (ConfigMount(
        volume="azure-ip-masq-agent-config-volume", mount_path="/etc/config", sub_path=None, sources=(
            ConfigMapProjection("azure-ip-masq-agent-config", (KeyToPath("ip-masq-agent", "ip-masq-agent", 444),), True),
            ConfigMapProjection("azure-ip-masq-agent-config-reconciled",
                                (KeyToPath("ip-masq-agent-reconciled", "ip-masq-agent-reconciled", 444),), True),
        )),)


def test_unusual_projections_are_recorded_exactly():
    volumes = [
        # the wrong key: the user's ConfigMap has key "config", the volume projects "ip-masq-agent"
        {"name": "wrong-key", "projected": {"sources": [
            {"configMap": {"name": "ip-masq-agent", "items": [{"key": "config", "path": "ip-masq-agent"}]}},
            {"secret": {"name": "not-a-configmap"}},
            {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}},
        {"name": "plain", "configMap": {"name": "ip-masq-agent-config"}},          # no items: every key
        {"name": "one-file", "configMap": {"name": "extra-masq", "optional": True,
                                           "items": [{"key": "ip-masq-extra", "path": "sub/ip-masq-extra"}]}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts = [{"name": "wrong-key", "mountPath": "/etc/config"},
              {"name": "plain", "mountPath": "/etc/plain"},
              {"name": "one-file", "mountPath": "/etc/config/ip-masq-extra", "subPath": "sub/ip-masq-extra"},
              {"name": "tmp", "mountPath": "/tmp"}]
    snap = build_snapshot(raw_of(daemonsets=[daemonset("ip-masq-agent", "registry.k8s.io/networking/ip-masq-agent:v2.9.3",
                                                       volumes=volumes, mounts=mounts)]))
    (ds,) = snap.daemonsets
    assert ds.mounts == (
        ConfigMount("wrong-key", "/etc/config", None,
                    (ConfigMapProjection("ip-masq-agent", (KeyToPath("config", "ip-masq-agent"),), False),)),
        ConfigMount("plain", "/etc/plain", None, (ConfigMapProjection("ip-masq-agent-config", None, False),)),
        ConfigMount("one-file", "/etc/config/ip-masq-extra", "sub/ip-masq-extra",
                    (ConfigMapProjection("extra-masq", (KeyToPath("ip-masq-extra", "sub/ip-masq-extra"),), True),)),
    )


def test_a_known_agent_container_wins_over_a_look_alike_sidecar():
    merger = {"name": "azure-ip-masq-merger", "image": "mcr.microsoft.com/containernetworking/azure-ip-masq-merger:v0.0.1"}
    ds = daemonset("cilium", "mcr.microsoft.com/oss/v2/azure/ip-masq-agent-v2:v0.1.15-2", container="agent",
                   extra_containers=[merger])
    ds["spec"]["template"]["spec"]["containers"].reverse()
    (got,) = build_snapshot(raw_of(daemonsets=[ds])).daemonsets
    assert (got.kind, got.container) == ("azure-ip-masq-agent", "agent")


# --------------------------------------------------------------------------- ConfigMaps


def test_configmap_selection():
    cms = [
        configmap("azure-ip-masq-agent-config-reconciled", {"ip-masq-agent-reconciled": RECONCILED}),
        configmap("coredns", {"Corefile": ".:53 {}"}),
        configmap("kube-root-ca.crt", {"ca.crt": "-----BEGIN CERTIFICATE-----"}),
        configmap("ip-masq-agent", {"config": "nonMasqueradeCIDRs: []"}, namespace="default"),   # name
        configmap("snat-settings", {"ip-masq-agent": "{}"}, namespace="tools"),                 # data key
        configmap("projected-only", {"whatever": "x"}),                                         # projected
        configmap("projected-elsewhere", {"whatever": "x"}, namespace="other"),                 # other ns: no
    ]
    volumes = [{"name": "v", "configMap": {"name": "projected-only"}},
               {"name": "w", "configMap": {"name": "projected-elsewhere"}}]
    mounts = [{"name": "v", "mountPath": "/etc/config"}, {"name": "w", "mountPath": "/etc/w"}]
    ds = daemonset(volumes=volumes, mounts=mounts)
    snap = build_snapshot(raw_of(configmaps=cms, daemonsets=[ds]))
    assert [cm.ref for cm in snap.configmaps] == [
        "kube-system/azure-ip-masq-agent-config-reconciled", "default/ip-masq-agent", "tools/snat-settings",
        "kube-system/projected-only"]
    cm = snap.configmap("azure-ip-masq-agent-config-reconciled")
    assert cm.data == {"ip-masq-agent-reconciled": RECONCILED} and cm.resource_version == "1001"


def test_configmap_binary_keys_labels_and_missing_data():
    cm = configmap("ip-masq-agent", None, labels={"component": "ip-masq-agent"})
    cm["binaryData"] = {"blob": "AAEC", "another": "AA=="}
    (got,) = build_snapshot(raw_of(configmaps=[cm])).configmaps
    assert got.data == {} and got.binary_keys == ("another", "blob") and got.labels == {"component": "ip-masq-agent"}


# --------------------------------------------------------------------------- pods and nodes


def test_agent_pods_by_owner_or_selector_with_their_state():
    ds = daemonset()
    pods = [
        pod("azure-ip-masq-agent-aaaaa", "n1", "10.224.0.4", namespace="kube-system", owner_ds="azure-ip-masq-agent",
            container="azure-ip-masq-agent", host_network=True),
        pod("azure-ip-masq-agent-bbbbb", "n2", "10.224.0.5", namespace="kube-system", container="azure-ip-masq-agent",
            labels={"k8s-app": "azure-ip-masq-agent", "tier": "node", "pod-template-generation": "1"},
            host_network=True, ready=False, restarts=7, waiting="CrashLoopBackOff",
            last={"reason": "Error", "exitCode": 255, "message": "invalid CIDR 10.0.0.1/8"}),
        pod("other-ds-pod", "n1", "10.224.0.4", namespace="kube-system", owner_ds="kube-proxy",
            labels={"k8s-app": "azure-ip-masq-agent", "tier": "node"}, host_network=True),
        pod("web-1", "n1", "10.224.0.30", labels={"app": "web"}),
        pod("pending", None, None, phase="Pending"),
    ]
    snap = build_snapshot(raw_of(daemonsets=[ds], pods=pods))
    a, b = snap.pods
    assert (a.name, a.node, a.daemonset, a.ready, a.restarts, a.host_network) == \
        ("azure-ip-masq-agent-aaaaa", "n1", "azure-ip-masq-agent", True, 0, True)
    assert (b.ready, b.restarts, b.waiting_reason, b.last_termination_reason, b.last_termination_exit_code,
            b.last_termination_message, b.container) == \
        (False, 7, "CrashLoopBackOff", "Error", 255, "invalid CIDR 10.0.0.1/8", "azure-ip-masq-agent")
    assert snap.pods_on("n2") == [b]
    assert [(w.namespace, w.name, w.pod_ips) for w in snap.workloads] == [
        ("kube-system", "azure-ip-masq-agent-aaaaa", ("10.224.0.4",)),
        ("kube-system", "azure-ip-masq-agent-bbbbb", ("10.224.0.5",)),
        ("kube-system", "other-ds-pod", ("10.224.0.4",)),
        ("default", "web-1", ("10.224.0.30",))]


def test_dual_stack_pod_ips():
    p = pod("web", "n1", "10.244.1.5")
    p["status"]["podIPs"] = [{"ip": "10.244.1.5"}, {"ip": "fd00:10:244:1::5"}]
    (w,) = build_snapshot(raw_of(pods=[p])).workloads
    assert w.pod_ips == ("10.244.1.5", "fd00:10:244:1::5")


def test_nodes():
    n1 = node("aks-nodepool1-1-vmss000000", "10.224.0.4", "10.244.0.0/24")
    n2 = node("aksnpwin000000", "10.224.0.9", ready="Unknown")
    del n2["metadata"]["labels"]["kubernetes.io/os"]
    n2["status"]["nodeInfo"]["operatingSystem"] = "windows"
    a, b = build_snapshot(raw_of(nodes=[n1, n2])).nodes
    assert (a.internal_ip, a.pod_cidrs, a.os, a.ready) == ("10.224.0.4", ("10.244.0.0/24",), "linux", True)
    assert a.addresses == (("InternalIP", "10.224.0.4"), ("Hostname", "aks-nodepool1-1-vmss000000"))
    assert a.provider_id.startswith("azure:///subscriptions/")
    assert (b.os, b.ready, b.pod_cidrs) == ("windows", None, ())


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("mutate,where,message", [
    (lambda l: l[3].__setitem__("data", ["a", "b"]), "configmaps.yaml items[3].data",
     "expected a mapping of strings, got list"),
    (lambda l: l[0]["data"].__setitem__("ip-masq-agent", 5), "configmaps.yaml items[0].data.ip-masq-agent",
     "expected a string, got number"),
    (lambda l: l.__setitem__(1, "just a string"), "configmaps.yaml items[1]", "expected a ConfigMap object"),
    (lambda l: l[2].__setitem__("kind", "Pod"), "configmaps.yaml items[2].kind", "expected ConfigMap, got 'Pod'"),
    (lambda l: l[2]["metadata"].__setitem__("name", ["x"]), "configmaps.yaml items[2].metadata.name",
     "expected a string, got list"),
    (lambda l: l[2].__delitem__("metadata"), "configmaps.yaml items[2].metadata", "missing"),
    (lambda l: l[0]["metadata"].__setitem__("labels", "a=b"), "configmaps.yaml items[0].metadata.labels",
     "expected a mapping of strings, got string"),
])
def test_configmap_shape_errors_name_file_and_field(mutate, where, message):
    cms = [configmap(f"cm-{i}-masq", {"ip-masq-agent": "{}"}) for i in range(4)]
    mutate(cms)
    with pytest.raises(InputError) as info:
        build_snapshot(raw_of(configmaps=cms))
    assert info.value.code == "E322"
    assert info.value.input == where and message in info.value.message


@pytest.mark.parametrize("path,value,where", [
    (("spec", "template", "spec", "volumes"), {"name": "x"}, "daemonsets.yaml items[0].spec.template.spec.volumes"),
    (("spec", "template", "spec", "containers", 0, "args"), "--v=2",
     "daemonsets.yaml items[0].spec.template.spec.containers[0].args"),
    (("spec", "template", "spec", "volumes", 0, "projected", "sources", 0, "configMap", "items", 0, "mode"), "0444",
     "daemonsets.yaml items[0].spec.template.spec.volumes[0].projected.sources[0].configMap.items[0].mode"),
    (("spec", "template", "spec", "volumes", 0, "projected", "sources", 1, "configMap", "items", 0), "ip-masq-agent",
     "daemonsets.yaml items[0].spec.template.spec.volumes[0].projected.sources[1].configMap.items[0]"),
])
def test_daemonset_shape_errors(path, value, where):
    ds = daemonset()
    target = ds
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    with pytest.raises(InputError) as info:
        build_snapshot(raw_of(daemonsets=[ds]))
    assert info.value.input == where, info.value.one_line()


def test_live_origin_names_the_api():
    raw = raw_of(pods=[pod("p", "n", "10.0.0.1")])
    raw.pods[0]["status"]["podIPs"] = "10.0.0.1"
    raw.origin["pods"] = "the Kubernetes API (context aks-1) pods"
    with pytest.raises(InputError) as info:
        build_snapshot(raw)
    assert info.value.input == "the Kubernetes API (context aks-1) pods items[0].status.podIPs"


# --------------------------------------------------------------------------- missing pieces and captures


def test_missing_pieces_are_explicit_never_guessed():
    raw = RawCluster(source="bundle x", configmaps=[], missing={MissingKey.PODS: "forbidden: pods is forbidden"})
    snap = build_snapshot(raw)
    assert snap.missing[MissingKey.PODS] == "forbidden: pods is forbidden"
    assert snap.missing[MissingKey.DAEMONSETS] == "not gathered"
    assert MissingKey.CONFIGMAPS not in snap.missing
    assert MissingKey.CAPTURES in snap.missing and MissingKey.AZURE in snap.missing
    assert snap.azure is None and snap.pods == () and snap.nodes == ()
    raw = RawCluster(source="x", missing={MissingKey.AZURE: "not gathered (--no-azure)"})
    assert build_snapshot(raw).missing[MissingKey.AZURE] == "not gathered (--no-azure)"


NFT = "# Generated by iptables-nft-save v1.8.9 (nf_tables) on Fri Sep 19 20:07:06 2025\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
LEGACY = "# Generated by iptables-save v1.8.7 on Fri Sep 19 20:07:06 2025\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
MIXED = "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n" + NFT


@pytest.mark.parametrize("text,backend", [
    (NFT, "nft"), (LEGACY, "legacy"), (MIXED, "mixed"),
    ("# Generated by xtables-save v1.8.2 on Mon\n*nat\nCOMMIT\n", "nft"),
    ("-A POSTROUTING -j IP-MASQ-AGENT\n", None),
])
def test_backend_detection(text, backend):
    assert detect_backend(text) == backend
    raw = RawCluster(source="x", captures={"n1": NodeCapture("n1", iptables_save=text, via="bundle")})
    assert build_snapshot(raw).captures["n1"].backend == backend


def test_a_capture_that_says_its_backend_keeps_it():
    raw = RawCluster(source="x", captures={"n1": NodeCapture("n1", iptables_save=NFT, backend="legacy")})
    assert build_snapshot(raw).captures["n1"].backend == "legacy"


# --------------------------------------------------------------------------- Azure


def _aks_cli(vnet_subnet_id=None, pod_subnet_id=None, plugin="azure", pod_cidr=None):
    return {
        "id": f"/subscriptions/{SUB}/resourcegroups/rg-akscal/providers/Microsoft.ContainerService/managedClusters/akscal",
        "name": "akscal", "location": "swedencentral", "resourceGroup": "rg-akscal",
        "nodeResourceGroup": "MC_rg-akscal_akscal_swedencentral", "currentKubernetesVersion": "1.31.1",
        "networkProfile": {"networkPlugin": plugin, "networkPluginMode": None, "networkPolicy": None,
                           "podCidr": pod_cidr, "podCidrs": [pod_cidr] if pod_cidr else None,
                           "serviceCidr": "10.0.0.0/16", "serviceCidrs": ["10.0.0.0/16"],
                           "dnsServiceIp": "10.0.0.10", "ipFamilies": ["IPv4"], "outboundType": "loadBalancer",
                           "advancedNetworking": {"performance": {"accelerationMode": "None"}}},
        "agentPoolProfiles": [{"name": "nodepool1", "osType": "Linux", "mode": "System", "count": 1,
                               "vnetSubnetId": vnet_subnet_id, "podSubnetId": pod_subnet_id,
                               "podIpAllocationMode": "DynamicIndividual" if pod_subnet_id else None}],
    }


def _vnet_cli(name, rg, prefixes, subnets, peerings=()):
    vid = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{name}"
    return {"id": vid, "name": name, "resourceGroup": rg, "location": "swedencentral",
            "addressSpace": {"addressPrefixes": list(prefixes)},
            "subnets": [{"id": f"{vid}/subnets/{s}", "name": s, **fields} for s, fields in subnets],
            "virtualNetworkPeerings": list(peerings)}


def test_managed_vnet_from_az_cli_shape():
    aks = _aks_cli()
    vnet = _vnet_cli("aks-vnet-39458073", "MC_rg-akscal_akscal_swedencentral", ["10.224.0.0/12"],
                     [("aks-subnet", {"addressPrefix": "10.224.0.0/16"})])
    snap = build_snapshot(raw_of(aks=aks, vnets={"aks-vnet-39458073": vnet}))
    az = snap.azure
    assert az.subscription == SUB and snap.cluster_name == "akscal"
    assert az.cluster.resource_group == "rg-akscal" and az.cluster.kubernetes_version == "1.31.1"
    np = az.cluster.network_profile
    assert (np.network_plugin, np.pod_cidrs, np.service_cidrs, np.dns_service_ip, np.acceleration_mode) == \
        ("azure", (), ("10.0.0.0/16",), "10.0.0.10", "None")
    (pool,) = az.cluster.agent_pools
    assert (pool.name, pool.os_type, pool.vnet_subnet_id, pool.pod_subnet_id) == ("nodepool1", "Linux", None, None)
    (v,) = az.vnets
    assert (v.managed, v.address_prefixes, v.subnets[0].prefixes) == (True, ("10.224.0.0/12",), ("10.224.0.0/16",))
    assert MissingKey.AZURE not in snap.missing and MissingKey.AZURE_CLUSTER not in snap.missing


def test_byo_vnet_from_arm_rest_shape_with_peering_not_in_sync():
    vid = f"/subscriptions/{SUB}/resourceGroups/rg-spoke1-network/providers/Microsoft.Network/virtualNetworks/vnet-spoke1"
    aks = {"id": f"/subscriptions/{SUB}/resourceGroups/rg-spoke1/providers/Microsoft.ContainerService/managedClusters/spoke1",
           "name": "spoke1", "location": "westeurope",
           "properties": {"nodeResourceGroup": "MC_rg-spoke1_spoke1_westeurope", "kubernetesVersion": "1.32",
                          "networkProfile": {"networkPlugin": "Azure", "serviceCidrs": ["10.0.0.0/16"]},
                          "agentPoolProfiles": [{"name": "sys", "osType": "Linux",
                                                 "vnetSubnetID": f"{vid}/subnets/snet-aks-nodes",
                                                 "PODSUBNETID": f"{vid}/subnets/snet-aks-pods",
                                                 "podIPAllocationMode": "StaticBlock"}]}}
    vnet = {"id": vid, "name": "vnet-spoke1", "type": "Microsoft.Network/virtualNetworks",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.40.0.0/15"]},
                "subnets": [
                    {"name": "snet-aks-nodes", "id": f"{vid}/subnets/snet-aks-nodes",
                     "properties": {"addressPrefix": "10.40.0.0/17"}},
                    {"name": "snet-aks-pods", "properties": {
                        "addressPrefixes": ["10.41.0.0/17", "10.41.128.0/17"], "addressPrefix": "10.41.0.0/17",
                        "delegations": [{"name": "aks", "properties": {
                            "serviceName": "Microsoft.ContainerService/managedClusters"}}]}}],
                "virtualNetworkPeerings": [{"name": "spoke1-to-hub", "properties": {
                    "peeringState": "Connected", "peeringSyncLevel": "LocalNotInSync",
                    "remoteVirtualNetwork": {"id": "/subscriptions/x/resourceGroups/rg-hub/providers/"
                                                   "Microsoft.Network/virtualNetworks/vnet-hub"},
                    "remoteAddressSpace": {"addressPrefixes": ["10.42.0.0/15"]},
                    "remoteVirtualNetworkAddressSpace": {"addressPrefixes": ["10.42.0.0/15", "10.50.0.0/16"]},
                    "allowForwardedTraffic": True, "useRemoteGateways": False, "peerCompleteVnets": True}}]}}
    snap = build_snapshot(raw_of(aks=aks, vnets={"vnet-spoke1": vnet}))
    az = snap.azure
    assert az.cluster.resource_group == "rg-spoke1"          # from the id
    assert az.cluster.network_profile.network_plugin == "Azure"   # kept as returned
    (pool,) = az.cluster.agent_pools
    assert pool.pod_subnet_id.endswith("snet-aks-pods") and pool.pod_ip_allocation_mode == "StaticBlock"
    (v,) = az.vnets
    assert v.managed is False and v.resource_group == "rg-spoke1-network"
    assert [s.prefixes for s in v.subnets] == [("10.40.0.0/17",), ("10.41.0.0/17", "10.41.128.0/17")]
    assert v.subnets[1].delegations == ("Microsoft.ContainerService/managedClusters",)
    (p,) = v.peerings
    assert (p.state, p.sync_level, p.remote_vnet_name) == ("Connected", "LocalNotInSync", "vnet-hub")
    assert p.remote_address_space == ("10.42.0.0/15",)
    assert p.remote_vnet_address_space == ("10.42.0.0/15", "10.50.0.0/16")
    assert (p.allow_forwarded_traffic, p.use_remote_gateways, p.peer_complete_vnets) == (True, False, True)


def test_vnet_unrelated_to_the_cluster_is_neither_managed_nor_byo():
    hub = _vnet_cli("vnet-hub", "rg-hub", ["10.42.0.0/15"], [])
    snap = build_snapshot(raw_of(aks=_aks_cli(), vnets={"vnet-hub": hub}))
    assert snap.azure.vnets[0].managed is None


def test_vnets_without_aks_document():
    vnet = _vnet_cli("v", "rg", ["10.0.0.0/8"], [])
    snap = build_snapshot(raw_of(vnets={"v": vnet}))
    assert snap.azure.cluster is None and snap.azure.subscription == SUB
    assert snap.missing[MissingKey.AZURE_CLUSTER] and snap.azure.vnets[0].managed is None


@pytest.mark.parametrize("mutate,where", [
    (lambda a: a.__setitem__("networkProfile", ["azure"]), "aks.json networkProfile"),
    (lambda a: a["agentPoolProfiles"][0].__setitem__("count", "three"), "aks.json agentPoolProfiles[0].count"),
    (lambda a: a["networkProfile"].__setitem__("serviceCidrs", "10.0.0.0/16"), "aks.json networkProfile.serviceCidrs"),
])
def test_azure_shape_errors(mutate, where):
    aks = _aks_cli()
    mutate(aks)
    raw = raw_of(aks=aks)
    raw.origin["aks"] = "aks.json"
    with pytest.raises(InputError) as info:
        build_snapshot(raw)
    assert info.value.input == where


def test_raw_is_not_modified():
    raw = raw_of(configmaps=[configmap("ip-masq-agent", {"ip-masq-agent": "{}"})], daemonsets=[daemonset()],
                 pods=[pod("p", "n", "10.0.0.1")], nodes=[node("n", "10.0.0.4")], aks=_aks_cli())
    before = copy.deepcopy(raw)
    build_snapshot(raw)
    assert raw == before
