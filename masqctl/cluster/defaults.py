"""The defaults of gathering, as plain values: ``GatherOptions`` takes them, and the CLI shows them
in its options without loading ``GatherOptions`` (an offline command never builds one)."""

from __future__ import annotations

DEFAULT_CONCURRENCY = 16
DEFAULT_NODE_TIMEOUT = 30.0
DEFAULT_DEBUG_IMAGE = "mcr.microsoft.com/cbl-mariner/busybox:2.0"
DEFAULT_NAMESPACE = "kube-system"
AZURE_AUTH_MODES = ("cli", "default")
DEFAULT_AZURE_AUTH = AZURE_AUTH_MODES[0]
