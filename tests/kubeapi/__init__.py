"""A local Kubernetes API server for tests (real HTTP, real WebSocket exec), plus helpers.

    from clusterkit import served                      # the objects (tests/clusterkit/served.py)
    from kubeapi import KubeAPI, ExecResult, Programs, HANG

    with KubeAPI(latency=0.01) as api:                 # HTTP on 127.0.0.1; KubeAPI(tls=True) for HTTPS
        nodes = served.small_cluster(api, 3)           # AKS-like nodes, agent DaemonSet/pods, ConfigMaps
        api.on_exec(Programs({"iptables-save": text}), node=nodes[0])
        api.deny("create", "pods/exec", namespace="kube-system")   # RBAC-shaped 403
        api.fault(r"/api/v1/nodes$", hang=True)                      # hang until api.release()/stop()
        path = api.write_kubeconfig(tmp_path / "kubeconfig")        # context "test", bearer token
        ...
        api.after(3, lambda s: s.update("configmaps", "x", "kube-system", data={...}),
                  method="GET", pattern=r"/configmaps/x$")          # change state before the 3rd read
        api.pod_startup = "pending"                                  # created pods stay Pending
        api.log, api.count("GET", r"/pods"), api.deleted             # what happened

See ``server.py`` for the details of every knob. ``kubeapi.objects`` is kept for import
compatibility (it re-exports ``clusterkit.served``).
"""

from kubeapi import objects
from kubeapi.kubeconfig import write_kubeconfig, write_serviceaccount
from kubeapi.server import (HANG, APIError, ExecRequest, ExecResult, KubeAPI, Programs, Request,
                            forbidden_message, not_found_in_path)

__all__ = ["HANG", "APIError", "ExecRequest", "ExecResult", "KubeAPI", "Programs", "Request",
           "forbidden_message", "not_found_in_path", "objects", "write_kubeconfig", "write_serviceaccount"]
