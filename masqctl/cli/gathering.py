"""The gathering options every cluster-reading command shares (inspect, explain, apply, collect).

Each option is written once, as a field of ``GatherFlags`` (its type, its default and its
``typer.Option``). A command takes them all with one parameter, ``gathering: GatherFlags``, and the
``takes_gather_flags`` decorator: the decorator puts the options in that parameter's place in the
command's signature (so they show in ``--help`` where the parameter stands) and hands the command
one ``GatherFlags`` value; ``GatherFlags.options()`` is the ``GatherOptions`` gathering uses for
one cluster, ``GatherFlags.cluster_options()`` one per cluster named (``--bundle`` and
``--context`` repeat; ``--azure CONTEXT=RG/CLUSTER`` gives each context its AKS cluster).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from masqctl.cluster.defaults import (DEFAULT_AZURE_AUTH, DEFAULT_CONCURRENCY, DEFAULT_DEBUG_IMAGE,
                                      DEFAULT_NAMESPACE, DEFAULT_NODE_TIMEOUT)

from masqctl.errors import UsageError

if TYPE_CHECKING:
    from masqctl.cluster.options import GatherOptions

# Codes (docs/errors.md, "Usage").
E_SEVERAL = "E263"          # several clusters named to a command that reads one
E_AZURE_VALUE = "E264"      # --azure is not CONTEXT=[SUB/]RG/CLUSTER
E_AZURE_CONTEXT = "E265"    # --azure names a context that was not given
E_AZURE_WHICH = "E266"      # -g/--cluster with several contexts
E_NODES_SEVERAL = "E267"    # --nodes names with several clusters

PANEL_K8S = "Cluster"
PANEL_AZ = "Azure"


def _option(default, *decls: str, panel: str = PANEL_K8S, **kwargs):
    return field(default=default, metadata={"option": typer.Option(*decls, rich_help_panel=panel, **kwargs)})


@dataclass(frozen=True)
class GatherFlags:
    """The gathering options as given on the command line (``--nodes`` still text)."""

    bundles: Optional[list[str]] = _option(
        None, "--bundle", metavar="DIR", help="Read a bundle (directory or .tar.gz) instead of a live cluster. "
        "Repeat it (and --context) for several clusters (inspect).")
    kubeconfig: Optional[str] = _option(None, "--kubeconfig", help="Path to the kubeconfig file.")
    contexts: Optional[list[str]] = _option(None, "--context", help="kubeconfig context to use (repeatable).")
    namespace: str = _option(DEFAULT_NAMESPACE, "-n", "--namespace", help="Namespace of the agent and its ConfigMaps.")
    nodes: Optional[str] = _option(
        None, "--nodes", metavar="NAMES|SELECTOR|N", help="Nodes to capture: names (a,b), a label selector "
        "(agentpool=sys), or a sample of N. Default: all Linux nodes.")
    concurrency: int = _option(DEFAULT_CONCURRENCY, "--concurrency", help="Nodes captured at once.")
    node_timeout: float = _option(DEFAULT_NODE_TIMEOUT, "--node-timeout", metavar="SECONDS",
                                  help="Give up on one node's capture after this long.")
    debug_pod: bool = _option(
        False, "--debug-pod", help="For nodes without a usable agent pod, capture with a short-lived host-network "
        "pod (always deleted).")
    debug_image: str = _option(DEFAULT_DEBUG_IMAGE, "--debug-image",
                               help="Image for --debug-pod (needs chroot; the node's own iptables-save runs).")
    no_capture: bool = _option(False, "--no-capture", help="Do not exec into nodes (no live iptables).")
    subscription: Optional[str] = _option(None, "--subscription", envvar="AZURE_SUBSCRIPTION_ID",
                                          help="Azure subscription ID or name.", panel=PANEL_AZ)
    resource_group: Optional[str] = _option(None, "-g", "--resource-group", help="The cluster's resource group.",
                                            panel=PANEL_AZ)
    cluster: Optional[str] = _option(None, "--cluster", help="AKS cluster name (default: from the kubeconfig "
                                     "context when it matches).", panel=PANEL_AZ)
    azure_auth: str = _option(DEFAULT_AZURE_AUTH, "--azure-auth", metavar="cli|default",
                              help="Credential: Azure CLI login, or DefaultAzureCredential.", panel=PANEL_AZ)
    azure_of: Optional[list[str]] = _option(
        None, "--azure", metavar="CONTEXT=[SUB/]RG/CLUSTER", help="The AKS cluster behind one --context (repeatable): "
        "resource group and name, optionally the subscription first, or the cluster's resource ID.", panel=PANEL_AZ)
    no_azure: bool = _option(False, "--no-azure", help="Skip Azure entirely.", panel=PANEL_AZ)
    arm_endpoint: Optional[str] = _option(
        None, "--arm-endpoint", metavar="URL", envvar="MASQCTL_ARM_ENDPOINT",
        help="Azure Resource Manager URL for sovereign clouds (e.g. https://management.chinacloudapi.cn).",
        panel=PANEL_AZ)

    @property
    def on_cluster(self) -> bool:
        """A bundle or a kubeconfig/context was named (rather than only files of one node)."""
        return bool(self.bundles) or bool(self.contexts) or self.kubeconfig is not None

    @property
    def several(self) -> bool:
        """More than one cluster was named (``--bundle`` and ``--context`` together count)."""
        return len(self.bundles or ()) + len(self.contexts or ()) > 1

    @property
    def bundle(self) -> str | None:
        """The one ``--bundle`` (None: none); E263 when several were given."""
        self._one()
        return (self.bundles or [None])[0]

    @property
    def context(self) -> str | None:
        """The one ``--context`` (None: none); E263 when several were given."""
        self._one()
        return (self.contexts or [None])[0]

    def _not_mixed(self) -> None:
        """A bundle and a live cluster together: E228, as for one (GatherOptions says it)."""
        if self.bundles and (self.contexts or self.kubeconfig is not None):
            from masqctl.cluster.options import GatherOptions   # lean: an offline command never builds one

            GatherOptions(bundle=self.bundles[0], kubeconfig=self.kubeconfig, context=(self.contexts or [None])[0])

    def _one(self) -> None:
        self._not_mixed()
        if self.several:
            named = [f"--bundle {b}" for b in self.bundles or ()] + [f"--context {c}" for c in self.contexts or ()]
            raise UsageError(f"this command reads one cluster, and {len(named)} were named ({', '.join(named)})",
                             input=named[1], code=E_SEVERAL,
                             hint="give one --bundle or --context; inspect and explain read several")

    def options(self) -> GatherOptions:
        """The values gathering depends on, for the one cluster named (``--nodes`` parsed; E208 for a
        bad one; E263 when several clusters were named)."""
        self._one()
        azure = _azure_of(self.azure_of, self.contexts or [])
        context = (self.contexts or [None])[0]
        sub, rg, cluster = azure.get(context, (self.subscription, self.resource_group, self.cluster)) \
            if context is not None else (self.subscription, self.resource_group, self.cluster)
        return self._options((self.bundles or [None])[0], context, _nodes(self.nodes), sub, rg, cluster)

    def cluster_options(self) -> list[GatherOptions]:
        """One ``GatherOptions`` per cluster named: each ``--bundle``, then each ``--context`` with
        its own Azure facts (``--azure CONTEXT=…``, else ``--subscription``/``-g``/``--cluster``
        when only one context is given, else found from the kubeconfig as for one cluster).
        Without ``--bundle`` and ``--context``: the kubeconfig's current context, as for one."""
        bundles = list(self.bundles or [])
        contexts = list(self.contexts or [])
        if not self.several:
            return [self.options()]
        azure = _azure_of(self.azure_of, contexts)
        if len(contexts) > 1 and (self.resource_group is not None or self.cluster is not None):
            flag = "-g/--resource-group" if self.resource_group is not None else "--cluster"
            raise UsageError(f"{flag} names one cluster, and {len(contexts)} contexts were given: which one it "
                             "belongs to is not known", input=flag, code=E_AZURE_WHICH,
                             hint="give each context its own: --azure CONTEXT=RG/CLUSTER")
        self._not_mixed()
        nodes = _nodes(self.nodes)
        if nodes.names:
            raise UsageError("node names belong to one cluster; with several clusters, select nodes with a label "
                             "selector or a sample", input=f"--nodes {self.nodes}", code=E_NODES_SEVERAL,
                             hint="--nodes agentpool=system, or --nodes 5")
        out = [self._options(b, None, nodes, None, None, None) for b in bundles]
        for c in contexts:
            sub, rg, cluster = azure.get(c, (self.subscription, self.resource_group, self.cluster))
            out.append(self._options(None, c, nodes, sub, rg, cluster))
        return out

    def _options(self, bundle, context, nodes, subscription, resource_group, cluster) -> GatherOptions:
        from masqctl.cluster.options import GatherOptions   # lean: an offline command never builds one

        return GatherOptions(bundle=bundle, kubeconfig=self.kubeconfig if bundle is None else None,
                             context=context, namespace=self.namespace, nodes=nodes,
                             capture=not self.no_capture, concurrency=self.concurrency,
                             node_timeout=self.node_timeout, debug_pod=self.debug_pod, debug_image=self.debug_image,
                             azure=not self.no_azure, subscription=subscription,
                             resource_group=resource_group, cluster=cluster, azure_auth=self.azure_auth,
                             arm_endpoint=self.arm_endpoint)


