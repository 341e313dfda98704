"""The console script ends without tearing the interpreter down (masqctl.cli.main._end), yet as a
normal exit ends: the exit status kept, exit handlers run, every byte written reaches stdout and
stderr, and with another thread alive Python's own exit (which joins it) is used."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUMP = os.path.join(ROOT, "examples", "hub-spoke", "nodes", "aks-system-20931744-vmss000000", "iptables-save.txt")


def script(tmp_path, body: str, *argv: str) -> subprocess.CompletedProcess:
    code = "\n".join([
        "import atexit, sys, threading, time",
        f"sys.argv = ['masqctl', *{list(argv)!r}]",
        f"marker = {str(tmp_path / 'atexit')!r}",
        "atexit.register(lambda: open(marker, 'w').write('ran'))",
        body,
        "from masqctl.cli.main import main",
        "main()",
        "raise SystemExit('main() returned: the console script must end the process')",
    ])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_status_the_output_and_the_exit_handlers_are_kept(tmp_path):
    r = script(tmp_path, "", "explain", "10.40.0.9", "10.42.1.10", "--iptables", DUMP, "--node-ip", "10.40.0.4",
               "-o", "json", "-v")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("}\n") and '"masqueraded": true' in r.stdout
    assert (tmp_path / "atexit").read_text() == "ran"
    bad = script(tmp_path, "", "explain", "10.40.0.9", "10.42.1.10", "--iptables", str(tmp_path / "missing"))
    assert bad.returncode == 2 and "E310" in bad.stderr


def test_with_another_thread_alive_python_exits_as_usual(tmp_path):
    body = ("done = []\n"
            "def work():\n    time.sleep(0.5)\n    open(marker + '.thread', 'w').write('done')\n"
            "threading.Thread(target=work).start()\n")
    r = script(tmp_path, body, "explain", "10.40.0.9", "10.42.1.10", "--iptables", DUMP, "--node-ip", "10.40.0.4")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "atexit.thread").read_text() == "done"       # joined, not cut off
    assert (tmp_path / "atexit").read_text() == "ran"
