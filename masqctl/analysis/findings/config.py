"""Findings about what the agent's config files say: MQ001, MQ002, MQ010–MQ014."""

from __future__ import annotations

import ipaddress
import re

from masqctl.analysis.agentconfig import (AKS_RECONCILED_CONFIGMAP, AKS_USER_CONFIGMAP, AKS_USER_KEY,
                                          AgentConfigView, reads)
from masqctl.analysis.findings import ERROR, INFO, WARNING, Context
from masqctl.cluster.model import MissingKey
from masqctl.engine import AZURE_V2, ConfigSource, effective_config
from masqctl.engine.model import CILIUM_FLAVORS
from masqctl.errors import ConfigError

V2_LIMIT = 64
NEAR = 0.9          # a file holding 90 % of its limit or more is "near" it
_MASQ_KEYS = re.compile(r"(?i)\b(nonmasqueradecidrs|masqlinklocal|masqlinklocalipv6|nonmasqueradesrccidrs)\s*[\":]")


def check(ctx: Context) -> None:
    snap = ctx.snapshot
    if MissingKey.CONFIGMAPS in snap.missing:
        reason = f"ConfigMaps were not gathered: {snap.missing[MissingKey.CONFIGMAPS]}"
        for code in ("MQ001", "MQ002", "MQ010", "MQ011", "MQ012", "MQ013", "MQ014"):
            ctx.skip(code, reason)
        return
    mq001(ctx)
    if not ctx.views:
        reason = ctx.no_agent()
        for code in ("MQ002", "MQ010", "MQ011", "MQ012", "MQ013", "MQ014"):
            ctx.skip(code, reason)
        return
    for view in ctx.views:
        if view.options is None:
            ctx.skip("MQ002", f"DaemonSet {view.daemonset.ref} ({view.daemonset.image}) runs an agent masqctl "
                     "cannot model; its config is not checked")
            continue
        if not view.decidable:
            ctx.skip("MQ002", f"DaemonSet {view.daemonset.ref}: " + "; ".join(view.notes))
            continue
        mq002(ctx, view)
        mq010(ctx, view)
        mq011(ctx, view)
        mq012(ctx, view)
        mq013(ctx, view)
        mq014(ctx, view)


# --------------------------------------------------------------------------- helpers


def agent_nodes(ctx: Context) -> tuple[str, ...]:
    return tuple(ctx.nodes)


def user_configmap_yaml(cidrs: list[str], *, name: str = AKS_USER_CONFIGMAP, key: str = AKS_USER_KEY,
                        namespace: str = "kube-system", view: AgentConfigView | None = None) -> str:
    """A complete user ConfigMap with these CIDRs (what ``kubectl apply -f`` takes), written as
    ``masqctl apply`` writes it: the conventional labels, and the user file's other keys kept
    when ``view`` shows one (``analysis.userconfig``, the same editor and YAML)."""
    from masqctl.analysis.userconfig import CONVENTIONAL_LABELS, configmap_object, edit_user_file, to_yaml

    current = user_file(view) if view is not None else None
    flavor = view.options.flavor if view is not None and view.options is not None else AZURE_V2
    try:
        text = edit_user_file(key, current.text if current else None, flavor, list(cidrs)).text
    except ConfigError:     # a user file the agent cannot read: the list alone (MQ002 says why)
        text = edit_user_file(key, None, flavor, list(cidrs)).text
    return to_yaml(configmap_object(namespace, name, data={key: text}, labels=CONVENTIONAL_LABELS, annotations={}))


def user_file(view: AgentConfigView):
    """The user's file (the AKS user ConfigMap's key) the agent sees, when it is there."""
    for f in view.files:
        if f.configmap.endswith("/" + AKS_USER_CONFIGMAP) and f.key == AKS_USER_KEY and f.present:
            return f
    return None


def user_cidrs(view: AgentConfigView) -> list[str]:
    """The CIDRs the user's file sets (the AKS user ConfigMap key), in file order."""
    if view.config is None:
        return []
    out = []
    for entry in view.config.non_masquerade_cidrs:
        for o in entry.origins:
            f = view.file(o.file) if o.kind == "file" else None
            if f is not None and f.configmap.endswith("/" + AKS_USER_CONFIGMAP):
                out.append(entry.cidr)
                break
    return out


# the commands a fix names (``Finding.command``): what `masqctl apply` changes, in its own words
APPLY_FIX = "masqctl apply --goal fix"


