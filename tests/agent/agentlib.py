"""Helpers for the node-agent tests (imported by the tests and by conftest.py): a kubelet-like ConfigMap volume, the agent as a real
process inside a network namespace, and reading its endpoints from inside that namespace.

Every iptables command runs inside a namespace the test creates. The agent and every helper
use a private xtables lock file (``XTABLES_LOCKFILE``), so the host's lock is never taken.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

from masqctl.engine import AgentOptions, load_config_dir, render
from masqctl.netfilter.canonical import is_masq_jump, rule_key
from masqctl.netfilter.tokens import split_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_gen = itertools.count()


class ConfigVolume:
    """A folder laid out like a projected ConfigMap volume: the visible names are symlinks
    into ``..data``, itself a symlink to a timestamped generation folder; ``swap`` replaces
    the generation atomically, the way kubelet's atomic writer does."""

    def __init__(self, path: str, files: dict[str, str] | None = None):
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.generation: str | None = None
        if files is not None:
            self.swap(files)

    def swap(self, files: dict[str, str]) -> None:
        gen = f"..2026_11_22_00_00_00.{os.getpid()}_{next(_gen)}"
        gen_dir = os.path.join(self.path, gen)
        os.mkdir(gen_dir)
        for name, text in files.items():
            with open(os.path.join(gen_dir, name), "w") as fh:
                fh.write(text)
        tmp = os.path.join(self.path, "..data_tmp")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(gen, tmp)
        os.rename(tmp, os.path.join(self.path, "..data"))  # the atomic step
        for name in files:
            link = os.path.join(self.path, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join("..data", name), link)
        for name in os.listdir(self.path):
            if not name.startswith("..") and name not in files:
                os.unlink(os.path.join(self.path, name))
        old, self.generation = self.generation, gen
        if old:
            old_dir = os.path.join(self.path, old)
            for name in os.listdir(old_dir):
                os.unlink(os.path.join(old_dir, name))
            os.rmdir(old_dir)


def yaml_config(cidrs: list[str], masq_link_local: bool | None = None, **extra) -> str:
    lines = ["nonMasqueradeCIDRs:"] + [f"  - {c}" for c in cidrs]
    if not cidrs:
        lines = ["nonMasqueradeCIDRs: []"]
    if masq_link_local is not None:
        lines.append(f"masqLinkLocal: {str(masq_link_local).lower()}")
    for k, v in extra.items():
        lines.append(f"{k}: {v}")
    return "\n".join(lines) + "\n"


def intended(config_dir: str, **options):
    """The engine's rules for a folder (what the agent must write)."""
    opts = AgentOptions(**options)
    return render(load_config_dir(config_dir, opts), opts)


def chain_rules(save_text: str, chain: str) -> list[str]:
    return [ln for ln in save_text.splitlines() if ln.startswith(f"-A {chain} ")]


def keys(lines) -> list:
    return [rule_key(split_args(ln)[2:]) for ln in lines]


def jumps(save_text: str, chain: str = "IP-MASQ-AGENT") -> list[str]:
    return [ln for ln in chain_rules(save_text, "POSTROUTING") if is_masq_jump(split_args(ln)[2:], chain)]


def assert_exact(save_text: str, fam, chain: str = "IP-MASQ-AGENT") -> None:
    """The nat table holds the agent's chain with exactly the intended rules and one jump."""
    assert f":{chain} " in save_text
    assert keys(chain_rules(save_text, chain)) == keys(r.text for r in fam.rules), save_text
    assert len(jumps(save_text, chain)) == 1, save_text


_HTTP = textwrap.dedent("""
    import socket, sys
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(("GET %s HTTP/1.0\\r\\n\\r\\n" % sys.argv[2]).encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    sys.stdout.write(data.decode())
""")


class AgentProcess:
    """``python -m masqctl.agent`` running inside namespace ``ns``."""

    def __init__(self, ns, args: list[str], lockfile: str, env: dict | None = None, port: int = 8679,
                 python_flags: tuple[str, ...] = ()):
        self.ns = ns
        self.port = port
        self.log = tempfile.NamedTemporaryFile("w+", prefix="masqctl-agent-", suffix=".log", delete=False)
        full_env = dict(os.environ, XTABLES_LOCKFILE=lockfile, PYTHONPATH=ROOT)
        if env:
            full_env.update(env)
        self.proc = ns.popen(sys.executable, *python_flags, "-m", "masqctl.agent", *args, stdout=subprocess.DEVNULL,
                             stderr=self.log, env=full_env)

    def get(self, path: str) -> tuple[int, str]:
        r = self.ns.run(sys.executable, "-c", _HTTP, str(self.port), path, check=False)
        if r.returncode != 0:
            return 0, r.stderr
        # text mode turned the CRLFs into newlines
        head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
        return int(head.split()[1]), body

    def metric(self, name: str, **labels) -> float | None:
        _, body = self.get("/metrics")
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
        for line in body.splitlines():
            if line.startswith(want + " ") or (not labels and line.startswith(name + " ")):
                return float(line.rsplit(" ", 1)[1])
        return None

    def logs(self) -> str:
        with open(self.log.name) as fh:
            return fh.read()

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; agent log:\n{self.logs()}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"agent did not stop; log:\n{self.logs()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


def run_once(ns, config_dir: str, lockfile: str, *extra: str, env: dict | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, XTABLES_LOCKFILE=lockfile, PYTHONPATH=ROOT)
    if env:
        full_env.update(env)
    argv = ns.cmd(sys.executable, "-m", "masqctl.agent", "--once", "--config-dir", config_dir, *extra)
    argv[0] = shutil.which(argv[0]) or argv[0]  # the test may hide iptables with PATH
    return subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout)
