"""What decides masquerading on a node, and its verdict for one packet: one module per dataplane.

The analysis asks a dataplane, never ``if iptables … else …``:

* ``dataplane_of(mode)`` → the ``Dataplane`` that masquerades pod traffic in that network mode
  (``mode.snat_by``: the iptables agent, Cilium's BPF masquerade, SWIFT-POSTROUTING, the CNI, or
  unknown);
* ``dp.verdict(request)`` → its ``Explanation`` of one packet on one node (masqueraded or not,
  by which rule, the source the destination sees; ``None`` with the reason when it cannot tell);
* ``dp.exact`` — whether that verdict is the dataplane's own decision (True only where masqctl
  models the engine that decides), ``dp.caveat(mode)`` — what an answer in this mode must say,
  ``dp.fix(mode)`` — where to look or what to change when the iptables agent is not the one.

Adding a dataplane is adding a module here that defines one ``Dataplane`` subclass and listing it
in ``_MODULES``; the findings and explain pick it up through ``dataplane_of``. A dataplane with
evidence of its own (Cilium's ``bpf ipmasq list``, nftables tables, conntrack entries) reads it
from the snapshot in its ``verdict``. See docs/architecture.md ("Dataplanes").
"""

from __future__ import annotations

from masqctl.analysis.dataplanes.base import Dataplane
from masqctl.analysis.dataplanes.cilium_bpf import CiliumBpf
from masqctl.analysis.dataplanes.cni import Cni
from masqctl.analysis.dataplanes.iptables_agent import IptablesAgent
from masqctl.analysis.dataplanes.swift import SwiftPostrouting
from masqctl.analysis.dataplanes.unknown import Unknown

_MODULES: tuple[type[Dataplane], ...] = (IptablesAgent, CiliumBpf, SwiftPostrouting, Cni, Unknown)
DATAPLANES: dict[str, Dataplane] = {cls.snat_by: cls() for cls in _MODULES}


def dataplane_of(mode) -> Dataplane:
    """The dataplane that masquerades in ``mode`` (a ``mode.MasqMode``); unknown when nothing says."""
    return DATAPLANES.get(getattr(mode, "snat_by", None), DATAPLANES[Unknown.snat_by])


__all__ = ["DATAPLANES", "Dataplane", "dataplane_of"]
