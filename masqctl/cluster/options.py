"""How to gather a snapshot, as plain values (the CLI fills these from its shared options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from masqctl.cluster.defaults import (AZURE_AUTH_MODES, DEFAULT_AZURE_AUTH, DEFAULT_CONCURRENCY, DEFAULT_DEBUG_IMAGE,
                                      DEFAULT_NAMESPACE, DEFAULT_NODE_TIMEOUT)
from masqctl.errors import UsageError

if TYPE_CHECKING:
    from masqctl.cluster.selection import NodeSelection


@dataclass(frozen=True)
class GatherOptions:
    """Everything gathering depends on. ``bundle`` set: offline; otherwise live."""

    bundle: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    nodes: NodeSelection = field(default_factory=lambda: _selection().NodeSelection())
    capture: bool = True                 # exec into nodes for iptables-save
    conntrack: bool = False              # also read each captured node's connection-tracking table
    concurrency: int = DEFAULT_CONCURRENCY
    node_timeout: float = DEFAULT_NODE_TIMEOUT
    debug_pod: bool = False
    debug_image: str = DEFAULT_DEBUG_IMAGE
    azure: bool = True                   # False: --no-azure
    subscription: str | None = None
    resource_group: str | None = None
    cluster: str | None = None
    azure_auth: str = DEFAULT_AZURE_AUTH
    arm_endpoint: str | None = None      # ARM base URL (sovereign clouds, tests); None: public cloud

    def __post_init__(self) -> None:
        if self.bundle is not None and (self.kubeconfig is not None or self.context is not None):
            flag = "--kubeconfig" if self.kubeconfig is not None else "--context"
            raise UsageError(f"{flag} reads a live cluster, and --bundle {self.bundle} is read instead: give one of "
                             "the two", input=flag, code="E228",
                             hint="a bundle already holds what was gathered; drop --kubeconfig/--context")
        if self.concurrency < 1:
            raise UsageError("must be at least 1", input=f"--concurrency {self.concurrency}", code="E208")
        if self.node_timeout <= 0:
            raise UsageError("must be positive", input=f"--node-timeout {self.node_timeout}", code="E208")
        if self.azure_auth not in AZURE_AUTH_MODES:
            raise UsageError(f"use one of {', '.join(AZURE_AUTH_MODES)}", input=f"--azure-auth {self.azure_auth}",
                             code="E208")


def _selection():
    """The selector grammar, loaded when a selection is made: an offline ``explain`` takes the
    gathering options but selects no nodes, and does not pay for the grammar at start-up."""
    from masqctl.cluster import selection

    return selection


def __getattr__(name: str):
    # NodeSelection and --nodes parsing live with the selector grammar (which imports nothing of this
    # module); they are re-exported here, without loading the grammar, because GatherOptions carries one.
    if name in ("NodeSelection", "parse_node_selection"):
        return getattr(_selection(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A progress callback: (what, done, total). Domain code calls it; the CLI draws the bar.
Progress = Callable[[str, int, int], None]

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_NODE_TIMEOUT", "DEFAULT_DEBUG_IMAGE", "DEFAULT_NAMESPACE",
           "AZURE_AUTH_MODES", "DEFAULT_AZURE_AUTH",
           "GatherOptions", "NodeSelection", "parse_node_selection", "Progress"]
