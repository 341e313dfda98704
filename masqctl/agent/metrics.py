"""The agent's state as the health endpoints and ``/metrics`` see it.

The loop writes, the HTTP thread reads; every access holds one lock. ``render`` produces the
Prometheus text exposition format (version 0.0.4) by hand: a dozen series do not need a
client library.
"""

from __future__ import annotations

import threading
import time

import masqctl
from masqctl.agent.iptables import FAMILY_NAMES

PREFIX = "masqctl_node_agent"
SYNC_RESULTS = ("unchanged", "applied", "repaired", "invalid_config", "failed")
IPTABLES_ERROR_KINDS = ("missing", "lock", "refused", "list")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class AgentState:
    def __init__(self, period: float, families: tuple[int, ...]):
        self.lock = threading.Lock()
        self.period = period
        self.started = time.monotonic()
        self.loop_tick = time.monotonic()          # the loop is alive when this moves
        self.last_success_monotonic: float | None = None
        self.last_success_time: float = 0.0         # wall clock, for the metric
        self.syncs = {r: 0 for r in SYNC_RESULTS}
        self.drift_repairs = {f: 0 for f in families}
        self.restores = {f: 0 for f in families}
        self.iptables_errors = {k: 0 for k in IPTABLES_ERROR_KINDS}
        self.config_errors = 0
        self.config_valid = False
        self.config_error: tuple[str, str] | None = None   # (code, one line)
        self.config_generation = 0
        self.rules = {f: 0 for f in families}
        self.in_sync = False                        # kernel equals the current valid config
        self.last_sync_error: str | None = None

    # -- written by the loop ------------------------------------------------------------
    def tick(self) -> None:
        with self.lock:
            self.loop_tick = time.monotonic()

    def update(self, **values) -> None:
        with self.lock:
            for name, value in values.items():
                setattr(self, name, value)

    def count_sync(self, result: str) -> None:
        with self.lock:
            self.syncs[result] += 1
            self.loop_tick = time.monotonic()

    def sync_succeeded(self) -> None:
        with self.lock:
            self.last_success_monotonic = time.monotonic()
            self.last_success_time = time.time()

    def count(self, counter: str, key=None, by: int = 1) -> None:
        with self.lock:
            if key is None:
                setattr(self, counter, getattr(self, counter) + by)
            else:
                getattr(self, counter)[key] += by

    # -- read by the endpoints ------------------------------------------------------------
    def healthy(self, now: float | None = None) -> tuple[bool, str]:
        """Alive: the loop ticked and a sync succeeded within two periods (counting from the
        start until the first success)."""
        now = time.monotonic() if now is None else now
        limit = 2 * self.period + 5
        with self.lock:
            since_tick = now - self.loop_tick
            last = self.last_success_monotonic
            since_success = now - last if last is not None else None
            started_for = now - self.started
        if since_tick > limit:
            return False, f"loop stalled: no progress for {since_tick:.0f}s"
        if since_success is None:
            if started_for > limit:
                return False, f"no successful sync since start ({started_for:.0f}s ago)"
            return True, "starting"
        if since_success > limit:
            return False, f"last successful sync {since_success:.0f}s ago (limit {limit:.0f}s)"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self.lock:
            if self.config_error is not None:
                return False, f"config invalid: {self.config_error[1]}"
            if not self.config_valid:
                return False, "no config loaded yet"
            if not self.in_sync:
                return False, self.last_sync_error or "rules not yet applied"
            return True, "ok"

    def render(self) -> str:
        with self.lock:
            out: list[str] = []

            def metric(name: str, kind: str, help: str, samples: list[tuple[dict, float]]) -> None:
                full = f"{PREFIX}_{name}"
                out.append(f"# HELP {full} {help}")
                out.append(f"# TYPE {full} {kind}")
                for labels, value in samples:
                    lab = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
                    out.append(f"{full}{{{lab}}} {_num(value)}" if lab else f"{full} {_num(value)}")

            metric("build_info", "gauge", "Version of the node-agent.", [({"version": masqctl.__version__}, 1)])
            metric("syncs_total", "counter", "Sync periods by result (unchanged: no drift, nothing "
                   "written; applied: config changed or first apply; repaired: drift repaired; "
                   "invalid_config: the folder was invalid, last good rules kept; failed: iptables failed).",
                   [({"result": r}, v) for r, v in self.syncs.items()])
            metric("drift_repairs_total", "counter", "Times the live chain or jump differed from the "
                   "rules the agent had written, and was repaired.",
                   [({"family": FAMILY_NAMES[f]}, v) for f, v in self.drift_repairs.items()])
            metric("restores_total", "counter", "iptables-restore commits that succeeded.",
                   [({"family": FAMILY_NAMES[f]}, v) for f, v in self.restores.items()])
            metric("iptables_errors_total", "counter", "Failed iptables operations by kind.",
                   [({"kind": k}, v) for k, v in self.iptables_errors.items()])
            metric("config_errors_total", "counter", "Sync periods whose config folder was invalid.",
                   [({}, self.config_errors)])
            metric("config_valid", "gauge", "1 when the current config folder is valid.",
                   [({}, self.config_valid and self.config_error is None)])
            if self.config_error is not None:
                metric("config_error_info", "gauge", "The current config error (code and message).",
                       [({"code": self.config_error[0], "message": self.config_error[1]}, 1)])
            metric("config_generation", "gauge", "Number of distinct valid configs applied since start.",
                   [({}, self.config_generation)])
            metric("last_successful_sync_timestamp_seconds", "gauge",
                   "Unix time of the last sync that left the kernel as intended.",
                   [({}, self.last_success_time)])
            metric("rules", "gauge", "Rules in the agent's chain, per family.",
                   [({"family": FAMILY_NAMES[f]}, v) for f, v in self.rules.items()])
            metric("ready", "gauge", "1 when the kernel's rules equal the current valid config.",
                   [({}, self.in_sync and self.config_valid and self.config_error is None)])
            return "\n".join(out) + "\n"
