"""Writing a bundle folder (the layout ``masqctl collect`` writes and ``--bundle`` reads) from
documents, and running the CLI on it.

A bundle holds ``configmaps.yaml``, ``daemonsets.yaml``, ``pods.yaml`` and ``nodes.yaml`` (each a
``kind: List`` as ``kubectl get … -o yaml`` prints it), ``aks.json`` (``az aks show``),
``vnets/<name>.json`` (``az network vnet show``) and ``nodes/<node>/<file>`` captures
(``iptables-save.txt``, ``ip-addr.txt``), and when set ``services.yaml``/``endpointslices.yaml``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import yaml

from clusterkit.objects import kube_list

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")


class Bundle:
    """The documents of one bundle; ``write`` puts them in a folder. ``list_metadata`` gives each
    List kubectl's empty ``metadata.resourceVersion``; ``json_indent`` is the indent of the Azure
    documents (None: one line, as ``az … -o json | jq -c``)."""

    def __init__(self, *, list_metadata: bool = True, json_indent: int | None = 2):
        self.configmaps: list[dict] = []
        self.daemonsets: list[dict] = []
        self.pods: list[dict] = []
        self.nodes: list[dict] = []
        self.aks: dict | None = None
        self.vnets: dict[str, dict] = {}
        self.captures: dict[str, dict[str, str]] = {}
        self.services: list[dict] | None = None          # services.yaml (None: not written)
        self.endpointslices: list[dict] | None = None    # endpointslices.yaml (None: not written)
        self.list_metadata = list_metadata
        self.json_indent = json_indent

    def copy(self) -> "Bundle":
        return copy.deepcopy(self)

    def configmap(self, name: str, namespace: str = "kube-system") -> dict | None:
        for cm in self.configmaps:
            if cm["metadata"]["name"] == name and cm["metadata"]["namespace"] == namespace:
                return cm
        return None

    def set_reconciled(self, text: str) -> "Bundle":
        """The reconciled ConfigMap's text becomes ``text``."""
        self.configmap("azure-ip-masq-agent-config-reconciled")["data"] = {"ip-masq-agent-reconciled": text}
        return self

    def capture_all(self, text: str) -> "Bundle":
        """Every captured node's iptables-save becomes ``text``."""
        for n in self.captures:
            self.captures[n]["iptables-save.txt"] = text
        return self

    def write(self, path: str) -> str:
        os.makedirs(path, exist_ok=True)
        for fname, items in (("configmaps.yaml", self.configmaps), ("daemonsets.yaml", self.daemonsets),
                             ("pods.yaml", self.pods), ("nodes.yaml", self.nodes)):
            with open(os.path.join(path, fname), "w") as fh:
                yaml.safe_dump(kube_list(items, metadata=self.list_metadata), fh, sort_keys=False)
        for fname, items in (("services.yaml", self.services), ("endpointslices.yaml", self.endpointslices)):
            if items is not None:
                with open(os.path.join(path, fname), "w") as fh:
                    yaml.safe_dump(kube_list(items, metadata=self.list_metadata), fh, sort_keys=False)
        if self.aks is not None:
            with open(os.path.join(path, "aks.json"), "w") as fh:
                json.dump(self.aks, fh, indent=self.json_indent)
        if self.vnets:
            os.makedirs(os.path.join(path, "vnets"), exist_ok=True)
            for name, doc in self.vnets.items():
                with open(os.path.join(path, "vnets", f"{name}.json"), "w") as fh:
                    json.dump(doc, fh, indent=self.json_indent)
        for n, files in self.captures.items():
            os.makedirs(os.path.join(path, "nodes", n), exist_ok=True)
            write_files(os.path.join(path, "nodes", n), files)
        return path


def list_yaml(items: list, *, metadata: bool = False) -> str:
    """``items`` as the YAML of a ``kind: List`` (a bundle's configmaps.yaml etc.)."""
    return yaml.safe_dump(kube_list(items, metadata=metadata), sort_keys=False)


def write_files(root, files: dict[str, str]) -> str:
    """Write ``{relative path: text}`` under ``root`` (folders made as needed); returns ``root``."""
    for rel, text in files.items():
        path = os.path.join(str(root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
    return str(root)


def run_cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    """``masqctl ARGS`` in a child process (from the repository root unless ``cwd``)."""
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120, check=False)
