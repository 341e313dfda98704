"""Findings about who masquerades at all: MQ015 (the iptables agent does not decide), MQ016 (the
user ConfigMap blocks migration to CNI overlay)."""

from __future__ import annotations

from masqctl.analysis.agentconfig import AKS_AGENT, AKS_USER_CONFIGMAP
from masqctl.analysis.dataplanes import dataplane_of
from masqctl.analysis.findings import INFO, WARNING, Context
from masqctl.cluster.model import MissingKey


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
            fix=dataplane_of(mode).fix(mode) or "See docs/findings.md#mq015.")


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
            fix=f"Before `az aks update --network-plugin-mode overlay`: back it up and delete it "
                f"(`masqctl apply --goal reset` does both), or by hand:\n"
                f"kubectl -n {user.namespace} get configmap {user.name} -o yaml > {user.name}.yaml\n"
                f"kubectl -n {user.namespace} delete configmap {user.name}",
            command="masqctl apply --goal reset")


__all__ = ["check"]
