"""What the user config file should contain for an ``apply`` request: goals and explicit edits.

``decide`` turns a request into the new text of the user file (or a deletion, or a whole
replacement), with one line per change and notes on what was left alone and why. It refuses
(``ApplyError``) what cannot work: preserving source IPs where pod IPs are not routable (MQ009),
removing a CIDR that AKS's reconciled ConfigMap sets (the azure-v2 agent unions the files).

A goal never derives an unsafe range (``unsafe_reasons``): a peering's remote address space or a
``--to`` CIDR that covers internet addresses or reaches peered VNets where MQ009 calls that an error,
or covers link-local/IMDS, is refused (E707) and the safe ranges are still planned. Explicit edits
(``--add``, ``--from-file``, ``--from-backup``) are the operator's choice: ``plan`` marks them with an
error-level MQ009 entry and the CLI writes them only with ``--allow-unsafe``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from masqctl.analysis import mode as m
from masqctl.analysis.agentconfig import AKS_USER_CONFIGMAP, AgentConfigView, ConfigFile
from masqctl.analysis.findings.routing import internet_part
from masqctl.analysis.network import network_map
from masqctl.analysis.userconfig import CIDR_KEY, edit_user_file, read_entries
from masqctl.cluster.model import ClusterSnapshot, ConfigMap
from masqctl.engine import AZURE_V2, ConfigSource, effective_config
from masqctl.engine.cidr import CidrProblem, parse_cidr
from masqctl.engine.decode import decode_document
from masqctl.engine.fields import apply_document
from masqctl.errors import ApplyError, ConfigError, UsageError


@dataclass
class Context:
    snapshot: ClusterSnapshot
    view: AgentConfigView
    ufile: ConfigFile
    current: ConfigMap | None
    mode: object            # masqctl.analysis.mode.MasqMode
    others: AgentConfigView | None = None   # the agent's config without the user ConfigMap


@dataclass
class Outcome:
    text: str | None = None                 # the new user file; None: no change of the text
    delete: bool = False
    replacement: object | None = None       # plan.Replacement
    drop_data_keys: tuple[str, ...] = ()
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refused: list["Refusal"] = field(default_factory=list)   # ranges a goal derived and refused (E707)


@dataclass(frozen=True)
class Refusal:
    """A range a goal would have derived, refused because it is unsafe (E707)."""

    cidr: str
    source: str              # "peering peer-a-to-hub of VNet vnet-a (to vnet-hub)" or "--to 0.0.0.0/0"
    reasons: tuple[str, ...]

    def describe(self, code: bool = True) -> str:
        return ("E707 refused " if code else "") + f"{self.cidr} from {self.source}: " + "; ".join(self.reasons)

    def to_dict(self) -> dict:
        return {"code": "E707", "cidr": self.cidr, "source": self.source, "reasons": list(self.reasons)}


def _net(text: str):
    try:
        return ipaddress.ip_network(text, strict=True)
    except (ValueError, TypeError):
        return None


def _covering(cidr: str, others: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The first (cidr, where) of ``others`` that equals or contains ``cidr``."""
    net = _net(cidr)
    if net is None:
        return None
    for other, where in others:
        o = _net(other)
        if o is not None and o.version == net.version and net.subnet_of(o):
            return other, where
    return None


def _user_cidrs(ctx: Context) -> list[tuple[str, int | None]]:
    """The CIDR list of the user file as written (Go: the last key that sets the field wins)."""
    try:
        entries = read_entries(ctx.ufile.path, ctx.ufile.text, ctx.view.options.flavor)
    except ConfigError as exc:
        raise ConfigError(f"the current user config cannot be decoded, so it cannot be edited: {exc.message}",
                          file=ctx.view.where(ctx.ufile.path), line=exc.line, key=exc.key, code=exc.code,
                          hint="replace it whole with --from-file FILE, or delete it with --goal reset") from None
    items: list[tuple[str, int | None]] = []
    for e in entries:
        if e.known == CIDR_KEY:
            items = [(v if isinstance(v, str) else ("" if v is None else str(v)), line)
                     for v, line in (e.value if isinstance(e.value, list) else [])]
    return items


def _others(ctx: Context) -> list[tuple[str, str]]:
    """CIDRs the other config files (AKS's reconciled one) set, with where."""
    out = []
    view = ctx.others or ctx.view
    cfg = view.config
    if cfg is None:
        return out
    for entry in cfg.non_masquerade_cidrs:
        for o in entry.origins:
            if o.kind == "file" and o.file != ctx.ufile.path:
                out.append((entry.cidr, view.source_of(o)))
    return out


