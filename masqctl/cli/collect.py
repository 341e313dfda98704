"""`masqctl collect`: write a bundle (the native documents of a cluster) for offline analysis."""

from __future__ import annotations

from masqctl.cli import gathering as g
from masqctl.cli.options import Output, OutputOpt, Verbose
from masqctl.cluster.options import DEFAULT_DEBUG_IMAGE
from masqctl.errors import NotImplementedYet


def collect(bundle: g.Bundle = None, kubeconfig: g.Kubeconfig = None, context: g.Context = None,
            namespace: g.Namespace = "kube-system", nodes: g.Nodes = None, concurrency: g.Concurrency = 16,
            node_timeout: g.NodeTimeout = 30.0, debug_pod: g.DebugPod = False,
            debug_image: g.DebugImage = DEFAULT_DEBUG_IMAGE, no_capture: g.NoCapture = False,
            subscription: g.Subscription = None, resource_group: g.ResourceGroup = None,
            cluster: g.Cluster = None, azure_auth: g.AzureAuth = "cli", no_azure: g.NoAzure = False,
            output: OutputOpt = Output.table, verbose: Verbose = 0) -> None:
    """Write a bundle directory for offline analysis (inspect --bundle, explain --bundle)."""
    raise NotImplementedYet("`masqctl collect` is not implemented yet", input="collect")
