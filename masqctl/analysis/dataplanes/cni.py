"""A CNI plugin that masquerades by itself (Calico's ``natOutgoing``, a bring-your-own CNI):
its iptables rules (e.g. ``cali-nat-outgoing``) are in the walk; its eBPF programs are not."""

from __future__ import annotations

from masqctl.analysis.dataplanes.base import Dataplane

_FIX = {
    "calico": "Calico's IPPool decides: kubectl get ippools.crd.projectcalico.org -o yaml   # natOutgoing",
    "byo-cni": "Your CNI decides: check its masquerade settings (e.g. Cilium enable-ipv4-masquerade, Calico "
               "natOutgoing).",
}


class Cni(Dataplane):
    snat_by = "cni"
    note = ("mode {mode}: the CNI decides masquerading; its rules are evaluated when they are in iptables "
            "(e.g. cali-nat-outgoing), not when it uses eBPF")

    def fix(self, mode) -> str | None:
        return _FIX.get(mode.name)
