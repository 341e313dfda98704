"""Bundle documents of the offline gathering tests (tests/cluster, tests/fuzz): the layout
``bundle`` of ``objects`` with the defaults those tests were written against — a cluster in
subscription ``SUB``, ConfigMaps at resourceVersion 1001, pods with uids and ``hostIP: null``."""

from __future__ import annotations

from clusterkit import objects as o
from clusterkit.objects import AGENT, AGENT_IMAGE, kube_list

SUB = "3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c"
AKS_PROJECTION = o.config_projection()

__all__ = ["AKS_PROJECTION", "SUB", "configmap", "daemonset", "kube_list", "node", "pod"]


def configmap(name: str, data: dict | None, namespace: str = "kube-system", **meta) -> dict:
    """A ConfigMap at resourceVersion 1001; ``meta`` (e.g. ``labels``) follows it in the metadata;
    ``data`` None leaves the key out."""
    return o.configmap(name, data, namespace, resource_version="1001", **meta)


def daemonset(name: str = AGENT, image: str = AGENT_IMAGE, *, namespace: str = "kube-system",
              container: str | None = None, volumes: list | None = None, mounts: list | None = None,
              args: list | None = None, selector: dict | None = None, extra_containers: list | None = None) -> dict:
    """An agent-like DaemonSet named ``name`` (labels, selector, container and config volume named
    after it unless given), three pods scheduled and ready."""
    return o.daemonset(name, image, namespace=namespace, container=container, volumes=volumes, mounts=mounts,
                       args=args, selector=selector, extra_containers=extra_containers, layout="bundle")


def pod(name: str, node: str | None, ip: str | None, *, namespace: str = "default", labels: dict | None = None,
        owner_ds: str | None = None, host_network: bool = False, container: str = "app",
        image: str = "nginx:1.27", ready: bool = True, restarts: int = 0, waiting: str | None = None,
        last: dict | None = None, phase: str = "Running") -> dict:
    """A pod on ``node``, owned by the DaemonSet ``owner_ds`` when given."""
    return o.pod(name, node=node, namespace=namespace, ip=ip, host_network=host_network, phase=phase, ready=ready,
                 image=image, container=container, labels=labels, owner=("DaemonSet", owner_ds) if owner_ds else None,
                 restarts=restarts, waiting=waiting, last_terminated=last, layout="bundle")


def node(name: str, ip: str, pod_cidr: str | None = None, *, ready: str = "True", os_label: str = "linux") -> dict:
    """A node of pool nodepool1 (``os_label`` sets only the ``kubernetes.io/os`` label)."""
    return o.node(name, ip, pod_cidr, os_label=os_label, labels={"agentpool": "nodepool1"}, ready=ready,
                  provider_id=o.vmss_provider_id(SUB, "mc_rg_test_westeurope", "aks-nodepool1-vmss", 0))
