"""The rules the agents write, exactly as they write them.

Per family, one ``iptables-restore --noflush`` payload that replaces the agent's chain inside
one commit (the ``:CHAIN - [0:0]`` line flushes it), and one POSTROUTING jump that the agent
ensures separately (checked, appended only if absent).

Rule order in the chain: TKE source exemptions, the link-local RETURN (only when
``masqLinkLocal``/``masqLinkLocalIPv6`` is false), one RETURN per non-masquerade CIDR of
that family, upstream's ``--to-ports`` MASQUERADE rules, and the catch-all MASQUERADE.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from masqctl.engine.model import (AZURE_V2, CILIUM_FLAVORS, LINK_LOCAL_V4, LINK_LOCAL_V6, TKE, AgentOptions,
                                  CidrEntry, EffectiveConfig)
from masqctl.netfilter.tokens import join_args, split_args

NON_MASQ_COMMENT = '-m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE"'
MASQ_COMMENT = ('-m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE '
                '(must be last in chain)"')
# TKE's own text is not public; masqctl writes this comment for source exemptions.
SRC_COMMENT = ('-m comment --comment "ip-masq-agent: traffic from non-masquerade source CIDRs is not '
               'subject to MASQUERADE"')
JUMP_COMMENT = ("ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to "
                "our custom {chain} chain")
TO_PORTS_PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class Rule:
    """One rule: ``text`` is the exact line fed to ``iptables-restore``."""

    chain: str
    text: str
    kind: str                      # jump | link-local | src-return | return | masquerade-to-ports | masquerade
    cidr: CidrEntry | None = None  # the config entry behind a RETURN (provenance)

    @property
    def args(self) -> list[str]:
        """The rule as argument words after ``-A CHAIN`` (for ``iptables -C``/``-A``)."""
        return split_args(self.text)[2:]

    def to_dict(self) -> dict:
        d = {"chain": self.chain, "text": self.text, "kind": self.kind}
        if self.cidr is not None:
            d["cidr"] = self.cidr.to_dict()
        return d


@dataclass(frozen=True)
class FamilyRules:
    family: int             # 4 or 6
    chain: str
    rules: tuple[Rule, ...]
    jump: Rule

    @property
    def binary(self) -> str:
        return "iptables" if self.family == 4 else "ip6tables"

    def payload(self) -> str:
        """The exact ``iptables-restore --noflush`` input."""
        lines = ["*nat", f":{self.chain} - [0:0]", *(r.text for r in self.rules), "COMMIT"]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {"family": self.family, "chain": self.chain, "payload": self.payload(),
                "rules": [r.to_dict() for r in self.rules], "jump": self.jump.to_dict()}


@dataclass(frozen=True)
class RuleSet:
    ipv4: FamilyRules
    ipv6: FamilyRules | None

    def families(self) -> list[FamilyRules]:
        return [f for f in (self.ipv4, self.ipv6) if f is not None]


def jump_rule(options: AgentOptions) -> Rule:
    """The POSTROUTING jump as the agent of ``options.flavor`` writes it.

    azure-v2 passes its comment with literal double quotes around it (no shell in between),
    so ``iptables-save`` shows ``--comment "\\"ip-masq-agent: ...\\""``; current upstream
    does not. Compare jumps by meaning (addrtype, target), never by comment.
    """
    comment = JUMP_COMMENT.format(chain=options.masq_chain)
    if options.flavor == AZURE_V2:
        comment = f'"{comment}"'
    args = ["-m", "comment", "--comment", comment, "-m", "addrtype", "!", "--dst-type", "LOCAL",
            "-j", options.masq_chain]
    return Rule("POSTROUTING", "-A POSTROUTING " + join_args(args), "jump")


def _line(chain: str, *words: str) -> str:
    return " ".join(("-A", chain) + words)


def _probability(part: int, whole: int) -> str:
    """Go's ``strconv.FormatFloat(p, 'f', -1, 64)``: shortest digits, never an exponent."""
    return format(Decimal(repr(part / whole)), "f")


def render_family(config: EffectiveConfig, options: AgentOptions, family: int) -> FamilyRules:
    chain = options.masq_chain
    rules: list[Rule] = []
    if config.flavor == TKE:
        for entry in config.non_masquerade_src_cidrs:
            if entry.family == family:
                rules.append(Rule(chain, _line(chain, SRC_COMMENT, "-s", entry.cidr, "-j", "RETURN"),
                                  "src-return", entry))
    link_local_masqueraded = (config.masq_link_local if family == 4 else config.masq_link_local_ipv6).value
    # the Cilium flavours' list is the BPF map itself (link-local included when it is exempt): the rules
    # rendered for them are that map's meaning as iptables, for a what-if walk only
    if not link_local_masqueraded and config.flavor not in CILIUM_FLAVORS:
        cidr = LINK_LOCAL_V4 if family == 4 else LINK_LOCAL_V6
        rules.append(Rule(chain, _line(chain, NON_MASQ_COMMENT, "-d", cidr, "-j", "RETURN"), "link-local"))
    for entry in config.non_masquerade_cidrs:
        if entry.family == family:
            rules.append(Rule(chain, _line(chain, NON_MASQ_COMMENT, "-d", entry.cidr, "-j", "RETURN"),
                              "return", entry))
    masq = [MASQ_COMMENT, "-j", "MASQUERADE"]
    if config.flavor not in (AZURE_V2, *CILIUM_FLAVORS) and options.random_fully:
        masq.append("--random-fully")
    if config.flavor not in (AZURE_V2, *CILIUM_FLAVORS) and options.to_ports:
        total = sum(p.size for p in options.to_ports)
        for proto in TO_PORTS_PROTOCOLS:
            remaining = total
            for ports in options.to_ports:
                words = [*masq, "-p", proto]
                if ports.size != remaining:
                    words += ["-m", "statistic", "--mode", "random", "--probability",
                              _probability(ports.size, remaining)]
                remaining -= ports.size
                rules.append(Rule(chain, _line(chain, *words, "--to-ports", str(ports)),
                                  "masquerade-to-ports"))
    rules.append(Rule(chain, _line(chain, *masq), "masquerade"))
    return FamilyRules(family, chain, tuple(rules), jump_rule(options))


def render(config: EffectiveConfig, options: AgentOptions) -> RuleSet:
    """Both families' rules; IPv6 only with ``options.enable_ipv6``."""
    return RuleSet(render_family(config, options, 4),
                   render_family(config, options, 6) if options.enable_ipv6 else None)


def dry_run_text(rules: RuleSet) -> str:
    """What ``node-agent --dry-run`` prints: each payload under a ``# <binary>-restore`` line,
    followed by the jump the agent ensures, as a comment."""
    out = []
    for fam in rules.families():
        out.append(f"# {fam.binary}-restore\n")
        out.append(fam.payload())
        out.append(f"# {fam.binary} -t nat: ensure in POSTROUTING (appended only if absent): "
                   f"{fam.jump.text}\n")
    return "".join(out)