def editable_file(view: AgentConfigView) -> str | None:
    """The path of the file ``masqctl apply`` edits (the user ConfigMap's, as
    ``analysis.plan.user_file`` chooses it), or None when the agent reads no such file."""
    files = [f for f in view.files if f.read and f.configmap.split("/", 1)[-1] != AKS_RECONCILED_CONFIGMAP]
    if not files:
        return None
    return next((f for f in files if f.path == "ip-masq-agent"), files[0]).path


def in_editable_file(view: AgentConfigView, path: str | None) -> bool:
    return path is not None and path == editable_file(view)


def _looks_like_masq_config(text: str) -> bool:
    return bool(_MASQ_KEYS.search(text or ""))


# --------------------------------------------------------------------------- MQ001


def mq001(ctx: Context) -> None:
    read = {(f.configmap, f.key) for v in ctx.views for f in v.files if f.read}
    projected = {(f.configmap, f.key): (v, f) for v in ctx.views for f in v.files}
    primary = ctx.view
    for cm in ctx.snapshot.configmaps:
        for key, text in sorted(cm.data.items()):
            if (cm.ref, key) in read or not _looks_like_masq_config(text):
                continue
            if not ctx.views:
                ctx.skip("MQ001", f"ConfigMap {cm.ref} key {key} looks like masquerade config, but whether an "
                         f"agent reads it cannot be told: {ctx.no_agent()}")
                continue
            why = []
            if (cm.ref, key) in projected:
                v, f = projected[(cm.ref, key)]
                why.append(f"DaemonSet {v.daemonset.ref} projects it as file {f.path}, which the "
                           f"{v.daemonset.flavor} agent does not read")
            else:
                mounts = sorted({f"{f.configmap} key {f.key}" for v in ctx.views for f in v.files})
                why.append("no agent DaemonSet mounts it; the agents read " + (", ".join(mounts) or "no ConfigMap"))
            fix = ""
            if primary is not None and primary.options is not None and primary.daemonset.flavor == AZURE_V2:
                target = _user_target(primary)
                fix = ("Move the content to the ConfigMap and key the agent reads (the agent reads every "
                       "ip-masq* file), then delete the ignored one:\n"
                       f"kubectl -n {cm.namespace} get configmap {cm.name} -o jsonpath='{{.data.{_jp(key)}}}' "
                       f"> ip-masq-agent.yaml\n"
                       f"kubectl -n {target[0]} create configmap {target[1]} --from-file={target[2]}=ip-masq-agent.yaml\n"
                       f"kubectl -n {cm.namespace} delete configmap {cm.name}")
            elif primary is not None and primary.files:
                f = next((f for f in primary.files if f.read), primary.files[0])
                fix = (f"Put the content under ConfigMap {f.configmap} key {f.key} (what DaemonSet "
                       f"{primary.daemonset.ref} reads).")
            command = ""
            target = next((f for f in primary.files if f.path == editable_file(primary)), None) \
                if primary is not None and primary.options is not None else None
            if target is not None and target.configmap == cm.ref:
                # a key of the ConfigMap apply edits: it moves the CIDRs to the key the agent reads and
                # removes that key (analysis.recommend, step 3); another ConfigMap stays to delete by hand
                command = APPLY_FIX
                fix = (f"`{APPLY_FIX}` moves its CIDRs to the ConfigMap and key the agent reads; or by hand:\n"
                       + fix.split(":\n", 1)[-1]) if fix else fix
            ctx.add("MQ001", WARNING,
                    f"ConfigMap {cm.ref} key {key} holds masquerade settings, but no agent reads it: "
                    + "; ".join(why) + ". It is silently ignored.",
                    evidence=[f"ConfigMap {cm.ref} key {key}"] + [
                        f"DaemonSet {v.daemonset.ref} config volume: " + (", ".join(
                            f"{f.configmap} key {f.key} → {f.path}{'' if f.read else ' (not read)'}" for f in v.files)
                            or "none") for v in ctx.views],
                    fix=fix, command=command)


def _jp(key: str) -> str:
    return key.replace(".", "\\.")


def _user_target(view: AgentConfigView) -> tuple[str, str, str]:
    for f in view.files:
        if f.read and f.configmap.endswith("/" + AKS_USER_CONFIGMAP):
            ns, name = f.configmap.split("/", 1)
            return ns, name, f.key
    ns = view.daemonset.namespace
    return ns, AKS_USER_CONFIGMAP, AKS_USER_KEY


# --------------------------------------------------------------------------- MQ002


