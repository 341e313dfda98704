"""Names iptables uses in rules: basic options, which options belong to which module, and
protocol numbers. Shared by the parser, the evaluator and the semantic comparison."""

from __future__ import annotations

# Which options belong to which match or target module (for re-attaching options that
# appear after a later module, as getopt does in iptables).
MODULE_OPTIONS = {
    "comment": {"--comment"},
    "addrtype": {"--src-type", "--dst-type", "--limit-iface-in", "--limit-iface-out"},
    "statistic": {"--mode", "--probability", "--every", "--packet"},
    "tcp": {"--dport", "--sport", "--destination-port", "--source-port", "--tcp-flags", "--syn",
            "--tcp-option"},
    "udp": {"--dport", "--sport", "--destination-port", "--source-port"},
    "sctp": {"--dport", "--sport", "--destination-port", "--source-port", "--chunk-types"},
    "multiport": {"--dports", "--sports", "--ports", "--destination-ports", "--source-ports"},
    "mark": {"--mark"},
    "conntrack": {"--ctstate", "--ctproto", "--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst",
                  "--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport",
                  "--ctstatus", "--ctexpire", "--ctdir"},
    "set": {"--match-set", "--return-nomatch", "--update-counters", "--update-subcounters",
            "--packets-eq", "--packets-lt", "--packets-gt", "--bytes-eq", "--bytes-lt", "--bytes-gt"},
    "physdev": {"--physdev-in", "--physdev-out", "--physdev-is-in", "--physdev-is-out",
                "--physdev-is-bridged"},
    "MASQUERADE": {"--to-ports", "--random", "--random-fully"},
    "SNAT": {"--to-source", "--random", "--random-fully", "--persistent"},
    "DNAT": {"--to-destination", "--random", "--persistent"},
    "REDIRECT": {"--to-ports", "--random"},
    "MARK": {"--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark"},
    "CONNMARK": {"--set-xmark", "--set-mark", "--save-mark", "--restore-mark", "--and-mark", "--or-mark",
                 "--xor-mark", "--nfmask", "--ctmask", "--mask"},
}

# Basic (non-module) options with a value, and their short spelling.
BASIC_OPTIONS = {"-s": "-s", "--source": "-s", "--src": "-s", "-d": "-d", "--destination": "-d",
                 "--dst": "-d", "-i": "-i", "--in-interface": "-i", "-o": "-o", "--out-interface": "-o",
                 "-p": "-p", "--protocol": "-p"}

PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "132": "sctp", "1": "icmp", "58": "ipv6-icmp", "0": "all",
                    "icmpv6": "ipv6-icmp"}


def proto_name(text: str) -> str:
    """``-p`` / ``--ctproto`` value → the protocol name (numbers and aliases resolved)."""
    low = text.lower()
    return PROTOCOL_NUMBERS.get(low, low)
