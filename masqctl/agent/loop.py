"""The node-agent's loop: every period, make sure the kernel matches the config folder.

The long-running process stays small: it never imports the rule engine. Each period it
does the cheap part itself and hands the rest to a short-lived worker
(``masqctl.agent.worker``):

1. read the bytes of the config files (the ones the flavour reads, through ``..data`` when
   the folder is a ConfigMap volume);
2. list the agent's chain and POSTROUTING (``iptables -S``) for each family and compare them,
   as text, with what the worker left there last time;
3. if the bytes are the same and the text is the same, the period is done: nothing is
   written (``unchanged``, or ``invalid_config`` when the same bytes were invalid before);
4. otherwise the worker runs: it validates the folder with the engine (safe across
   kubelet's ``..data`` swap), compares the live rules *by meaning*, and writes one
   ``iptables-restore --noflush`` commit only if they differ, retrying iptables failures
   with backoff until 80% of the period is used.

A difference the worker repaired while the intended rules had not changed since they were
last written is drift: counted and logged. Invalid config: ``keep`` keeps enforcing the last
good rules, marks the agent not ready and logs each distinct error once; ``exit`` exits 1
like the Go agent. SIGTERM/SIGINT end the loop after the current sync; the rules stay unless
``--cleanup-on-exit``.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import sys
import time

from masqctl.agent import spawn
from masqctl.agent.flags import EXIT, KEEP
from masqctl.agent.iptables import FAMILY_NAMES, IptablesFailure, Runner, references
from masqctl.agent.klog import Logger
from masqctl.agent.metrics import AgentState
from masqctl.configfolder import Swapped, read_files
from masqctl.errors import EXIT_FAILED, EXIT_OK, UsageError

RETRY_FRACTION = 0.8
MIN_PERIOD = 1.0  # seconds, as --resync-interval allows


def signature(family: dict) -> str:
    """What identifies one family's intended rules (chain, rules, jump)."""
    return "\n".join([family["chain"], *family["rules"], family["jump"]])


def config_bytes(path: str, flavor: str) -> tuple | None:
    """The names and bytes of the files ``flavor`` reads, or None when they cannot be read
    consistently (the worker then reads the folder properly and reports any error)."""
    try:
        return read_files(path, flavor)
    except (OSError, Swapped):
        return None


