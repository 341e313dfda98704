"""The gathering options every cluster-reading command shares (inspect, explain, apply, collect).

Each option is written once, as a field of ``GatherFlags`` (its type, its default and its
``typer.Option``). A command takes them all with one parameter, ``gathering: GatherFlags``, and the
``takes_gather_flags`` decorator: the decorator puts the options in that parameter's place in the
command's signature (so they show in ``--help`` where the parameter stands) and hands the command
one ``GatherFlags`` value; ``GatherFlags.options()`` is the ``GatherOptions`` gathering uses.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass, field
from typing import Annotated, Optional

import typer

from masqctl.cluster.options import (DEFAULT_AZURE_AUTH, DEFAULT_CONCURRENCY, DEFAULT_DEBUG_IMAGE,
                                     DEFAULT_NAMESPACE, DEFAULT_NODE_TIMEOUT, GatherOptions)

PANEL_K8S = "Cluster"
PANEL_AZ = "Azure"


def _option(default, *decls: str, panel: str = PANEL_K8S, **kwargs):
    return field(default=default, metadata={"option": typer.Option(*decls, rich_help_panel=panel, **kwargs)})


@dataclass(frozen=True)
class GatherFlags:
    """The gathering options as given on the command line (``--nodes`` still text)."""

    bundle: Optional[str] = _option(
        None, "--bundle", metavar="DIR", help="Read a bundle (directory or .tar.gz) instead of a live cluster.")
    kubeconfig: Optional[str] = _option(None, "--kubeconfig", help="Path to the kubeconfig file.")
    context: Optional[str] = _option(None, "--context", help="kubeconfig context to use.")
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
    no_azure: bool = _option(False, "--no-azure", help="Skip Azure entirely.", panel=PANEL_AZ)
    arm_endpoint: Optional[str] = _option(
        None, "--arm-endpoint", metavar="URL", envvar="MASQCTL_ARM_ENDPOINT",
        help="Azure Resource Manager URL for sovereign clouds (e.g. https://management.chinacloudapi.cn).",
        panel=PANEL_AZ)

    @property
    def on_cluster(self) -> bool:
        """A bundle or a kubeconfig/context was named (rather than only files of one node)."""
        return self.bundle is not None or self.context is not None or self.kubeconfig is not None

    def options(self) -> GatherOptions:
        """The values gathering depends on (``--nodes`` parsed; E208 for a bad one)."""
        return GatherOptions(bundle=self.bundle, kubeconfig=self.kubeconfig, context=self.context,
                             namespace=self.namespace, nodes=_nodes(self.nodes),
                             capture=not self.no_capture, concurrency=self.concurrency,
                             node_timeout=self.node_timeout, debug_pod=self.debug_pod, debug_image=self.debug_image,
                             azure=not self.no_azure, subscription=self.subscription,
                             resource_group=self.resource_group, cluster=self.cluster, azure_auth=self.azure_auth,
                             arm_endpoint=self.arm_endpoint)


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
