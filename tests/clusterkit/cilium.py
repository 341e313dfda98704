"""Cilium objects shared by tests."""

# ACN test/integration/manifests/cilium/v1.18/ebpf/podsubnet: in pod-subnet mode with eBPF host
# routing cilium-agent mounts the AKS-owned azure-dns-imds-ip-masq-agent-config as /etc/config
PODSUBNET_DS = {
    "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "cilium", "namespace": "kube-system"},
    "spec": {"selector": {"matchLabels": {"k8s-app": "cilium"}}, "template": {"spec": {
        "hostNetwork": True,
        "containers": [{"name": "cilium-agent", "image": "mcr.microsoft.com/containernetworking/cilium/"
                        "cilium-distroless:v1.18.4", "command": ["cilium-agent"],
                        "args": ["--config-dir=/tmp/cilium/config-map"],
                        "volumeMounts": [{"mountPath": "/etc/config", "name": "azure-ip-masq-dir", "readOnly": True}]}],
        "volumes": [{"name": "azure-ip-masq-dir", "configMap": {"name": "azure-dns-imds-ip-masq-agent-config",
                                                                 "optional": True}}]}}},
    "status": {"desiredNumberScheduled": 3, "numberReady": 3}}
