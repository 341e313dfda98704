"""Plan a change of the user ConfigMap (``masqctl apply``): pure, from a snapshot.

A plan says exactly what would be written and what it would do:

* the new user ConfigMap (the exact object YAML: unrelated keys, labels and annotations kept, the
  conventional labels set), or its deletion;
* the effective config before and after, every CIDR with the ConfigMap key and line it comes from;
* the agent's ``IP-MASQ-AGENT`` rules before and after (``masqctl.engine.render``);
* a verdict table for representative flows (each peered VNet, the service CIDR, the internet,
  IMDS): masqueraded or not, before and after, by which rule;
* warnings (overlay migration, timing, engines that bypass the agent) and the resourceVersion the
  plan was made against;
* ``refused``: ranges a goal derived and refused as unsafe (E707; the safe ones are still planned);
* ``unsafe``: ranges the plan newly puts in the user file although they are unsafe (what MQ009 calls
  an error, or link-local/IMDS): only explicit edits get here, and the CLI writes such a plan only
  with ``--allow-unsafe`` (``check_unsafe``).

The new file is validated exactly as the agent flavour would (the engine, through
``agentconfig.view_of`` on the planned snapshot); a config the agent would refuse raises the
agent's ``ConfigError`` (named by ConfigMap key and line) and nothing is planned for writing.

Goals (``recommend.py`` decides the CIDRs): ``preserve-source-ip``, ``fix``, ``reset``; explicit
``--add``/``--remove``/``--from-file``/``--from-backup``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field

from masqctl.analysis import recommend
from masqctl.analysis.agentconfig import (AKS_RECONCILED_CONFIGMAP, AgentConfigView, ConfigFile, agent_configs,
                                          primary_agent, view_of)
from masqctl.analysis.findings import agent_unknown
from masqctl.analysis.cilium import DNS_IMDS_CONFIGMAP, USER_CONFIGMAP, BpfContext, cilium_facts
from masqctl.analysis.dataplanes.cilium_bpf import bpf_decision
from masqctl.analysis.inspect import inspect
from masqctl.analysis.mode import detect_mode
from masqctl.analysis.network import network_map
from masqctl.analysis.recommend import unsafe_reasons
from masqctl.analysis.userconfig import CONVENTIONAL_LABELS, configmap_object, to_yaml, with_conventional_labels
from masqctl.cluster.model import ClusterSnapshot, ConfigMap
from masqctl.engine import EffectiveConfig, RuleSet
from masqctl.engine.cilium import MapEntry
from masqctl.engine.model import CILIUM_FLAVORS
from masqctl.errors import ApplyError, ConfigError, UsageError
from masqctl.netfilter.dump import parse_dump
from masqctl.netfilter.evaluate import Evaluator
from masqctl.netfilter.facts import Address, NodeFacts
from masqctl.netfilter.walk import Packet

GOALS = ("preserve-source-ip", "fix", "reset")
IMDS = "169.254.169.254"
INTERNET_PROBES = ("8.8.8.8", "1.1.1.1", "9.9.9.9")


@dataclass(frozen=True)
class FileInput:
    """``--from-file``: the bytes of a config file (the CLI reads it; the plan validates it)."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Replacement:
    """``--from-backup``: the whole ConfigMap as it should be again (``data`` None: absent)."""

    source: str
    data: dict[str, str] | None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyRequest:
    goal: str | None = None
    to: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    from_file: FileInput | None = None
    replacement: Replacement | None = None

    def describe(self) -> str:
        parts = []
        if self.goal:
            parts.append(f"--goal {self.goal}" + "".join(f" --to {t}" for t in self.to))
        parts += [f"--add {c}" for c in self.add] + [f"--remove {c}" for c in self.remove]
        if self.from_file:
            parts.append(f"--from-file {self.from_file.name}")
        if self.replacement:
            parts.append(f"--from-backup {self.replacement.source}")
        return " ".join(parts)