def _azure_of(values: list[str] | None, contexts: list[str]) -> dict[str, tuple[str | None, str | None, str]]:
    """``--azure CONTEXT=[SUB/]RG/CLUSTER`` (or ``CONTEXT=RESOURCE_ID``) by context: (subscription,
    resource group, cluster). E264 for a malformed value, E265 for a context not given."""
    out: dict[str, tuple[str | None, str | None, str]] = {}
    for value in values or ():
        context, eq, facts = value.rpartition("=")
        if not eq or not context.strip() or not facts.strip():
            raise UsageError("expected CONTEXT=RG/CLUSTER (or CONTEXT=SUBSCRIPTION/RG/CLUSTER, or CONTEXT=the "
                             "cluster's resource ID)", input=f"--azure {value}", code=E_AZURE_VALUE)
        if facts.startswith("/"):
            entry: tuple[str | None, str | None, str] = (None, None, facts)
        else:
            parts = facts.split("/")
            if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
                raise UsageError(f"{facts!r} is not RG/CLUSTER nor SUBSCRIPTION/RG/CLUSTER",
                                 input=f"--azure {value}", code=E_AZURE_VALUE)
            entry = (parts[0], parts[1], parts[2]) if len(parts) == 3 else (None, parts[0], parts[1])
        if context not in contexts:
            given = ", ".join(contexts) or "none"
            raise UsageError(f"names context {context!r}, which is not one of the --context given ({given})",
                             input=f"--azure {value}", code=E_AZURE_CONTEXT,
                             hint="add --context " + context + ", or correct the name")
        if context in out and out[context] != entry:
            raise UsageError(f"context {context!r} is given two different clusters", input=f"--azure {value}",
                             code=E_AZURE_VALUE)
        out[context] = entry
    return out


