"""The hub-spoke example bundle as a LIVE estate: its Kubernetes documents in the local API server
(tests/kubeapi), its ``aks.json`` and VNets in the local ARM (tests/azurearm, HTTPS with a
throwaway CA), and each node answering exec with its ``iptables-save`` like an agent pod would.

Each node behaves like a node running the agent: it keeps the chain it booted with (the bundle's
dump) until the agent's projected config folder changes in the API server; ``converge_after``
polls later it shows the chain the agent renders from the new folder. The chain is rendered by
``masqctl node-agent --once --dry-run --config-dir`` (the same engine as the shipped agent),
from files projected exactly as the DaemonSet's volume projects them.

Nothing in the clients is replaced: the CLI runs as a subprocess with a kubeconfig for the
local API server, ``--arm-endpoint`` for the local ARM, a stand-in ``az`` on ``PATH`` (the real
``AzureCliCredential`` runs it) and ``REQUESTS_CA_BUNDLE`` trusting the test CA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from azurearm import ARM, FakeAz
from kubeapi import KubeAPI, Programs

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "examples" / "hub-spoke"

SUBSCRIPTION = "a3cdb257-cedb-523d-a14d-a50a947da937"
HUB_SUBSCRIPTION = "cc2d6d28-f7f9-58da-8f6f-69f8c1225d2e"
TENANT = "bb2dc4ce-c95d-5a10-9427-c7104b2e11fe"
RESOURCE_GROUP = "rg-spoke1"
CLUSTER = "aks-spoke1"
CONTEXT = "aks-spoke1"
NODES = ("aks-system-20931744-vmss000000", "aks-system-20931744-vmss000001")
HUB_RANGE = "10.42.0.0/15"
AGENT_DS = "azure-ip-masq-agent"
USER_CM = "azure-ip-masq-agent-config"
CHAIN = "IP-MASQ-AGENT"

# ------------------------------------------------------------------------------ Kubernetes


def bundle_items(name: str) -> list[dict]:
    doc = yaml.safe_load((BUNDLE / name).read_text())
    return list(doc["items"]) if doc.get("kind") == "List" or "items" in doc else [doc]


def load_kube(api: KubeAPI) -> None:
    """Every object of the bundle's Kubernetes files, with the namespaces they live in."""
    namespaces = set()
    for name in ("configmaps.yaml", "daemonsets.yaml", "pods.yaml", "nodes.yaml"):
        for obj in bundle_items(name):
            ns = (obj.get("metadata") or {}).get("namespace")
            if ns:
                namespaces.add(ns)
            api.add(obj)
    for ns in sorted(namespaces - {"default", "kube-system"}):
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}})


def node_file(node: str, name: str) -> str:
    return (BUNDLE / "nodes" / node / name).read_text()


def project_config_folder(api: KubeAPI, namespace: str = "kube-system", daemonset: str = AGENT_DS) -> dict[str, str]:
    """The files of the agent's ``/etc/config`` as kubelet would project them from the API server's
    current objects (``items`` of each ConfigMap source; optional sources that are absent give no file)."""
    ds = api.get("daemonsets", daemonset, namespace)
    assert ds is not None, f"no DaemonSet {namespace}/{daemonset}"
    pod_spec = ds["spec"]["template"]["spec"]
    [container] = [c for c in pod_spec["containers"] if "ip-masq" in c["name"]]
    mounted = {m["name"] for m in container.get("volumeMounts", []) if m.get("mountPath") == "/etc/config"}
    files: dict[str, str] = {}
    for vol in pod_spec.get("volumes", []):
        if vol["name"] not in mounted:
            continue
        sources = [s["configMap"] for s in (vol.get("projected") or {}).get("sources", []) if "configMap" in s]
        if "configMap" in vol:
            sources.append(vol["configMap"])
        for src in sources:
            cm = api.get("configmaps", src["name"], namespace)
            data = (cm or {}).get("data") or {}
            items = src.get("items")
            pairs = [(i["key"], i["path"]) for i in items] if items is not None else [(k, k) for k in data]
            for key, path in pairs:
                if key in data:
                    files[path] = data[key]
    return files


def agent_args(api: KubeAPI, namespace: str = "kube-system", daemonset: str = AGENT_DS) -> list[str]:
    ds = api.get("daemonsets", daemonset, namespace)
    [container] = [c for c in ds["spec"]["template"]["spec"]["containers"] if "ip-masq" in c["name"]]
    return list(container.get("args") or [])


_RENDER_LOCK = threading.Lock()
_RENDERED: dict[tuple, list[str]] = {}


def render_chain(files: dict[str, str], args: list[str]) -> list[str]:
    """The ``-A IP-MASQ-AGENT`` rules the agent writes for this config folder, from
    ``masqctl node-agent --once --dry-run --config-dir`` (cached per folder content)."""
    key = (tuple(sorted(files.items())), tuple(args))
    with _RENDER_LOCK:
        if key in _RENDERED:
            return _RENDERED[key]
        with tempfile.TemporaryDirectory(prefix="e2e-config-") as d:
            for path, text in files.items():
                Path(d, path).write_text(text)
            r = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "node-agent", "--once", "--dry-run",
                                "--config-dir", d, *args], capture_output=True, text=True, timeout=120, check=False)
        if r.returncode != 0:
            raise AssertionError(f"node-agent --dry-run failed ({r.returncode}): {r.stderr}")
        rules = [ln for ln in r.stdout.splitlines() if ln.startswith(f"-A {CHAIN} ")]
        assert rules, r.stdout
        _RENDERED[key] = rules
        return rules


