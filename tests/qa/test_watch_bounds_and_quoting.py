"""`who --watch/--for` beyond what the clock takes, and user text that looks like rich markup in an
error line: a coded error printed as the user wrote it."""

from __future__ import annotations

import json
import os

import pytest
from qakit import EXAMPLES, assert_clean, run

CT = os.path.join(EXAMPLES, "hub-spoke", "nodes", "aks-system-20931744-vmss000000", "conntrack.txt")
CONFIGS = os.path.join(EXAMPLES, "config-folders", "aks-hub-spoke-custom")


@pytest.mark.parametrize("flags, flag", [(["--watch", "99999999999"], "--watch"),
                                         (["--watch", "1", "--for", "1e12"], "--for")])
def test_watch_and_for_over_a_week_are_refused(flags, flag):
    # before: time.sleep / the deadline overflowed, E999 OverflowError
    r = run("who", "10.40.0.4", "--conntrack", CT, *flags, "-o", "json", timeout=30)
    assert_clean(r)
    err = json.loads(r.stdout)["error"]
    assert r.returncode == 2 and err["code"] == "E364" and err["input"] == flag and "604800" in err["message"]


@pytest.mark.parametrize("observed, shown", [("[fd00::1]:", "'[fd00::1]:'"), ("[red]x", "'[red]x'")])
def test_error_lines_print_user_text_as_written(tmp_path, observed, shown):
    empty = tmp_path / "ct.txt"
    empty.write_text("")
    r = run("who", observed, "--conntrack", str(empty))
    assert_clean(r)
    assert r.returncode == 2 and "E260" in r.stderr and shown in r.stderr, r.stderr


@pytest.mark.parametrize("cmd, code", [(["who", "[fd00::1", "--conntrack", CT], "E260"),
                                       (["explain", "[fd00::1", "fd00::2", "--config-dir", CONFIGS], "E210"),
                                       (["explain", "fd00::1", "[fd00::2:80", "--config-dir", CONFIGS], "E210")])
def test_an_unclosed_bracket_is_no_address(cmd, code):
    # before: '[fd00::1' was read as fd00::1
    r = run(*cmd, "-o", "json")
    assert_clean(r)
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == code, r.stdout


def test_a_missing_config_folder_names_the_agent_only_where_it_exits():
    folder = os.path.join(EXAMPLES, "no-such-folder")
    v2 = run("explain", "10.0.0.1", "8.8.8.8", "--config-dir", folder, "--flavor", "azure-v2")
    merger = run("explain", "10.0.0.1", "8.8.8.8", "--config-dir", folder, "--flavor", "azure-cilium")
    assert v2.returncode == merger.returncode == 2
    assert "E101" in v2.stderr and "azure-v2 agent exits" in v2.stderr
    assert "E101" in merger.stderr and "azure-v2" not in merger.stderr, merger.stderr
