"""Fixtures of the node-agent tests; the helpers live in ``agentlib`` beside this file."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import AgentProcess  # noqa: E402


@pytest.fixture
def lockfile(tmp_path):
    return str(tmp_path / "xtables.lock")


@pytest.fixture
def agents():
    started: list[AgentProcess] = []

    def start(ns, *args: str, lockfile: str, env: dict | None = None) -> AgentProcess:
        a = AgentProcess(ns, list(args), lockfile, env)
        started.append(a)
        return a

    yield start
    for a in started:
        a.close()


@pytest.fixture
def node():
    from netns import NetNS

    ns = NetNS("node")
    yield ns
    ns.delete()
