"""The config each agent DaemonSet really runs, computed from the DaemonSet's real projection.

A DaemonSet mounts ConfigMaps into the agent's config folder (``/etc/config`` on every
flavour): each ``configMap`` volume source (plain or one source of a ``projected`` volume)
puts some keys there as files (``items``: key ``K`` becomes file ``path``; no items: every key
becomes a file of its own name). The agent then reads the files its flavour reads (azure-v2:
every name starting with ``ip-masq``; upstream/tke: exactly ``ip-masq-agent``) and the engine
merges them exactly as the agent does. So a ConfigMap under any other name or key is simply
never seen, and an error points back to the ConfigMap key and line the operator must fix.

The agent's options come from the container's command and args, parsed the way Go's
``flag`` package parses them (``--enable-ipv6``, ``-enable-ipv6=true``, ``--resync-interval 60``),
with the flags the Go agent of that flavour defines; a flag it does not define makes the
real agent exit at start, which is recorded as ``flag_error``.

masqctl's own node-agent (kind ``masqctl-node-agent``) is read with its own flag definitions
(``masqctl.agent.flags``): its flavour (``--flavor``), its config folder
(``--config-dir``, so the mount read is the one at that path) and what it does with an invalid
config (``--on-invalid-config keep``: it keeps the last good rules instead of exiting).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from masqctl.agent.flags import ON_INVALID, check_start, is_question, options_from
from masqctl.cluster.model import AgentDaemonSet, ClusterSnapshot, ConfigMount, MissingKey
from masqctl.cluster.recognise import KIND_NODE_AGENT, node_agent_flags
from masqctl.configfolder import (CILIUM_FLAVORS, DEFAULT_CONFIG_DIR, FLAVORS, PREFIX_FLAVORS, UPSTREAM_FILE,
                                  V2_PREFIX)
from masqctl.engine import (AZURE_V2, DEFAULT_CHAIN, AgentOptions, ConfigSource, EffectiveConfig,
                            Origin, RuleSet, check_chain_name, effective_config, parse_to_ports, render)
from masqctl.errors import ConfigError, MasqctlError, UsageError
from masqctl.goflags import KLOG_FLAGS, FlagSet

CONFIG_DIR = "/etc/config"
AKS_AGENT = "azure-ip-masq-agent"
# AKS's projection (agent-semantics.md): the user's ConfigMap and key, and the reconciled one.
AKS_USER_CONFIGMAP = "azure-ip-masq-agent-config"
AKS_USER_KEY = "ip-masq-agent"
AKS_RECONCILED_CONFIGMAP = "azure-ip-masq-agent-config-reconciled"
AKS_RECONCILED_KEY = "ip-masq-agent-reconciled"


@dataclass(frozen=True)
class ConfigFile:
    """One file the agent would see in its config folder."""

    path: str                # file name in the mount, e.g. "ip-masq-agent-reconciled"
    configmap: str           # "kube-system/azure-ip-masq-agent-config-reconciled"
    key: str                 # data key projected to ``path``
    text: str | None         # None: the ConfigMap or key does not exist (optional source)
    read: bool               # the flavour reads this file
    optional: bool = True    # the volume source is optional (a missing one does not block the pod)

    @property
    def present(self) -> bool:
        return self.text is not None

    def describe(self) -> str:
        return f"ConfigMap {self.configmap} key {self.key}"

    def to_dict(self) -> dict:
        return {"path": self.path, "configmap": self.configmap, "key": self.key, "present": self.present,
                "read": self.read, "optional": self.optional}


@dataclass(frozen=True)
class AgentConfigView:
    """What one agent DaemonSet runs: its options, the files it sees, the merged config or the
    exact error it would fail with."""

    daemonset: AgentDaemonSet
    options: AgentOptions | None
    files: tuple[ConfigFile, ...]
    config: EffectiveConfig | None
    error: ConfigError | None
    notes: tuple[str, ...] = ()
    flag_error: MasqctlError | None = None     # a flag the real agent refuses at start (it exits)
    argv: tuple[str, ...] = ()                  # the words parsed as flags
    mount: ConfigMount | None = None            # the mount that fills the config folder
    decidable: bool = True                      # False: evidence is missing to compute the config
    config_dir: str = CONFIG_DIR                # the folder the agent reads (node-agent: --config-dir)
    on_invalid_config: str | None = None        # node-agent: "keep" or "exit"; None: a Go agent (by flavour)

    # -- provenance ---------------------------------------------------------------------
    def file(self, path: str | None) -> ConfigFile | None:
        for f in self.files:
            if f.path == path:
                return f
        return None

    def where(self, file: str | None, line: int | None = None) -> str:
        """A config file (and line) as the operator finds it: the ConfigMap key it comes from."""
        f = self.file(file)
        text = f.describe() if f is not None else (file or "?")
        return text + (f" line {line}" if line else "")

    def source_of(self, origin: Origin) -> str:
        """``ConfigMap kube-system/azure-ip-masq-agent-config key ip-masq-agent line 3``, or the
        default/flag an origin names."""
        if origin.kind == "file":
            return self.where(origin.file, origin.line)
        return origin.describe()

    def rules(self) -> RuleSet | None:
        """The rules the agent writes for this config (``masqctl.engine.render``)."""
        if self.config is None or self.options is None or self.options.flavor in CILIUM_FLAVORS:
            return None          # Cilium loads a BPF map: no iptables rules
        return render(self.config, self.options)

    def invalid_config_consequence(self) -> str | None:
        """What the agent does with a config it refuses, when its flags decide it (masqctl's
        node-agent, ``--on-invalid-config``); None for the Go agents (their flavour decides)."""
        crash = "its pods crash-loop on every node; rules already in the kernel stay as they were and new nodes get none."
        if self.daemonset.kind == KIND_NODE_AGENT and self.flag_error is not None:
            return "The node-agent exits at start on its arguments (status 2), so " + crash
        if self.on_invalid_config == "keep":
            return ("The node-agent runs with --on-invalid-config keep: it does not exit, keeps enforcing the last "
                    "good rules and reports not ready (/readyz); a pod that never read a valid config (a new node, "
                    "a restart) writes no rules.")
        if self.on_invalid_config == "exit":
            return "The node-agent runs with --on-invalid-config exit: it exits on it, so " + crash
        return None

    @property
    def chain(self) -> str:
        return self.options.masq_chain if self.options is not None else DEFAULT_CHAIN

    def to_dict(self) -> dict:
        ds = self.daemonset
        d = {
            "daemonset": ds.ref, "kind": ds.kind, "flavor": ds.flavor, "container": ds.container,
            "image": ds.image, "command": list(ds.command), "args": list(ds.args),
            "options": self.options.to_dict() if self.options is not None else None,
            "flag_error": self.flag_error.one_line() if self.flag_error is not None else None,
            "config_dir": self.config_dir, "on_invalid_config": self.on_invalid_config,
            "files": [f.to_dict() for f in self.files],
            "error": _error_dict(self.error) if self.error is not None else None,
            "notes": list(self.notes),
        }
        return d


def _error_dict(error: ConfigError) -> dict:
    return {"code": error.code, "message": error.message, "input": error.input, "line": error.line,
            "key": error.key, "hint": error.hint, "text": error.one_line()}


# --------------------------------------------------------------------------- flags


def go_flag_set(flavor: str) -> FlagSet:
    """The flags the Go agent of ``flavor`` defines (plus klog's), with their defaults."""
    fs = FlagSet(f"ip-masq-agent ({flavor})", "")
    fs.add("masq-chain", "str", DEFAULT_CHAIN, "")
    fs.add("nomasq-all-reserved-ranges", "bool", False, "")
    fs.add("enable-ipv6", "bool", False, "")
    if flavor == AZURE_V2:
        fs.add("resync-interval", "int", 60, "")
    else:
        fs.add("random-fully", "bool", True, "")
        fs.add("to-ports", "str", "", "")
    fs.add("v", "int", 0, "")
    fs.ignored.update(KLOG_FLAGS)
    return fs


def _argv(ds: AgentDaemonSet) -> tuple[tuple[str, ...], list[str]]:
    """The words the agent parses as flags, and notes on how they were found."""
    notes: list[str] = []
    if ds.command:
        prog = posixpath.basename(ds.command[0])
        if prog in ("sh", "bash", "ash", "dash") or (len(ds.command) > 1 and ds.command[1] == "-c"):
            notes.append(f"the container runs a shell ({' '.join(ds.command)}); its flags are read from the "
                         "words after the shell, which may not be what the shell passes on")
        words = tuple(ds.command[1:]) + tuple(ds.args)
    else:
        words = tuple(ds.args)
    return words, notes


def agent_options(ds: AgentDaemonSet) -> tuple[AgentOptions | None, MasqctlError | None, tuple[str, ...], list[str]]:
    """``(options, flag_error, argv, notes)`` for the DaemonSet's container."""
    if ds.kind == KIND_NODE_AGENT:
        return node_agent_setup(ds)[:4]
    argv, notes = _argv(ds)
    if ds.flavor in CILIUM_FLAVORS:
        # the merger's flags (-input, -output, -resync-interval, klog's) and cilium-agent's change no
        # verdict here; Cilium's own settings come from cilium-config (masqctl.analysis.cilium)
        return AgentOptions(flavor=ds.flavor), None, argv, notes
    if ds.flavor is None:
        notes.append(f"the agent ({ds.image or ds.container}) is not one masqctl can model; its config is not "
                     "computed")
        return None, None, argv, notes
    words = [w for w in argv]
    try:
        values = go_flag_set(ds.flavor).parse(words, stop_at_positional=True)
    except UsageError as exc:
        err = UsageError(f"the {ds.flavor} agent refuses its arguments and exits at start: {exc.message}",
                         input=f"DaemonSet {ds.ref} container {ds.container} args", code="E204")
        notes.append(err.message)
        return AgentOptions(flavor=ds.flavor), err, argv, notes
    try:
        options = AgentOptions(
            flavor=ds.flavor,
            enable_ipv6=bool(values["enable_ipv6"]),
            nomasq_all_reserved_ranges=bool(values["nomasq_all_reserved_ranges"]),
            masq_chain=check_chain_name(str(values["masq_chain"])),
            random_fully=bool(values.get("random_fully", True)),
            to_ports=parse_to_ports(str(values.get("to_ports", ""))),
            resync_interval=float(values.get("resync_interval", 60)),
        )
    except UsageError as exc:
        err = UsageError(f"the agent cannot work with its arguments: {exc.message}",
                         input=f"DaemonSet {ds.ref} container {ds.container} {exc.input or 'args'}", code=exc.code)
        notes.append(err.message)
        return AgentOptions(flavor=ds.flavor), err, argv, notes
    return options, None, argv, notes


def node_agent_setup(ds: AgentDaemonSet) -> tuple[AgentOptions, MasqctlError | None, tuple[str, ...], list[str],
                                                  str, str | None]:
    """``(options, flag_error, argv, notes, config_dir, on_invalid_config)`` of masqctl's node-agent,
    from its flags as ``masqctl.agent`` parses and checks them at start (a refused flag or value
    makes it exit with status 2 before anything else; then ``options`` is its default for the
    flavour so the config can still be read, ``on_invalid_config`` None)."""
    values, error, inv = node_agent_flags(ds.command, ds.args)
    argv = inv.flags
    notes: list[str] = []
    if inv.shell:
        notes.append(f"the container runs a shell ({inv.shell} -c); the node-agent's flags are read from the "
                     f"script's words after {' '.join(inv.via)}, which may not be what the shell passes on")
    if error is not None:
        pass
    elif is_question(values):
        # --help/--version: answered before any other flag is checked; the options only tell
        # how the folder would be read
        try:
            options = options_from(values)
        except UsageError:
            options = AgentOptions(flavor=values["flavor"] if values["flavor"] in FLAVORS else AZURE_V2)
    else:
        try:
            check_start(values)  # the agent's own checks at start, exactly
            options = options_from(values)
        except UsageError as exc:
            error = exc
    if error is not None:
        err = UsageError(f"the node-agent refuses its arguments and exits at start: {error.message}",
                         input=f"DaemonSet {ds.ref} container {ds.container} args"
                               + (f" ({error.input})" if error.input else ""),
                         code=error.code, hint=error.hint)
        notes.append(err.message)
        return AgentOptions(flavor=ds.flavor or AZURE_V2), err, argv, notes, CONFIG_DIR, None
    if values["help"]:
        notes.append("--help: the node-agent prints its usage and exits without writing rules; kubelet restarts it")
    elif values["version"]:
        notes.append("--version: the node-agent prints its version and exits without writing rules; kubelet "
                     "restarts it")
    elif values["once"]:
        notes.append("--once" + (" --dry-run: the node-agent prints one sync and exits without writing rules"
                                 if values["dry_run"] else ": the node-agent syncs once and exits (status 1 on "
                                 "an invalid config, whatever --on-invalid-config says)")
                     + "; kubelet restarts it (the pod shows restarts, and drift between restarts is not repaired)")
    config_dir = values["config_dir"] or DEFAULT_CONFIG_DIR
    if not config_dir.startswith("/"):
        notes.append(f"--config-dir {config_dir!r} is relative: read from the container's working directory, "
                     "taken as / (the DaemonSet's workingDir is not recorded)")
        config_dir = "/" + config_dir
    on_invalid = values["on_invalid_config"] if values["on_invalid_config"] in ON_INVALID else None  # (a question)
    return options, None, argv, notes, _norm(config_dir), on_invalid


# --------------------------------------------------------------------------- projection


def _norm(path: str) -> str:
    return posixpath.normpath(path or "/").rstrip("/") or "/"


def reads(flavor: str | None, name: str) -> bool:
    """Does an agent of ``flavor`` read a file of this name in its config folder?"""
    if flavor in PREFIX_FLAVORS:
        return name.startswith(V2_PREFIX)
    return name == UPSTREAM_FILE


def _project(snapshot: ClusterSnapshot, ds: AgentDaemonSet, mount: ConfigMount,
             notes: list[str]) -> tuple[list[tuple[ConfigFile, str]], bool]:
    """Every file the mount puts in the volume, as (file, name in the volume); decidable flag."""
    out: list[tuple[ConfigFile, str]] = []
    decidable = True
    for src in mount.sources:
        cm = snapshot.configmap(src.configmap, ds.namespace)
        ref = f"{ds.namespace}/{src.configmap}"
        if cm is None and MissingKey.CONFIGMAPS in snapshot.missing:
            decidable = False
            notes.append(f"ConfigMap {ref} cannot be checked: ConfigMaps were not gathered "
                         f"({snapshot.missing[MissingKey.CONFIGMAPS]})")
        if cm is None and not src.optional:
            notes.append(f"ConfigMap {ref} does not exist and its volume source is not optional: kubelet "
                         "does not start the agent's pods")
        if src.items is None:
            if cm is None:
                continue
            pairs = [(k, k) for k in sorted(set(cm.data) | set(cm.binary_keys))]
        else:
            pairs = [(i.key, i.path) for i in src.items]
        for key, path in pairs:
            text = cm.data.get(key) if cm is not None else None
            if cm is not None and key in cm.binary_keys and text is None:
                notes.append(f"ConfigMap {ref} key {key} is binaryData; masqctl does not decode it")
                decidable = False
            elif cm is not None and text is None and src.items is not None:
                notes.append(f"ConfigMap {ref} has no key {key}" + (
                    ": the file is left out (optional source)" if src.optional else
                    ": kubelet does not start the agent's pods (source not optional)"))
            out.append((ConfigFile(path, ref, key, text, False, src.optional), path))
    return out, decidable


def _config_mount(ds: AgentDaemonSet, config_dir: str = CONFIG_DIR) -> tuple[ConfigMount | None, str | None]:
    """The mount that is the config folder, or a single-file mount at <config folder>/<file>."""
    for m in ds.mounts:
        if _norm(m.mount_path) == config_dir and not m.sub_path:
            return m, None
    for m in ds.mounts:
        if posixpath.dirname(_norm(m.mount_path)) == config_dir:
            return m, posixpath.basename(_norm(m.mount_path))
    return None, None


def view_of(snapshot: ClusterSnapshot, ds: AgentDaemonSet) -> AgentConfigView:
    """The config one agent DaemonSet runs."""
    config_dir, on_invalid = CONFIG_DIR, None
    if ds.kind == KIND_NODE_AGENT:
        options, flag_error, argv, notes, config_dir, on_invalid = node_agent_setup(ds)
    else:
        options, flag_error, argv, notes = agent_options(ds)
    mount, single = _config_mount(ds, config_dir)
    files: list[ConfigFile] = []
    decidable = True
    sources: list[ConfigSource] = []
    folder_error: ConfigError | None = None
    v2 = (options.flavor if options is not None else ds.flavor) == AZURE_V2
    if mount is None:
        refuses = ("the azure-v2 agent exits on this" if on_invalid is None else
                   "the node-agent's azure-v2 flavour refuses a missing folder")
        notes.append(f"no volume is mounted at {config_dir}: the agent sees no config file" + (
            f" and the folder does not exist ({refuses})" if v2 else " and uses its defaults"))
        if v2:
            folder_error = ConfigError(f"the config folder does not exist ({refuses})",
                                       file=config_dir, code="E101",
                                       hint=f"mount the ConfigMap volume at {config_dir}")
    else:
        projected, decidable = _project(snapshot, ds, mount, notes)
        names: dict[str, ConfigFile] = {}
        for f, path in projected:
            if single is not None:
                # subPath mount of one file: only the projected file named by subPath appears
                if mount.sub_path and _norm(path) != _norm(mount.sub_path):
                    continue
                path = single
                f = ConfigFile(single, f.configmap, f.key, f.text, False, f.optional)
            top = path.split("/", 1)[0]
            read = reads(options.flavor if options is not None else ds.flavor, top)
            f = ConfigFile(f.path if "/" in path else path, f.configmap, f.key, f.text, read, f.optional)
            files.append(f)
            if f.text is None or not read:
                continue
            if "/" in path:
                folder_error = folder_error or ConfigError(
                    f"{top!r} is a folder in the config folder (item path {path!r}); the agent fails to read it",
                    file=top, code="E101", hint="project the key to a plain file name")
                continue
            if path in names:
                notes.append(f"{f.describe()} and {names[path].describe()} both project file {path}; "
                             "kubelet keeps one of them")
            names[path] = f
            sources.append(ConfigSource(path, f.text.encode("utf-8")))
        sources.sort(key=lambda s: s.name.encode("utf-8"))
    view_files = tuple(files)
    config = None
    error = None
    partial = AgentConfigView(ds, options, view_files, None, None)
    if options is not None and decidable:
        if folder_error is not None:
            error = folder_error
        else:
            try:
                config = effective_config(sources, options)
            except ConfigError as exc:
                error = _mapped(partial, exc)
    if options is not None and not decidable:
        notes.append("the effective config is not computed: evidence is missing (see above)")
    return AgentConfigView(ds, options, view_files, config, error, tuple(notes), flag_error, argv, mount,
                           decidable, config_dir, on_invalid)


def _mapped(view: AgentConfigView, exc: ConfigError) -> ConfigError:
    """The agent's error, named by the ConfigMap key and line the operator edits."""
    f = view.file(exc.file)
    where = f.describe() if f is not None else exc.file
    mapped = ConfigError(exc.message, file=where, line=exc.line, key=exc.key, value=exc.value, hint=exc.hint,
                         code=exc.code)
    mapped.config_file = exc.file  # the file name inside the agent's folder
    return mapped


def agent_configs(snapshot: ClusterSnapshot) -> list[AgentConfigView]:
    """One view per modelled agent DaemonSet, the AKS agent first."""
    return [view_of(snapshot, ds) for ds in _ordered(snapshot.daemonsets)]


def _ordered(daemonsets) -> list[AgentDaemonSet]:
    return sorted(daemonsets, key=lambda d: (d.kind != AKS_AGENT, d.flavor is None, d.namespace, d.name))


def primary_agent(snapshot: ClusterSnapshot) -> AgentConfigView | None:
    """The AKS azure-ip-masq-agent if present, else the only/first agent."""
    ordered = _ordered(snapshot.daemonsets)
    return view_of(snapshot, ordered[0]) if ordered else None


__all__ = ["AgentConfigView", "ConfigFile", "agent_configs", "primary_agent", "view_of", "agent_options",
           "node_agent_setup",
           "go_flag_set", "reads", "CONFIG_DIR", "AKS_USER_CONFIGMAP", "AKS_USER_KEY", "AKS_RECONCILED_CONFIGMAP",
           "AKS_RECONCILED_KEY"]
