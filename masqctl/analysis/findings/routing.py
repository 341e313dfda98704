"""Findings about what the non-masquerade list means on the network: MQ007, MQ008, MQ009."""

from __future__ import annotations

import ipaddress

from masqctl.analysis.cilium import cilium_facts
from masqctl.analysis.findings import ERROR, WARNING, Context
from masqctl.analysis.findings.config import APPLY_FIX, in_editable_file, user_cidrs, user_configmap_yaml

OVERLAY_LIKE = ("kubenet", "azure-cni-overlay", "cilium-overlay", "cilium-ebpf-host-routing")
# never on the internet: private, shared, documentation, link-local, loopback, multicast, reserved
NOT_INTERNET = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32", "64:ff9b:1::/48", "100::/64",
)


def _nets(cidrs):
    return [ipaddress.ip_network(c) for c in cidrs]


def covered_by(cidr: str, nets) -> ipaddress._BaseNetwork | None:
    n = ipaddress.ip_network(cidr, strict=False)
    for m in nets:
        if m.version == n.version and n.subnet_of(m):
            return m
    return None


def internet_part(cidr: str) -> list:
    """The pieces of ``cidr`` that are internet (public) address space."""
    rest = [ipaddress.ip_network(cidr)]
    for text in NOT_INTERNET:
        special = ipaddress.ip_network(text)
        nxt = []
        for piece in rest:
            if piece.version != special.version or not piece.overlaps(special):
                nxt.append(piece)
            elif piece.subnet_of(special):
                continue
            else:
                nxt.extend(piece.address_exclude(special))
        rest = nxt
    return rest


def check(ctx: Context) -> None:
    view = ctx.view
    if view is None or view.config is None:
        reason = (ctx.no_agent() if view is None else
                  "the effective config is not known (" + (view.error.one_line() if view.error else
                                                           "; ".join(view.notes) or "not computed") + ")")
        for code in ("MQ007", "MQ008", "MQ009"):
            ctx.skip(code, reason)
        return
    mq007(ctx)
    mq008(ctx)
    mq009(ctx)


def _azure_reason(ctx: Context) -> str | None:
    net = ctx.net
    missing = [m for m in net.missing if m.startswith(("Azure facts", "the VNets"))]
    return "; ".join(missing) if missing else None


# --------------------------------------------------------------------------- MQ007


def mq007(ctx: Context) -> None:
    mode = ctx.mode
    view = ctx.view
    nets = _nets(view.config.cidrs())
    if mode.snat_by == "cilium-bpf":
        # Cilium exempts its native routing CIDR before the ip-masq-agent map (bpf/lib/nat.h)
        native = cilium_facts(ctx.snapshot).native_routing_cidr
        if native:
            nets = nets + _nets([native])
    if mode.name == "unknown":
        ctx.skip("MQ007", "the network mode is unknown, so the ranges the list must cover are not known: "
                 + "; ".join(mode.missing[:1] or ("no evidence",)))
        return
    if mode.user_config_matters is False:
        return  # MQ015 says the agent does not decide
    places = ctx.net.known()
    wanted = []
    if mode.name in OVERLAY_LIKE:
        pod = [p for p in places if p.kind == "pod-cidr" and p.ref is None]
        if not pod:
            pod = [p for p in ctx.net.all_places() if p.kind == "pod-cidr"]
        if not pod:
            ctx.skip("MQ007", "the pod CIDR is not known (no AKS network profile, no node spec.podCIDR)")
            return
        wanted = pod
    elif mode.name == "azure-cni-node-subnet":
        reason = _azure_reason(ctx)
        if reason:
            ctx.skip("MQ007", f"no Azure facts: {reason}; the node subnet and VNet space are not known")
            return
        wanted = [p for p in places if p.kind == "node-subnet" or (p.kind == "vnet" and p.ref is None)]
        if not wanted:
            ctx.skip("MQ007", "the node subnet and VNet address space are not in the snapshot")
            return
    else:
        return
    gaps = [p for p in wanted if covered_by(p.cidr, nets) is None]
    if not gaps:
        return
    cidrs = list(dict.fromkeys(p.cidr for p in gaps))
    snippet = user_configmap_yaml(list(dict.fromkeys(user_cidrs(view) + cidrs)), view=view)
    # in node-subnet mode --goal fix adds the cluster's own stale ranges (analysis.recommend, step 4)
    command = (APPLY_FIX if mode.name == "azure-cni-node-subnet" else
               "masqctl apply " + " ".join(f"--add {c}" for c in cidrs))
    ctx.add("MQ007", WARNING,
            "The non-masquerade list does not cover " + ", ".join(p.label for p in gaps)
            + f": pod traffic to {'them' if len(gaps) > 1 else 'it'} is masqueraded to the node IP. On AKS the "
            "reconciled ConfigMap should list these; a gap usually means it is stale (the VNet or pod CIDR "
            "changed after it was written).",
            evidence=[p.label for p in gaps] + [f"effective nonMasqueradeCIDRs: {', '.join(view.config.cidrs())}"]
            + list(mode.evidence[:2]),
            fix="Reconcile the cluster so AKS rewrites the reconciled ConfigMap:\n"
                "az aks update -g <resource-group> -n <cluster>\n"
                f"or add the ranges to the user ConfigMap: `{command}` plans it, backs up and writes it (or "
                "kubectl apply -f - this manifest):\n" + snippet,
            command=command, configmap=snippet)


