"""Entry point of the node-agent (``python -m masqctl.agent`` and ``masqctl node-agent``).

Imports only the engine and the standard library: the agent runs on every node and must
stay small. ``masqctl.cli`` forwards ``masqctl node-agent ...`` here before importing typer.
"""

from __future__ import annotations

import sys

from masqctl.agent.flags import FlagSet
from masqctl.engine import (DEFAULT_CHAIN, DEFAULT_CONFIG_DIR, FLAVORS, AgentOptions, agent_config_json,
                            check_chain_name,
                            dry_run_text, load_config_dir, parse_to_ports, render)
from masqctl.errors import EXIT_OK, EXIT_USAGE, MasqctlError, NotImplementedYet, UsageError

PROGRAM = "masqctl node-agent"

# klog/component-base flags the Go agents accept; a drop-in must start with them.
KLOG_FLAGS = {
    "logtostderr": "bool", "alsologtostderr": "bool", "add_dir_header": "bool", "skip_headers": "bool",
    "skip_log_headers": "bool", "one_output": "bool", "stderrthreshold": "str", "log_dir": "str",
    "log_file": "str", "log_file_max_size": "str", "log_backtrace_at": "str", "vmodule": "str",
    "log-flush-frequency": "str", "version": "bool",
}


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
    fs.add("v", "int", 0, "log verbosity, like klog (2 logs the config in use)")
    fs.add("once", "bool", False, "sync once and exit; the exit status tells success")
    fs.add("dry-run", "bool", False, "print what would be applied and touch nothing (with --once)")
    fs.ignored.update(KLOG_FLAGS)
    return fs


def options_from(values: dict) -> AgentOptions:
    flavor = values["flavor"]
    if flavor not in FLAVORS:
        raise UsageError(f"unknown flavour {flavor!r}; use one of {', '.join(FLAVORS)}", input="--flavor",
                         code="E201")
    if values["resync_interval"] <= 0:
        raise UsageError(f"--resync-interval must be a positive number of seconds, got "
                         f"{values['resync_interval']}", input="--resync-interval", code="E204")
    return AgentOptions(
        flavor=flavor,
        enable_ipv6=values["enable_ipv6"],
        nomasq_all_reserved_ranges=values["nomasq_all_reserved_ranges"],
        masq_chain=check_chain_name(values["masq_chain"]),
        random_fully=values["random_fully"],
        to_ports=parse_to_ports(values["to_ports"]),
        resync_interval=values["resync_interval"],
    )


def report(error: MasqctlError, stream=None) -> None:
    stream = stream or sys.stderr
    print(f"error: {error.one_line()}", file=stream)
    if error.hint:
        print(f"hint: {error.hint}", file=stream)


def run(argv: list[str]) -> int:
    fs = flag_set()
    values = fs.parse(argv)
    if values["help"]:
        sys.stdout.write(fs.usage())
        return EXIT_OK
    options = options_from(values)
    if values["dry_run"]:
        if not values["once"]:
            raise UsageError("--dry-run needs --once (a dry run prints one sync and exits)",
                             input="--dry-run", code="E204")
        config = load_config_dir(values["config_dir"], options)
        for w in config.warnings:
            print(f"warning: {w.describe()}", file=sys.stderr)
        if values["v"] >= 2:
            print(f"using config: {agent_config_json(config)}", file=sys.stderr)
        sys.stdout.write(dry_run_text(render(config, options)))
        return EXIT_OK
    raise NotImplementedYet("applying rules is not implemented yet; use --once --dry-run",
                            input=PROGRAM, hint="masqctl node-agent --once --dry-run --config-dir DIR")


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
