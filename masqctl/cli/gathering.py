"""The gathering options every cluster-reading command shares (inspect, explain, apply, collect)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from masqctl.cluster.options import (DEFAULT_CONCURRENCY, DEFAULT_DEBUG_IMAGE, DEFAULT_NODE_TIMEOUT,
                                     GatherOptions, parse_node_selection)

PANEL_K8S = "Cluster"
PANEL_AZ = "Azure"

Bundle = Annotated[Optional[str], typer.Option(
    "--bundle", metavar="DIR", help="Read a bundle (directory or .tar.gz) instead of a live cluster.",
    rich_help_panel=PANEL_K8S)]
Kubeconfig = Annotated[Optional[str], typer.Option("--kubeconfig", help="Path to the kubeconfig file.",
                                                   rich_help_panel=PANEL_K8S)]
Context = Annotated[Optional[str], typer.Option("--context", help="kubeconfig context to use.",
                                                rich_help_panel=PANEL_K8S)]
Namespace = Annotated[str, typer.Option("-n", "--namespace", help="Namespace of the agent and its ConfigMaps.",
                                        rich_help_panel=PANEL_K8S)]
Nodes = Annotated[Optional[str], typer.Option(
    "--nodes", metavar="NAMES|SELECTOR|N", help="Nodes to capture: names (a,b), a label selector "
    "(agentpool=sys), or a sample of N. Default: all Linux nodes.", rich_help_panel=PANEL_K8S)]
Concurrency = Annotated[int, typer.Option("--concurrency", help="Nodes captured at once.",
                                          rich_help_panel=PANEL_K8S)]
NodeTimeout = Annotated[float, typer.Option("--node-timeout", metavar="SECONDS",
                                            help="Give up on one node's capture after this long.",
                                            rich_help_panel=PANEL_K8S)]
DebugPod = Annotated[bool, typer.Option(
    "--debug-pod", help="For nodes without a usable agent pod, capture with a short-lived host-network "
    "pod (always deleted).", rich_help_panel=PANEL_K8S)]
DebugImage = Annotated[str, typer.Option("--debug-image", help="Image for --debug-pod (needs chroot; the node's own iptables-save runs).",
                                         rich_help_panel=PANEL_K8S)]
NoCapture = Annotated[bool, typer.Option("--no-capture", help="Do not exec into nodes (no live iptables).",
                                         rich_help_panel=PANEL_K8S)]
Subscription = Annotated[Optional[str], typer.Option("--subscription", envvar="AZURE_SUBSCRIPTION_ID",
                                                     help="Azure subscription ID or name.",
                                                     rich_help_panel=PANEL_AZ)]
ResourceGroup = Annotated[Optional[str], typer.Option("-g", "--resource-group", help="The cluster's resource group.",
                                                      rich_help_panel=PANEL_AZ)]
Cluster = Annotated[Optional[str], typer.Option("--cluster", help="AKS cluster name (default: from the "
                                                "kubeconfig context when it matches).", rich_help_panel=PANEL_AZ)]
AzureAuth = Annotated[str, typer.Option("--azure-auth", metavar="cli|default",
                                        help="Credential: Azure CLI login, or DefaultAzureCredential.",
                                        rich_help_panel=PANEL_AZ)]
NoAzure = Annotated[bool, typer.Option("--no-azure", help="Skip Azure entirely.", rich_help_panel=PANEL_AZ)]
ArmEndpoint = Annotated[Optional[str], typer.Option(
    "--arm-endpoint", metavar="URL", envvar="MASQCTL_ARM_ENDPOINT",
    help="Azure Resource Manager URL for sovereign clouds (e.g. https://management.chinacloudapi.cn).",
    rich_help_panel=PANEL_AZ)]


def gather_options(*, bundle: str | None, kubeconfig: str | None, context: str | None, namespace: str,
                   nodes: str | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                   node_timeout: float = DEFAULT_NODE_TIMEOUT, debug_pod: bool = False,
                   debug_image: str = DEFAULT_DEBUG_IMAGE, no_capture: bool = False,
                   subscription: str | None = None, resource_group: str | None = None,
                   cluster: str | None = None, azure_auth: str = "cli", no_azure: bool = False,
                   arm_endpoint: str | None = None) -> GatherOptions:
    return GatherOptions(bundle=bundle, kubeconfig=kubeconfig, context=context, namespace=namespace,
                         nodes=parse_node_selection(nodes), capture=not no_capture, concurrency=concurrency,
                         node_timeout=node_timeout, debug_pod=debug_pod, debug_image=debug_image,
                         azure=not no_azure, subscription=subscription, resource_group=resource_group,
                         cluster=cluster, azure_auth=azure_auth, arm_endpoint=arm_endpoint)
