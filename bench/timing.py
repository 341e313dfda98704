"""Timing of whole processes for the benchmarks: each figure's best run, rounds interleaved."""

from __future__ import annotations

import subprocess
import time


def best(cmds: list[list[str]], repeat: int) -> list[float]:
    """The best time of each command over ``repeat`` rounds; each round runs every command once,
    so a burst of load on the machine hits all of them alike. A command that fails ends the run."""
    return [min(ts) for ts in rounds(cmds, repeat)]


def rounds(cmds: list[list[str]], repeat: int) -> list[list[float]]:
    """Every time of each command over ``repeat`` interleaved rounds (as ``best``)."""
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(repeat):
        for cmd, ts in zip(cmds, times):
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            ts.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise SystemExit(f"{' '.join(cmd[:5])} … failed ({r.returncode}): {r.stderr.strip()[:500]}")
    return times