@dataclass(frozen=True)
class Flow:
    """One representative flow of the verdict table, before and after."""

    label: str
    src: str
    dst: str
    kind: str
    before: bool | None          # masqueraded? None: cannot be decided
    after: bool | None
    before_rule: str | None       # the deciding rule, with where its CIDR comes from
    after_rule: str | None
    note: str | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def to_dict(self) -> dict:
        return {"label": self.label, "kind": self.kind, "src": self.src, "dst": self.dst,
                "masqueraded_before": self.before, "masqueraded_after": self.after, "changed": self.changed,
                "rule_before": self.before_rule, "rule_after": self.after_rule, "note": self.note}


@dataclass(frozen=True)
class Unsafe:
    """A range the plan adds to the user file although keeping pod IPs toward it breaks traffic."""

    cidr: str
    where: str                    # the ConfigMap key and line it would be written to
    reasons: tuple[str, ...]

    @property
    def finding(self) -> str | None:
        return "MQ009" if any(r.startswith("MQ009") for r in self.reasons) else None

    def describe(self) -> str:
        return f"{self.cidr} ({self.where}): " + "; ".join(self.reasons)

    def to_dict(self) -> dict:
        return {"cidr": self.cidr, "from": self.where, "severity": "error", "finding": self.finding,
                "reasons": list(self.reasons)}


@dataclass
class Plan:
    """What ``apply`` would write, and what it would change."""

    request: ApplyRequest
    snapshot_source: str
    collected_at: str | None
    namespace: str
    name: str                          # the user ConfigMap
    key: str                           # its data key the agent reads
    action: str                        # "create" | "update" | "delete" | "none"
    resource_version: str | None       # of the user ConfigMap the plan was made against (None: absent)
    current: ConfigMap | None
    new_object: dict | None            # the ConfigMap to write (None: delete / nothing)
    new_text: str | None               # the new data[key]
    before: AgentConfigView
    after: AgentConfigView
    mode: object | None                # masqctl.analysis.mode.MasqMode
    flows: list[Flow] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)     # what the plan does, one line each
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    planned_snapshot: ClusterSnapshot | None = None
    other_agents: list[AgentConfigView] = field(default_factory=list)
    refused: list = field(default_factory=list)          # recommend.Refusal: derived by a goal, refused (E707)
    unsafe: list[Unsafe] = field(default_factory=list)   # added explicitly; written only with --allow-unsafe
    introduced: list = field(default_factory=list)       # findings.Finding the change would bring (inspect's)
    resolved: list = field(default_factory=list)         # findings.Finding the change would make go away
    changed_findings: list = field(default_factory=list)  # reported before and after, with a new detail

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def nothing_to_do(self) -> bool:
        return self.action == "none"

    def rules_before(self) -> RuleSet | None:
        return self.before.rules()

    def rules_after(self) -> RuleSet | None:
        return self.after.rules()

    def new_yaml(self) -> str | None:
        return to_yaml(self.new_object) if self.new_object is not None else None

    def current_object(self) -> dict | None:
        """The user ConfigMap as it is now, with the fields the plan writes (None: absent)."""
        cur = self.current
        if cur is None:
            return None
        return configmap_object(cur.namespace, cur.name, data=cur.data, labels=cur.labels,
                                annotations=cur.annotations)

    def diff(self) -> str | None:
        """The change as ``kubectl diff`` shows it: a unified diff of the ConfigMap manifest, live
        before planned, each side named ``live/``/``planned/`` + ``v1.ConfigMap.NAMESPACE.NAME`` (an
        absent object is an empty file, as ``diff -N``). None when nothing changes."""
        import difflib

        if self.nothing_to_do:
            return None
        before = to_yaml(self.current_object()) if self.current is not None else ""
        after = self.new_yaml() if self.new_object is not None else ""
        name = f"v1.ConfigMap.{self.namespace}.{self.name}"
        lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                     fromfile=f"live/{name}", tofile=f"planned/{name}")
        text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        return text or None

    def to_dict(self) -> dict:
        def config(view: AgentConfigView) -> dict | None:
            if view.config is None:
                return None
            return config_dict(view, view.config)

        def rules(view: AgentConfigView) -> dict | None:
            rs = view.rules()
            if rs is None:
                return None
            return {f"ipv{f.family}": {"chain": f.chain, "payload": f.payload(), "jump": f.jump.text,
                                       "rules": [r.text for r in f.rules]} for f in rs.families()}

        return {
            "request": self.request.describe(),
            "snapshot": {"source": self.snapshot_source, "collected_at": self.collected_at},
            "configmap": {"namespace": self.namespace, "name": self.name, "key": self.key},
            "action": self.action,
            "resource_version": self.resource_version,
            "daemonset": self.before.daemonset.ref,
            "flavor": self.before.options.flavor if self.before.options else None,
            "mode": self.mode.to_dict() if self.mode is not None else None,
            "changes": list(self.changes),
            "new_configmap": self.new_object,
            "new_configmap_yaml": self.new_yaml(),
            "diff": self.diff(),
            "effective_before": config(self.before),
            "effective_after": config(self.after),
            "error_before": self.before.error.one_line() if self.before.error is not None else None,
            "rules_before": rules(self.before),
            "rules_after": rules(self.after),
            "flows": [f.to_dict() for f in self.flows],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "refused": [r.to_dict() for r in self.refused],
            "unsafe": [u.to_dict() for u in self.unsafe],
            "findings": {"introduced": [f.to_dict() for f in self.introduced],
                         "resolved": [f.to_dict() for f in self.resolved],
                         "changed": [f.to_dict() for f in self.changed_findings]},
        }


