"""Entry point of the node-agent (``python -m masqctl.agent`` and ``masqctl node-agent``).

The long-running daemon imports only the standard library and the agent's own lean modules:
it runs on every node and must stay small. The rule engine (PyYAML, dataclasses, ...) is
loaded by the short-lived sync worker (``masqctl.agent.worker``), by ``--once`` and by
``--dry-run``, never by the daemon itself. ``masqctl.cli`` forwards ``masqctl node-agent ...``
here before importing typer.
"""

from __future__ import annotations

import sys

from masqctl.agent.health import DEFAULT_BIND, parse_bind
from masqctl.agent.iptables import BACKENDS
from masqctl.errors import EXIT_OK, EXIT_USAGE, MasqctlError, UsageError
from masqctl.goflags import KLOG_FLAGS, FlagSet

PROGRAM = "masqctl node-agent"

# The engine's defaults (masqctl.engine.model), repeated so that parsing flags does not load
# the engine; tests/agent check that they stay equal.
DEFAULT_CHAIN = "IP-MASQ-AGENT"
DEFAULT_CONFIG_DIR = "/etc/config/"
FLAVORS = ("azure-v2", "upstream", "tke")
KEEP, EXIT = "keep", "exit"
ON_INVALID = (KEEP, EXIT)


def flag_set() -> FlagSet:
    fs = FlagSet(PROGRAM, "Keep the node's masquerade rules equal to the config folder, like "
                          "ip-masq-agent(-v2), with health, readiness and metrics.")
    fs.add("config-dir", "str", DEFAULT_CONFIG_DIR, "folder of config files (the projected ConfigMaps)")
    fs.add("flavor", "str", "azure-v2", f"agent behaviour to reproduce: {', '.join(FLAVORS)}")
    fs.add("masq-chain", "str", DEFAULT_CHAIN, "name of the nat chain for the masquerade rules")
    fs.add("nomasq-all-reserved-ranges", "bool", False,
           "with no config file, also exempt the IPv4 ranges reserved by RFCs")
    fs.add("enable-ipv6", "bool", False, "also manage ip6tables; accept IPv6 CIDRs")
    fs.add("resync-interval", "int", 60, "seconds between syncs (azure-v2; upstream/tke read it from the file)")
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
    fs.ignored.update(KLOG_FLAGS)
    return fs


def options_from(values: dict):
    """The engine's ``AgentOptions`` for parsed flag values (loads the engine)."""
    from masqctl.engine import AgentOptions, check_chain_name, parse_to_ports

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
    return values["iptables_backend"], parse_bind(values["health_bind"])


def report(error: MasqctlError, stream=None) -> None:
    stream = stream or sys.stderr
    print(f"error: {error.one_line()}", file=stream)
    if error.hint:
        print(f"hint: {error.hint}", file=stream)


def dry_run(values: dict) -> int:
    from masqctl.engine import agent_config_json, dry_run_text, load_config_dir, render

    options = options_from(values)
    config = load_config_dir(values["config_dir"], options)
    for w in config.warnings:
        print(f"warning: {w.describe()}", file=sys.stderr)
    if values["v"] >= 2:
        print(f"using config: {agent_config_json(config)}", file=sys.stderr)
    sys.stdout.write(dry_run_text(render(config, options)))
    return EXIT_OK


def run(argv: list[str]) -> int:
    fs = flag_set()
    values = fs.parse(argv)
    if values["help"]:
        sys.stdout.write(fs.usage())
        return EXIT_OK
    if values["dry_run"]:
        if not values["once"]:
            raise UsageError("--dry-run needs --once (a dry run prints one sync and exits)",
                             input="--dry-run", code="E204")
        return dry_run(values)
    if values["once"]:
        options_from(values)  # flag errors before anything else (exit 2)
    return run_agent(values)


def run_agent(values: dict) -> int:
    """The daemon (or one real sync with --once)."""
    import masqctl
    from masqctl.agent.health import HealthServer
    from masqctl.agent.klog import Logger
    from masqctl.agent.loop import Agent

    backend, bind = check_agent_values(values)
    log = Logger(values["v"])
    agent = Agent(values, log)
    agent.install_signal_handlers()
    server = None
    if bind is not None and not values["once"]:
        server = HealthServer(bind, agent.state)
        server.start()
    log.info(f"masqctl node-agent {masqctl.__version__} starting: flavor {values['flavor']}, chain "
             f"{values['masq_chain']}, config {values['config_dir']}, every {values['resync_interval']}s, "
             f"ipv6 {'on' if values['enable_ipv6'] else 'off'}, on invalid config {values['on_invalid_config']}, "
             f"iptables {backend or 'from PATH'}, endpoints "
             + (f"http://{_host(server.address)}/" if server else "off"))
    try:
        return agent.run()
    finally:
        if server is not None:
            server.close()


def _host(address) -> str:
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except MasqctlError as error:
        report(error)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["main", "run", "flag_set", "options_from", "EXIT_USAGE"]