def mq002(ctx: Context, view: AgentConfigView) -> None:
    ds = view.daemonset
    v2 = ds.flavor == AZURE_V2
    consequence = "" if ds.flavor in CILIUM_FLAVORS else view.invalid_config_consequence() or (
                   "The azure-v2 agent exits on it, so its pods crash-loop on every node; rules already in the "
                   "kernel stay as they were and new nodes get none." if v2 else
                   "The agent logs the error and keeps its previous config (a restarted or new pod starts from "
                   "its defaults).")
    if view.flag_error is not None:
        # every agent (Go's flag package, the node-agent too) exits at start on a flag it refuses
        flag_consequence = ("The agent exits at start on it, so its pods crash-loop on every node; rules already "
                            "in the kernel stay as they were and new nodes get none.")
        ctx.add("MQ002", ERROR, f"DaemonSet {ds.ref}: {view.flag_error.message}. {flag_consequence}",
                evidence=[f"DaemonSet {ds.ref} container {ds.container} args: {' '.join(view.argv) or '(none)'}"],
                fix=f"Remove or correct the flag in DaemonSet {ds.ref} (kubectl -n {ds.namespace} edit daemonset "
                    f"{ds.name}); on AKS the DaemonSet is reconciled by AKS, so open a support case instead of "
                    "editing it.", nodes=agent_nodes(ctx))
    err = view.error
    if err is None:
        return
    fix = _fix_for_error(view, err)
    command = APPLY_FIX if _fixable_error(view, err) else ""
    if command:
        fix = f"`{APPLY_FIX}` plans the correction, backs up and writes it; or by hand: {fix}"
    ctx.add("MQ002", ERROR, f"{err.one_line()}." + (f" {consequence}" if consequence else ""),
            evidence=[f"{f.describe()} → {view.config_dir.rstrip('/')}/{f.path}" for f in view.files
                      if f.read and f.present]
            + [f"flavour {ds.flavor} ({ds.image})"],
            fix=fix, nodes=agent_nodes(ctx), command=command)


def _fixable_error(view: AgentConfigView, err: ConfigError) -> bool:
    """``apply --goal fix`` corrects it: a CIDR with host bits (E105) or an IPv6 CIDR without
    --enable-ipv6 (E107) in the file apply edits."""
    return err.code in ("E105", "E107") and in_editable_file(view, getattr(err, "config_file", None))


def _fix_for_error(view: AgentConfigView, err: ConfigError) -> str:
    file = getattr(err, "config_file", None)
    f = view.file(file)
    where = f"{f.describe()}" if f is not None else (err.input or "the config")
    edit = ""
    if f is not None:
        ns, name = f.configmap.split("/", 1)
        edit = f"kubectl -n {ns} edit configmap {name}   # key {f.key}" + (f", line {err.line}" if err.line else "")
    if err.code in ("E105", "E331") and isinstance(err.value, str):
        right = str(ipaddress.ip_network(err.value, strict=False))
        return f"Write the network address: {err.value} → {right} in {where}.\n{edit}"
    if err.code == "E107":
        return (f"Remove the IPv6 CIDR {err.value} from {where}, or run the agent with --enable-ipv6 "
                f"(on AKS only dual-stack clusters run it that way).\n{edit}")
    if err.code == "E106":
        return f"Merge ranges into wider CIDRs in {where}, or split them over two ip-masq* keys.\n{edit}"
    return f"Correct {where}{' line ' + str(err.line) if err.line else ''}" + (f" ({err.hint})" if err.hint else "") \
        + (f".\n{edit}" if edit else ".")


# --------------------------------------------------------------------------- MQ010


def mq010(ctx: Context, view: AgentConfigView) -> None:
    if view.config is None or not view.config.warnings:
        return
    ws = view.config.warnings
    lines = [f"{w.code} {view.where(w.file, w.line)}: {w.message}" for w in ws]
    # W105 (a saved manifest) and W106 (a second YAML document) lose settings as a typo does
    severity = WARNING if any(w.code in ("W101", "W105", "W106") for w in ws) else INFO
    keys = sorted({w.key for w in ws if w.key})
    ignored = f"key(s) {', '.join(keys)}" if keys else "part of its config"
    # apply --goal fix drops the keys the agent does not know or ignores (analysis.recommend, step 2)
    command = APPLY_FIX if all(w.code in ("W101", "W103") and in_editable_file(view, w.file) for w in ws) else ""
    ctx.add("MQ010", severity,
            f"The {view.daemonset.flavor} agent ignores {ignored}: " + "; ".join(lines), command=command,
            evidence=[view.where(w.file, w.line) + (f" key {w.key}" if w.key else "") for w in ws],
            fix=" ".join(part for part, wanted in (
                (f"`{APPLY_FIX}` drops them from the user ConfigMap.", bool(command)),
                ("Remove the ignored keys, or spell them as the agent knows them (nonMasqueradeCIDRs, "
                 "masqLinkLocal, masqLinkLocalIPv6" + ("" if view.daemonset.flavor == AZURE_V2 else
                                                       ", cidrLimit, resyncInterval") + ").",
                 any(w.code in ("W101", "W102", "W103") for w in ws)),
                ("On azure-v2 the resync period is only the --resync-interval flag.", any(w.code == "W103" for w in ws)),
                ("Put every setting in the key's first YAML document.", any(w.code == "W106" for w in ws)),
                ("The key holds the agent's settings, not a ConfigMap manifest.", any(w.code == "W105" for w in ws)),
            ) if wanted))


