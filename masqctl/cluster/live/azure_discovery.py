"""Which AKS cluster is the kubeconfig context? Pure: reads the kubeconfig with PyYAML only.

``az aks get-credentials -g RG -n NAME`` writes a context named ``NAME`` (``NAME-admin`` with
``--admin``), a cluster entry ``NAME``, a user ``clusterUser_RG_NAME`` (``clusterAdmin_RG_NAME``)
and the API server URL ``https://<fqdn>:443``. A cluster listed from ARM matches the context,
strongest evidence first:

1. ``server``: the API server host is the cluster's ``fqdn``, ``privateFQDN`` or
   ``azurePortalFQDN`` (unique in Azure, survives renamed contexts);
2. ``user``: the context's user is ``clusterUser_<rg>_<name>`` or ``clusterAdmin_<rg>_<name>``;
3. ``name``: the context name (without ``-admin``) or its cluster entry equals the cluster name.

The first rule that matches exactly one cluster decides; a rule that matches several is
ambiguous (the caller says so and names them); no rule matching means no cluster was found.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass


@dataclass(frozen=True)
class KubeHints:
    """What the kubeconfig says about the context in use. ``problem``: why it could not be read."""

    context: str | None = None
    cluster_entry: str | None = None
    user_entry: str | None = None
    server: str | None = None
    problem: str | None = None

    @property
    def server_host(self) -> str | None:
        if not self.server:
            return None
        try:
            host = urllib.parse.urlsplit(self.server).hostname
        except ValueError:
            return None
        return host.lower().rstrip(".") if host else None

    @property
    def empty(self) -> bool:
        return not (self.context or self.cluster_entry or self.user_entry or self.server)

    def describe(self) -> str:
        bits = []
        if self.context:
            bits.append(f"kubeconfig context {self.context!r}")
        if self.server_host:
            bits.append(f"API server {self.server_host}")
        return " / ".join(bits) or "no kubeconfig context"


def _named(entries: object, name: str | None) -> dict | None:
    if not isinstance(entries, list) or name is None:
        return None
    for e in entries:
        if isinstance(e, dict) and e.get("name") == name:
            return e
    return None


def kube_hints(kubeconfig: str | None, context: str | None, *, default_path: str | None = None,
               server: str | None = None) -> KubeHints:
    """Read the context (``context``, else the current context) from ``kubeconfig`` (one path,
    or several joined with ``os.pathsep``, merged first-wins like kubectl; ``None``:
    ``default_path``). ``server`` (when the caller already knows the API server URL) wins over
    the file. Never raises: a problem is returned in ``problem``."""
    import yaml

    paths = [p for p in (kubeconfig.split(os.pathsep) if kubeconfig else [default_path or ""]) if p]
    docs: list[dict] = []
    problems: list[str] = []
    for p in paths:
        path = os.path.expanduser(p)
        try:
            with open(path, "rb") as fh:
                doc = yaml.safe_load(fh)
        except FileNotFoundError:
            if kubeconfig:
                problems.append(f"{p}: not found")
            continue
        except (OSError, yaml.YAMLError) as e:
            problems.append(f"{p}: {getattr(e, 'strerror', None) or type(e).__name__}")
            continue
        if isinstance(doc, dict):
            docs.append(doc)
        else:
            problems.append(f"{p}: not a kubeconfig mapping")
    chosen = context
    if chosen is None:
        chosen = next((d.get("current-context") for d in docs if isinstance(d.get("current-context"), str)
                       and d.get("current-context")), None)
    ctx = None
    for d in docs:
        ctx = ctx or _named(d.get("contexts"), chosen)
    body = ctx.get("context") if isinstance(ctx, dict) and isinstance(ctx.get("context"), dict) else {}
    cluster_entry = body.get("cluster") if isinstance(body.get("cluster"), str) else None
    user_entry = body.get("user") if isinstance(body.get("user"), str) else None
    url = server
    if url is None and cluster_entry is not None:
        for d in docs:
            entry = _named(d.get("clusters"), cluster_entry)
            if isinstance(entry, dict) and isinstance(entry.get("cluster"), dict):
                s = entry["cluster"].get("server")
                if isinstance(s, str):
                    url = s
                    break
    if chosen is not None and ctx is None and docs:
        problems.append(f"context {chosen!r} is not in the kubeconfig")
    return KubeHints(context=chosen, cluster_entry=cluster_entry, user_entry=user_entry, server=url,
                     problem="; ".join(problems) or None)


@dataclass(frozen=True)
class Candidate:
    """A cluster as listed from ARM (only what matching needs)."""

    id: str
    name: str
    resource_group: str
    fqdns: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.resource_group}/{self.name}"


@dataclass(frozen=True)
class Match:
    chosen: Candidate | None
    ambiguous: tuple[Candidate, ...] = ()
    basis: str | None = None       # server | user | name


def _rules(hints: KubeHints):
    host = hints.server_host
    ctx = hints.context or ""
    names = {n.lower() for n in (ctx, ctx[:-6] if ctx.lower().endswith("-admin") else "", hints.cluster_entry or "")
             if n}
    user = (hints.user_entry or "").lower()
    yield "server", lambda c: host is not None and host in {f.lower().rstrip(".") for f in c.fqdns}
    yield "user", lambda c: bool(user) and user in {f"clusteruser_{c.resource_group}_{c.name}".lower(),
                                                    f"clusteradmin_{c.resource_group}_{c.name}".lower()}
    yield "name", lambda c: c.name.lower() in names


def match_cluster(candidates: list[Candidate], hints: KubeHints) -> Match:
    for basis, rule in _rules(hints):
        hits = [c for c in candidates if rule(c)]
        if len(hits) == 1:
            return Match(hits[0], (), basis)
        if len(hits) > 1:
            return Match(None, tuple(hits), basis)
    return Match(None)