def splice_chain(dump: str, rules: list[str]) -> str:
    """``dump`` with its ``-A IP-MASQ-AGENT`` rules replaced by ``rules`` (at the same place)."""
    out, done = [], False
    for line in dump.splitlines(keepends=True):
        if line.startswith(f"-A {CHAIN} "):
            if not done:
                out.extend(r + "\n" for r in rules)
                done = True
            continue
        out.append(line)
    assert done, "the dump has no agent chain to replace"
    return "".join(out)


@dataclass
class SimulatedNode:
    """An exec handler for every pod on one node: a container with ``sh``, ``iptables-save``,
    ``ip6tables-save`` and ``ip``, whose agent chain follows the config folder ``converge_after``
    polls after the folder changed (as kubelet's volume sync plus the agent's resync would)."""

    api: KubeAPI
    node: str
    converge_after: int = 0
    calls: int = 0
    polls_after_change: int = 0
    converged_at_call: int | None = None
    programs_seen: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._dump = node_file(self.node, "iptables-save.txt")
        self._ip_addr = node_file(self.node, "ip-addr.txt")
        self._files = project_config_folder(self.api)      # what the booted chain was written from

    @property
    def dump(self) -> str:
        return self._dump

    def __call__(self, req):
        with self._lock:
            self.calls += 1
            files = project_config_folder(self.api)
            if files != self._files:
                self.polls_after_change += 1
                if self.polls_after_change > self.converge_after:
                    self._dump = splice_chain(self._dump, render_chain(files, agent_args(self.api)))
                    self._files = files
                    self.polls_after_change = 0
                    self.converged_at_call = self.calls
            dump = self._dump
        programs = Programs({"iptables-save": dump, "ip6tables-save": "", "ip": self._ip_addr})
        result = programs(req)
        self.programs_seen.extend(programs.calls)
        return result


def serve_nodes(api: KubeAPI, converge_after: int = 0) -> dict[str, SimulatedNode]:
    nodes = {}
    for n in NODES:
        nodes[n] = SimulatedNode(api, n, converge_after)
        api.on_exec(nodes[n], node=n)
    return nodes


# ------------------------------------------------------------------------------ Azure (az shape → ARM REST shape)

_TOP_LEVEL = {"id", "name", "type", "location", "etag", "tags", "sku", "identity", "kind", "extendedLocation",
              "systemData", "zones"}
# az prints snake_case attributes in camelCase; ARM's own JSON spells these keys differently
_REST_NAMES = {"vnetSubnetId": "vnetSubnetID", "podSubnetId": "podSubnetID",
               "podIpAllocationMode": "podIPAllocationMode", "dnsServiceIp": "dnsServiceIP",
               "azurePortalFqdn": "azurePortalFQDN", "privateFqdn": "privateFQDN", "enableRbac": "enableRBAC",
               "enableFips": "enableFIPS", "enableNodePublicIp": "enableNodePublicIP",
               "osDiskSizeGb": "osDiskSizeGB", "osSku": "osSKU"}


def _rest_values(value: Any) -> Any:
    if isinstance(value, dict):
        return {_REST_NAMES.get(k, k): _rest_values(v) for k, v in value.items()
                if v is not None and k != "resourceGroup"}
    if isinstance(value, list):
        return [_rest_values(v) for v in value]
    return value


def to_arm_resource(doc: dict, children: dict[str, None] = {}) -> dict:  # noqa: B006 - read only
    """An ``az … show`` document as ARM's REST JSON: ``properties`` nested, ARM's key spellings,
    no ``resourceGroup`` (az adds it), no nulls. ``children`` names list properties whose items are
    sub-resources themselves (subnets, peerings)."""
    out: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for key, value in doc.items():
        if value is None or key == "resourceGroup":
            continue
        if key in _TOP_LEVEL:
            out[key] = _rest_values(value)
        elif key in children:
            props[key] = [to_arm_resource(item) for item in value]
        else:
            props[_REST_NAMES.get(key, key)] = _rest_values(value)
    out["properties"] = props
    return out


def load_azure(arm: ARM) -> None:
    arm.add(to_arm_resource(json.loads((BUNDLE / "aks.json").read_text())))
    for path in sorted((BUNDLE / "vnets").glob("*.json")):
        arm.add(to_arm_resource(json.loads(path.read_text()),
                                children={"subnets": None, "virtualNetworkPeerings": None}))


# ------------------------------------------------------------------------------ the CLI


@dataclass
class Estate:
    api: KubeAPI
    arm: ARM
    nodes: dict[str, SimulatedNode]
    kubeconfig: str
    home: Path
    env: dict[str, str]
    az: FakeAz | None

    def kube_args(self) -> list[str]:
        return ["--kubeconfig", self.kubeconfig, "--context", CONTEXT]

    def azure_args(self) -> list[str]:
        return ["--subscription", SUBSCRIPTION, "-g", RESOURCE_GROUP, "--cluster", CLUSTER,
                "--arm-endpoint", self.arm.url]

    def live_args(self) -> list[str]:
        return [*self.kube_args(), *self.azure_args()]

    def masqctl(self, *args: str) -> subprocess.CompletedProcess:
        """The CLI with this estate's environment."""
        return masqctl(*args, env=self.env)

    def exec_calls(self) -> dict[str, int]:
        return {n: s.calls for n, s in self.nodes.items()}


def masqctl(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m masqctl.cli.main ARGS`` in a subprocess (a generous timeout: tests assert
    behaviour, not time)."""
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=timeout, check=False)


def base_env(home: Path, path: str) -> dict[str, str]:
    """A clean environment: no AZURE_*, no KUBECONFIG, a fresh HOME, only the given PATH."""
    env = {"HOME": str(home), "PATH": path, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    for keep in ("SYSTEMROOT", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV"):
        if keep in os.environ:
            env[keep] = os.environ[keep]
    return env
