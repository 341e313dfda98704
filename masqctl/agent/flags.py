"""The node-agent's flags: their definitions, their checks, and the engine options they make.

The one module of ``masqctl.agent`` that others may import: ``inspect`` reads a DaemonSet's
container arguments with the same definitions (``masqctl.cluster.recognise``,
``masqctl.analysis.agentconfig``), so what inspect says about a node-agent's flags is what the
agent does with them. The flags are parsed with Go's ``flag`` semantics (``masqctl.goflags``),
as the Go agents parse theirs.

The long-running daemon imports this module, so it stays on the standard library and the
agent's lean modules; only ``options_from`` loads the rule engine (the sync worker,
``--once`` and ``--dry-run`` call it, the daemon never does).
"""

from __future__ import annotations

from masqctl.agent.health import DEFAULT_BIND, parse_bind
from masqctl.agent.iptables import BACKENDS
from masqctl.configfolder import (
    AZURE_V2,
    CILIUM_FLAVORS,
    DEFAULT_CHAIN,
    DEFAULT_CONFIG_DIR,
    DEFAULT_RESYNC_SECONDS,
    FLAVORS,
)
from masqctl.errors import UsageError
from masqctl.goflags import KLOG_FLAGS, FlagSet

PROGRAM = "masqctl node-agent"

KEEP, EXIT = "keep", "exit"
ON_INVALID = (KEEP, EXIT)

# nat chains other programs create and rewrite (name prefix -> owner). An agent given one of them
# as --masq-chain flushes it every period and the owner rewrites it: the two fight over it. The
# built-in chains are refused by the engine's chain-name check (E203).
FOREIGN_CHAIN_PREFIXES = (
    ("KUBE-", "kube-proxy/kubelet"),
    ("cali-", "Calico"),
    ("CILIUM_", "Cilium"),
    ("SWIFT-", "Azure CNS (pod subnet SNAT)"),
    ("KIND-", "kindnet"),
    ("FLANNEL-", "flannel"),
    ("ANTREA-", "Antrea"),
    ("DOCKER-", "Docker"),
)
FOREIGN_CHAINS = {"DOCKER": "Docker", "WEAVE": "Weave Net"}


def foreign_chain_owner(chain: str) -> str | None:
    """The program that owns nat chain ``chain`` when it is not an agent's own, else None."""
    if chain in FOREIGN_CHAINS:
        return FOREIGN_CHAINS[chain]
    for prefix, owner in FOREIGN_CHAIN_PREFIXES:
        if chain.startswith(prefix):
            return owner
    return None


def flag_set() -> FlagSet:
    fs = FlagSet(PROGRAM, "Keep the node's masquerade rules equal to the config folder, like "
                          "ip-masq-agent(-v2), with health, readiness and metrics.",
                 # run from the repository's root: a sync printed, nothing written
                 examples=("masqctl node-agent --once --dry-run --config-dir "
                           "examples/config-folders/aks-hub-spoke-custom",
                           "masqctl node-agent --once --dry-run --flavor cilium --config-dir "
                           "examples/config-folders/aks-hub-spoke-custom"))
    fs.add("config-dir", "str", DEFAULT_CONFIG_DIR, "folder of config files (the projected ConfigMaps)")
    fs.add("flavor", "str", AZURE_V2, f"agent behaviour to reproduce: {', '.join(FLAVORS)}")
    fs.add("masq-chain", "str", DEFAULT_CHAIN, "name of the nat chain for the masquerade rules")
    fs.add("nomasq-all-reserved-ranges", "bool", False,
           "with no config file, also exempt the IPv4 ranges reserved by RFCs")
    fs.add("enable-ipv6", "bool", False, "also manage ip6tables; accept IPv6 CIDRs")
    fs.add("resync-interval", "int", DEFAULT_RESYNC_SECONDS,
           "seconds between syncs (azure-v2; upstream/tke read it from the file)")
    fs.add("random-fully", "bool", True, "upstream/tke: add --random-fully to MASQUERADE",
           negated_by="no-random-fully")
    fs.add("to-ports", "str", "", "upstream/tke: masquerade to these ports only, e.g. 1024-29999,32768-65535")
    fs.add("v", "int", 0, "log verbosity, like klog (0: config changes, repairs, errors, heartbeat; 4: every period)")
    fs.add("once", "bool", False, "sync once and exit; the exit status tells success")
    fs.add("dry-run", "bool", False, "print what would be applied and touch nothing (with --once)")
    fs.add("health-bind", "str", DEFAULT_BIND,
           "host:port of /healthz, /readyz and /metrics; 0 disables them")
    fs.add("on-invalid-config", "str", KEEP,
           "keep: keep the last good rules and report not ready; exit: exit 1 like the Go agent")
    fs.add("cleanup-on-exit", "bool", False,
           "on SIGTERM/SIGINT remove the chain and the POSTROUTING jump instead of leaving them")
    fs.add("iptables-backend", "str", "",
           "empty: iptables/ip6tables from PATH; legacy or nft: the explicit iptables-legacy/-nft binaries")
    fs.add("iptables-wait", "int", 5, "seconds each iptables call waits for the xtables lock")
    fs.add("heartbeat-interval", "int", 600, "seconds between heartbeat log lines; 0 disables them")
    fs.add("allow-foreign-chain", "bool", False,
           "let --masq-chain name a chain another program owns (kube-proxy's KUBE-*, Calico's cali-*, ...)")
    fs.add("version", "bool", False, "print the version and exit (nothing is started or read)")
    fs.ignored.update(KLOG_FLAGS)
    return fs