def reap_orphans() -> None:
    """Collect exited children nobody waits for. In the image the daemon is the container's
    PID 1, so processes orphaned in it (the iptables child of a worker killed on timeout,
    what a ``kubectl exec`` left behind) become its children; unreaped they stay zombies.
    Called between periods only, when no child of the agent's own is running."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Agent:
    def __init__(self, values: dict, log: Logger):
        self.values = values
        self.log = log
        self.chain = values["masq_chain"]
        self.period = float(values["resync_interval"])
        self.state = AgentState(self.period, (4, 6) if values["enable_ipv6"] else (4,))
        self.runner = Runner(values["iptables_backend"], values["iptables_wait"])
        self.once = values["once"]
        self.stop_requested = False
        self.seen_bytes: tuple | None = None   # config bytes the worker last judged
        self.config_ok: bool | None = None     # its verdict on them
        self.target: list[dict] | None = None  # the rules enforced (the last valid config's)
        self.current_key: str | None = None
        self.applied: dict[int, str] = {}      # family -> signature known to be in the kernel
        self.baseline: dict[int, tuple] = {}   # family -> (chain lines, POSTROUTING refs) as printed
        self.last_failed = False
        self.last_heartbeat = time.monotonic()
        self._wake_r: int | None = None
        self.worker_pid: int | None = None     # the sync worker while it runs

    # -- signals ----------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._wake_r = r
        signal.set_wakeup_fd(w)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.stop_requested = True
        if self.worker_pid is not None:  # it finishes its attempt and retries no more
            try:
                os.kill(self.worker_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait(self, seconds: float) -> None:
        """Sleep, waking early when a stop signal arrives."""
        reap_orphans()
        deadline = time.monotonic() + seconds
        while not self.stop_requested:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self._wake_r is None:
                time.sleep(min(left, 0.2))
                continue
            ready, _, _ = select.select([self._wake_r], [], [], left)
            if ready:
                try:
                    while os.read(self._wake_r, 512):
                        pass
                except BlockingIOError:
                    pass

    # -- the cheap check ---------------------------------------------------------------------
    def unchanged(self, config: tuple | None) -> bool:
        """True when the config bytes and the kernel's text are exactly as the worker left them."""
        if config is None or config != self.seen_bytes or self.config_ok is None or self.last_failed:
            return False
        for fam in self.target or ():
            base = self.baseline.get(fam["family"])
            if base is None:
                return False
            try:
                listed = self.runner.list_chains(fam["family"], (self.chain, "POSTROUTING"))
                chain, post = listed[self.chain], listed["POSTROUTING"] or []
            except IptablesFailure as failure:
                self.state.count("iptables_errors", failure.kind)
                return False
            if chain is None or (chain, references(post, self.chain)) != base:
                return False
        return True

    # -- the worker ----------------------------------------------------------------------------
    def request(self, mode: str, budget: float) -> dict:
        # the last good rules, enforced while the folder is invalid (keep); with exit the
        # agent leaves the kernel as it is, like the Go agent
        fallback = self.target if self.values["on_invalid_config"] == KEEP else None
        return {"mode": mode, "flags": self.values, "fallback": fallback, "budget": budget}

    def check_flags(self) -> None:
        """The engine's checks of the flags (``--masq-chain``, ``--to-ports``), made by a worker so
        that the daemon refuses what ``--once`` and ``--dry-run`` refuse, before it starts."""
        response = self.call_worker({"mode": "check", "flags": self.values, "fallback": None, "budget": 0.0})
        error = response["usage_error"] if response is not None else None
        if error is not None:
            raise UsageError(error["message"], input=error["input"], hint=error["hint"], code=error["code"])

    def call_worker(self, request: dict) -> dict | None:
        if self.once or request["mode"] == "cleanup":
            # one-shot use: memory does not matter, run the engine in this process. A cleanup
            # happens because a stop was requested: it still retries within its budget.
            # Imported here, not at the top: the worker loads the engine (PyYAML, dataclasses),
            # which the long-running daemon never does.
            from masqctl.agent.worker import handle

            if request["mode"] == "cleanup":
                return handle(request, self.log)
            return handle(request, self.log, stop=lambda: self.stop_requested)
        # The worker is short-lived, so it keeps site-packages even when this process was
        # started with -S to save memory: the engine's PyYAML may live only there.
        argv = [sys.executable]
        if sys.flags.isolated:
            argv.append("-I")
        elif sys.flags.ignore_environment:
            argv.append("-E")
        if sys.flags.optimize:
            argv.append("-" + "O" * sys.flags.optimize)
        argv += ["-m", "masqctl.agent.worker"]
        limit = request["budget"] + 2 * self.runner.timeout + 30
        try:
            # marshal, not json: the request and answer are plain dicts, and json would load
            # re into this process. Both ends are the same interpreter.
            done = spawn.run(argv, marshal.dumps(request), timeout=limit, capture_stderr=False,
                             blocked=(signal.SIGTERM,), started=self._worker_started)
        except (OSError, spawn.Timeout) as exc:
            self.log.error(f"E502 sync worker could not run: {exc}")
            return None
        finally:
            self.worker_pid = None
        try:
            return marshal.loads(done.stdout)
        except (EOFError, ValueError, TypeError):
            self.log.error(f"E502 sync worker failed (exit {done.returncode}) without an answer")
            return None

    def _worker_started(self, pid: int) -> None:
        self.worker_pid = pid
        if self.stop_requested:  # the stop came while it was being started
            os.kill(pid, signal.SIGTERM)

    # -- one period ------------------------------------------------------------------------------
    def sync(self) -> str:
        """One period. Returns the result counted in ``syncs_total``."""
        started = time.monotonic()
        self.state.tick()
        config = config_bytes(self.values["config_dir"], self.values["flavor"])
        if self.unchanged(config):
            if self.config_ok:
                result = "unchanged"
            else:
                self.state.count("config_errors")
                result = "invalid_config"
            self.state.count_sync(result)
            self.state.sync_succeeded()
            self.log.info(f"sync {result} (quick check) in {1000 * (time.monotonic() - started):.0f}ms", level=4)
            self.heartbeat()
            return result
        # retries end once 80% of the period, counted from its start, is used
        budget = max(started + self.period * RETRY_FRACTION - time.monotonic(), 0.0)
        response = self.call_worker(self.request("sync", budget))
        result = self.absorb(response, config)
        self.log.info(f"sync {result} in {1000 * (time.monotonic() - started):.0f}ms", level=4)
        self.heartbeat()
        return result

    def absorb(self, response: dict | None, config: tuple | None) -> str:
        """Log, count and remember what the worker did."""
        if response is None:
            self.last_failed = True
            self.state.update(in_sync=False, last_sync_error="E502 the sync worker failed")
            self.state.count_sync("failed")
            return "failed"
        if response["usage_error"] is not None:  # a flag only the engine checks: exit 2
            error = response["usage_error"]
            raise UsageError(error["message"], input=error["input"], hint=error["hint"], code=error["code"])
        for kind, n in response["iptables_errors"].items():
            self.state.count("iptables_errors", kind, n)
        for family, n in response["restores"].items():
            self.state.count("restores", family, n)
        error = response["config_error"]
        if error is None:
            self.accept_config(response)
        else:
            self.reject_config(error)
            if self.values["on_invalid_config"] == EXIT:
                return "exit"
        self.seen_bytes = config
        self.config_ok = error is None
        if response["target"] is not None:
            self.target = response["target"]
        outcomes = []
        failure = None
        by_family = {f["family"]: f for f in self.target or ()}
        for fam in response["families"]:
            family, name = fam["family"], FAMILY_NAMES[fam["family"]]
            wanted = signature(by_family[family])
            if fam["outcome"] == "failed":
                failure = fam["error"]
                self.applied.pop(family, None)
                self.baseline.pop(family, None)
                self.log.error(f"{name}: sync failed: {failure['line']}"
                               + (f" (hint: {failure['hint']})" if failure.get("hint") else ""))
                continue
            if fam["outcome"] == "written":
                if self.applied.get(family) == wanted:
                    outcomes.append("repaired")
                    self.state.count("drift_repairs", family)
                    self.log.warning(f"repaired drift in {name} nat {self.chain}: {fam['drift']}")
                else:
                    outcomes.append("applied")
                    self.log.info(f"applied {name} nat {self.chain} ({len(by_family[family]['rules'])} rules; "
                                  f"was: {fam['drift']})", level=1)
            else:
                outcomes.append("unchanged")
            self.applied[family] = wanted
            if fam["chain_lines"] is not None:
                self.baseline[family] = (fam["chain_lines"], fam["refs"])
            else:
                self.baseline.pop(family, None)
        self.last_failed = failure is not None
        if failure is not None:
            result = "failed"
        elif error is not None:
            result = "invalid_config"
        elif "repaired" in outcomes:
            result = "repaired"
        elif "applied" in outcomes:
            result = "applied"
        else:
            result = "unchanged"
        self.state.update(in_sync=failure is None and error is None and self.target is not None,
                          last_sync_error=failure["line"] if failure is not None else None)
        self.state.count_sync(result)
        if failure is None:
            self.state.sync_succeeded()
        return result

    def accept_config(self, response: dict) -> None:
        config = response["config"]
        target = response["target"]
        # (the loop is the only writer of the state: it reads it without the lock)
        if self.state.config_error is not None:
            self.log.info("config is valid again")
        key = config["json"] + "\0" + "\0".join(signature(f) for f in target)
        if key != self.current_key:
            generation = self.state.config_generation + 1
            self.log.info(f"using config: {config['json']}")
            self.log.info(f"config generation {generation}: "
                          + ", ".join(f"{FAMILY_NAMES[f['family']]} {len(f['rules'])} rules" for f in target)
                          + f", from {config['source']}", level=2)
            for warning in config["warnings"]:
                self.log.warning(f"config: {warning}")
            self.current_key = key
            self.state.update(config_generation=generation)
        if config["period"] is not None:
            # upstream/tke: resyncInterval from the file; the Go agent would spin on "0s" or less
            period = max(float(config["period"]), MIN_PERIOD)
            if period != self.period:
                self.period = period
                self.log.info(f"resync interval {period:g}s (from the config file"
                              + (f", which says {config['period']:g}s)" if period != config["period"] else ")"))
                self.state.update(period=period)
        self.state.update(config_valid=True, config_error=None,
                          rules={f["family"]: len(f["rules"]) for f in target})

    def reject_config(self, error: dict) -> None:
        self.state.count("config_errors")
        before = self.state.config_error
        self.state.update(config_error=(error["code"], error["line"]))
        if before is None or before[1] != error["line"]:  # logged once per distinct error
            if self.values["on_invalid_config"] == KEEP:
                kept = ("keeping the last good rules" if self.target is not None
                        else "no rules written until the config is valid")
                self.log.error(f"invalid config, {kept}: {error['line']}"
                               + (f" (hint: {error['hint']})" if error.get("hint") else ""))

    def heartbeat(self) -> None:
        interval = float(self.values["heartbeat_interval"])
        if interval <= 0 or time.monotonic() - self.last_heartbeat < interval:
            return
        self.last_heartbeat = time.monotonic()
        with self.state.lock:
            syncs = " ".join(f"{k}={v}" for k, v in self.state.syncs.items() if v)
            rules = " ".join(f"{FAMILY_NAMES[f]}={n}" for f, n in self.state.rules.items())
            repairs = sum(self.state.drift_repairs.values())
        ready, why = self.state.ready()
        self.log.info(f"heartbeat: syncs since start: {syncs or 'none'}; drift repairs {repairs}; "
                      f"rules {rules}; ready={str(ready).lower()}" + ("" if ready else f" ({why})"))

    # -- whole run -------------------------------------------------------------------------------
    def run(self) -> int:
        while True:
            started = time.monotonic()
            result = self.sync()
            if result == "exit":
                self.log.error(f"invalid config, exiting (--on-invalid-config=exit): {self.state.config_error[1]}")
                return EXIT_FAILED
            if self.once:
                status = EXIT_OK if result in ("unchanged", "applied", "repaired") else EXIT_FAILED
                break
            self.wait(started + self.period - time.monotonic())
            if self.stop_requested:
                self.log.info("stop requested; leaving the rules in place"
                              if not self.values["cleanup_on_exit"] else "stop requested")
                status = EXIT_OK
                break
        if self.values["cleanup_on_exit"] and self.stop_requested and not self.cleanup():
            status = EXIT_FAILED
        return status

    def cleanup(self) -> bool:
        """Remove the jump(s) and the chain in every managed family."""
        response = self.call_worker(self.request("cleanup", 10.0))
        ok = True
        for fam in response["families"]:
            name = FAMILY_NAMES[fam["family"]]
            if fam["error"] is None:
                self.log.info(f"{name}: removed nat {self.chain} and its POSTROUTING jump")
            else:
                ok = False
                self.log.error(f"{name}: cleanup failed: {fam['error']['line']}")
        return ok
