"""How to gather a snapshot, as plain values (the CLI fills these from its shared options)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from masqctl.cluster.selection import check_selector, looks_like_selector
from masqctl.errors import UsageError

DEFAULT_CONCURRENCY = 16
DEFAULT_NODE_TIMEOUT = 30.0
DEFAULT_DEBUG_IMAGE = "mcr.microsoft.com/cbl-mariner/busybox:2.0"
AZURE_AUTH_MODES = ("cli", "default")


@dataclass(frozen=True)
class NodeSelection:
    """Which nodes to capture: names, a label selector, or a sample of N. Empty: all Linux nodes.

    ``masqctl.cluster.selection.choose`` applies it, the same way live and on a snapshot. A
    selector the API server would refuse, or a sample under 1, is refused here (E208)."""

    names: tuple[str, ...] = ()
    selector: str | None = None
    sample: int | None = None

    def __post_init__(self) -> None:
        if self.sample is not None and self.sample < 1:
            raise UsageError("a sample must be at least 1 node", input=f"--nodes {self.sample}", code="E208")
        if self.selector is not None:
            if not self.selector.strip():
                raise UsageError("an empty label selector selects nothing in particular; give names, a selector "
                                 "or a number", input=f"--nodes {self.selector!r}", code="E208")
            check_selector(self.selector)

    @property
    def all(self) -> bool:
        return not self.names and self.selector is None and self.sample is None


_SAMPLE = re.compile(r"[+-]?[0-9]+")


def parse_node_selection(text: str | None) -> NodeSelection:
    """``--nodes``: ``a,b`` (names), a Kubernetes label selector (``agentpool=sys``,
    ``agentpool in (a,b)``: text with one of ``= ! ( ) < >``, or the word ``in``/``notin``), or
    ``5`` (a sample of 5 nodes). ``None`` (no ``--nodes``): every Linux node. Empty or blank
    text, a sample under 1 and a malformed selector are E208."""
    if text is None:
        return NodeSelection()
    shown = text.strip()
    if not shown:
        raise UsageError("is empty; give node names (a,b), a label selector (agentpool=system) or a number, "
                         "or leave --nodes out for every Linux node", input=f"--nodes {text!r}", code="E208")
    if _SAMPLE.fullmatch(shown):
        n = int(shown)
        if n < 1:
            raise UsageError("a sample must be at least 1 node", input=f"--nodes {shown}", code="E208")
        return NodeSelection(sample=n)
    if looks_like_selector(shown):
        return NodeSelection(selector=shown)
    names = tuple(n.strip() for n in shown.split(",") if n.strip())
    if not names:
        raise UsageError("no node names given", input=f"--nodes {shown}", code="E208")
    return NodeSelection(names=names)


@dataclass(frozen=True)
class GatherOptions:
    """Everything gathering depends on. ``bundle`` set: offline; otherwise live."""

    bundle: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = "kube-system"
    nodes: NodeSelection = field(default_factory=NodeSelection)
    capture: bool = True                 # exec into nodes for iptables-save
    concurrency: int = DEFAULT_CONCURRENCY
    node_timeout: float = DEFAULT_NODE_TIMEOUT
    debug_pod: bool = False
    debug_image: str = DEFAULT_DEBUG_IMAGE
    azure: bool = True                   # False: --no-azure
    subscription: str | None = None
    resource_group: str | None = None
    cluster: str | None = None
    azure_auth: str = "cli"
    arm_endpoint: str | None = None      # ARM base URL (sovereign clouds, tests); None: public cloud

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise UsageError("must be at least 1", input=f"--concurrency {self.concurrency}", code="E208")
        if self.node_timeout <= 0:
            raise UsageError("must be positive", input=f"--node-timeout {self.node_timeout}", code="E208")
        if self.azure_auth not in AZURE_AUTH_MODES:
            raise UsageError(f"use one of {', '.join(AZURE_AUTH_MODES)}", input=f"--azure-auth {self.azure_auth}",
                             code="E208")


# A progress callback: (what, done, total). Domain code calls it; the CLI draws the bar.
Progress = Callable[[str, int, int], None]
