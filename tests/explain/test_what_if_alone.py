"""A what-if on the agent's rules alone (`--config-dir` without `--iptables`) answers for traffic
that leaves the node: the destination is taken as remote, and the answer says so; node facts given
on the command line still decide."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "examples", "config-folders", "aks-azure-cni-node-subnet")


def explain(*args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "masqctl.cli.main", "explain", *args, "-o", "json"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_destination_is_taken_as_remote_and_the_answer_says_so():
    doc = explain("10.224.0.30", "8.8.8.8", "--config-dir", CONFIG)
    assert doc["masqueraded"] is True and doc["deciding_rule"]["chain"] == "IP-MASQ-AGENT"
    assert any("8.8.8.8 is taken as a remote address" in n for n in doc["notes"])
    kept = explain("10.224.0.30", "10.0.5.9", "--config-dir", CONFIG)
    assert kept["masqueraded"] is False and kept["deciding_rule"]["chain"] == "IP-MASQ-AGENT"


def test_node_facts_given_still_decide():
    doc = explain("10.224.0.30", "8.8.8.8", "--config-dir", CONFIG, "--local-address", "8.8.8.8/32")
    assert doc["masqueraded"] is False and not any("taken as a remote address" in n for n in doc["notes"])


def test_a_dump_is_never_given_the_assumption():
    dump = os.path.join(ROOT, "examples", "hub-spoke", "nodes", "aks-system-20931744-vmss000000", "iptables-save.txt")
    doc = explain("10.40.0.9", "10.42.1.10", "--iptables", dump, "--config-dir", CONFIG)
    assert not any("taken as a remote address" in n for n in doc["notes"])