def config_dict(view: AgentConfigView, config: EffectiveConfig) -> dict:
    return {
        "nonMasqueradeCIDRs": [{"cidr": c.cidr, "from": [view.source_of(o) for o in c.origins]}
                               for c in config.non_masquerade_cidrs],
        "masqLinkLocal": {"value": config.masq_link_local.value,
                          "from": [view.source_of(o) for o in config.masq_link_local.origins]},
        "masqLinkLocalIPv6": {"value": config.masq_link_local_ipv6.value,
                              "from": [view.source_of(o) for o in config.masq_link_local_ipv6.origins]},
        "defaults_used": config.defaults_used,
        "warnings": [view.where(w.file, w.line) + f": {w.code} {w.message}" for w in config.warnings],
    }


# --------------------------------------------------------------------------- the user file


def user_file(view: AgentConfigView) -> ConfigFile:
    """The file of the user ConfigMap among the files the agent reads."""
    aks_owned = (AKS_RECONCILED_CONFIGMAP, DNS_IMDS_CONFIGMAP)
    candidates = [f for f in view.files if f.read and f.configmap.split("/", 1)[-1] not in aks_owned]
    if not candidates and any(f.configmap.split("/", 1)[-1] == DNS_IMDS_CONFIGMAP for f in view.files):
        # pod subnet with eBPF host routing: cilium-agent mounts only the AKS-owned DNS/IMDS config (MQ021)
        raise ApplyError(f"DaemonSet {view.daemonset.ref} gives Cilium only the AKS-owned ConfigMap "
                         f"{DNS_IMDS_CONFIGMAP} (pod subnet with eBPF host routing: only Azure DNS and IMDS are "
                         f"masqueraded); the user ConfigMap {USER_CONFIGMAP} is not mounted, so writing it changes "
                         "nothing, and AKS reconciles its own ConfigMap back", input=f"DaemonSet {view.daemonset.ref}",
                         code="E709", hint="pod IPs are kept toward every destination but DNS and IMDS here; nothing "
                                           "to change with ip-masq ConfigMaps (see MQ021)")
    if not candidates:
        raise ApplyError(f"DaemonSet {view.daemonset.ref} projects no user ConfigMap into its config folder "
                         "(only AKS's reconciled one), so no ConfigMap masqctl may edit changes it",
                         input=f"DaemonSet {view.daemonset.ref}", code="E709",
                         hint="this is not the AKS projection; change the DaemonSet's own ConfigMap by hand")
    preferred = [f for f in candidates if f.path == "ip-masq-agent"]
    return (preferred or candidates)[0]


def _split(ref: str) -> tuple[str, str]:
    ns, _, name = ref.partition("/")
    return ns, name


def _with_configmap(snapshot: ClusterSnapshot, namespace: str, name: str, cm: ConfigMap | None) -> ClusterSnapshot:
    kept = tuple(c for c in snapshot.configmaps if not (c.namespace == namespace and c.name == name))
    return dataclasses.replace(snapshot, configmaps=kept + ((cm,) if cm is not None else ()))


