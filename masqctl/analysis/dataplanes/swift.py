"""Azure CNI pod subnet (SWIFT): no general masquerade. The CNS-written ``SWIFT-POSTROUTING``
chain SNATs only Azure DNS (168.63.129.16:53) and IMDS (169.254.169.254:80) to the node IP; both
are in iptables, so the walk of the node's rules shows them."""

from __future__ import annotations

from masqctl.analysis.dataplanes.base import Dataplane


class SwiftPostrouting(Dataplane):
    snat_by = "swift-postrouting"
    note = ("mode {mode}: there is no general masquerade; only SWIFT-POSTROUTING SNATs Azure DNS "
            "(168.63.129.16:53) and IMDS (169.254.169.254:80) to the node IP")
    remedy = ("Nothing to configure for source IPs: pod IPs leave unmasqueraded (only Azure DNS 168.63.129.16:53 "
              "and IMDS 169.254.169.254:80 are SNATed by SWIFT-POSTROUTING). A user ConfigMap has no effect; "
              "delete it if it only causes confusion.")
