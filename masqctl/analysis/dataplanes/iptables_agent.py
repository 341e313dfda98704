"""The iptables agent (ip-masq-agent, ip-masq-agent-v2, masqctl's node-agent): its
``IP-MASQ-AGENT`` chain, reached from nat POSTROUTING, decides. masqctl models it exactly: the
verdict is the kernel's walk of the node's captured rules (or of the rules the agent would write)."""

from __future__ import annotations

from masqctl.analysis.dataplanes.base import Dataplane


class IptablesAgent(Dataplane):
    snat_by = "iptables-agent"
    exact = True
