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
