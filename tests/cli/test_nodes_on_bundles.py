"""--nodes on a bundle is checked for every command that reads a cluster, as live gathering checks it."""

import os
import subprocess
import sys

import pytest
from errordoc import no_result

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLE = os.path.join(ROOT, "examples", "aks-kubenet")


@pytest.mark.parametrize("argv", [
    ["inspect"],
    ["explain", "10.244.0.5", "8.8.8.8"],
    ["apply", "--goal", "fix"],
])
def test_unknown_node_is_refused_on_a_bundle(argv):
    r = subprocess.run([sys.executable, "-m", "masqctl.cli.main", *argv, "--bundle", BUNDLE,
                        "--nodes", "no-such-node"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "E619" in r.stderr and "no-such-node" in r.stderr and "Traceback" not in r.stderr
    assert no_result(r)