# --------------------------------------------------------------------------- MQ011


def mq011(ctx: Context, view: AgentConfigView) -> None:
    cfg = view.config
    if cfg is None:
        return
    entries = list(cfg.non_masquerade_cidrs)
    nets = [(e, ipaddress.ip_network(e.cidr)) for e in entries]
    pairs = []
    for e, n in nets:
        wider = [(o, m) for o, m in nets if o is not e and m.version == n.version and n != m and n.subnet_of(m)]
        if wider:
            o, m = min(wider, key=lambda p: p[1].prefixlen)
            pairs.append((e, o))
    dups = [e for e in entries if len(e.origins) > 1]
    if not pairs and not dups:
        return
    parts, evidence, user_lines = [], [], []
    for e, o in pairs:
        parts.append(f"{e.cidr} ⊂ {o.cidr}")
        evidence.append(f"{e.cidr} from {view.source_of(e.origins[0])}; {o.cidr} from {view.source_of(o.origins[0])}")
        user_lines += [view.source_of(x) for x in e.origins if _is_user(view, x)]
    for e in dups:
        parts.append(f"{e.cidr} listed {len(e.origins)} times")
        evidence.append(f"{e.cidr} from " + ", ".join(view.source_of(x) for x in e.origins))
        user_lines += [view.source_of(x) for x in e.origins[1:] if _is_user(view, x)]
    command = ""
    if user_lines:
        fix = "Remove the redundant entries from your ConfigMap: " + "; ".join(dict.fromkeys(user_lines)) + \
              f" (the broader CIDR already keeps those destinations unmasqueraded): `{APPLY_FIX}` does it."
        command = APPLY_FIX
    else:
        fix = ("Nothing to do: the redundant entries come from the AKS-owned reconciled ConfigMap; each costs one "
               "iptables rule and changes no verdict.")
    ctx.add("MQ011", INFO, "Redundant non-masquerade entries (each is an extra rule, never a different verdict): "
            + "; ".join(parts) + ".", evidence=evidence, fix=fix, command=command)


def _is_user(view: AgentConfigView, origin) -> bool:
    f = view.file(origin.file) if origin.kind == "file" else None
    return f is not None and not f.configmap.endswith("-reconciled")


# --------------------------------------------------------------------------- MQ012


def mq012(ctx: Context, view: AgentConfigView) -> None:
    cfg, opts = view.config, view.options
    if cfg is None:
        return
    ds = view.daemonset
    if cfg.flavor == AZURE_V2:
        read = [f for f in view.files if f.read and f.present]
        for setting, attr in (("masqLinkLocal", "masq_link_local"), ("masqLinkLocalIPv6", "masq_link_local_ipv6")):
            merged = getattr(cfg, attr)
            if not merged.value:
                continue
            for f in read:
                try:
                    single = effective_config([ConfigSource(f.path, f.text.encode("utf-8"))], opts)
                except ConfigError:
                    continue
                s = getattr(single, attr)
                if s.value is False and any(o.kind == "file" for o in s.origins):
                    origin = next(o for o in s.origins if o.kind == "file")
                    # apply --goal fix drops masqLinkLocal: false (analysis.recommend, step 2)
                    fixable = setting == "masqLinkLocal" and in_editable_file(view, f.path)
                    ctx.add("MQ012", WARNING,
                            f"{view.source_of(origin)} sets {setting}: false, but "
                            f"{', '.join(view.source_of(o) for o in merged.origins)} sets it true; the agent ORs "
                            f"the files, so {setting} is true and link-local traffic is masqueraded.",
                            evidence=[view.source_of(origin)] + [view.source_of(o) for o in merged.origins],
                            fix=f"Remove {setting} from {f.describe()}: it cannot be turned off while the AKS "
                                "reconciled ConfigMap sets it (pods reach IMDS 169.254.169.254 only masqueraded)."
                                + (f" `{APPLY_FIX}` does it." if fixable else ""),
                            command=APPLY_FIX if fixable else "")
        if opts.nomasq_all_reserved_ranges and not cfg.defaults_used:
            ctx.add("MQ012", WARNING,
                    f"DaemonSet {ds.ref} runs with --nomasq-all-reserved-ranges, but the azure-v2 agent applies "
                    "its default list (and so the reserved ranges) only when no ip-masq* file exists; files "
                    "exist, so the flag has no effect.",
                    evidence=[f"DaemonSet {ds.ref} args: {' '.join(view.argv)}"]
                    + [f"{f.describe()} → {f.path}" for f in view.files if f.read and f.present],
                    fix="List the reserved ranges you need in the user ConfigMap's nonMasqueradeCIDRs.")


