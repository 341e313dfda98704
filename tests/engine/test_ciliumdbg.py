"""The cilium-dbg outputs a bundle holds: ``bpf ipmasq list`` (cilium-dbg/cmd/bpf_ipmasq_list.go:
header ``IP PREFIX/ADDRESS``, one ``netip.Prefix`` a line through tabwriter, "No entries found." for
an empty map, ``-o json`` a list) and the ``Masquerading:`` line of ``cilium-dbg status``."""

from __future__ import annotations

import pytest

from masqctl.engine.ciliumdbg import parse_ipmasq_list, parse_status
from masqctl.errors import InputError


def test_table_json_and_empty():
    table = "IP PREFIX/ADDRESS   \n192.168.0.0/16      \n10.0.0.0/8          \nfe80::/10   \n"
    assert parse_ipmasq_list(table) == ("10.0.0.0/8", "192.168.0.0/16", "fe80::/10")
    assert parse_ipmasq_list('["10.0.0.0/8", "169.254.0.0/16"]') == ("10.0.0.0/8", "169.254.0.0/16")
    assert parse_ipmasq_list("No entries found.\n") == ()
    assert parse_ipmasq_list("") == ()


@pytest.mark.parametrize("text", ["IP PREFIX/ADDRESS\nhello\n", "10.0.0.0/8 extra\n", '{"a": 1}', "[1, 2]"])
def test_bad_lines_are_e333(text):
    with pytest.raises(InputError) as exc:
        parse_ipmasq_list(text, "nodes/n1/cilium-ipmasq.txt")
    assert exc.value.code == "E333" and exc.value.input == "nodes/n1/cilium-ipmasq.txt"


def test_status():
    bpf = parse_status("Cilium: Ok\nMasquerading:            BPF (ip-masq-agent)   [eth0]   192.168.0.0/16 "
                       "[IPv4: Enabled, IPv6: Disabled]\n")
    assert (bpf.mode, bpf.ip_masq_agent, bpf.native_routing_cidr, bpf.ipv4, bpf.ipv6, bpf.line) == (
        "BPF", True, "192.168.0.0/16", True, False, 2)
    ipt = parse_status("Masquerading:   IPTables [IPv4: Enabled, IPv6: Disabled]\n")
    assert (ipt.mode, ipt.ip_masq_agent, ipt.native_routing_cidr) == ("IPTables", False, None)
    assert parse_status("Masquerading: Disabled\n").mode == "Disabled"
    assert parse_status("KVStore: Disabled\n") is None


def _go_table(prefixes, rng) -> str:
    """What ``cilium-dbg bpf ipmasq list`` prints for a map holding ``prefixes``: cilium-dbg/cmd/
    bpf_ipmasq_list.go puts each ``cidr.String()`` as a key of a Go map (iteration order is random) and
    hands it to TablePrinter (cilium-dbg/cmd/common.go: tabwriter.NewWriter(os.Stdout, 5, 0, 3, ' ', 0),
    a "%s\\t%s\\t\\n" line per entry, the header ``IP PREFIX/ADDRESS`` first). Go's tabwriter pads every
    tab-terminated cell to its column's width (widest cell + padding 3, at least minwidth 5)."""
    rows = [("IP PREFIX/ADDRESS", "")] + [(p, "") for p in rng.sample(list(prefixes), len(prefixes))]
    w0 = max(5, max(len(a) for a, _ in rows) + 3)
    w1 = max(5, max(len(b) for _, b in rows) + 3)
    return "".join(a.ljust(w0) + b.ljust(w1) + "\n" for a, b in rows)


def test_dry_run_prints_the_prefixes_cilium_dbg_lists(tmp_path):
    """``node-agent --once --dry-run --flavor cilium`` prints one prefix a line, each in the form
    cilium-dbg prints it (``netip.Prefix.String()``: masked, RFC 5952, ``::ffff:a.b.c.d`` for IPv4-mapped),
    sorted (cilium-dbg's own order is Go map order, random): its output is exactly what masqctl reads back
    from any ordering of cilium-dbg's table and from its ``-o json`` list."""
    import json
    import random
    import subprocess
    import sys

    (tmp_path / "ip-masq-agent").write_text('nonMasqueradeCIDRs:\n  - 10.0.0.1/8\n  - 2001:DB8:0:0::/64\n'
                                           '  - "::ffff:10.0.0.0/104"\n  - 192.168.0.0/16\nmasqLinkLocal: true\n')
    r = subprocess.run([sys.executable, "-m", "masqctl.agent", "--once", "--dry-run", "--flavor", "cilium",
                        "--config-dir", str(tmp_path), "--enable-ipv6"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == ["10.0.0.0/8", "192.168.0.0/16", "::ffff:10.0.0.0/104", "2001:db8::/64", "fe80::/10"]
    rng = random.Random(7)
    for _ in range(5):
        assert parse_ipmasq_list(_go_table(lines, rng)) == tuple(lines)
    assert parse_ipmasq_list(json.dumps(rng.sample(lines, len(lines)), indent=2)) == tuple(lines)