# --------------------------------------------------------------------------- planning


def plan_apply(snapshot: ClusterSnapshot, request: ApplyRequest) -> Plan:
    """The plan for ``request`` against ``snapshot``. Raises ``ApplyError``/``ConfigError``/``UsageError``
    when the change is refused (nothing is to be written then)."""

    check_request(request)
    view = primary_agent(snapshot)
    if view is None and agent_unknown(snapshot):
        raise ApplyError(f"the agent is unknown: {agent_unknown(snapshot)}, so which ConfigMap it reads, and whether "
                         "it would accept a change, cannot be told", input=snapshot.source, code="E709",
                         hint="add the agent's DaemonSets (kubectl -n kube-system get daemonsets -o yaml > "
                              "daemonsets.yaml in the bundle), or plan against the live cluster")
    if view is None:
        raise ApplyError("no masquerade agent DaemonSet is in the snapshot, so no ConfigMap decides masquerading",
                         input=snapshot.source, code="E709",
                         hint="check the namespace (-n) and that the cluster runs azure-ip-masq-agent")
    if view.options is None:
        raise ApplyError(f"the agent of DaemonSet {view.daemonset.ref} ({view.daemonset.image}) is not one masqctl "
                         "can model, so a change cannot be validated", input=f"DaemonSet {view.daemonset.ref}",
                         code="E709")
    if not view.decidable:
        raise ApplyError("the current config cannot be computed: " + "; ".join(view.notes),
                         input=f"DaemonSet {view.daemonset.ref}", code="E709",
                         hint="gather the ConfigMaps of the agent's namespace (they are needed to plan)")
    ufile = user_file(view)
    ns, name = _split(ufile.configmap)
    current = snapshot.configmap(name, ns)
    mode = detect_mode(snapshot)
    others = view_of(_with_configmap(snapshot, ns, name, None), view.daemonset)
    ctx = recommend.Context(snapshot, view, ufile, current, mode, others)
    outcome = recommend.decide(ctx, request)

    plan = Plan(request, snapshot.source, snapshot.collected_at, ns, name, ufile.key, "none",
                current.resource_version if current is not None else None, current, None, None, view, view, mode)
    plan.changes += outcome.changes
    plan.notes += outcome.notes
    if request.goal == "fix" and not outcome.changes:
        plan.notes += elsewhere_fixes(snapshot)
    plan.warnings += outcome.warnings
    plan.refused += outcome.refused

    new_cm: ConfigMap | None
    if outcome.delete:
        if current is None:
            plan.notes.append(f"ConfigMap {ns}/{name} does not exist: nothing to delete")
            return _finish(plan, snapshot, current)
        plan.action = "delete"
        others = sorted(k for k in current.data if k != ufile.key) + sorted(current.binary_keys)
        if others:
            plan.warnings.append(f"ConfigMap {ns}/{name} also holds key(s) {', '.join(others)}; deleting it "
                                 "deletes them too (the backup keeps them)")
        new_cm = None
    elif outcome.replacement is not None:
        rep = outcome.replacement
        if rep.data is None:
            if current is None:
                plan.notes.append(f"the backup says ConfigMap {ns}/{name} did not exist, and it does not: "
                                  "nothing to do")
                return _finish(plan, snapshot, current)
            plan.action = "delete"
            new_cm = None
        else:
            new_cm = ConfigMap(ns, name, dict(rep.data), dict(rep.labels), dict(rep.annotations),
                               current.resource_version if current else None)
            plan.action = "create" if current is None else "update"
            if current is not None and current.data == new_cm.data and current.labels == new_cm.labels \
                    and current.annotations == new_cm.annotations:
                plan.action = "none"
                plan.notes.append(f"ConfigMap {ns}/{name} already holds what the backup holds: nothing to do")
                return _finish(plan, snapshot, current)
    else:
        text = outcome.text
        if text is None:
            return _finish(plan, snapshot, current)
        data = dict(current.data) if current is not None else {}
        for k in outcome.drop_data_keys:
            data.pop(k, None)
        data[ufile.key] = text
        labels, label_notes = with_conventional_labels(dict(current.labels) if current is not None else {})
        annotations = dict(current.annotations) if current is not None else {}
        new_cm = ConfigMap(ns, name, data, labels, annotations,
                           current.resource_version if current is not None else None,
                           current.binary_keys if current is not None else ())
        if current is not None and current.data == data and current.labels == labels:
            plan.notes.append(f"ConfigMap {ns}/{name} already holds this: nothing to do")
            return _finish(plan, snapshot, current)
        plan.action = "create" if current is None else "update"
        plan.notes += label_notes
        if current is not None and current.labels != labels:
            added = sorted(k for k in CONVENTIONAL_LABELS if current.labels.get(k) != labels[k])
            if added:
                plan.changes.append("set label(s) " + ", ".join(f"{k}={labels[k]}" for k in added))

    planned = _with_configmap(snapshot, ns, name, new_cm)
    after = view_of(planned, view.daemonset)
    if after.error is not None:
        err = after.error
        raise ConfigError(f"the agent would refuse the new config: {err.message}", file=err.file, line=err.line,
                          key=err.key, value=err.value, hint=err.hint, code=err.code)
    # every other agent that reads the same ConfigMap must accept it too
    for other in agent_configs(planned):
        if other.daemonset.ref == view.daemonset.ref:
            continue
        if any(f.configmap == ufile.configmap and f.read for f in other.files):
            plan.other_agents.append(other)
            if other.error is not None:
                err = other.error
                raise ConfigError(f"DaemonSet {other.daemonset.ref} would refuse the new config: {err.message}",
                                  file=err.file, line=err.line, key=err.key, value=err.value, hint=err.hint,
                                  code=err.code)
    plan.after = after
    _check_ranges(plan, view, after, mode, snapshot, ufile.path)
    # the cluster as it will be: the nodes' captures show the old rules, so they are not carried over
    missing = {k: v for k, v in planned.missing.items() if not k.startswith("captures")}
    if planned.captures:
        missing["captures"] = "planned snapshot: the nodes' rules after the change are predicted, not captured"
    plan.planned_snapshot = dataclasses.replace(planned, captures={}, missing=missing)
    plan.introduced, plan.resolved, plan.changed_findings = findings_change(snapshot, plan.planned_snapshot)
    if new_cm is not None:
        binary = None
        plan.new_object = configmap_object(ns, name, data=new_cm.data, labels=new_cm.labels,
                                           annotations=new_cm.annotations, binary_data=binary)
        plan.new_text = new_cm.data.get(ufile.key)
        if new_cm.binary_keys:
            plan.notes.append(f"binaryData key(s) {', '.join(new_cm.binary_keys)} are kept as they are on the "
                              "server (not shown)")
    if after.config is not None and view.config is not None and after.config.warnings:
        fresh = [w for w in after.config.warnings if w.file == ufile.path]
        for w in fresh:
            plan.warnings.append(f"{after.where(w.file, w.line)}: {w.code} {w.message}")
    return _finish(plan, snapshot, current)