# --------------------------------------------------------------------------- MQ013


def mq013(ctx: Context, view: AgentConfigView) -> None:
    cfg = view.config
    if cfg is None or cfg.flavor in CILIUM_FLAVORS:
        return          # the merger and Cilium have no per-file limit (the map holds 16 384 entries)
    counts: dict[str, int] = {}
    for e in cfg.non_masquerade_cidrs:
        for o in e.origins:
            if o.kind == "file":
                counts[o.file] = counts.get(o.file, 0) + 1
    limit = V2_LIMIT if cfg.flavor == AZURE_V2 else int(cfg.cidr_limit.value if cfg.cidr_limit else V2_LIMIT)
    for file, n in sorted(counts.items()):
        if n >= NEAR * limit:
            at = "at" if n >= limit else "near"
            ctx.add("MQ013", WARNING,
                    f"{view.where(file)} lists {n} CIDRs, {at} the agent's limit of {limit} per file: one more and "
                    + ("the agent exits on every node." if cfg.flavor == AZURE_V2 else "the agent refuses the file."),
                    evidence=[f"{view.where(file)}: {n} nonMasqueradeCIDRs"],
                    fix="Merge adjacent ranges into wider CIDRs"
                        + (", or move some into a second ip-masq* key of the user ConfigMap projected by the "
                           "DaemonSet (each file has its own limit)." if cfg.flavor == AZURE_V2 else
                           ", or raise cidrLimit in the file."))


# --------------------------------------------------------------------------- MQ014


def mq014(ctx: Context, view: AgentConfigView) -> None:
    opts = view.options
    err = view.error
    ds = view.daemonset
    if err is not None and err.code == "E107":
        ctx.add("MQ014", ERROR,
                f"{view.where(getattr(err, 'config_file', None), err.line)} lists IPv6 CIDR {err.value}, but "
                f"DaemonSet {ds.ref} runs without --enable-ipv6: the agent refuses the file (see MQ002).",
                evidence=[err.one_line(), f"DaemonSet {ds.ref} args: {' '.join(view.argv) or '(none)'}"],
                fix=f"Remove {err.value}: this cluster's agent manages IPv4 only."
                    + (f" `{APPLY_FIX}` does it." if _fixable_error(view, err) else ""),
                nodes=agent_nodes(ctx), command=APPLY_FIX if _fixable_error(view, err) else "")
        return
    snap = ctx.snapshot
    dual = []
    cluster = snap.azure.cluster if snap.azure is not None else None
    if cluster is not None and any(f.lower() == "ipv6" for f in cluster.network_profile.ip_families):
        dual.append("networkProfile.ipFamilies includes IPv6")
    for n in snap.nodes:
        v6 = [c for c in n.pod_cidrs if ":" in c]
        if v6:
            dual.append(f"node {n.name} has IPv6 pod CIDR {v6[0]}")
            break
    if dual and not opts.enable_ipv6:
        ctx.add("MQ014", WARNING,
                f"The cluster is dual-stack but DaemonSet {ds.ref} runs without --enable-ipv6: IPv6 pod traffic "
                "is not handled by the agent (no ip6tables rules).",
                evidence=dual + [f"DaemonSet {ds.ref} args: {' '.join(view.argv) or '(none)'}"],
                fix="Check who masquerades IPv6 pod traffic on the nodes (ip6tables-save -t nat); on AKS the "
                    "dual-stack agent runs with --enable-ipv6=true — a missing flag is a reconcile problem.",
                nodes=agent_nodes(ctx))


__all__ = ["check", "user_configmap_yaml", "user_cidrs", "reads", "APPLY_FIX", "editable_file", "in_editable_file"]