def _seed_defaults(ctx: Context, cidrs: list[str], notes: list[str]) -> None:
    """When the current CIDRs are the agent's defaults (no file sets the list), keep them explicitly."""
    cfg = ctx.view.config
    if cfg is None or cidrs:
        return
    defaults = [c.cidr for c in cfg.non_masquerade_cidrs if c.origins and c.origins[0].kind == "default"]
    if defaults:
        cidrs.extend(defaults)
        notes.append("the agent uses its default CIDRs now (" + ", ".join(defaults) + "); writing the user file "
                     "replaces them, so the new file lists them explicitly")


def decide(ctx: Context, request) -> Outcome:
    out = Outcome()
    ref = ctx.view.where(ctx.ufile.path)
    if request.replacement is not None:
        out.replacement = request.replacement
        out.changes.append(f"restore ConfigMap {ctx.ufile.configmap} from {request.replacement.source}"
                           + (" (it did not exist: delete it)" if request.replacement.data is None else ""))
        return out
    if request.goal == "reset":
        out.delete = True
        out.changes.append(f"delete ConfigMap {ctx.ufile.configmap}: only AKS's reconciled config remains")
        return out
    if request.from_file is not None:
        out.text = _from_file(ctx, request.from_file)
        out.changes.append(f"set {ref} to the content of {request.from_file.name}")
        if ctx.ufile.text == out.text:
            out.text = None
            out.notes.append(f"{ref} already holds the content of {request.from_file.name}")
        return out

    items = _user_cidrs(ctx)
    original = [c for c, _ in items]
    cidrs = list(original)
    drop_keys: set[str] = set()
    drop_data_keys: list[str] = []
    link_local: bool | None = None
    if ctx.ufile.text is None or not any(True for _ in items):
        if not _file_sets_cidrs(ctx):
            _seed_defaults(ctx, cidrs, out.notes)
    seeded = list(cidrs)

    if request.goal == "preserve-source-ip":
        _preserve(ctx, request.to, cidrs, out)
    elif request.goal == "fix":
        link_local = _fix(ctx, cidrs, drop_keys, drop_data_keys, out)

    for c in request.add:
        if c in cidrs:
            out.notes.append(f"{c} is already in {ref}")
            continue
        cover = _covering(c, [(x, ref) for x in cidrs] + _others(ctx))
        if cover is not None:
            out.notes.append(f"{c} is already not masqueraded: inside {cover[0]} ({cover[1]}); added as asked")
        cidrs.append(c)
        out.changes.append(f"add {c}")
    for c in request.remove:
        others = [(x, where) for x, where in _others(ctx) if x == c]
        if others and ctx.view.options.flavor == AZURE_V2:
            raise ApplyError(f"{c} cannot be removed: it comes from {others[0][1]}, which AKS owns and reconciles; "
                             "the azure-v2 agent merges the files as a union, so no user ConfigMap can take a CIDR "
                             "away", input=f"--remove {c}", code="E708",
                             hint="AKS writes the reconciled ConfigMap from the cluster's network (node subnet, "
                             "VNet space, service or pod CIDR); to change it, change the network and reconcile "
                             "the cluster")
        if c in cidrs:
            cidrs = [x for x in cidrs if x != c]
            out.changes.append(f"remove {c}")
            continue
        cover = _covering(c, [(x, ref) for x in cidrs] + _others(ctx))
        out.notes.append(f"{c} is not in {ref}: nothing to remove" + (
            f" (it stays not masqueraded: inside {cover[0]}, {cover[1]})" if cover is not None else ""))

    if cidrs == seeded and not drop_keys and not drop_data_keys and link_local is None:
        return out
    edited = edit_user_file(ctx.ufile.path, ctx.ufile.text, ctx.view.options.flavor, cidrs,
                            drop_keys=frozenset(drop_keys), link_local=link_local)
    out.text = edited.text
    out.notes += list(edited.notes)
    out.drop_data_keys = tuple(drop_data_keys)
    if not cidrs:
        out.notes.append(f"{ref} now adds no CIDR; `masqctl apply --goal reset` deletes the ConfigMap instead")
    return out


