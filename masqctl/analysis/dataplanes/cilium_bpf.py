"""Cilium's BPF masquerade (AKS Azure CNI powered by Cilium with eBPF host routing): the
``azure-ip-masq-merger`` sidecar merges the same two ConfigMaps for Cilium, whose BPF programs
masquerade; the agent's iptables rules are bypassed. Not modelled yet: a verdict from the node's
iptables is what the merged list says, not proof of what BPF does."""

from __future__ import annotations

from masqctl.analysis.dataplanes.base import Dataplane


class CiliumBpf(Dataplane):
    snat_by = "cilium-bpf"
    note = ("mode {mode}: Cilium's BPF masquerade decides, fed by the same ConfigMaps through azure-ip-masq-merger; "
            "the agent's iptables rules evaluated here are bypassed, so the answer is what the merged "
            "non-masquerade list says, not proof of what BPF does")
    remedy = ("Cilium's BPF masquerade applies the same two ConfigMaps (merged by the azure-ip-masq-merger sidecar), "
              "with BPF semantics; check what it uses with\n"
              "kubectl -n kube-system exec ds/cilium -- cilium bpf ipmasq list")