def _check_ranges(plan: Plan, before: AgentConfigView, after: AgentConfigView, mode, snapshot: ClusterSnapshot,
                  path: str) -> None:
    """Mark the unsafe ranges of the new user file: new ones (``plan.unsafe``, they need --allow-unsafe)
    and ones already in effect (a warning: the plan keeps them)."""

    if after.config is None:
        return
    had = {c.cidr for c in before.config.non_masquerade_cidrs} if before.config is not None else set()
    nmap = network_map(snapshot)
    for entry in after.config.non_masquerade_cidrs:
        origins = [o for o in entry.origins if o.kind == "file" and o.file == path]
        if not origins:
            continue
        reasons = unsafe_reasons(entry.cidr, mode, nmap)
        if not reasons:
            continue
        item = Unsafe(entry.cidr, after.source_of(origins[0]), tuple(reasons))
        if entry.cidr in had:
            plan.warnings.append(f"{item.cidr} is already in effect and stays ({item.describe()}); "
                                 f"`--remove {item.cidr}` takes it out")
        else:
            plan.unsafe.append(item)


def check_unsafe(plan: Plan, allow_unsafe: bool) -> None:
    """Refuse (E707) a plan that adds unsafe ranges unless the operator said ``--allow-unsafe``."""
    if not plan.unsafe or allow_unsafe:
        return
    raise ApplyError("nothing was written: the plan adds " + " | ".join(u.describe() for u in plan.unsafe),
                     input=plan.request.describe() or "apply", code="E707",
                     hint="if this is really meant (e.g. a peered network that uses public addresses privately), "
                          "re-run with --yes --allow-unsafe; otherwise list only the ranges whose hosts route "
                          "pod IPs back")


