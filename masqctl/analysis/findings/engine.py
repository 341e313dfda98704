"""Findings about who masquerades at all: MQ015 (the iptables agent does not decide), MQ016 (the
user ConfigMap blocks migration to CNI overlay)."""

from __future__ import annotations

from masqctl.analysis.agentconfig import AKS_AGENT, AKS_USER_CONFIGMAP
from masqctl.analysis.findings import INFO, WARNING, Context
from masqctl.cluster.model import MissingKey

_FIX = {
    "cilium-ebpf-host-routing": "Cilium's BPF masquerade applies the same two ConfigMaps (merged by the "
                                "azure-ip-masq-merger sidecar), with BPF semantics; check what it uses with\n"
                                "kubectl -n kube-system exec ds/cilium -- cilium bpf ipmasq list",
    "azure-cni-pod-subnet": "Nothing to configure for source IPs: pod IPs leave unmasqueraded (only Azure DNS "
                            "168.63.129.16:53 and IMDS 169.254.169.254:80 are SNATed by SWIFT-POSTROUTING). A user "
                            "ConfigMap has no effect; delete it if it only causes confusion.",
    "calico": "Calico's IPPool decides: kubectl get ippools.crd.projectcalico.org -o yaml   # natOutgoing",
    "byo-cni": "Your CNI decides: check its masquerade settings (e.g. Cilium enable-ipv4-masquerade, Calico "
               "natOutgoing).",
}


def _user_configmap(ctx: Context):
    return ctx.snapshot.configmap(AKS_USER_CONFIGMAP)


def check(ctx: Context) -> None:
    mq015(ctx)
    mq016(ctx)


def mq015(ctx: Context) -> None:
    mode = ctx.mode
    if mode.agent_decides is None:
        ctx.skip("MQ015", "who masquerades cannot be told: " + "; ".join(
            list(mode.missing) + list(mode.notes) or ["no evidence"]))
        return
    if mode.agent_decides:
        return
    user = _user_configmap(ctx)
    has_config = user is not None or any(v.files and any(f.present for f in v.files) for v in ctx.views)
    different = mode.user_config_matters
    detail = (f"{mode.describe()}. " + ("The agent's iptables rules are bypassed; the ConfigMaps still matter "
                                        "but with Cilium's BPF semantics." if different else
                                        "The agent's config has no effect on pod traffic here."))
    ctx.add("MQ015", WARNING if (has_config and ctx.views) else INFO, detail,
            evidence=list(mode.evidence) + list(mode.notes[:2]),
            fix=_FIX.get(mode.name, "See docs/findings.md#mq015."))


def mq016(ctx: Context) -> None:
    snap = ctx.snapshot
    if MissingKey.CONFIGMAPS in snap.missing:
        return  # reported by the config checks
    user = _user_configmap(ctx)
    # AKS checks the ConfigMap's existence, whichever agent reads it: the AKS agent, an agent reading
    # it (masqctl's node-agent as a drop-in), or Azure facts saying this is an AKS cluster
    aks = (any(v.daemonset.kind == AKS_AGENT for v in ctx.views)
           or (user is not None and any(f.configmap == user.ref and f.read for v in ctx.views for f in v.files))
           or (snap.azure is not None and snap.azure.cluster is not None))
    if user is None or not aks:
        return
    if ctx.mode.name in ("azure-cni-overlay", "cilium-overlay", "cilium-ebpf-host-routing"):
        return  # already overlay
    ctx.add("MQ016", INFO,
            f"ConfigMap {user.ref} (the user's masquerade config) exists. AKS refuses to migrate a cluster to Azure "
            "CNI overlay while a custom azure-ip-masq-agent-config exists in kube-system; after such a migration "
            "peered or on-premises ranges in it would break replies (pod IPs are not routable in overlay).",
            evidence=[f"ConfigMap {user.ref} keys {', '.join(sorted(user.data)) or '(none)'}",
                      f"network mode {ctx.mode.name}"],
            fix=f"Before `az aks update --network-plugin-mode overlay`: back it up and delete it\n"
                f"kubectl -n {user.namespace} get configmap {user.name} -o yaml > {user.name}.yaml\n"
                f"kubectl -n {user.namespace} delete configmap {user.name}")


__all__ = ["check"]
