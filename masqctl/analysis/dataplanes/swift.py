"""Azure CNI pod subnet (SWIFT): no general masquerade. The CNS-written ``SWIFT-POSTROUTING``
chain SNATs only Azure DNS (168.63.129.16:53) and IMDS (169.254.169.254:80) to the node IP; both
are in iptables, so the walk of the node's rules shows them. The verdict says so in its sentence,
with the chain's rules (Azure/azure-container-networking ``cns/restserver/internalapi_linux.go``
``programSNATRules``), and that the user ConfigMap changes nothing here."""

from __future__ import annotations

from masqctl.analysis.dataplanes.base import Dataplane
from masqctl.analysis.explain import Explanation, Request, explain

CHAIN = "SWIFT-POSTROUTING"


class SwiftPostrouting(Dataplane):
    snat_by = "swift-postrouting"
    note = ("mode {mode}: there is no general masquerade; only SWIFT-POSTROUTING SNATs Azure DNS "
            "(168.63.129.16:53) and IMDS (169.254.169.254:80) to the node IP")
    remedy = ("Nothing to configure for source IPs: pod IPs leave unmasqueraded (only Azure DNS 168.63.129.16:53 "
              "and IMDS 169.254.169.254:80 are SNATed by SWIFT-POSTROUTING). A user ConfigMap has no effect; "
              "delete it if it only causes confusion.")

    def verdict(self, request: Request) -> Explanation:
        base = explain(request)
        ev = base.evaluation
        rules = swift_rules(base)
        shown = "; ".join(rules) if rules else f"no {CHAIN} rule is in the capture"
        deciding = ev.primary.deciding if ev.agreed else None
        if ev.masqueraded is False:
            base.summary += (f" — not masqueraded; only DNS/IMDS are SNATed, by CNS ({CHAIN}: {shown}); "
                             "no ip-masq agent reads the user ConfigMap in this mode, so it changes nothing")
        elif ev.masqueraded and deciding is not None and deciding.chain == CHAIN:
            base.summary += f" — SNATed by CNS's {CHAIN} (Azure DNS/IMDS only): {deciding.text}"
        return base


def swift_rules(ex: Explanation) -> list[str]:
    """The ``-A SWIFT-POSTROUTING`` rules of the dump the explanation walked."""
    dump = ex.dump
    if dump is None:
        return []
    nat = dump.tables.get("nat")
    if nat is None:
        return []
    return [text for _, text in nat.lines_of.get(CHAIN, [])]
