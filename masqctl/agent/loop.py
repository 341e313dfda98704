"""The node-agent's loop: every period, read the config folder and make the kernel match it.

One period:

1. read and validate the config folder (``load_config_dir``: safe across kubelet's
   ``..data`` swap). Invalid: with ``keep`` the last good rules stay the target, the agent is
   not ready and the error is logged once per distinct error; with ``exit`` the agent exits 1,
   like the Go agent (which crashes on any error);
2. per family (IPv4, and IPv6 with ``--enable-ipv6``): list the agent's chain and POSTROUTING
   (``iptables -S``) and compare by meaning; in sync → nothing is written; otherwise one
   ``iptables-restore --noflush`` commit replaces the chain and ensures exactly one jump.
   A difference while the target did not change since the agent last wrote it is drift: it is
   repaired, counted and logged;
3. iptables failures (lock held, binary missing, payload refused) are retried with backoff
   until 80% of the period is used, then reported; a restore is one commit, so a failure never
   leaves a partial chain.

SIGTERM/SIGINT end the loop after the current sync; the rules stay in place unless
``--cleanup-on-exit``.
"""

from __future__ import annotations

import os
import select
import signal
import time
from dataclasses import dataclass

from masqctl.agent.iptables import IptablesFailure, Runner
from masqctl.agent.klog import Logger
from masqctl.agent.metrics import AgentState
from masqctl.agent.reconcile import LiveFamily, cleanup_payload, compare, repair_payload
from masqctl.engine import (AgentOptions, FamilyRules, RuleSet, agent_config_json, load_config_dir,
                            render)
from masqctl.errors import EXIT_FAILED, EXIT_OK, ConfigError

FAMILY_NAMES = {4: "ipv4", 6: "ipv6"}
KEEP, EXIT = "keep", "exit"
ON_INVALID = (KEEP, EXIT)


@dataclass
class AgentSettings:
    config_dir: str
    options: AgentOptions
    on_invalid_config: str = KEEP
    cleanup_on_exit: bool = False
    heartbeat_interval: float = 600.0
    once: bool = False
    retry_fraction: float = 0.8       # share of a period that retries may use
    max_backoff: float = 10.0


