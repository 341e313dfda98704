"""Each command loads only what it runs: an offline explain imports no other command's module, no
cluster gatherer and no client library; `masqctl --help` lists every command from the registry
without importing them, and the registry's lines are the commands' own first docstring lines."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from masqctl.cli.app import COMMANDS, _command_name

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUMP = os.path.join(ROOT, "examples", "hub-spoke", "nodes", "aks-system-20931744-vmss000000", "iptables-save.txt")


def loaded_after(argv: list[str]) -> tuple[int, list[str], str]:
    code = ("import json, sys\nfrom masqctl.cli.app import run\n"
            f"status = run({argv!r})\n"
            "print(json.dumps([status, sorted(sys.modules)]), file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    status, modules = json.loads(r.stderr.strip().splitlines()[-1])
    return status, modules, r.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_help_line_of_each_command_is_its_docstring(name):
    module, summary = COMMANDS[name]
    doc = getattr(importlib.import_module(module), name).__doc__
    assert doc.strip().splitlines()[0] == summary


def test_offline_explain_loads_only_explain():
    status, modules, out = loaded_after(["explain", "10.40.0.9", "10.42.1.10", "--iptables", DUMP,
                                         "--node-ip", "10.40.0.4", "-o", "json"])
    assert status == 0 and json.loads(out)["masqueraded"] is not None
    assert "masqctl.cli.explain" in modules
    for unwanted in ("masqctl.cli.inspect", "masqctl.cli.apply", "masqctl.cli.collect", "masqctl.cluster.gather",
                     "masqctl.cluster.live", "masqctl.cluster.selection", "masqctl.cluster.options",
                     "masqctl.ops.apply", "kubernetes", "azure", "yaml"):
        assert unwanted not in modules, unwanted


def test_offline_explain_for_a_person_does_not_load_rich():
    """The answer is written by masqctl.cli.textout: rich's console (a fifth of the run) stays out."""
    status, modules, out = loaded_after(["explain", "10.40.0.9", "10.42.1.10", "--iptables", DUMP,
                                         "--node-ip", "10.40.0.4"])
    assert status == 0 and out.startswith("10.40.0.9 → 10.42.1.10 is masqueraded to 10.40.0.4")
    assert "masqctl.cli.explain_text" in modules
    assert not [m for m in modules if m == "rich" or m.startswith("rich.")]


def test_root_help_lists_every_command_without_importing_them():
    status, modules, out = loaded_after(["--help"])
    assert status == 0
    for name in (*COMMANDS, "node-agent"):
        assert f" {name} " in out, name
    assert not [m for m in modules if m.startswith("masqctl.cli.") and m.rsplit(".", 1)[1] in COMMANDS]


@pytest.mark.parametrize("argv, expected", [
    ([], None), (["--debug", "inspect", "--bundle", "x"], "inspect"), (["--help"], None),
    (["explain", "--help"], "explain"), (["--", "inspect"], None), (["nope"], "nope"),
])
def test_the_command_is_the_first_word_that_is_not_an_option(argv, expected):
    assert _command_name(argv) == expected


def test_an_unknown_command_is_a_usage_error():
    status, _, _ = loaded_after(["nope"])
    assert status == 2


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_help_of_each_command_gives_two_examples(name):
    module, _ = COMMANDS[name]
    doc = getattr(importlib.import_module(module), name).__doc__
    examples = doc.split("Examples:", 1)[1].strip().splitlines() if "Examples:" in doc else []
    assert len([line for line in examples if "masqctl " in line]) >= 2, doc


def test_a_chosen_command_is_the_only_one_typer_converts():
    from masqctl.cli.app import COMPLETE_VAR, app, register_commands

    def registered(argv, environ):
        app.registered_commands.clear()
        register_commands(argv, environ=environ)
        return [c.name for c in app.registered_commands]

    try:
        assert registered(["explain", "10.0.0.1", "10.0.0.2"], {}) == ["explain"]
        assert registered(["node-agent", "--help"], {}) == ["node-agent"]
        every = [*COMMANDS, "node-agent", "completion"]
        assert registered(["--help"], {}) == every            # the root's list names them all
        assert registered(["nope"], {}) == every              # and so does an unknown command's error
        assert registered(["explain"], {COMPLETE_VAR: "bash_complete"}) == every
    finally:
        app.registered_commands.clear()