# --------------------------------------------------------------------------- MQ008


def mq008(ctx: Context) -> None:
    mode = ctx.mode
    view = ctx.view
    reason = _azure_reason(ctx)
    if reason:
        ctx.skip("MQ008", f"no Azure facts: {reason}; peered VNets are not known")
        return
    if mode.pod_ips_routable_outside is None or mode.agent_decides is None:
        ctx.skip("MQ008", "cannot tell whether pod IPs are routable from peered VNets: "
                 + "; ".join(mode.missing[:1] or mode.notes[:1] or ("network mode unknown",)))
        return
    if not (mode.pod_ips_routable_outside and mode.agent_decides):
        return   # pod IPs not routable (MQ009 covers adding peered ranges) or the agent does not decide
    nets = _nets(view.config.cidrs())
    peered = [p for p in ctx.net.known() if p.kind == "peered-vnet"]
    connected = [p for p in peered if (p.peering.state or "").lower() == "connected"]
    other = [p for p in peered if p not in connected]
    gaps = [p for p in connected if covered_by(p.cidr, nets) is None]
    for p in peered:
        if p.peering.use_remote_gateways:
            ctx.skip("MQ008", f"on-premises prefixes behind the gateway of {p.peering.remote_vnet_name or p.peering.name} "
                     "(gateway transit) are not known")
            break
    if not gaps:
        return
    evidence = [f"{p.label}" + (f" — {'; '.join(p.notes)}" if p.notes else "") for p in gaps]
    evidence += [f"{p.label}: not counted, only a Connected peering carries traffic" for p in other]
    evidence += [f"effective nonMasqueradeCIDRs: {', '.join(view.config.cidrs())}"] + list(mode.evidence[:2])
    sync = [p for p in gaps if p.peering.sync_level and p.peering.sync_level.lower() != "fullyinsync"]
    cidrs = list(dict.fromkeys(p.cidr for p in gaps))
    snippet = user_configmap_yaml(list(dict.fromkeys(user_cidrs(view) + cidrs)), view=view)
    ctx.add("MQ008", WARNING,
            f"Pod traffic to peered VNet range(s) {', '.join(cidrs)} is masqueraded to the node IP, although in "
            f"{mode.name} mode pod IPs are VNet addresses the peered VNets can route back to: the destination sees "
            "the node, not the pod, which hides which pod made a request."
            + (f" Peering(s) {', '.join(p.peering.name for p in sync)} are not fully in sync." if sync else ""),
            evidence=evidence,
            fix="Add the peered ranges to the user ConfigMap: `masqctl apply --goal preserve-source-ip` plans it, "
                "backs up and writes it (or kubectl apply -f - this manifest); NSGs, UDRs and firewalls on the way "
                "must then allow the pod IPs:\n" + snippet
                + "Note: a user ConfigMap blocks a later migration to CNI overlay (MQ016).\n"
                + "Meanwhile, to name the pod behind a node address the destination logged: masqctl who "
                  "NODE_IP:PORT --to DST:PORT (reads the node's connection-tracking table; collect --conntrack).",
            command="masqctl apply --goal preserve-source-ip", configmap=snippet)


# --------------------------------------------------------------------------- MQ009


