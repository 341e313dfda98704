"""The sync worker: the part of a sync that needs the rule engine.

The daemon starts it as a short-lived process (``python -m masqctl.agent.worker``, a request
on stdin and the response on stdout, both plain dicts in ``marshal`` format) only when the config folder's bytes changed or
the kernel's text differs from what the worker last left there; ``--once`` calls ``handle``
in-process. Keeping the engine (PyYAML, dataclasses, ipaddress, decimal) out of the daemon
is what keeps the daemon's resident memory below the Go agent's.

A sync request: validate the flags, read and validate the config folder (the engine reads it
safely across kubelet's ``..data`` swap), render the rules, then per family compare the live
chain and POSTROUTING by meaning and, only if they differ, write one ``iptables-restore
--noflush`` commit. iptables failures are retried with backoff within the request's budget.
The response carries what the daemon needs to log, count and check the next periods cheaply:
the config JSON, the error if any, the rules enforced, and per family the exact text
``iptables -S`` printed after the sync.

A cleanup request removes the jump(s) and the chain. A check request (the daemon's, at start)
runs the flag checks that need the engine and answers only with the usage error, if any.
"""

from __future__ import annotations

import marshal
import signal
import sys
import time

from masqctl.agent.flags import options_from
from masqctl.agent.iptables import FAMILY_NAMES, IptablesFailure, Runner, references
from masqctl.agent.klog import Logger
from masqctl.agent.reconcile import LiveFamily, cleanup_payload, compare, repair_payload
from masqctl.engine import FamilyRules, Rule, agent_config_json, load_config_dir, render
from masqctl.errors import ConfigError, MasqctlError, UsageError


def _error(error: MasqctlError) -> dict:
    return {"code": error.code, "line": error.one_line(), "hint": error.hint, "message": error.message,
            "input": error.input}


def _family_dict(fam) -> dict:
    return {"family": fam.family, "chain": fam.chain, "rules": [r.text for r in fam.rules],
            "jump": fam.jump.text}


def _family_rules(d: dict):
    return FamilyRules(d["family"], d["chain"], tuple(Rule(d["chain"], t, "rule") for t in d["rules"]),
                       Rule("POSTROUTING", d["jump"], "jump"))


class Worker:
    def __init__(self, request: dict, log: Logger, stop=lambda: False):
        self.request = request
        self.flags = request["flags"]
        self.log = log
        self.stop = stop
        self.runner = Runner(self.flags["iptables_backend"], self.flags["iptables_wait"])
        self.errors: dict[str, int] = {}
        self.restores: dict[int, int] = {}   # family -> commits
        self.deadline = time.monotonic() + float(request["budget"])

    def live(self, family: int, chain: str) -> LiveFamily:
        listed = self.runner.list_chains(family, (chain, "POSTROUTING"))
        lines, post = listed[chain], listed["POSTROUTING"] or []
        return LiveFamily(tuple(lines) if lines is not None else None, tuple(post))

    def retrying(self, name: str, action):
        attempt = 0
        while True:
            began = time.monotonic()
            try:
                return action()
            except IptablesFailure as failure:
                self.errors[failure.kind] = self.errors.get(failure.kind, 0) + 1
                delay = min(0.5 * (2 ** attempt), 10.0)
                attempt += 1
                # the next attempt may well take as long as this one (a lock wait): retry only
                # if the sleep and that attempt both fit before the deadline
                took = time.monotonic() - began
                if self.stop() or time.monotonic() + delay + took > self.deadline:
                    raise
                if attempt == 1:
                    self.log.warning(f"{name}: {failure.one_line()}; retrying with backoff")
                else:
                    self.log.info(f"{name}: attempt {attempt} failed: {failure.one_line()}", level=2)
                if not self.pause(delay):
                    raise

    def pause(self, seconds: float) -> bool:
        """Sleep between attempts; False as soon as a stop is requested."""
        end = time.monotonic() + seconds
        while not self.stop():
            left = end - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, 0.1))
        return False

    def sync_family(self, fam) -> dict:
        name = FAMILY_NAMES[fam.family]
        result = {"family": fam.family, "outcome": "failed", "drift": None, "chain_lines": None,
                  "refs": None, "error": None}

        def attempt():
            drift = compare(fam, self.live(fam.family, fam.chain))
            if drift.in_sync:
                return "unchanged", drift
            self.runner.restore(fam.family, repair_payload(fam, drift))
            self.restores[fam.family] = self.restores.get(fam.family, 0) + 1
            return "written", drift

        try:
            outcome, drift = self.retrying(name, attempt)
        except IptablesFailure as failure:
            result["error"] = _error(failure)
            return result
        result["outcome"], result["drift"] = outcome, drift.describe()
        # The exact text iptables prints now: the daemon's cheap check compares against it.
        try:
            live = self.live(fam.family, fam.chain)
        except IptablesFailure:
            return result
        after = compare(fam, live)
        if after.in_sync:
            result["chain_lines"] = list(live.chain_lines or ())
            result["refs"] = references(live.postrouting_lines, fam.chain)
        return result

    def sync(self) -> dict:
        response: dict = {"usage_error": None, "config": None, "config_error": None, "target": None,
                          "families": [], "iptables_errors": self.errors, "restores": self.restores}
        try:
            options = options_from(self.flags)
        except UsageError as error:
            response["usage_error"] = _error(error)
            return response
        try:
            config = load_config_dir(self.flags["config_dir"], options)
            rules = render(config, options)
        except ConfigError as error:
            response["config_error"] = _error(error)
            target = self.request.get("fallback")
        else:
            target = [_family_dict(f) for f in rules.families()]
            period = config.resync_interval.value if config.resync_interval is not None else None
            response["config"] = {
                "json": agent_config_json(config),
                "warnings": [w.describe() for w in config.warnings],
                "source": ", ".join(f.name for f in config.files) or "defaults (no config file)",
                "period": period,
            }
        response["target"] = target
        for d in target or ():
            response["families"].append(self.sync_family(_family_rules(d)))
        return response

    def cleanup(self) -> dict:
        chain = self.flags["masq_chain"]
        results = []
        for family in (4, 6) if self.flags["enable_ipv6"] else (4,):
            try:
                def attempt():
                    payload = cleanup_payload(chain, self.live(family, chain))
                    if payload is not None:
                        self.runner.restore(family, payload)
                self.retrying(FAMILY_NAMES[family], attempt)
                results.append({"family": family, "error": None})
            except IptablesFailure as failure:
                results.append({"family": family, "error": _error(failure)})
        return {"families": results, "iptables_errors": self.errors}


def handle(request: dict, log: Logger, stop=lambda: False) -> dict:
    if request.get("mode") == "check":
        # the flag checks that need the engine (--masq-chain, --to-ports), asked by the daemon at
        # start so that it refuses them before it opens its endpoints, as --once and --dry-run do
        try:
            options_from(request["flags"])
        except UsageError as error:
            return {"usage_error": _error(error)}
        return {"usage_error": None}
    worker = Worker(request, log, stop)
    if request.get("mode") == "cleanup":
        return worker.cleanup()
    return worker.sync()


def main() -> int:
    # The daemon forwards its stop as SIGTERM (blocked until now, so none is lost while this
    # process started): the attempt in progress finishes, no retry follows. A restore is one
    # commit anyway.
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    request = marshal.loads(sys.stdin.buffer.read())
    response = handle(request, Logger(int(request["flags"].get("v", 0))), stop=lambda: bool(stopping))
    sys.stdout.buffer.write(marshal.dumps(response))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