def elsewhere_fixes(snapshot: ClusterSnapshot) -> list[str]:
    """For ``--goal fix`` with nothing to fix: the findings inspect reports that another command
    changes (``Finding.command``), so plan and inspect point the same way."""
    return [f"{f.code} ({f.title}) is not what --goal fix changes: `{f.command}`"
            for f in inspect(without_captures(snapshot)).findings if f.command and "--goal fix" not in f.command]


def findings_change(before: ClusterSnapshot, after: ClusterSnapshot) -> tuple[list, list, list]:
    """(introduced, resolved, changed): inspect's findings on ``after`` whose code and severity
    ``before`` does not report, those of ``before`` that ``after`` no longer reports, and those
    reported in both whose detail differs (shown as they would read after the change). Both
    snapshots are judged without node captures: after a change the nodes' rules are predicted, not
    captured (drift is what verify watches), so the captures would only make every change look
    like drift."""
    def findings(snapshot: ClusterSnapshot) -> list:
        return list(inspect(without_captures(snapshot)).findings)

    old, new = findings(before), findings(after)
    old_keys, new_keys = {(f.code, f.severity) for f in old}, {(f.code, f.severity) for f in new}
    old_docs = [f.to_dict() for f in old]
    introduced = [f for f in new if (f.code, f.severity) not in old_keys]
    resolved = [f for f in old if (f.code, f.severity) not in new_keys]
    changed = [f for f in new if (f.code, f.severity) in old_keys and f.to_dict() not in old_docs]
    return introduced, resolved, changed


def without_captures(snapshot: ClusterSnapshot) -> ClusterSnapshot:
    """The snapshot with its node captures set aside, said the same way whatever it had."""
    missing = {k: v for k, v in snapshot.missing.items() if not k.startswith("captures")}
    missing["captures"] = "planned snapshot: the nodes' rules after the change are predicted, not captured"
    return dataclasses.replace(snapshot, captures={}, missing=missing)


def check_introduced(plan: Plan, force: bool, allow_unsafe: bool = False) -> None:
    """Refuse (E713) a plan that would introduce an error-severity finding, unless ``force``.
    ``allow_unsafe`` already accepts the findings of the unsafe ranges the operator named (MQ009)."""
    accepted = {u.finding for u in plan.unsafe if u.finding} if allow_unsafe else set()
    errors = [f for f in plan.introduced if f.severity == "error" and f.code not in accepted]
    if not errors or force:
        return
    raise ApplyError("nothing was written: the change would introduce " + " | ".join(
        f"{f.code} {f.title}" for f in errors), input=plan.request.describe() or "apply", code="E713",
        hint="`masqctl inspect` would report this after the change; re-run with --force to write it anyway")


def check_request(request: ApplyRequest) -> None:
    """Usage rules: one source of change, and options that fit it (E250)."""
    if request.goal is not None and request.goal not in GOALS:
        raise UsageError(f"unknown goal {request.goal!r}; use one of {', '.join(GOALS)}", input="--goal",
                         code="E250")
    explicit = bool(request.add or request.remove)
    sources = [s for s, on in (("--goal", request.goal is not None), ("--from-file", request.from_file is not None),
                                ("--from-backup", request.replacement is not None)) if on]
    if len(sources) > 1:
        raise UsageError(f"{' and '.join(sources)} cannot be combined: each says what the whole ConfigMap should be",
                         input=" ".join(sources), code="E250")
    if explicit and (request.from_file is not None or request.replacement is not None or request.goal == "reset"):
        raise UsageError(f"--add/--remove cannot be combined with {sources[0] if sources else '--goal reset'}",
                         input="--add/--remove", code="E250")
    if request.to and request.goal != "preserve-source-ip":
        raise UsageError("--to only applies to --goal preserve-source-ip", input="--to", code="E250")
    if not sources and not explicit:
        raise UsageError("nothing to plan: give --goal preserve-source-ip|fix|reset, --add CIDR, --remove CIDR, "
                         "--from-file FILE or --from-backup FILE", input="apply", code="E250")


