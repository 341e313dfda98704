"""`masqctl apply`: recommend and write the user ConfigMap safely, and verify it on the nodes."""

from __future__ import annotations

from masqctl.cli import gathering as g
from masqctl.cli.options import Output, OutputOpt, Verbose
from masqctl.cluster.options import DEFAULT_DEBUG_IMAGE
from masqctl.errors import NotImplementedYet


def apply(bundle: g.Bundle = None, kubeconfig: g.Kubeconfig = None, context: g.Context = None,
            namespace: g.Namespace = "kube-system", nodes: g.Nodes = None, concurrency: g.Concurrency = 16,
            node_timeout: g.NodeTimeout = 30.0, debug_pod: g.DebugPod = False,
            debug_image: g.DebugImage = DEFAULT_DEBUG_IMAGE, no_capture: g.NoCapture = False,
            subscription: g.Subscription = None, resource_group: g.ResourceGroup = None,
            cluster: g.Cluster = None, azure_auth: g.AzureAuth = "cli", no_azure: g.NoAzure = False,
            output: OutputOpt = Output.table, verbose: Verbose = 0) -> None:
    """Recommend or write the user ConfigMap azure-ip-masq-agent-config, safely."""
    raise NotImplementedYet("`masqctl apply` is not implemented yet", input="apply")