def _file_sets_cidrs(ctx: Context) -> bool:
    if ctx.ufile.text is None:
        return False
    try:
        return any(e.known == CIDR_KEY for e in read_entries(ctx.ufile.path, ctx.ufile.text,
                                                              ctx.view.options.flavor))
    except ConfigError:
        return False


def _from_file(ctx: Context, file) -> str:
    """The text of ``--from-file``, validated alone as the agent would (errors name the file and line)."""
    name = f"--from-file {file.name}"
    try:
        doc = decode_document(name, file.data)
        keys = {e.key for e in doc.entries or ()}
        if {"apiVersion", "kind"} <= keys:     # a Kubernetes manifest, not the agent's config
            raise UsageError("is a Kubernetes manifest (it has apiVersion and kind); --from-file takes the agent "
                             "config itself, the text of the ConfigMap's data key ip-masq-agent. Written as it "
                             "is, the agent would ignore every key of it", input=name, code="E253",
                             hint="give only the config (nonMasqueradeCIDRs:, masqLinkLocal:), or restore a "
                                  "saved ConfigMap with --from-backup FILE")
        text = file.data.decode("utf-8")
        effective_config([ConfigSource(name, file.data)], ctx.view.options)
    except UnicodeDecodeError:
        raise ConfigError("not valid UTF-8 (the agent cannot decode it)", file=name, code="E102") from None
    except ConfigError as exc:
        raise ConfigError(f"the agent would refuse it: {exc.message}", file=name, line=exc.line, key=exc.key,
                          value=exc.value, hint=exc.hint, code=exc.code) from None
    return text


# --------------------------------------------------------------------------- preserve-source-ip


def _preserve(ctx: Context, to: tuple[str, ...], cidrs: list[str], out: Outcome) -> None:

    mode = ctx.mode
    if mode.name == m.POD_SUBNET:
        out.notes.append(f"{mode.describe()}: pod source IPs are already kept toward peered networks; the user "
                         "ConfigMap does not change that")
        return
    if mode.user_config_matters is False:
        raise ApplyError(f"the user ConfigMap does not decide masquerading here ({mode.describe()}), so writing it "
                         "cannot preserve source IPs", input="--goal preserve-source-ip", code="E707",
                         hint="change the CNI's own masquerade settings (e.g. Calico's IPPool natOutgoing)")
    if mode.pod_ips_routable_outside is False:
        evidence = "; ".join(mode.evidence[:2]) or mode.name
        raise ApplyError(f"MQ009 refused: pod IPs are not routable outside the cluster in {mode.name} mode "
                         f"({evidence}). A peered VNet or on-premises network that sees a pod IP has no route back "
                         "to it, so replies would be lost and connections would break",
                         input="--goal preserve-source-ip", code="E707",
                         hint="keep masquerading toward those networks (the node IP is what they can answer); "
                         "to see pod IPs at the far side, use Azure CNI with node subnet or pod subnet, or a "
                         "proxy that forwards the client address (X-Forwarded-For)")
    if mode.pod_ips_routable_outside is None:
        raise ApplyError("cannot tell whether pod IPs are routable outside the cluster (" + (
            "; ".join(mode.missing) or "network mode unknown") + "), so keeping pod source IPs might break replies",
            input="--goal preserve-source-ip", code="E707",
            hint="give Azure facts (--subscription/-g/--cluster, or aks.json in the bundle) so the network mode "
                 "is known; or add the ranges explicitly with --add CIDR if you know pods are routable")
    targets = _targets(ctx, to, out)
    if not targets:
        return

    nmap = network_map(ctx.snapshot)
    ref = ctx.view.where(ctx.ufile.path)
    enable6 = ctx.view.options.enable_ipv6
    safe = []
    for cidr, label, explicit, source in targets:
        reasons = unsafe_reasons(cidr, mode, nmap, derived=True)
        if reasons:
            out.refused.append(Refusal(cidr, source, tuple(reasons)))
        else:
            safe.append((cidr, label, explicit))
    if out.refused and not safe:
        asked = "--goal preserve-source-ip" + "".join(f" --to {t}" for t in to)
        raise ApplyError("no safe range is left to keep pod source IPs toward: "
                         + " | ".join(r.describe(code=False) for r in out.refused), input=asked, code="E707",
                         hint="a goal never makes pods keep their IP toward the internet, IMDS or link-local "
                              "addresses. Check the peering's remote address space (az network vnet peering show); "
                              "if a peered network really uses public addresses privately, name its ranges with "
                              "--add CIDR --allow-unsafe (docs/apply.md)")
    for cidr, label, explicit in safe:
        net = _net(cidr)
        if net is not None and net.version == 6 and not enable6 and not explicit:
            out.notes.append(f"{cidr} ({label}) is IPv6 and the agent runs without --enable-ipv6: left out (an "
                             "IPv6 CIDR would make the agent exit)")
            continue
        if cidr in cidrs:
            out.notes.append(f"{cidr} ({label}) is already in {ref}")
            continue
        cover = _covering(cidr, [(x, ref) for x in cidrs] + _others(ctx))
        if cover is not None:
            out.notes.append(f"{cidr} ({label}) is already not masqueraded: inside {cover[0]} ({cover[1]})")
            continue
        cidrs.append(cidr)
        out.changes.append(f"add {cidr} ({label}): pods keep their source IP toward it")
    if ctx.mode.snat_by == m.CILIUM_BPF:
        out.warnings.append("Cilium's BPF masquerade reads these ConfigMaps through azure-ip-masq-merger; the "
                            "IP-MASQ-AGENT rules shown are bypassed on these nodes")


