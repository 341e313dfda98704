"""One behaviour for errors and the shared flags, in every command: with -o json/yaml an error is one
document on stdout (and the line on stderr), input errors exit 2 (an agent config given as input
included), --debug works before or after the command, and -v takes a count (-v 2, -vv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from masqctl.cli.app import normalize, output_format

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUMP = os.path.join(ROOT, "examples", "hub-spoke", "nodes", "aks-system-20931744-vmss000000", "iptables-save.txt")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False)


@pytest.mark.parametrize("args, code", [
    (("inspect", "--bundle", "/nonexistent"), "E320"),
    (("explain", "10.0.0.1", "10.0.0.2", "--iptables", "/nonexistent"), "E310"),
    (("explain", "10.0.0.1", "10.0.0.2", "--config-dir", "/nonexistent"), "E101"),
    (("apply", "--bundle", "/nonexistent", "--add", "10.9.0.0/16"), "E320"),
    (("apply", "--bundle", "examples/hub-spoke"), "E250"),
    (("inspect", "--bundle", "examples/hub-spoke", "--only", "MQ999"), "E240"),
    (("inspect", "--bundle", "examples/hub-spoke", "--context", "aks-prod"), "E228"),
    (("explain", "10.40.0.9", "10.42.1.10", "--bundle", "examples/hub-spoke", "--kubeconfig", "kc"), "E228"),
    (("inspect", "--bundle", "examples/hub-spoke", "--nodes", "agentpool=nope"), "E209"),
])
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_an_error_is_one_document_on_stdout_and_a_line_on_stderr(args, code, fmt):
    r = run(*args, "-o", fmt)
    doc = json.loads(r.stdout) if fmt == "json" else yaml.safe_load(r.stdout)
    assert r.returncode == 2, r.stderr
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message", "input", "hint"}
    assert doc["error"]["code"] == code and doc["error"]["message"]
    assert f"error {code}" in r.stderr and "Traceback" not in r.stderr


def test_a_table_error_leaves_stdout_empty():
    r = run("inspect", "--bundle", "/nonexistent")
    assert r.returncode == 2 and r.stdout == "" and "E320" in r.stderr


def test_a_usage_error_of_the_command_line_is_a_document_too():
    r = run("inspect", "--no-such-flag", "-o", "json")
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == "E200"
    assert "--no-such-flag" in json.loads(r.stdout)["error"]["message"]


def test_an_invalid_config_given_as_input_exits_2(tmp_path):
    (tmp_path / "ip-masq-agent").write_text("nonMasqueradeCIDRs:\n  - 10.0.0.1/8\n")
    r = run("explain", "10.0.0.1", "10.0.0.2", "--config-dir", str(tmp_path), "-o", "json")
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == "E105", r.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_works_before_or_after_the_command_and_shows_no_traceback_for_a_coded_error(where):
    args = ["inspect", "--bundle", "/nonexistent"]
    r = run("--debug", *args) if where == "before" else run(*args, "--debug")
    assert r.returncode == 2 and "E320" in r.stderr and "Traceback" not in r.stderr
    assert "No such option" not in r.stderr


@pytest.mark.parametrize("flag", [["-v", "2"], ["-vv"], ["-v2"], ["--verbose", "2"], ["--verbose=2"], ["-v", "-v"]])
def test_verbose_takes_a_count(flag):
    r = run("explain", "10.40.0.9", "10.42.1.10", "--iptables", DUMP, "--node-ip", "10.40.0.4", *flag)
    assert r.returncode == 0, r.stderr
    assert "Got unexpected extra argument" not in r.stderr


@pytest.mark.parametrize("argv, expected", [
    (["inspect", "-v", "2"], (["inspect", "-v", "-v"], False)),
    (["--debug", "inspect", "-vv"], (["inspect", "-vv"], True)),
    (["inspect", "--debug", "--verbose=3"], (["inspect", "-v", "-v", "-v"], True)),
    (["explain", "-v", "10.0.0.1", "10.0.0.2"], (["explain", "-v", "10.0.0.1", "10.0.0.2"], False)),
    (["explain", "--", "--debug"], (["explain", "--", "--debug"], False)),
])
def test_normalize(argv, expected):
    assert normalize(argv) == expected


@pytest.mark.parametrize("argv, expected", [
    (["inspect"], None), (["inspect", "-o", "json"], "json"), (["inspect", "-ojson"], "json"),
    (["inspect", "--output=yaml"], "yaml"), (["inspect", "-o", "json", "-o", "yaml"], "yaml"),
    (["inspect", "--", "-o", "json"], None),
])
def test_output_format(argv, expected):
    assert output_format(argv) == expected


@pytest.mark.parametrize("args, said", [
    (("inspect", "-o", "xml"), "'xml' is not one of 'table', 'wide', 'json', 'yaml'"),
    (("inspect", "--bogus"), "No such option: --bogus"),
    (("nope",), "No such command 'nope'"),
    (("explain", "10.0.0.1"), "Missing argument 'DST'"),
])
def test_a_command_line_the_parser_refuses_is_said_as_every_error(args, said):
    r = run(*args)
    assert r.returncode == 2 and r.stdout == ""
    first, hint = r.stderr.strip().splitlines()[:2]
    assert first.startswith("error E200 masqctl") and said in first
    assert hint.startswith("hint: `masqctl") and "-h` shows the usage" in hint