def options_from(values: dict):
    """The engine's ``AgentOptions`` for parsed flag values."""
    # loads the engine (dataclasses, PyYAML): only here, so the daemon, which parses its flags
    # with this module but leaves the engine to its sync worker, stays small
    from masqctl.engine.model import AgentOptions
    from masqctl.engine.flagvalues import check_chain_name, parse_to_ports

    check_flavor(values)
    check_period(values)
    return AgentOptions(
        flavor=values["flavor"],
        enable_ipv6=values["enable_ipv6"],
        nomasq_all_reserved_ranges=values["nomasq_all_reserved_ranges"],
        masq_chain=check_chain_name(values["masq_chain"]),
        random_fully=values["random_fully"],
        to_ports=parse_to_ports(values["to_ports"]),
        resync_interval=values["resync_interval"],
    )


def check_flavor(values: dict) -> None:
    if values["flavor"] not in FLAVORS:
        raise UsageError(f"unknown flavour {values['flavor']!r}; use one of {', '.join(FLAVORS)}",
                         input="--flavor", code="E201")


def check_period(values: dict) -> None:
    if values["resync_interval"] <= 0:
        raise UsageError(f"--resync-interval must be a positive number of seconds, got "
                         f"{values['resync_interval']}", input="--resync-interval", code="E204")


def is_question(values: dict) -> bool:
    """``--help`` or ``--version``: the agent answers and exits 0, checks and starts nothing."""
    return bool(values["help"] or values["version"])


def check_start(values: dict) -> tuple[str, tuple[str, int] | None]:
    """Every check of the flag values the node-agent makes before it does anything, the same for
    ``--once --dry-run``, ``--once`` and the daemon (and for inspect reading a DaemonSet's args);
    returns (iptables backend, health address or None). The engine's own checks (``--masq-chain``
    syntax, ``--to-ports``) follow in ``options_from``."""
    if values["dry_run"] and not values["once"]:
        raise UsageError("--dry-run needs --once (a dry run prints one sync and exits)",
                         input="--dry-run", code="E204")
    if values["flavor"] in CILIUM_FLAVORS and not (values["once"] and values["dry_run"]):
        raise UsageError(f"--flavor {values['flavor']} models Cilium's BPF ip-masq-agent, which writes no iptables "
                         "rules: use it with --once --dry-run (prints the CIDRs Cilium would load into its map)",
                         input="--flavor", code="E231")
    return check_agent_values(values)


def check_agent_values(values: dict) -> tuple[str, tuple[str, int] | None]:
    """Validate the daemon's own flags; returns (backend, health address or None)."""
    check_flavor(values)
    check_period(values)
    if values["on_invalid_config"] not in ON_INVALID:
        raise UsageError(f"--on-invalid-config {values['on_invalid_config']!r}: use keep or exit",
                         input="--on-invalid-config", code="E206")
    if values["iptables_backend"] not in BACKENDS:
        raise UsageError(f"--iptables-backend {values['iptables_backend']!r}: use legacy, nft or leave "
                         "it empty (iptables from PATH)", input="--iptables-backend", code="E207")
    if values["iptables_wait"] < 0:
        raise UsageError("--iptables-wait must be 0 or more seconds", input="--iptables-wait", code="E204")
    owner = foreign_chain_owner(values["masq_chain"])
    if owner is not None and not values["allow_foreign_chain"]:
        raise UsageError(f"{values['masq_chain']} is {owner}'s chain: the agent would flush it every period and "
                         f"{owner} would rewrite it", input="--masq-chain", code="E230",
                         hint="leave --masq-chain at its default (IP-MASQ-AGENT) or name a chain of the agent's "
                              "own; --allow-foreign-chain takes it anyway")
    return values["iptables_backend"], parse_bind(values["health_bind"])


__all__ = [
    "EXIT",
    "FOREIGN_CHAINS",
    "FOREIGN_CHAIN_PREFIXES",
    "KEEP",
    "ON_INVALID",
    "PROGRAM",
    "check_agent_values",
    "check_flavor",
    "check_period",
    "check_start",
    "flag_set",
    "foreign_chain_owner",
    "is_question",
    "options_from",
]
