#!/usr/bin/env python3
"""Benchmark: how fast masqctl starts, against the libraries it cannot start without.

Times whole processes, in the same run, rounds interleaved so a burst of load hits all alike:

* `masqctl explain 10.40.0.9 10.42.1.10 --iptables <hub-spoke node dump> --node-ip 10.40.0.4`
  against `python -c "import typer, rich.console"` (the CLI's floor: a Typer app that prints
  with rich);
* `masqctl node-agent --help` against `python -c "import yaml"` (the node-agent's floor: it
  reads YAML config files and nothing else heavy);
* `masqctl --help` against the same typer+rich floor.

Bytecode is compiled first into a private cache (`PYTHONPYCACHEPREFIX`), as `pip install`
does, so a `PYTHONDONTWRITEBYTECODE` environment does not charge compilation to masqctl.
Prints each median and the ratio (1.0: as fast as the floor).

    python3 bench/startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUMP = os.path.join(ROOT, "examples", "hub-spoke", "nodes", "aks-system-20931744-vmss000000", "iptables-save.txt")


def medians(cmds: dict[str, list[str]], repeat: int, env: dict[str, str]) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for cmd in cmds.values():            # warm-up: bytecode written, files in the page cache
        subprocess.run(cmd, capture_output=True, env=env, cwd=ROOT)
    for _ in range(repeat):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            times[name].append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise SystemExit(f"{name} failed ({r.returncode}): {r.stderr.strip()[:500]}")
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    py = sys.executable
    masqctl = [py, "-m", "masqctl.cli.main"]
    cmds = {
        "floor: import typer, rich.console": [py, "-c", "import typer, rich.console"],
        "masqctl explain (offline, hub-spoke dump)": masqctl + ["explain", "10.40.0.9", "10.42.1.10", "--iptables",
                                                                DUMP, "--node-ip", "10.40.0.4"],
        "masqctl --help": masqctl + ["--help"],
        "floor: import yaml": [py, "-c", "import yaml"],
        "masqctl node-agent --help": masqctl + ["node-agent", "--help"],
    }
    with tempfile.TemporaryDirectory(prefix="masqctl-pycache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=cache, COLUMNS="100", NO_COLOR="1")
        m = medians(cmds, args.repeat, env)
    for name, t in m.items():
        print(f"{name:45s} {t:6.3f} s")
    typer_floor, yaml_floor = m["floor: import typer, rich.console"], m["floor: import yaml"]
    print(f"ratio explain / typer+rich floor:        {m['masqctl explain (offline, hub-spoke dump)'] / typer_floor:.2f}")
    print(f"ratio --help / typer+rich floor:         {m['masqctl --help'] / typer_floor:.2f}")
    print(f"ratio node-agent --help / yaml floor:    {m['masqctl node-agent --help'] / yaml_floor:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
