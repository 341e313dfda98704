"""explain's human output says each thing once, the answer first: the verdict sentence, the
deciding rule as written with the ConfigMap line behind it, the destination, the reply, what was
evaluated, the path, the notes; at 80 and 120 columns, nothing wider than the terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from masqctl.cli import explain_text as cli_explain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB = os.path.join(ROOT, "examples", "hub-spoke")
POD_SUBNET = os.path.join(ROOT, "examples", "aks-pod-subnet")
FLOW = ("orders/orders-api-5b7c9d8f6-kq2xv", "10.42.1.10:443", "--bundle", HUB)


def run(width: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", "explain", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False,
                          env={**os.environ, "COLUMNS": str(width), "NO_COLOR": "1"})


def flat(text: str) -> str:
    return " ".join(text.split())


def labels(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^(rule|from|seen as|DNAT|destination|reply|node|rules|mode|source|"
                                            r"path|branch|note)\b", text, re.M)]


@pytest.mark.parametrize("width", [80, 120])
def test_the_verdict_comes_first_and_is_said_once(width):
    r = run(width, *FLOW)
    doc = json.loads(run(width, *FLOW, "-o", "json").stdout)
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= width
    text = flat(r.stdout)
    sentence = doc["summary"].split(" — ")[0]
    assert text.startswith(sentence)
    assert text.count("is masqueraded to 10.40.0.4") == 1
    assert text.count("comes back") == 1 and text.count(doc["reply"]["reason"]) == 1
    assert text.count(doc["destination_places"][0]["label"]) == 1
    assert flat(doc["deciding_rule"]["text"]) in text
    # every note once, except the one the source line says
    for note in doc["notes"]:
        if note.startswith("SRC "):
            assert text.count(flat(note.split(": ", 1)[1])) == 1
        else:
            assert text.count(flat(note)) == 1, note
    order = labels(r.stdout)
    firsts = list(dict.fromkeys(order))
    assert firsts == ["rule", "destination", "reply", "node", "rules", "mode", "source", "path", "note"], firsts


def test_the_configmap_line_behind_a_return_is_the_from_field():
    args = ("192.168.0.10", "10.0.0.50", "--bundle", POD_SUBNET, "--node", "aks-nodepool1-41962758-vmss000000")
    r = run(80, *args)
    doc = json.loads(run(80, *args, "-o", "json").stdout)
    text = flat(r.stdout)
    source = doc["provenance"]["sources"][0]
    assert source == "ConfigMap kube-system/ip-masq-agent-config key ip-masq-agent line 2"
    assert text.count(source) == 1 and re.search(r"^from +CIDR 10\.0\.0\.0/16 comes from", r.stdout, re.M)
    assert "seen as" not in r.stdout             # the sentence says the source kept


def test_offline_and_what_if_outputs_keep_their_facts():
    dump = os.path.join(HUB, "nodes", "aks-system-20931744-vmss000000", "iptables-save.txt")
    r = run(80, "10.40.0.9", "10.42.1.10", "--iptables", dump, "--node-ip", "10.40.0.4")
    assert flat(r.stdout).startswith("10.40.0.9 → 10.42.1.10 is masqueraded to 10.40.0.4 by IP-MASQ-AGENT rule 4")
    assert "nat POSTROUTING" in r.stdout and r.stdout.count("MASQUERADE → source") == 0
    cfg = os.path.join(ROOT, "examples", "config-folders", "aks-azure-cni-node-subnet")
    r = run(80, "10.224.0.30", "10.224.0.50", "--config-dir", cfg)
    doc = json.loads(run(80, "10.224.0.30", "10.224.0.50", "--config-dir", cfg, "-o", "json").stdout)
    assert doc["masqueraded"] is False
    assert re.search(r"^from +CIDR 10\.224\.0\.0/16 comes from", r.stdout, re.M), r.stdout


def test_sections_are_functions_in_order():
    for sections in (cli_explain.OFFLINE_SECTIONS, cli_explain.CLUSTER_SECTIONS):
        assert sections[0] is cli_explain.section_verdict and sections[-1] is cli_explain.section_notes
        assert all(callable(s) and s.__doc__ for s in sections)
