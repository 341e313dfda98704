"""Timing of whole processes for the benchmarks: each figure's best or median run, rounds
interleaved; the environment that times Python as installed (bytecode compiled once); and the
one loader of a benchmark script by path (``bench/inspect.py`` is named like the standard
library's ``inspect``, so the benchmarks keep their folder at the end of ``sys.path``)."""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import time


HERE = os.path.dirname(os.path.abspath(__file__))


def load_bench(name: str):
    """The benchmark script ``bench/<name>.py`` as a module of its own (``masqctl_bench_<name>``),
    loaded by path: ``import inspect`` must still give the standard library's."""
    spec = importlib.util.spec_from_file_location(f"masqctl_bench_{name}", os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rounds(cmds: list[list[str]], repeat: int, env: dict | None = None) -> list[list[float]]:
    """Every time of each command over ``repeat`` rounds; each round runs every command once,
    so a burst of load on the machine hits all of them alike. A command that fails ends the run."""
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(repeat):
        for cmd, ts in zip(cmds, times):
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            ts.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise SystemExit(f"{' '.join(cmd[:5])} … failed ({r.returncode}): {r.stderr.strip()[:500]}")
    return times


def best(cmds: list[list[str]], repeat: int, env: dict | None = None) -> list[float]:
    """The best time of each command over ``repeat`` interleaved rounds."""
    return [min(ts) for ts in rounds(cmds, repeat, env)]


def median_ratios(times: list[list[float]], ref: int) -> list[float]:
    """Per command, the median over rounds of its time / the reference's time in the same round."""
    return [statistics.median(t / r for t, r in zip(ts, times[ref])) for ts in times]


def installed_env(cache: str) -> dict:
    """The environment with bytecode written to (and read from) ``cache``, as ``pip install``
    leaves a package: a ``PYTHONDONTWRITEBYTECODE`` environment would otherwise charge every
    run the compilation of every module. Warm it with one run first."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env
