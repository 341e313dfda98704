"""`kubectl masq …` (the kubectl-masq entry point), the krew manifest and its archive, and shell
completion (`masqctl completion bash|zsh|fish`, and the completions the shell asks for)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def as_script(name: str, *args: str, env=None) -> subprocess.CompletedProcess:
    """Run the console entry point the way the script ``name`` on PATH runs it."""
    code = f"import sys; sys.argv[0] = '/usr/local/bin/{name}'; from masqctl.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "120", **(env or {})}, check=False)


def test_kubectl_masq_names_itself_as_kubectl_does():
    r = as_script("kubectl-masq", "--help")
    assert r.returncode == 0 and "Usage: kubectl masq [OPTIONS] COMMAND" in r.stdout
    r = as_script("kubectl-masq", "inspect", "--bundle", "examples/hub-spoke", "-q")
    assert r.returncode == 0 and "(MQ008)" in r.stdout
    assert as_script("kubectl-masq", "inspect", "--bundle", "/nonexistent").returncode == 2


def test_the_entry_point_is_declared():
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    assert 'kubectl-masq = "masqctl.cli.main:main"' in text


def test_krew_manifest_and_archive(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "deploy", "krew", "render.py"), "--version", "v0.1.0",
                        "--uri", "https://downloads.example/kubectl-masq-v0.1.0.tar.gz", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    plugin = yaml.safe_load((tmp_path / "masq.yaml").read_text())
    assert plugin["kind"] == "Plugin" and plugin["metadata"]["name"] == "masq"
    platform = plugin["spec"]["platforms"][0]
    data = (tmp_path / "kubectl-masq-v0.1.0.tar.gz").read_bytes()
    assert platform["sha256"] == hashlib.sha256(data).hexdigest() and platform["bin"] == "kubectl-masq"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember("kubectl-masq")
        assert member.mode == 0o755 and b"masqctl" in tar.extractfile(member).read()
    again = tmp_path / "again"
    subprocess.run([sys.executable, os.path.join(ROOT, "deploy", "krew", "render.py"), "--version", "v0.1.0",
                    "--uri", "https://downloads.example/x.tar.gz", "--out", str(again)], check=True,
                   capture_output=True)
    assert (again / "kubectl-masq-v0.1.0.tar.gz").read_bytes() == data        # reproducible


@pytest.mark.parametrize("args", [["--version", "0.1"], ["--uri", "http://insecure/x.tar.gz"]])
def test_krew_render_refuses_what_krew_refuses(tmp_path, args):
    base = {"--version": "v0.1.0", "--uri": "https://d.example/x.tar.gz"}
    base[args[0]] = args[1]
    r = subprocess.run([sys.executable, os.path.join(ROOT, "deploy", "krew", "render.py"), *sum(base.items(), ()),
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and args[0] in r.stderr and not list(tmp_path.iterdir())


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete")])
def test_completion_prints_the_script(shell, marker):
    r = as_script("masqctl", "completion", shell)
    assert r.returncode == 0 and "_MASQCTL_COMPLETE" in r.stdout and marker in r.stdout


def test_completion_of_an_unknown_shell_is_a_usage_error():
    r = as_script("masqctl", "completion", "tcsh")
    assert r.returncode == 2 and "E229" in r.stderr


@pytest.mark.parametrize("words, cword, expected", [
    ("masqctl ex", "1", "explain"),
    ("masqctl inspect --bu", "2", "--bundle"),
    ("masqctl apply --go", "2", "--goal"),
])
def test_the_shell_gets_the_completions_it_asks_for(words, cword, expected):
    r = as_script("masqctl", env={"_MASQCTL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword})
    assert expected in r.stdout.split(), r.stdout + r.stderr
