"""Find and load the Kubernetes client configuration the way kubectl does.

Order: ``--kubeconfig FILE`` (only that file); else the ``KUBECONFIG`` list (files joined with
``:``, merged, missing ones skipped); else ``~/.kube/config``; else, when running in a pod, the
in-cluster service account. ``--context`` picks a context, otherwise the current context.

The environment is passed in (``environ``), never read here, so callers and tests decide.
Every failure is a ``MasqctlError`` naming the file, variable or context concerned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from masqctl.errors import InputError, UsageError

SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

E_KUBECONFIG = "E610"       # the kubeconfig file is missing, unreadable or invalid
E_CONTEXT = "E611"          # no such context / no current context
E_NO_CONFIG = "E612"        # no kubeconfig anywhere and not running in a cluster


@dataclass
class ClientConfig:
    """A ready ``kubernetes.client.Configuration`` and where it came from."""

    configuration: Any
    context: str | None          # None: in-cluster
    files: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return f"context {self.context}" if self.context else "in-cluster service account"

    @property
    def where(self) -> str:
        return f"the Kubernetes API ({self.source})"


def kubeconfig_files(explicit: str | None, environ: Mapping[str, str]) -> tuple[tuple[str, ...], str]:
    """The kubeconfig files to merge and a description of where they came from (for errors).

    Empty tuple: no kubeconfig exists (in-cluster may apply). A missing ``--kubeconfig`` file
    or a ``KUBECONFIG`` naming only missing files is an error (E610).
    """
    if explicit is not None:
        path = os.path.expanduser(explicit)
        if not os.path.exists(path):
            raise InputError("kubeconfig file not found", input=f"--kubeconfig {explicit}", code=E_KUBECONFIG,
                             hint="give the path of an existing kubeconfig (az aks get-credentials writes "
                                  "~/.kube/config)")
        if os.path.isdir(path):
            raise InputError("is a directory, not a kubeconfig file", input=f"--kubeconfig {explicit}",
                             code=E_KUBECONFIG)
        return (path,), f"--kubeconfig {explicit}"
    env = environ.get("KUBECONFIG")
    if env:
        listed = [p for p in env.split(os.pathsep) if p]
        found = tuple(os.path.expanduser(p) for p in listed if os.path.isfile(os.path.expanduser(p)))
        if not found:
            raise InputError("none of the files listed in KUBECONFIG exists", input=f"KUBECONFIG={env}",
                             code=E_KUBECONFIG, hint="fix KUBECONFIG, unset it, or give --kubeconfig")
        return found, f"KUBECONFIG={env}"
    home = environ.get("HOME") or os.path.expanduser("~")
    default = os.path.join(home, ".kube", "config")
    if os.path.isfile(default):
        return (default,), default
    return (), default


def _read_merged(files: tuple[str, ...], described: str) -> Any:
    """kubernetes' own merger (first definition of a name wins, like kubectl); errors name the file."""
    import yaml
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigMerger

    for path in files:
        try:
            with open(path, "rb") as fh:
                doc = yaml.safe_load(fh)
        except OSError as e:
            raise InputError(f"cannot read the kubeconfig: {e.strerror or e}", input=path,
                             code=E_KUBECONFIG) from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path} line {mark.line + 1}" if mark is not None else path
            raise InputError(f"not valid YAML: {getattr(e, 'problem', None) or e}", input=where,
                             code=E_KUBECONFIG) from None
        if doc is not None and not isinstance(doc, dict):
            raise InputError("not a kubeconfig (the document is not a mapping)", input=path, code=E_KUBECONFIG)
        if doc is None:
            raise InputError("the kubeconfig is empty", input=path, code=E_KUBECONFIG)
        for key in ("clusters", "contexts", "users"):
            items = doc.get(key) or []
            if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("name") for i in items):
                raise InputError(f"`{key}` must be a list of entries that each have a name", input=path,
                                 code=E_KUBECONFIG)
    try:
        return KubeConfigMerger(os.pathsep.join(files)).config
    except ConfigException as e:
        raise InputError(str(e), input=described, code=E_KUBECONFIG) from None


def context_names(merged: Any) -> list[str]:
    return [c["name"] for c in merged.value.get("contexts") or []]


def load_client_config(kubeconfig: str | None, context: str | None, *, environ: Mapping[str, str],
                       serviceaccount_dir: str = SERVICEACCOUNT_DIR) -> ClientConfig:
    """Resolve and load the client configuration (see the module doc for the order)."""
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    files, described = kubeconfig_files(kubeconfig, environ)
    cfg = client.Configuration()
    if not files:
        if context:
            raise UsageError(f"context {context!r} cannot be used: there is no kubeconfig ({described} does "
                             "not exist and KUBECONFIG is not set)", input=f"--context {context}", code=E_CONTEXT)
        return _in_cluster(cfg, environ, serviceaccount_dir, described)
    merged = _read_merged(files, described)
    names = context_names(merged)
    chosen = context or merged.value.get("current-context") or None
    if not chosen:
        raise UsageError(f"the kubeconfig has no current context; choose one with --context "
                         f"({_choices(names)})", input=described, code=E_CONTEXT)
    if chosen not in names:
        where = f"--context {context}" if context else f"current-context {chosen} in {described}"
        raise UsageError(f"no context named {chosen!r} in {', '.join(files)}; available: {_choices(names)}",
                         input=where, code=E_CONTEXT)
    ctx = next(c for c in merged.value["contexts"] if c["name"] == chosen).value.get("context") or {}
    for kind, key in (("cluster", "clusters"), ("user", "users")):
        ref = ctx.get(kind) if isinstance(ctx, dict) else None
        if ref is None and kind == "user":
            continue
        if ref not in [item["name"] for item in merged.value.get(key) or []]:
            raise InputError(f"context {chosen!r} refers to {kind} {ref!r}, which is not defined", input=described,
                             code=E_KUBECONFIG)
    try:
        loader = KubeConfigLoader(config_dict=merged, active_context=chosen, config_base_path=None)
        loader.load_and_set(cfg)
    except ConfigException as e:
        raise InputError(f"context {chosen!r} cannot be loaded: {e}", input=described, code=E_KUBECONFIG) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"context {chosen!r} cannot be loaded: {type(e).__name__}: {e}", input=described,
                         code=E_KUBECONFIG) from None
    return ClientConfig(cfg, chosen, files)


def _choices(names: list[str]) -> str:
    return ", ".join(names) if names else "none defined"


def _in_cluster(cfg: Any, environ: Mapping[str, str], sa_dir: str, described: str) -> ClientConfig:
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    if not environ.get("KUBERNETES_SERVICE_HOST"):
        raise UsageError(f"no kubeconfig found ({described} does not exist, KUBECONFIG is not set) and not "
                         "running inside a cluster", input="--kubeconfig", code=E_NO_CONFIG,
                         hint="give --kubeconfig FILE or set KUBECONFIG (az aks get-credentials -g RG -n NAME "
                              "writes ~/.kube/config), or read a bundle with --bundle DIR")
    loader = InClusterConfigLoader(token_filename=os.path.join(sa_dir, "token"),
                                   cert_filename=os.path.join(sa_dir, "ca.crt"), environ=dict(environ))
    try:
        loader.load_and_set(cfg)
    except ConfigException as e:
        raise UsageError(f"in-cluster configuration is incomplete: {e}", input=sa_dir, code=E_NO_CONFIG) from None
    return ClientConfig(cfg, None, ())