def _targets(ctx: Context, to: tuple[str, ...], out: Outcome) -> list[tuple[str, str, bool, str]]:
    """``[(cidr, label, explicit, source)]`` to keep pod source IPs toward (``source`` names the peering
    or the ``--to`` the range comes from)."""
    azure = ctx.snapshot.azure
    peerings = [(v, p) for v in (azure.vnets if azure is not None else ()) for p in v.peerings]

    def prefixes(p) -> list[str]:
        return list(p.remote_address_space) or list(p.remote_vnet_address_space)

    def source(v, p) -> str:
        return f"peering {p.name} of VNet {v.name} (to {p.remote_vnet_name or p.name})"

    result: list[tuple[str, str, bool, str]] = []
    if to:
        for t in to:
            if "/" in t or _looks_like_ip(t):
                result.append((t, "--to", True, f"--to {t}"))
                if _net(t) is not None and peerings and not any(
                        _net(x) is not None and _net(x).version == _net(t).version and _net(t).overlaps(_net(x))
                        for _, p in peerings for x in prefixes(p)):
                    out.warnings.append(f"{t} is not in any peered VNet this snapshot knows: make sure that network "
                                        "routes the cluster's pod IPs back (on-premises routes over VPN/ExpressRoute "
                                        "are not known here)")
                continue
            hits = [(v, p) for v, p in peerings if t in (p.remote_vnet_name, p.name)]
            if not hits:
                known = sorted({p.remote_vnet_name or p.name for _, p in peerings})
                raise UsageError(f"{t!r} is neither a CIDR nor a peered VNet this snapshot knows"
                                 + (f" (known: {', '.join(known)})" if known else " (no peerings are known: "
                                    "give CIDRs, or Azure facts)"), input=f"--to {t}", code="E252")
            for v, p in hits:
                if (p.state or "").lower() != "connected":
                    state = p.state or "in an unknown state"
                    raise ApplyError(f"the peering {p.name} of VNet {v.name} to {t} is {state}: only a Connected "
                                     "peering carries traffic", input=f"--to {t}",
                                     code="E707", hint="connect the peering first")
                for x in prefixes(p):
                    result.append((x, f"peered VNet {p.remote_vnet_name or p.name}", False, source(v, p)))
        return result
    if azure is None or azure.cluster is None and not azure.vnets:
        raise ApplyError("no peered VNets are known: the snapshot has no Azure facts ("
                         + (ctx.snapshot.missing.get("azure") or ctx.snapshot.missing.get("azure.cluster")
                            or "not gathered") + ")", input="--goal preserve-source-ip", code="E709",
                         hint="give --subscription/-g/--cluster (or vnets/*.json in the bundle), or name the "
                              "destinations with --to CIDR")
    if not azure.vnets:
        raise ApplyError("no peered VNets are known: the cluster's VNets were not gathered ("
                         + (ctx.snapshot.missing.get("azure.vnets") or "no VNet facts") + ")",
                         input="--goal preserve-source-ip", code="E709",
                         hint="name the destinations with --to CIDR")
    for v, p in peerings:
        name = p.remote_vnet_name or p.name
        if (p.state or "").lower() != "connected":
            out.notes.append(f"peering {p.name} to {name} is {p.state or 'in an unknown state'}: left out (only a "
                             "Connected peering carries traffic)")
            continue
        if p.sync_level and p.sync_level.lower() != "fullyinsync":
            out.warnings.append(f"peering {p.name} to {name} is {p.sync_level}: ranges added to the remote VNet "
                                "recently may not route yet; sync the peering")
        if p.use_remote_gateways:
            out.notes.append(f"VNet {v.name} uses the gateway of {name}: on-premises prefixes behind it are not known "
                             "to masqctl; add them with --to CIDR if pods should keep their IPs toward them")
        for x in prefixes(p):
            result.append((x, f"peered VNet {name}", False, source(v, p)))
    if not peerings:
        out.notes.append("the cluster's VNet has no peerings: nothing to preserve toward")
    return result


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- unsafe ranges

LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")
IMDS = ipaddress.ip_address("169.254.169.254")
WIRESERVER = ipaddress.ip_address("168.63.129.16")


def unsafe_reasons(cidr: str, mode, nmap, *, derived: bool = False) -> list[str]:
    """Why keeping pod source IPs toward ``cidr`` breaks traffic; empty when it is safe.

    The ranges MQ009 calls an error (``findings.routing.mq009``): a range that covers internet
    (public) addresses, or, in a mode where pod IPs are not routable outside the cluster and the
    Azure facts are known, one that reaches a peered VNet. Besides those, any range that covers
    link-local 169.254.0.0/16 (IMDS 169.254.169.254). For a range a goal derives (``derived``), also one
    that overlaps the cluster's pod CIDR in a mode where only the cluster routes it. Text that is
    not a CIDR gives no reason here: the agent's own validation names it."""

    try:
        net = ipaddress.ip_network(str(cidr).strip(), strict=False)
    except ValueError:
        return []
    reasons: list[str] = []
    public = internet_part(str(net))
    if public:
        public = sorted(public)
        shown = ", ".join(str(p) for p in public[:3]) + (" …" if len(public) > 3 else "")
        azure = " and Azure's platform address 168.63.129.16" if net.version == 4 and WIRESERVER in net else ""
        reasons.append(f"MQ009: it covers internet addresses ({shown}){azure}; pod traffic to them would leave "
                       "with the pod IP, which the internet cannot route back to (Azure's outbound drops it), so "
                       "those connections break")
    if net.version == 4 and net.overlaps(LINK_LOCAL):
        what = "IMDS 169.254.169.254 and link-local 169.254.0.0/16" if IMDS in net else \
            "link-local addresses (169.254.0.0/16)"
        reasons.append(f"it covers {what}: AKS masquerades them (masqLinkLocal: true) because IMDS answers only the "
                       "node's own address; with pod IPs, managed identity and instance metadata fail")
    if mode is not None and nmap is not None:
        facts_missing = any(m.startswith(("Azure facts", "the VNets")) for m in nmap.missing)
        overlay = mode.pod_ips_routable_outside is False and mode.user_config_matters is not False
        if overlay and not public and not facts_missing:
            rels = nmap.relations_of_cidr(str(net))
            inside_cluster = any(r.relation in ("=", "⊂") and r.place.kind in ("pod-cidr", "service-cidr",
                                                                                "node-subnet", "node")
                                 for r in rels)
            peered = [r for r in rels if r.place.kind == "peered-vnet"]
            if peered and not inside_cluster:
                reasons.append(f"MQ009: it reaches {', '.join(r.describe() for r in peered)}; in {mode.name} mode "
                               "pod IPs are not routable outside the cluster, so those hosts cannot reply to them")
        if derived and getattr(mode, "pod_cidr_is_cluster_only", None) is True:
            pods = [p for p in nmap.known() if p.kind == "pod-cidr" and p.network is not None
                    and p.network.version == net.version and p.network.overlaps(net)]
            if pods:
                reasons.append(f"it overlaps the cluster's {pods[0].label}: in {mode.name} mode those addresses "
                               "belong to the pods, which only the cluster routes")
    return reasons


# --------------------------------------------------------------------------- fix