class Agent:
    def __init__(self, settings: AgentSettings, runner: Runner, log: Logger, state: AgentState):
        self.settings = settings
        self.options = settings.options
        self.runner = runner
        self.log = log
        self.state = state
        self.period = float(self.options.resync_interval)
        self.stop_requested = False
        self.current: RuleSet | None = None       # last valid config's rules (the target)
        self.current_json: str | None = None
        self.current_signature: tuple | None = None
        self.applied: dict[int, str] = {}         # family -> payload known to be in the kernel
        self.logged_config_error: str | None = None
        self.last_heartbeat = time.monotonic()
        self._wake_r: int | None = None

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

    def wait(self, seconds: float) -> None:
        """Sleep, waking early when a stop signal arrives."""
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

    # -- config -----------------------------------------------------------------------------
    def load_config(self) -> ConfigError | None:
        """Read the folder; on success make its rules the target. Returns the error, if any."""
        try:
            config = load_config_dir(self.settings.config_dir, self.options)
            rules = render(config, self.options)
        except ConfigError as error:
            self.state.count("config_errors")
            line = error.one_line()
            self.state.update(config_error=(error.code, line))
            if line != self.logged_config_error:
                self.logged_config_error = line
                kept = ("keeping the last good rules" if self.current is not None
                        else "no rules written until the config is valid")
                if self.settings.on_invalid_config == KEEP:
                    self.log.error(f"invalid config, {kept}: {line}"
                                   + (f" (hint: {error.hint})" if error.hint else ""))
            return error
        if self.logged_config_error is not None:
            self.log.info("config is valid again")
            self.logged_config_error = None
        text = agent_config_json(config)
        signature = tuple(f.payload() + f.jump.text for f in rules.families())
        if text != self.current_json or signature != self.current_signature:
            generation = self.state.config_generation + 1
            self.log.info(f"using config: {text}")
            self.log.info(f"config generation {generation}: "
                          + ", ".join(f"{FAMILY_NAMES[f.family]} {len(f.rules)} rules" for f in rules.families())
                          + (f", from {', '.join(f.name for f in config.files)}" if config.files
                             else ", defaults (no config file)"), level=2)
            for w in config.warnings:
                self.log.warning(f"config: {w.describe()}")
            self.state.update(config_generation=generation)
        self.current, self.current_json, self.current_signature = rules, text, signature
        self.state.update(config_valid=True, config_error=None,
                          rules={f.family: len(f.rules) for f in rules.families()})
        return None

    # -- iptables ---------------------------------------------------------------------------
    def live(self, family: int, chain: str) -> LiveFamily:
        lines = self.runner.list_chain(family, chain)
        post = self.runner.list_chain(family, "POSTROUTING") or []
        return LiveFamily(tuple(lines) if lines is not None else None, tuple(post))

    def reconcile(self, fam: FamilyRules, deadline: float) -> str:
        """Make one family match ``fam``: unchanged | applied | repaired. Raises the last
        IptablesFailure when retries run out."""
        attempt = 0
        name = FAMILY_NAMES[fam.family]
        wanted = fam.payload() + fam.jump.text
        while True:
            try:
                drift = compare(fam, self.live(fam.family, fam.chain))
                if drift.in_sync:
                    self.applied[fam.family] = wanted
                    return "unchanged"
                self.runner.restore(fam.family, repair_payload(fam, drift))
                self.state.count("restores", fam.family)
                repaired = self.applied.get(fam.family) == wanted
                self.applied[fam.family] = wanted
                if repaired:
                    self.state.count("drift_repairs", fam.family)
                    self.log.warning(f"repaired drift in {name} nat {fam.chain}: {drift.describe()}")
                    return "repaired"
                self.log.info(f"applied {name} nat {fam.chain} ({len(fam.rules)} rules; was: "
                              f"{drift.describe()})", level=1)
                return "applied"
            except IptablesFailure as failure:
                self.state.count("iptables_errors", failure.kind)
                delay = min(0.5 * (2 ** attempt), self.settings.max_backoff)
                attempt += 1
                if self.stop_requested or time.monotonic() + delay > deadline:
                    raise
                if attempt == 1:
                    self.log.warning(f"{name}: {failure.one_line()}; retrying with backoff")
                else:
                    self.log.info(f"{name}: attempt {attempt} failed: {failure.one_line()}", level=2)
                self.wait(delay)

    # -- one period ---------------------------------------------------------------------------
    def sync(self) -> str:
        """One period. Returns the result counted in ``syncs_total``."""
        started = time.monotonic()
        deadline = started + max(self.period * self.settings.retry_fraction, 1.0)
        self.state.tick()
        error = self.load_config()
        if error is not None and self.settings.on_invalid_config == EXIT:
            raise error
        outcomes: list[str] = []
        failure: IptablesFailure | None = None
        if self.current is not None:
            for fam in self.current.families():
                try:
                    outcomes.append(self.reconcile(fam, deadline))
                except IptablesFailure as exc:
                    failure = exc
                    self.log.error(f"{FAMILY_NAMES[fam.family]}: sync failed: {exc.one_line()}"
                                   + (f" (hint: {exc.hint})" if exc.hint else ""))
                    self.applied.pop(fam.family, None)
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
        in_sync = failure is None and error is None and self.current is not None
        self.state.update(in_sync=in_sync,
                          last_sync_error=failure.one_line() if failure is not None else None)
        self.state.count_sync(result)
        if failure is None:
            self.state.sync_succeeded()
        self.log.info(f"sync {result} in {1000 * (time.monotonic() - started):.0f}ms", level=4)
        self.heartbeat()
        return result

    def heartbeat(self) -> None:
        interval = self.settings.heartbeat_interval
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

    # -- whole run ----------------------------------------------------------------------------
    def run(self) -> int:
        while True:
            started = time.monotonic()
            try:
                result = self.sync()
            except ConfigError as error:  # --on-invalid-config=exit
                self.log.error(f"invalid config, exiting (--on-invalid-config=exit): {error.one_line()}")
                return EXIT_FAILED
            if self.settings.once:
                ok = result in ("unchanged", "applied", "repaired")
                status = EXIT_OK if ok else EXIT_FAILED
                break
            self.wait(started + self.period - time.monotonic())
            if self.stop_requested:
                self.log.info("stop requested; leaving the rules in place"
                              if not self.settings.cleanup_on_exit else "stop requested")
                status = EXIT_OK
                break
        if self.settings.cleanup_on_exit:
            if not self.cleanup():
                status = EXIT_FAILED
        return status

    def cleanup(self) -> bool:
        """Remove the jump(s) and the chain in every managed family."""
        chain = self.options.masq_chain
        ok = True
        for family in (4, 6) if self.options.enable_ipv6 else (4,):
            try:
                payload = cleanup_payload(chain, self.live(family, chain))
                if payload is not None:
                    self.runner.restore(family, payload)
                self.log.info(f"{FAMILY_NAMES[family]}: removed nat {chain} and its POSTROUTING jump")
            except IptablesFailure as exc:
                ok = False
                self.log.error(f"{FAMILY_NAMES[family]}: cleanup failed: {exc.one_line()}")
        return ok
