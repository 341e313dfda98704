"""Kubeconfig and in-cluster service-account files for tests."""

from __future__ import annotations

import base64
import os
from typing import Any

import yaml


def write_kubeconfig(path: Any, *, server: str, context: str = "test", namespace: str | None = None,
                     token: str | None = "test-token", extra_contexts: tuple[str, ...] = (),
                     current: str | None = None, ca_pem: str | None = None,
                     insecure: bool = False) -> str:
    """Write a kubeconfig with one cluster/user per context, all pointing at ``server``.

    ``context`` is the current context unless ``current`` says otherwise (``current=""`` writes
    none). ``extra_contexts`` adds more contexts (same server). ``ca_pem`` embeds the CA as
    ``certificate-authority-data``. Returns the path as a string.
    """
    clusters, users, contexts = [], [], []
    for name in (context, *extra_contexts):
        cluster: dict[str, Any] = {"server": server}
        if ca_pem:
            cluster["certificate-authority-data"] = base64.b64encode(ca_pem.encode()).decode()
        if insecure:
            cluster["insecure-skip-tls-verify"] = True
        clusters.append({"name": f"{name}-cluster", "cluster": cluster})
        users.append({"name": f"{name}-user", "user": {"token": token} if token else {}})
        ctx: dict[str, Any] = {"cluster": f"{name}-cluster", "user": f"{name}-user"}
        if namespace:
            ctx["namespace"] = namespace
        contexts.append({"name": name, "context": ctx})
    doc = {"apiVersion": "v1", "kind": "Config", "clusters": clusters, "users": users, "contexts": contexts,
           "preferences": {}}
    cur = context if current is None else current
    if cur:
        doc["current-context"] = cur
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    return path


def write_serviceaccount(directory: Any, *, token: str = "test-token", ca_pem: str = "") -> dict[str, str]:
    """Write ``token`` and ``ca.crt`` like the kubelet mounts them in a pod
    (``/var/run/secrets/kubernetes.io/serviceaccount``). Returns the paths."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    paths = {"token": os.path.join(directory, "token"), "ca.crt": os.path.join(directory, "ca.crt"),
             "namespace": os.path.join(directory, "namespace")}
    with open(paths["token"], "w") as fh:
        fh.write(token)
    with open(paths["ca.crt"], "w") as fh:
        fh.write(ca_pem)
    with open(paths["namespace"], "w") as fh:
        fh.write("kube-system")
    return paths
