"""Helpers of the live Kubernetes gathering tests (test_kube*.py): a cluster on the local API
server and a gather call with a written kubeconfig."""

from __future__ import annotations

import subprocess

from clusterkit.objects import ip_addr, iptables_save
from kubeapi import ExecResult, KubeAPI, Programs

from masqctl.cluster.live.kube import gather_kube
from masqctl.cluster.options import GatherOptions, NodeSelection

# An AKS node's nat table with only the agent's jump and chain, and its eth0 on the node subnet.
AKS_NAT = iptables_save(["10.224.0.0/12"], kube_proxy=None, saved=("v1.8.9", "Sun Nov 22 03:00:00 2026"))
IP_ADDR = ip_addr("10.224.0.4", 16, brd="10.224.255.255", metric=None, valid="forever")


def agent_programs(table: str = AKS_NAT, **extra) -> Programs:
    """The agent image as masqctl finds it: a shell, iptables-save, ip6tables-save, no ``ip``."""
    return Programs({"iptables-save": table, "ip6tables-save": "", **extra})


def gather(api: KubeAPI, tmp_path, **options) -> "RawCluster":  # noqa: F821
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    progress = options.pop("progress", None)
    environ = options.pop("environ", {"HOME": str(tmp_path)})
    nodes = options.pop("nodes", None)
    if isinstance(nodes, NodeSelection):
        options["nodes"] = nodes
    return gather_kube(GatherOptions(kubeconfig=kubeconfig, **options), progress, environ=environ)


def netns_exec(ns):
    """An exec handler that runs the command inside network namespace ``ns`` (a NetNS): the
    node's real iptables-save, ip6tables-save and ip."""
    def handler(req):
        r = subprocess.run(["ip", "netns", "exec", ns.name, *req.command], capture_output=True, timeout=30)
        return ExecResult(stdout=r.stdout, stderr=r.stderr, exit_code=r.returncode)
    return handler


__all__ = ["AKS_NAT", "IP_ADDR", "KubeAPI", "agent_programs", "gather", "netns_exec"]
