"""Input the agents ignore without a word, reported as warnings: files of the config folder the
flavour does not read (W104), a Kubernetes manifest saved as a config file (W105), and YAML
documents after the first (W106). The config computed stays the agent's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from masqctl.engine import AgentOptions, ConfigSource, effective_config, load_config_dir

V2 = AgentOptions()
UP = AgentOptions(flavor="upstream")

MANIFEST = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: azure-ip-masq-agent-config\n"
            "  namespace: kube-system\ndata:\n  ip-masq-agent: |\n    nonMasqueradeCIDRs:\n"
            "      - 10.0.0.0/8\n")


def folder(tmp_path, files: dict[str, str]) -> str:
    d = tmp_path / "config"
    d.mkdir()
    for name, text in files.items():
        (d / name).write_text(text)
    return str(d)


def codes(config) -> list[str]:
    return [w.code for w in config.warnings]


def load(text: str, options: AgentOptions = V2, name: str = "ip-masq-agent"):
    return effective_config([ConfigSource(name, text.encode())], options)


# --------------------------------------------------------------------------- W104: files not read


@pytest.mark.parametrize("options,name", [(V2, "config.yaml"), (UP, "ip-masq-agent.yaml"), (UP, "config.yaml")])
def test_a_misnamed_file_is_named_and_the_defaults_are_said(tmp_path, options, name):
    config = load_config_dir(folder(tmp_path, {name: "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n"}), options)
    assert config.defaults_used and config.files == ()
    [w] = config.warnings
    assert w.code == "W104" and w.file == name
    assert "not read" in w.message and "runs its defaults (nonMasqueradeCIDRs 10.0.0.0/8, 172.16.0.0/12" in w.message
    assert "rename it to ip-masq-agent" in w.message


def test_a_misnamed_file_beside_a_read_one_does_not_claim_defaults(tmp_path):
    config = load_config_dir(folder(tmp_path, {"ip-masq-agent": "masqLinkLocal: true\n", "notes.txt": "x"}), V2)
    [w] = config.warnings
    assert w.code == "W104" and w.file == "notes.txt" and "defaults" not in w.message
    assert config.cidrs() == []


def test_a_misnamed_manifest_gets_the_extraction_advice(tmp_path):
    config = load_config_dir(folder(tmp_path, {"cm.yaml": MANIFEST}), V2)
    [w] = config.warnings
    assert w.code == "W104" and "looks like a Kubernetes manifest" in w.message
    assert "jsonpath='{.data.KEY}' > ip-masq-agent" in w.message


def test_kubelet_entries_folders_and_dot_files_are_not_reported(tmp_path):
    d = tmp_path / "vol"
    gen = d / "..2025_01_01_00_00_00.1"
    gen.mkdir(parents=True)
    (gen / "ip-masq-agent").write_text("masqLinkLocal: true\n")
    os.symlink(gen.name, d / "..data")
    os.symlink("..data/ip-masq-agent", d / "ip-masq-agent")
    (d / "lost+found").mkdir()
    (d / ".ip-masq-agent.swp").write_text("x")
    assert load_config_dir(str(d), V2).warnings == ()


def test_a_fifo_in_the_folder_is_reported_but_never_opened(tmp_path):
    d = folder(tmp_path, {})
    os.mkfifo(os.path.join(d, "pipe"))
    # opening a FIFO for reading would block this test forever
    [w] = load_config_dir(d, V2).warnings
    assert w.code == "W104" and w.file == "pipe"


# --------------------------------------------------------------------------- W105: a manifest


@pytest.mark.parametrize("options,effect", [
    (V2, "since it exists the defaults do not apply either"),
    (UP, "the agent runs its defaults"),
])
def test_a_configmap_manifest_is_one_warning_not_typos(options, effect):
    config = load(MANIFEST, options)
    assert codes(config) == ["W105"], [w.describe() for w in config.warnings]
    [w] = config.warnings
    assert w.file == "ip-masq-agent" and w.line == 2 and w.key == "kind"
    assert "Kubernetes ConfigMap manifest" in w.message and effect in w.message
    assert ("kubectl -n kube-system get configmap azure-ip-masq-agent-config "
            "-o jsonpath='{.data.ip-masq-agent}'") in w.message
    # the config stays what the agent runs: nothing from the file
    assert config.cidrs() == ([] if options is V2 else ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])


def test_a_json_manifest_and_a_list_are_recognised():
    config = load(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                              "data": {"config.yaml": "masqLinkLocal: true\n"}}))
    assert codes(config) == ["W105"] and "jsonpath='{.data.config\\.yaml}'" in config.warnings[0].message
    config = load("apiVersion: v1\nitems: []\nkind: List\n")
    assert codes(config) == ["W105"] and "Kubernetes List manifest" in config.warnings[0].message


def test_a_manifest_keeps_typo_warnings_for_other_keys_and_its_settings():
    config = load("kind: ConfigMap\napiVersion: v1\nnonMasqueradeCIDR: [10.0.0.0/8]\nmasqLinkLocal: true\n")
    assert sorted(codes(config)) == ["W101", "W105"]
    assert "no setting comes" not in config.warnings[0].message
    assert config.masq_link_local.value is True


@pytest.mark.parametrize("text", ["kind: 3\nmetadata: {}\n", "data: {}\n", "metadata:\n  name: x\n"])
def test_not_a_manifest(text):
    assert "W105" not in codes(load(text))


# --------------------------------------------------------------------------- W106: a later document


@pytest.mark.parametrize("text,ordinal,line,empty_first", [
    ("nonMasqueradeCIDRs: [192.168.0.0/16]\n---\nnonMasqueradeCIDRs: [10.0.0.0/8]\n", 2, 2, False),
    ("# comments only\n---\n---\nnonMasqueradeCIDRs: [10.0.0.0/8]\n", 2, 3, True),
    ("masqLinkLocal: true\n---\n---\n\n---\nnonMasqueradeCIDRs: [10.0.0.0/8]\n", 4, 5, False),
    ("masqLinkLocal: true\n...\nnonMasqueradeCIDRs: [10.0.0.0/8]\n", 2, 3, False),
    ("masqLinkLocal: true\n---\n: : [ {\n", 2, 2, False),           # never parsed by the agent
    ("masqLinkLocal: true\n---\n\tx\n", 2, 2, False),
])
def test_a_later_yaml_document_is_named_with_its_line(text, ordinal, line, empty_first):
    config = load(text)
    [w] = [w for w in config.warnings if w.code == "W106"]
    assert w.file == "ip-masq-agent" and w.line == line, w.describe()
    assert f"YAML document {ordinal} (after ---) is ignored" in w.message
    assert ("the first is empty" in w.message) == empty_first
    assert "10.0.0.0/8" not in config.cidrs()     # what the agent does: the first document only


@pytest.mark.parametrize("text", [
    "masqLinkLocal: true\n---\n", "masqLinkLocal: true\n---\n# the end\n", "---\nmasqLinkLocal: true\n",
    "masqLinkLocal: true\n...\n", "masqLinkLocal: true\n---\nnull\n", "",
])
def test_no_warning_when_nothing_follows(text):
    assert "W106" not in codes(load(text))


def test_json_with_a_second_document_stays_an_error():
    from masqctl.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load('{"masqLinkLocal": true}\n---\n{"masqLinkLocal": false}\n')
    assert info.value.code == "E102"


# --------------------------------------------------------------------------- in the commands' output


def run(*args):
    return subprocess.run([sys.executable, "-m", "masqctl.cli.main", *args], capture_output=True, text=True, timeout=60, check=False)


def test_dry_run_and_explain_say_so(tmp_path):
    d = folder(tmp_path, {"config.yaml": "nonMasqueradeCIDRs: [10.0.0.0/8]\n",
                          "ip-masq-agent": "masqLinkLocal: true\n---\nnonMasqueradeCIDRs: [10.0.0.0/8]\n"})
    out = run("node-agent", "--once", "--dry-run", "--config-dir", d)
    assert out.returncode == 0, out.stderr
    assert "warning: W104 config.yaml: not read" in out.stderr
    assert "warning: W106 ip-masq-agent line 2: YAML document 2" in out.stderr
    out = run("explain", "10.244.0.5", "8.8.8.8", "--config-dir", d, "-o", "json")
    assert out.returncode == 0, out.stderr
    notes = " ".join(json.loads(out.stdout)["notes"])
    assert "W104 config.yaml" in notes and "W106 ip-masq-agent line 2" in notes