def _remove(view, entry) -> str:
    """``masqctl apply --remove CIDR`` when the CIDR comes from the file apply edits (a CIDR of
    AKS's reconciled ConfigMap cannot be removed by any user ConfigMap: E708)."""
    if any(o.kind == "file" and in_editable_file(view, o.file) for o in entry.origins):
        return f"masqctl apply --remove {entry.cidr}"
    return ""


def _remove_hint(view, entry) -> str:
    command = _remove(view, entry)
    return f" `{command}` does it." if command else ""


def mq009(ctx: Context) -> None:
    mode = ctx.mode
    view = ctx.view
    overlay = mode.pod_ips_routable_outside is False and mode.user_config_matters is not False
    azure_reason = _azure_reason(ctx)
    if mode.pod_ips_routable_outside is None:
        ctx.skip("MQ009", "only internet ranges were checked: whether pod IPs are routable outside the cluster "
                 "is unknown (" + "; ".join(mode.missing[:1] or ("network mode unknown",)) + ")")
    elif overlay and azure_reason:
        ctx.skip("MQ009", f"only internet ranges were checked: no Azure facts ({azure_reason}), so peered VNets "
                 "and the VNet space are not known")
    for entry in view.config.non_masquerade_cidrs:
        where = view.source_of(entry.origins[0])
        public = internet_part(entry.cidr)
        if public:
            shown = ", ".join(str(p) for p in public[:3]) + (" …" if len(public) > 3 else "")
            ctx.add("MQ009", ERROR,
                    f"{entry.cidr} ({where}) covers internet addresses ({shown}): pod traffic to them leaves with "
                    "the pod IP, which the internet cannot route back to, so replies are dropped (unless a "
                    "firewall on the way SNATs it).",
                    evidence=[f"{entry.cidr} from {where}", f"{shown} is public address space"],
                    fix=f"Remove {entry.cidr} from {where.split(' line ')[0]}; list only the private ranges whose "
                        "hosts route back to pod IPs." + _remove_hint(view, entry), command=_remove(view, entry))
            continue
        if not overlay or azure_reason:
            continue
        rels = ctx.net.relations_of_cidr(entry.cidr)
        inside_cluster = any(r.relation in ("=", "⊂") and r.place.kind in ("pod-cidr", "service-cidr", "node-subnet",
                                                                            "node")
                             for r in rels)
        if inside_cluster:
            continue
        peered = [r for r in rels if r.place.kind == "peered-vnet"]
        vnet = [r for r in rels if r.place.kind in ("vnet", "pod-subnet")]
        if peered:
            ctx.add("MQ009", ERROR,
                    f"{entry.cidr} ({where}) reaches {', '.join(r.describe() for r in peered)}: in {mode.name} mode "
                    "pod IPs are not routable outside the cluster, so those hosts cannot reply to the pod IP and "
                    "connections fail.",
                    evidence=[f"{entry.cidr} from {where}"] + [r.place.label for r in peered] + list(mode.evidence[:2]),
                    fix=f"Remove {entry.cidr} from {where.split(' line ')[0]} (traffic to peered VNets must be "
                        "masqueraded in this mode)." + _remove_hint(view, entry), command=_remove(view, entry))
        elif vnet:
            ctx.add("MQ009", WARNING,
                    f"{entry.cidr} ({where}) reaches {', '.join(r.describe() for r in vnet)}: in {mode.name} mode only "
                    "the cluster's nodes route pod IPs, so other hosts there cannot reply to the pod IP.",
                    evidence=[f"{entry.cidr} from {where}"] + [r.place.label for r in vnet] + list(mode.evidence[:2]),
                    fix=f"Keep only the pod CIDR (and cluster ranges) unmasqueraded; remove {entry.cidr} from "
                        f"{where.split(' line ')[0]}." + _remove_hint(view, entry), command=_remove(view, entry))
        elif not rels:
            ctx.add("MQ009", WARNING,
                    f"{entry.cidr} ({where}) is no network this cluster knows: if it is on-premises or another VNet, "
                    f"its hosts cannot reply to pod IPs in {mode.name} mode and connections fail.",
                    evidence=[f"{entry.cidr} from {where}", "not in the VNets, peerings, pod or service CIDRs"]
                    + list(mode.evidence[:2]),
                    fix=f"Remove {entry.cidr} from {where.split(' line ')[0]} unless its hosts route the pod CIDR "
                        "back to the cluster (UDRs)." + _remove_hint(view, entry), command=_remove(view, entry))


__all__ = ["check", "covered_by", "internet_part"]
