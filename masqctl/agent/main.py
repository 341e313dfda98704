"""Entry point of the node-agent (``python -m masqctl.agent`` and ``masqctl node-agent``).

The long-running daemon imports only the standard library and the agent's own lean modules:
it runs on every node and must stay small. The rule engine (PyYAML, dataclasses, ...) is
loaded by the short-lived sync worker (``masqctl.agent.worker``), by ``--once`` and by
``--dry-run``, never by the daemon itself. ``masqctl.cli`` forwards ``masqctl node-agent ...``
here before importing typer. The flags are defined in ``masqctl.agent.flags``.
"""

from __future__ import annotations

import sys

import masqctl
from masqctl.agent.flags import (
    CILIUM_FLAVORS,
    PROGRAM,
    check_start,
    flag_set,
    foreign_chain_owner,
    options_from,
)
from masqctl.agent.health import HealthServer
from masqctl.agent.klog import Logger
from masqctl.agent.loop import Agent
from masqctl.errors import EXIT_OK, EXIT_USAGE, MasqctlError


def report(error: MasqctlError, stream=None) -> None:
    stream = stream or sys.stderr
    print(f"error: {error.one_line()}", file=stream)
    if error.hint:
        print(f"hint: {error.hint}", file=stream)


def dry_run(values: dict) -> int:
    # imported here, not at the top: the engine (PyYAML, dataclasses) is loaded only for a dry
    # run; the long-running daemon leaves it to its sync worker
    from masqctl.engine import agent_config_json, dry_run_text, load_config_dir, render

    options = options_from(values)
    owner = foreign_chain_owner(values["masq_chain"])
    if owner is not None:
        print(f"warning: --masq-chain {values['masq_chain']} is {owner}'s chain (--allow-foreign-chain)",
              file=sys.stderr)
    config = load_config_dir(values["config_dir"], options)
    for w in config.warnings:
        print(f"warning: {w.describe()}", file=sys.stderr)
    if values["flavor"] in CILIUM_FLAVORS:
        # the CIDRs Cilium loads into its ip-masq-agent map, one a line, as cilium-dbg bpf ipmasq list
        # prints them (its order is Go's random map order; sorted here)
        sys.stdout.write("".join(f"{c.cidr}\n" for c in config.non_masquerade_cidrs))
        return EXIT_OK
    if values["v"] >= 2:
        print(f"using config: {agent_config_json(config)}", file=sys.stderr)
    sys.stdout.write(dry_run_text(render(config, options)))
    return EXIT_OK


def run(argv: list[str]) -> int:
    fs = flag_set()
    values = fs.parse(argv)
    # a question is answered and nothing else happens: no check of the other flags, no config
    # read, no iptables, no endpoints
    if values["help"]:
        sys.stdout.write(fs.usage() if values["help_all"] else fs.short_usage())
        return EXIT_OK
    if values["version"]:
        sys.stdout.write(f"{PROGRAM} {masqctl.__version__}\n")
        return EXIT_OK
    # one validation for every run, the dry run included: a value the real run refuses is
    # refused here, before anything is read or written (exit 2)
    backend, bind = check_start(values)
    if values["dry_run"]:
        return dry_run(values)
    if values["once"]:
        options_from(values)  # the engine's checks too (the daemon has a worker make them)
    return run_agent(values, backend, bind)


def run_agent(values: dict, backend: str, bind: tuple[str, int] | None) -> int:
    """The daemon (or one real sync with --once), with the flags ``check_start`` accepted."""
    log = Logger(values["v"])
    agent = Agent(values, log)
    agent.install_signal_handlers()
    if not values["once"]:
        agent.check_flags()  # exit 2 before the endpoints open and anything is written
    server = None
    if bind is not None and not values["once"]:
        server = HealthServer(bind, agent.state)
        server.start()
    log.info(f"masqctl node-agent {masqctl.__version__} starting: flavor {values['flavor']}, chain "
             f"{values['masq_chain']}, config {values['config_dir']}, every {values['resync_interval']}s, "
             f"ipv6 {'on' if values['enable_ipv6'] else 'off'}, on invalid config {values['on_invalid_config']}, "
             f"iptables {backend or 'from PATH'}, endpoints "
             + (f"http://{_host(server.address)}/" if server else "off"))
    owner = foreign_chain_owner(values["masq_chain"])
    if owner is not None:  # accepted only with --allow-foreign-chain
        log.warning(f"--masq-chain {values['masq_chain']} is {owner}'s chain (--allow-foreign-chain): the agent "
                    f"flushes it every period and {owner} rewrites it")
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

__all__ = ["EXIT_USAGE", "main", "run"]