def _finish(plan: Plan, snapshot: ClusterSnapshot, current: ConfigMap | None) -> Plan:

    if plan.planned_snapshot is None:
        plan.planned_snapshot = snapshot
    plan.flows = flows(plan.before, plan.after, snapshot)
    plan.warnings += recommend.general_warnings(plan, snapshot)
    return plan


# --------------------------------------------------------------------------- verdict table


def _evaluate_cilium(view: AgentConfigView, src: str, dst: str, node_ip: str, kind: str,
                     snapshot: ClusterSnapshot) -> tuple[bool | None, str | None]:
    """The flow under Cilium's BPF masquerade, for the map this config loads (bpf/lib/nat.h order)."""
    if view.config is None:
        return None, (f"unknown: {view.error.code}: Cilium keeps the map it has" if view.error is not None
                      else "no config")
    if kind == "service-cidr":
        return None, ("unknown: Cilium translates a service address to a backend before masquerading "
                      "(kube-proxy replacement); explain a backend pod's address instead")
    facts = cilium_facts(snapshot)
    nets = [ipaddress.ip_network(c) for c in view.config.cidrs()]

    def lookup(ip):
        a = ipaddress.ip_address(ip)
        best = max((n for n in nets if n.version == a.version and a in n), key=lambda n: n.prefixlen, default=None)
        return None if best is None else MapEntry(str(best), best.version, "config")

    node_ips = {x.internal_ip for x in snapshot.nodes if x.internal_ip}
    ctx = BpfContext(node_ip=node_ip, src_local_endpoint=True, native_routing_cidr=facts.native_routing_cidr,
                     routing_mode=facts.routing_mode, remote_node_masquerade=facts.remote_node_masquerade,
                     dst_remote_node=(dst in node_ips and dst != node_ip) if snapshot.nodes else None,
                     egress_gateway=False, ip_masq_agent=facts.ip_masq_agent is not False, lookup=lookup)
    d = bpf_decision(src, dst, ctx)
    step = d.deciding
    why = f"Cilium BPF: {step.check}" + (f" ({step.detail})" if step and step.detail else "") if step else d.reason
    return d.masqueraded, why


def _evaluate(view: AgentConfigView, src: str, dst: str, node_ip: str, kind: str = "",
              snapshot: ClusterSnapshot | None = None) -> tuple[bool | None, str | None]:
    if view.options is not None and view.options.flavor in CILIUM_FLAVORS and snapshot is not None:
        return _evaluate_cilium(view, src, dst, node_ip, kind, snapshot)

    rules = view.rules()
    if rules is None:
        return None, (f"unknown: the agent exits on this config ({view.error.code}), nodes keep whatever rules "
                      "they had" if view.error is not None else "no rules")
    fam = rules.ipv4 if ipaddress.ip_address(dst).version == 4 else rules.ipv6
    if fam is None:
        return None, "IPv6 is not enabled on the agent (no ip6tables rules)"
    text = "\n".join(["*nat", ":POSTROUTING ACCEPT [0:0]", f":{fam.chain} - [0:0]", fam.jump.text,
                      *(r.text for r in fam.rules), "COMMIT"]) + "\n"
    dump = parse_dump(text, "plan")
    nip = ipaddress.ip_address(node_ip)
    facts = NodeFacts(addresses=[Address(nip)], node_ip=nip)
    ev = Evaluator(dump, facts).evaluate(Packet(ipaddress.ip_address(src), ipaddress.ip_address(dst)))
    step = ev.primary.deciding if ev.agreed else None
    why = None
    if step is not None:
        if step.chain == fam.chain and step.index is not None and 0 < step.index <= len(fam.rules):
            rule = fam.rules[step.index - 1]
            if rule.cidr is not None:
                why = f"RETURN -d {rule.cidr.cidr} ({view.source_of(rule.cidr.origins[0])})"
            elif rule.kind == "link-local":
                why = "RETURN link-local (masqLinkLocal is false)"
            else:
                why = "MASQUERADE (no exception matches)"
        else:
            why = step.text
    elif ev.masqueraded is False and ev.primary.kind == "local":
        why = "local delivery"
    return ev.masqueraded, why