def _fix(ctx: Context, cidrs: list[str], drop_keys: set[str], drop_data_keys: list[str],
         out: Outcome) -> bool | None:
    """Resolve what inspect reports as fixable in the user file; returns a new masqLinkLocal or None."""

    options = ctx.view.options
    ref = ctx.view.where(ctx.ufile.path)
    link_local = None

    # 1. entries the agent refuses (it would crash-loop): align, or drop
    fixed: list[str] = []
    for c in cidrs:
        try:
            net = parse_cidr(c)
        except CidrProblem as exc:
            if exc.kind == "align":
                aligned = str(ipaddress.ip_network(c, strict=False))
                out.changes.append(f"replace {c} by {aligned}: the agent refuses a CIDR with host bits set "
                                   "(check that the whole block is what you meant)")
                fixed.append(aligned)
            else:
                out.changes.append(f"drop {c!r}: the agent refuses it ({exc})")
            continue
        if net.version == 6 and not options.enable_ipv6:
            out.changes.append(f"drop {c}: IPv6 while the agent runs without --enable-ipv6 (it would exit)")
            continue
        fixed.append(c)
    cidrs[:] = fixed

    # 2. keys the agent ignores
    if ctx.ufile.text is not None:
        for e in read_entries(ctx.ufile.path, ctx.ufile.text, options.flavor):
            if e.known is None:
                drop_keys.add(e.key)
                out.changes.append(f"drop key {e.key!r} (line {e.line}): the {options.flavor} agent ignores it")
            elif e.known == "masqLinkLocal" and e.value is False and options.flavor == AZURE_V2 and any(
                    o.kind == "file" and o.file != ctx.ufile.path
                    for o in _link_local_origins(ctx)):
                drop_keys.add(e.key)
                out.changes.append(f"drop {e.key}: false (line {e.line}): it has no effect, the reconciled config "
                                   "sets it true and the agent ORs the files")

    # 3. misnamed ConfigMaps or keys: move their CIDRs here
    for cm_ref, key, found in _misplaced(ctx):
        for c in found:
            if c not in cidrs:
                cidrs.append(c)
                out.changes.append(f"add {c} from ConfigMap {cm_ref} key {key}, which the agent never reads")
        if cm_ref == ctx.ufile.configmap:
            drop_data_keys.append(key)
            out.changes.append(f"remove key {key} of ConfigMap {cm_ref} (moved to key {ctx.ufile.key})")
        else:
            ns, _, name = cm_ref.partition("/")
            out.warnings.append(f"ConfigMap {cm_ref} is not read by the agent; after this change delete it: "
                                f"kubectl -n {ns} delete configmap {name}")

    # 4. stale ranges: the cluster's own VNet space and service CIDR, when the reconciled config lacks them
    if ctx.mode.name == m.NODE_SUBNET:

        nmap = network_map(ctx.snapshot)
        own = [p for p in nmap.known() if p.kind in ("vnet", "node-subnet", "service-cidr") and p.cidr]
        present = [(x, ref) for x in cidrs] + _others(ctx)
        for p in own:
            net = p.network
            if net.version == 6 and not options.enable_ipv6:
                continue
            if _covering(str(net), present) is None and str(net) not in cidrs:
                cidrs.append(str(net))
                present.append((str(net), ref))
                out.changes.append(f"add {net} ({p.short}): the reconciled config does not cover it (stale after an "
                                   "address-space change?), so pod traffic to it is masqueraded")

    # 5. redundant entries: duplicates, and CIDRs inside another CIDR of the config
    kept: list[str] = []
    for i, c in enumerate(cidrs):
        if c in kept:
            out.changes.append(f"drop the duplicate {c}")
            continue
        nc = _net(c)
        inside = []
        for j, x in enumerate(cidrs):
            nx = _net(x)
            if j == i or nx is None or nc is None or nx.version != nc.version:
                continue
            if nc.subnet_of(nx) and (nx != nc or j < i):
                inside.append((x, ref))
        cover = _covering(c, inside + _others(ctx))
        if cover is not None:
            out.changes.append(f"drop {c}: redundant, inside {cover[0]} ({cover[1]})")
            continue
        kept.append(c)
    if len(kept) > 64 and options.flavor == AZURE_V2:
        raise ApplyError(f"{len(kept)} CIDRs remain after the fixes; the agent accepts at most 64 per file",
                         input=ref, code="E706", hint="merge ranges into wider CIDRs")
    cidrs[:] = kept
    if not out.changes:
        out.notes.append(f"nothing to fix in {ref}")
    return link_local


def _link_local_origins(ctx: Context) -> tuple:
    view = ctx.others or ctx.view
    if view.config is None or view.config.masq_link_local.value is not True:
        return ()
    return view.config.masq_link_local.origins