def _flag_parameters() -> list[inspect.Parameter]:
    hints = typing.get_type_hints(GatherFlags)
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                              annotation=Annotated[hints[f.name], f.metadata["option"]])
            for f in dataclasses.fields(GatherFlags)]


def takes_gather_flags(command):
    """Give ``command`` the gathering options in place of its parameter ``gathering: GatherFlags``."""
    signature = inspect.signature(command, eval_str=True)
    names = [f.name for f in dataclasses.fields(GatherFlags)]
    params: list[inspect.Parameter] = []
    for p in signature.parameters.values():
        if p.name == "gathering":
            params.extend(_flag_parameters())
        else:
            params.append(p)
    if len(params) == len(signature.parameters):
        raise TypeError(f"{command.__name__} has no parameter 'gathering'")

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        flags = GatherFlags(**{n: kwargs.pop(n) for n in names if n in kwargs})
        return command(*args, gathering=flags, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=_ordered(params))
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def _ordered(params: list[inspect.Parameter]) -> list[inspect.Parameter]:
    """Keep the order; after the first keyword-only parameter, every parameter is keyword-only
    (a signature may not have positional ones after it)."""
    out: list[inspect.Parameter] = []
    keyword_only = False
    for p in params:
        keyword_only = keyword_only or p.kind is inspect.Parameter.KEYWORD_ONLY
        out.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if keyword_only else p)
    return out


def _nodes(text: str | None):
    """``--nodes`` parsed; the selector grammar loads only here (an offline explain never needs it)."""
    from masqctl.cluster.selection import parse_node_selection

    return parse_node_selection(text)