def representative_flows(snapshot: ClusterSnapshot) -> tuple[list[tuple[str, str, str]], str, str, list[str]]:
    """``([(label, kind, dst)], src, node_ip, notes)`` for the verdict table."""

    notes: list[str] = []
    nmap = network_map(snapshot)
    dests: list[tuple[str, str, str]] = []
    seen_nets = set()
    for p in nmap.all_places():
        if p.kind != "peered-vnet" or p.network is None or p.network.version != 4:
            continue
        if (p.peering.name if p.peering else None, p.cidr) in seen_nets:
            continue
        seen_nets.add((p.peering.name if p.peering else None, p.cidr))
        dests.append((p.label, "peered-vnet", str(_host(p.network))))
    if not dests:
        notes.append("no peered VNet is known" + (f" ({'; '.join(nmap.missing[:2])})" if nmap.missing else ""))
    services = [p for p in nmap.all_places() if p.kind == "service-cidr" and p.network is not None
                and p.network.version == 4]
    np_ = snapshot.azure.cluster.network_profile if snapshot.azure and snapshot.azure.cluster else None
    if services:
        dns = np_.dns_service_ip if np_ is not None and np_.dns_service_ip else None
        dst = dns if dns and ipaddress.ip_address(dns) in services[0].network else str(_host(services[0].network, 10))
        dests.append((services[0].label, "service-cidr", dst))
    else:
        notes.append("the service CIDR is not known (no AKS network profile): no service flow")
    internet = next((ip for ip in INTERNET_PROBES if nmap.places_of_ip(ip)[0].kind == "internet"), INTERNET_PROBES[0])
    dests.append((f"internet ({internet})", "internet", internet))
    dests.append(("Azure IMDS (169.254.169.254)", "imds", IMDS))
    src, src_note = _pod_source(snapshot)
    if src_note:
        notes.append(src_note)
    node_ip = next((n.internal_ip for n in snapshot.nodes if n.internal_ip and ":" not in n.internal_ip), None)
    if node_ip is None:
        node_ip = "192.0.2.1"
        notes.append("no node address is known: the node is taken to be 192.0.2.1 (only decides which source a "
                     "masqueraded flow shows)")
    return dests, src, node_ip, notes


def _host(net, offset: int = 4):
    if net.num_addresses > offset + 1:
        return net.network_address + offset
    return net.network_address


def _pod_source(snapshot: ClusterSnapshot) -> tuple[str, str | None]:
    for pod in snapshot.workloads:
        if pod.host_network:
            continue
        for ip in pod.pod_ips:
            try:
                if ipaddress.ip_address(ip).version == 4:
                    return ip, None
            except ValueError:
                continue
    for n in snapshot.nodes:
        for cidr in n.pod_cidrs:
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            if net.version == 4:
                return str(_host(net, 10)), None
    return "10.244.0.10", ("no pod IP is known: flows start at 10.244.0.10 (the agent's rules match the "
                           "destination only, so the verdicts do not depend on it)")


def flows(before: AgentConfigView, after: AgentConfigView, snapshot: ClusterSnapshot) -> list[Flow]:
    dests, src, node_ip, _ = representative_flows(snapshot)
    out = []
    for label, kind, dst in dests:
        b, bwhy = _evaluate(before, src, dst, node_ip, kind, snapshot)
        a, awhy = _evaluate(after, src, dst, node_ip, kind, snapshot)
        out.append(Flow(label, src, dst, kind, b, a, bwhy, awhy))
    return out


def flow_notes(snapshot: ClusterSnapshot) -> list[str]:
    return representative_flows(snapshot)[3]