def _misplaced(ctx: Context) -> list[tuple[str, str, list[str]]]:
    """``(configmap, key, cidrs)`` of agent configs under a name or key the agent does not read."""
    view = ctx.view
    ns = view.daemonset.namespace
    projected = {(f.configmap, f.key) for f in view.files}
    out = []
    for cm in ctx.snapshot.configmaps:
        if cm.namespace != ns:
            continue
        ref = f"{cm.namespace}/{cm.name}"
        looks = "ip-masq" in cm.name or cm.name == AKS_USER_CONFIGMAP
        if not looks or "reconciled" in cm.name:
            continue
        for key, text in sorted(cm.data.items()):
            if (ref, key) in projected:
                continue
            try:
                doc = decode_document(key, text.encode("utf-8"))
                fields, _ = apply_document(key, doc, view.options.flavor)
            except ConfigError:
                continue
            f = fields.get(CIDR_KEY)
            if f is None or not f.value:
                continue
            found = []
            for item in f.value:
                try:
                    net = parse_cidr(item.value)
                except CidrProblem:
                    continue
                if net.version == 6 and not view.options.enable_ipv6:
                    continue
                found.append(item.value)
            out.append((ref, key, found))
    return out


# --------------------------------------------------------------------------- warnings


def general_warnings(plan, snapshot: ClusterSnapshot) -> list[str]:

    out: list[str] = []
    mode = plan.mode
    overlay = getattr(mode, "name", None) in ("azure-cni-overlay", "cilium-overlay", "cilium-ebpf-host-routing")
    if plan.action in ("create", "update") and plan.name == AKS_USER_CONFIGMAP and not overlay:
        if plan.action == "create":
            out.append(f"MQ016 creating ConfigMap {plan.ref} blocks migrating this cluster to Azure CNI Overlay "
                       "while it exists (AKS refuses the migration); `masqctl apply --goal reset` removes it")
        else:
            out.append(f"MQ016 ConfigMap {plan.ref} exists and keeps blocking a migration to Azure CNI Overlay")
    if plan.action == "delete" and plan.name == AKS_USER_CONFIGMAP:
        out.append(f"deleting {plan.ref} returns the agent to AKS's reconciled config (and no longer blocks an "
                   "Overlay migration)")
    if plan.action != "none":
        period = plan.before.options.resync_interval if plan.before.options else 60
        out.append(f"the change reaches the agent after kubelet syncs the ConfigMap volume (up to about 1-2 "
                   f"minutes) plus one resync period ({period:g} s); verify waits for the nodes")
    if mode is not None:
        if mode.agent_decides is False and mode.snat_by != m.CILIUM_BPF:
            out.append(f"{mode.describe()}: the IP-MASQ-AGENT rules do not decide masquerading here, so this "
                       "change has little or no effect")
        elif mode.agent_decides is None and mode.snat_by == "unknown":
            out.append("cannot tell which engine masquerades pod traffic (" + ("; ".join(mode.missing[:2])
                       or "no evidence") + "): the predicted effect assumes the iptables agent")
    windows = sorted(n.name for n in snapshot.nodes if (n.os or "").lower() == "windows")
    if windows and plan.action != "none":
        out.append(f"Windows nodes ({', '.join(windows[:5])}) run no agent and ignore this ConfigMap")
    if plan.before.flag_error is not None:
        out.append(f"the agent refuses its own arguments ({plan.before.flag_error.one_line()}): it exits at start "
                   "whatever the ConfigMap says")
    for f in plan.flows:
        if f.kind == "imds" and f.before is True and f.after is False:
            out.append("IMDS (169.254.169.254) would see pod IPs and refuse them: it answers only the VM's own "
                       "address (managed identity and metadata break)")
        if f.kind == "internet" and f.before is True and f.after is False:
            out.append(f"internet traffic ({f.dst}) would leave with pod IPs: Azure's outbound (load balancer, NAT "
                       "gateway) then drops it unless a firewall translates it")
    if plan.action != "none" and any(p.waiting_reason == "CrashLoopBackOff" for p in snapshot.pods):
        crashing = sorted(p.name for p in snapshot.pods if p.waiting_reason == "CrashLoopBackOff")
        out.append(f"agent pods are crash-looping now ({', '.join(crashing[:5])}); verify reports whether they "
                   "recover")
    return out
