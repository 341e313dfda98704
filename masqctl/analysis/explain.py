"""Explain one flow: is SRC → DST masqueraded on this node, by which rule, and why?

Two sources of rules, combinable:

* a dump (``iptables-save`` text, read by :mod:`masqctl.netfilter.dump`);
* a config folder (what-if): the engine merges it and renders the agent's chain and jump;
  every RETURN keeps the config file and line that put its CIDR there. With a dump as well,
  the agent's chain in the dump is replaced by the rendered one (and the jump appended if the
  dump has none), answering "what would this node do with that config".

The result is plain data (:class:`Explanation`) that the CLI prints as a tree or as the JSON
document of the ``explain -o json`` contract.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from masqctl.errors import InputError, UsageError
from masqctl.netfilter.dump import DumpError, Dump, parse_dump
from masqctl.netfilter.evaluate import Evaluation, Evaluator, Outcome, Packet, Step
from masqctl.netfilter.values import split_endpoint
from masqctl.netfilter.facts import Address, FactError, NodeFacts, parse_address_fact, parse_ip_addr, \
    parse_ipset_save
from masqctl.textinput import read_text

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass
class Request:
    """Everything one explanation depends on, as plain values."""

    src: str
    dst: str
    proto: str | None = None
    dport: int | None = None
    sport: int | None = None
    from_host: bool = False
    iptables: str | None = None          # path, or "-" for text given in iptables_text
    iptables_text: str | None = None
    config_dir: str | None = None
    agent_options: object | None = None  # masqctl.engine.AgentOptions
    local_addresses: list[str] = field(default_factory=list)
    ip_addr: str | None = None           # path to `ip -o addr` output
    node_ip: str | None = None
    out_interface: str | None = None
    in_interface: str | None = None
    ipset: str | None = None             # path to `ipset save` output
    bridged: bool | None = None
    # in-memory inputs (explain on a cluster snapshot): the texts of a node capture and the
    # agent's effective config, each with the label errors and notes name it by
    iptables_label: str | None = None    # e.g. "nodes/aks-1/iptables-save.txt"; with iptables_text
    iptables_dump: Dump | None = None    # iptables_text already parsed (one parse shared by nodes alike)
    ip_addr_text: str | None = None
    ip_addr_label: str | None = None
    config: object | None = None         # masqctl.engine.EffectiveConfig: what-if from this config
    config_label: str | None = None      # e.g. "the effective config of kube-system/azure-ip-masq-agent"
    source_of: object | None = None      # Origin -> str: where a config line lives (a ConfigMap key)
    cilium: object | None = None         # analysis.cilium.BpfContext: Cilium's BPF masquerade decides
    nft: str | None = None               # path to `nft -j list ruleset` (or `nft list ruleset`) output, "-" stdin
    nft_text: str | None = None          # its text (stdin, or a bundle's file with nft_label)
    nft_label: str | None = None


@dataclass
class Provenance:
    """Where a rendered agent rule came from."""

    kind: str
    cidr: str | None
    file: str | None
    line: int | None
    note: str | None = None
    source: str | None = None            # where the file lives: "ConfigMap kube-system/NAME key K line N"

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "cidr": self.cidr, "file": self.file, "line": self.line,
             "note": self.note}
        if self.source is not None:
            d["source"] = self.source
        return d

    def describe(self) -> str:
        if self.source:
            return self.source
        if self.file:
            return f"{self.file} line {self.line}" if self.line else self.file
        return self.note or "a default"


@dataclass
class Explanation:
    request: Request
    packet: Packet
    evaluation: Evaluation
    notes: list[str]
    provenance: dict                       # (chain, index) -> Provenance
    summary: str
    input: dict
    dump: Dump | None = None               # the rules evaluated, as parsed (not part of to_dict)

    def masqueraded(self) -> bool | None:
        return self.evaluation.masqueraded

    def deciding(self) -> Step | None:
        return self.evaluation.primary.deciding

    def step_dict(self, step: Step) -> dict:
        d = step.to_dict()
        prov = self.provenance.get((step.chain, step.index))
        if prov is not None:
            d["origin"] = prov.to_dict()
        return d

    def to_dict(self) -> dict:
        ev = self.evaluation
        primary = ev.primary
        agreed = ev.agreed
        deciding = primary.deciding if agreed else None
        doc = {
            "src": str(self.packet.src),
            "dst": str(self.packet.dst),
            "dst_port": self.packet.dport,
            "proto": self.packet.proto,
            "from_host": self.packet.from_host,
            "input": self.input,
            "masqueraded": ev.masqueraded,
            "source_ip_seen": ev.source_ip_seen,
            "destination_seen": _endpoint(primary) if agreed and len({_endpoint(o) for o in ev.outcomes}) == 1
            else None,
            "deciding_rule": self._rule_dict(deciding),
            "trace": [self.step_dict(s) for s in primary.trace] if self.provenance
            else [s.to_dict() for s in primary.trace],
            "notes": list(self.notes),
            "summary": self.summary,
        }
        if len(ev.outcomes) > 1:
            doc["branches"] = [self._branch(o) for o in ev.outcomes]
        return doc

    def _rule_dict(self, step: Step | None) -> dict | None:
        if step is None:
            return None
        d = {"chain": step.chain, "index": step.index, "text": step.text, "line": step.lineno,
             "hook": step.hook}
        prov = self.provenance.get((step.chain, step.index))
        if prov is not None:
            d["origin"] = prov.to_dict()
        return d

    def _branch(self, o: Outcome) -> dict:
        return {
            "probability": None if o.probability is None or o.probability != o.probability
            else round(o.probability, 6),
            "conditions": list(o.conditions),
            "endpoint": _endpoint(o),
            "outcome": o.kind,
            "masqueraded": o.masqueraded,
            "source_ip_seen": o.source_ip_seen,
            "deciding_rule": self._rule_dict(o.deciding),
            "reason": o.reason,
            "trace": [self.step_dict(s) for s in o.trace if s.result != "no-match"],
        }


def _endpoint(o: Outcome) -> str:
    host = f"[{o.destination}]" if ":" in o.destination and o.dport is not None else o.destination
    return f"{host}:{o.dport}" if o.dport is not None else o.destination


# --- inputs ----------------------------------------------------------------------------------------

def parse_endpoint(text: str, name: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int | None]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address. A port outside 1-65535, or an
    address no packet is routed to or from (unspecified, limited broadcast, multicast), is E210
    with the reason, never a verdict."""
    try:
        host, port_text = split_endpoint(text)
        addr = ipaddress.ip_address(host)
        port = _port(port_text, text, name) if port_text is not None else None
    except ValueError:
        raise UsageError(f"{text!r} is not an IP address (IP, IP:PORT or [IPv6]:PORT)", input=name,
                         code="E210", hint="an address, not a CIDR; names (nodes, pods, Services) are read from a "
                                           "cluster or --bundle, not from --iptables or --config-dir") from None
    why = _not_routed(addr)
    if why is not None:
        raise UsageError(f"{addr} is {why}, so no masquerading decision applies to it", input=name, code="E210",
                         hint="give the unicast address the connection really uses")
    return addr, port


def _not_routed(addr) -> str | None:
    if addr.is_unspecified:
        return "the unspecified address: no packet is routed to or from it (connecting to it reaches the local host)"
    if addr.version == 4 and addr == ipaddress.IPv4Address("255.255.255.255"):
        return "the limited broadcast address: it never leaves the link and is never routed"
    if addr.is_multicast:
        return "a multicast address: nodes do not route multicast (no multicast routing on Kubernetes nodes)"
    return None


def _port(text: str, whole: str, name: str) -> int:
    if not text.isdigit():
        raise ValueError
    port = int(text)
    if not 0 < port < 65536:
        raise UsageError(f"{whole!r}: port {port} is outside 1-65535", input=name, code="E210",
                         hint="IP:PORT takes a port from 1 to 65535")
    return port


def _read(path: str, what: str, stdin_text: str | None = None) -> str:
    if path == "-" and stdin_text is not None:
        return stdin_text
    return read_text(path, what=what, binary_hint="give the text output of the command")


def load_dump(text: str, source: str) -> Dump:
    try:
        return parse_dump(text, source)
    except DumpError as exc:
        raise dump_error(exc, source) from None


def dump_error(exc: DumpError, source: str) -> InputError:
    """The user-facing error for a dump line that cannot be read: the file, line number and text."""
    if exc.kind == "empty":
        return InputError("no tables, chains or rules found", input=source, code="E314",
                          hint="give the output of `iptables-save` (at least `-t nat`)")
    where = f"line {exc.lineno}: {exc.message}: {(exc.text or '').strip()!r}"
    if exc.kind == "list-format":
        return InputError(where, input=source, code="E313",
                          hint="capture `iptables-save` (or `iptables -t nat -S`) instead")
    return InputError(where, input=source, code="E312", hint="is this iptables-save output?")


def build_facts(req: Request, ipset_sets: dict | None) -> NodeFacts:
    addresses: list[Address] = []
    if req.ip_addr or req.ip_addr_text is not None:
        label = req.ip_addr_label or req.ip_addr
        try:
            text = req.ip_addr_text if req.ip_addr_text is not None else _read(req.ip_addr, "ip -o addr")
            addresses += parse_ip_addr(text)
        except FactError as exc:
            raise InputError(f"line {exc.lineno}: {exc.message}: {exc.text!r}", input=label,
                             code="E316", hint="give the output of `ip -o addr`") from None
    for text in req.local_addresses:
        try:
            addresses.append(parse_address_fact(text))
        except FactError as exc:
            raise UsageError(exc.message, input="--local-address", code="E212") from None
    node_ip = None
    if req.node_ip:
        try:
            node_ip = ipaddress.ip_address(req.node_ip)
        except ValueError:
            raise UsageError(f"{req.node_ip!r} is not an IP address", input="--node-ip", code="E212") from None
    return NodeFacts(addresses=addresses, node_ip=node_ip, out_interface=req.out_interface,
                     in_interface=req.in_interface, ipsets=ipset_sets, bridged=req.bridged)


def _load_ipsets(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        return parse_ipset_save(_read(path, "ipset"))
    except FactError as exc:
        raise InputError(f"line {exc.lineno}: {exc.message}: {exc.text!r}", input=path, code="E315",
                         hint="give the output of `ipset save`") from None


# --- what-if ---------------------------------------------------------------------------------------

def what_if(config_dir: str, options, family: int, base: Dump | None) -> tuple[Dump, dict, object]:
    """The agent's rules for ``config_dir`` as a nat table (or spliced into ``base``)."""
    from masqctl.engine import load_config_dir   # the engine only for what-if

    config = load_config_dir(config_dir, options)
    return what_if_config(config, options, family, base, f"{config_dir} (what-if)")


def what_if_config(config, options, family: int, base: Dump | None, label: str,
                   source_of=None) -> tuple[Dump, dict, object]:
    """The rules the agent writes for ``config`` (an ``EffectiveConfig``) as a nat table, or
    spliced into ``base`` in place of its agent chain. ``source_of`` maps a config origin to
    where it lives (a ConfigMap key and line) for the provenance of each rule."""
    from masqctl.engine import render
    from masqctl.netfilter.canonical import is_masq_jump
    from masqctl.netfilter.tokens import TokenizeError, split_args

    rules = render(config, options)
    fam = rules.ipv4 if family == 4 else rules.ipv6
    if fam is None:
        raise UsageError("an IPv6 flow needs --enable-ipv6 in what-if mode (the agent writes no "
                         "ip6tables rules without it)", input="SRC", code="E214")
    chain = fam.chain
    dump = base
    if dump is None:
        dump = parse_dump(f"*nat\n:{chain} - [0:0]\nCOMMIT\n", label)
    nats = dump.tables_named("nat")
    if not nats:
        from masqctl.netfilter.dump import Table
        nats = [dump.tables.setdefault("nat", Table("nat"))]
    # with several nat tables (dumps concatenated), the agent's chain is in those that show it
    targets = [t for t in nats if chain in t.declared or t.lines_of.get(chain)] or nats[:1]
    for nat in targets:
        nat.replace(chain, [(None, r.text) for r in fam.rules])   # whole, even in a dump cut short
        nat.declare(chain, None)
        post = nat.ensure("POSTROUTING")
        has_jump = False
        for lineno, text in post.lines:
            try:
                has_jump = has_jump or is_masq_jump(split_args(text)[2:], chain)
            except TokenizeError as exc:     # a broken quote the parser leaves to lazy tokenizing
                raise dump_error(DumpError(str(exc), lineno, text), dump.source) from None
        if not has_jump:
            post.set_lines(post.lines + [(None, fam.jump.text)])
    provenance: dict = {}
    for i, r in enumerate(fam.rules, start=1):
        if r.cidr is not None:
            o = r.cidr.origins[0]
            provenance[(chain, i)] = Provenance(r.kind, r.cidr.cidr, o.file, o.line,
                                                o.note if o.kind != "file" else None,
                                                source_of(o) if source_of is not None else None)
        elif r.kind == "link-local":
            setting = config.masq_link_local if family == 4 else config.masq_link_local_ipv6
            o = setting.origins[0] if setting.origins else None
            cidr = "169.254.0.0/16" if family == 4 else "fe80::/10"
            provenance[(chain, i)] = Provenance(r.kind, cidr, o.file if o else None, o.line if o else None,
                                                (o.describe() if o else "default: masqLinkLocal is false"),
                                                source_of(o) if source_of is not None and o else None)
        else:
            provenance[(chain, i)] = Provenance(r.kind, None, None, None, f"{r.kind} rule of the agent")
    return dump, provenance, config


# --- explain ---------------------------------------------------------------------------------------

def explain(req: Request) -> Explanation:
    src, sport_in_src = parse_endpoint(req.src, "SRC")
    dst, dport_in_dst = parse_endpoint(req.dst, "DST")
    if src.version != dst.version:
        raise UsageError(f"SRC {src} and DST {dst} are of different IP families", input="SRC/DST",
                         code="E211")
    if req.iptables is None and req.config_dir is None and req.config is None and req.nft is None:
        raise UsageError("give the rules: --iptables FILE (an iptables-save dump), --nft FILE (an nftables "
                         "ruleset) and/or --config-dir DIR (what the agent would install)", input="explain",
                         code="E213")
    proto = (req.proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise UsageError(f"protocol {req.proto!r}; use one of {', '.join(PROTOCOLS)}", input="--proto",
                         code="E215")
    dport = req.dport if req.dport is not None else dport_in_dst
    if req.dport is not None and dport_in_dst is not None and req.dport != dport_in_dst:
        raise UsageError(f"DST carries port {dport_in_dst} but --dport says {req.dport}", input="--dport",
                         code="E215")
    sport = req.sport if req.sport is not None else sport_in_src
    for name, value in (("--dport", dport), ("--sport", sport)):
        if value is not None and not 0 < value < 65536:
            raise UsageError(f"port {value} is outside 1-65535", input=name, code="E215")

    notes: list[str] = []
    dump = None
    source_desc = {"iptables": req.iptables, "config_dir": req.config_dir, "family": src.version}
    if req.iptables is not None:
        if req.iptables_label is not None and req.iptables_text is not None:
            text, label = req.iptables_text, req.iptables_label
        else:
            text = _read(req.iptables, "iptables-save", req.iptables_text)
            label = "stdin" if req.iptables == "-" else req.iptables
        dump = req.iptables_dump if req.iptables_dump is not None else load_dump(text, label)
        if req.iptables_label is not None:
            source_desc["iptables"] = label
        if dump.family is not None and dump.family != src.version:
            raise InputError(f"the dump is {'ip6tables' if dump.family == 6 else 'iptables'} (IPv{dump.family}) "
                             f"but SRC/DST are IPv{src.version}", input=label, code="E317",
                             hint="give the ip6tables-save dump for IPv6 flows, iptables-save for IPv4")
    provenance: dict = {}
    if req.config_dir is not None or req.config is not None:
        from masqctl.engine import AgentOptions
        if dump is not None and not dump.tables_named("nat"):
            notes.append("the dump has no nat table: only the agent's rendered rules were evaluated; the node's "
                         "other nat rules (kube-proxy, CNI) are not known")
        options = req.agent_options or AgentOptions()
        if req.config is not None:
            what = req.config_label or "the given config"
            dump, provenance, config = what_if_config(req.config, options, src.version, dump, f"{what} (what-if)",
                                                      req.source_of)
        else:
            what = req.config_dir
            dump, provenance, config = what_if(req.config_dir, options, src.version, dump)
        source_desc["flavor"] = options.flavor
        source_desc["chain"] = options.masq_chain
        for w in config.warnings:
            notes.append(f"config: {w.describe()}")
        if req.iptables is None:
            notes.append(f"what-if: rules rendered from {what} ({options.flavor}); other "
                         "nat rules of a real node (kube-proxy, CNI) are not included — add --iptables to "
                         "evaluate them together")
        else:
            notes.append(f"what-if: chain {options.masq_chain} of the dump replaced by the rules rendered "
                         f"from {what} ({options.flavor})")
    ruleset = None
    if req.nft is not None:
        from masqctl.analysis.explain_nft import load_ruleset   # nftables only when given
        ruleset = load_ruleset(req)
        source_desc["nft"] = ruleset.source
        if dump is None:
            dump = Dump(ruleset.source)
    facts = build_facts(req, _load_ipsets(req.ipset))
    if req.iptables is None and req.iptables_text is None and req.nft is None and not facts.knows_locals(dst.version):
        # a what-if on the agent's rules alone asks what the agent does with traffic that leaves the
        # node: the destination is taken as remote, and the answer says so
        facts.remote_assumed = True
        notes.append(f"what-if: {dst} is taken as a remote address (not one of the node's own, which would be "
                     "delivered locally without nat POSTROUTING); give --local-address or --ip-addr to decide it")
    packet = Packet(src, dst, proto, dport, sport, req.from_host)
    if ruleset is not None:
        from masqctl.netfilter.nfteval import NftEvaluator
        evaluator = NftEvaluator(ruleset, dump if dump.tables else None, facts)
    else:
        evaluator = Evaluator(dump, facts)
    try:
        evaluation = evaluator.evaluate(packet)
    except DumpError as exc:   # a rule tokenized lazily on the packet's path
        raise dump_error(exc, dump.source) from None
    notes = _input_notes(dump, req, facts, evaluation) + notes + evaluation.notes + _flow_notes(evaluation, facts)
    if ruleset is not None:
        from masqctl.analysis.explain_nft import ruleset_notes
        notes = ruleset_notes(ruleset, dump, evaluation) + notes
    if "mangle" not in dump.tables and not evaluator.mangle_marks and any(
            " -m mark " in s.text for o in evaluation.outcomes for s in o.trace):
        notes.append("mark matches were decided with the packet mark unset before nat, but the input has no "
                     "mangle table (iptables-save -t nat?) where a CNI may set marks — give the whole "
                     "`iptables-save` to be sure")
    if evaluator.mangle_marks:
        notes.append("the mangle or raw table sets packet marks, which masqctl does not simulate: mark "
                     "matches in nat are unknown")
    source_desc.update({"generator": dump.generator, "fragment": dump.fragment,
                        "legacy_tables_present": dump.legacy_tables_present})
    ex = Explanation(req, packet, evaluation, notes, provenance, "", source_desc, dump)
    ex.summary = summarize(ex)
    return ex


def _input_notes(dump: Dump, req: Request, facts: NodeFacts, ev: Evaluation) -> list[str]:
    notes = []
    if dump.legacy_tables_present:
        notes.append("iptables-legacy tables are present on this node: a second nat table, invisible in this "
                     f"dump, is active and may masquerade the packet first; run "
                     f"{'ip6tables' if dump.family == 6 else 'iptables'}-legacy-save and explain that dump too")
    if dump.incompatible_tables:
        notes.append("iptables-save says table(s) " + ", ".join(dump.incompatible_tables) + " are incompatible "
                     "(nftables rules it cannot print): those rules are active but were not evaluated — "
                     "`nft list ruleset` shows them")
    nats = dump.tables_named("nat")
    if len(nats) > 1:
        lines = ", ".join(f"line {t.lineno}" if t.lineno else "the top" for t in nats)
        same = "every order gives the same answer" if ev.agreed else "the answer depends on the order (see branches)"
        notes.append(f"the input has {len(nats)} *nat tables ({lines}; two dumps concatenated, e.g. legacy and "
                     "nft?): the kernel runs each on its own at every hook and the first to NAT the packet wins, "
                     "in an order no dump shows — each table was walked on its own, in every order: " + same)
    others = [t for t in dump.repeated_tables if t != "nat"]
    if others:
        notes.append("the input has more than one " + ", ".join(f"*{t}" for t in others)
                     + " table (two dumps concatenated?): their rules were read as one table")
    if dump.uncommitted:
        notes.append(f"the input ends inside *{dump.uncommitted} with no COMMIT (cut short?): rules after the cut "
                     "are missing, and iptables-restore would refuse it — capture the whole `iptables-save`")
    if dump.fragment:
        notes.append("the input is a fragment (no *nat header, as from `iptables-save | grep …`): only the "
                     "rules shown were evaluated; rules filtered out (kube-proxy DNAT, other POSTROUTING "
                     "jumps, chain policies) can change the answer — give the full `iptables-save -t nat`")
        notes.extend(_fragment_gaps(dump))
    elif dump.list_format:
        notes.append("read as `iptables -S` output, which names no table: it was taken as the nat table")
    if dump.undeclared_chains and not dump.fragment:
        notes.append("chains used but never declared (incomplete dump?): " + ", ".join(dump.undeclared_chains[:8]))
    if req.proto is None and any(" -p " in s.text for o in ev.outcomes for s in o.trace if s.result != "no-match"):
        notes.append("protocol assumed tcp (give --proto udp for UDP flows)")
    raw = dump.table("raw")
    if raw is not None and any(" -j NOTRACK" in t or "--notrack" in t for lines in raw.lines_of.values()
                               for _, t in lines):
        notes.append("the raw table untracks some packets (NOTRACK / CT --notrack): raw was walked before nat, "
                     "since an untracked packet skips the nat table entirely")
    nat = dump.table("nat")
    if nat is not None:
        if "CILIUM_POST_nat" in nat and not len(nat.chain("CILIUM_POST_nat")):
            notes.append("Cilium chains are present but CILIUM_POST_nat is empty: masquerading is probably "
                         "done in eBPF, which iptables-save does not show")
        kube_services = nat.chain("KUBE-SERVICES")
        if kube_services is not None and any("KUBE-CLUSTER-IP" in t for _, t in kube_services.lines):
            notes.append("kube-proxy runs in IPVS mode: Service DNAT happens in IPVS, not in iptables — for a "
                         "ClusterIP give the endpoint address as DST (and --ipset for KUBE-* sets)")
    return notes


def _fragment_gaps(dump: Dump) -> list[str]:
    """What a fragment visibly lacks: chains jumped to but not shown, empty built-in chains."""
    import re

    nat = dump.table("nat")
    if nat is None:
        return []
    targets: list[str] = []
    for name in nat.names():
        for _, text in nat.chain(name).lines:
            m = re.search(r" -[jg] (\S+)", text)
            if m and m.group(1) not in targets:
                targets.append(m.group(1))
    missing = [t for t in targets if t in nat and not len(nat.chain(t)) and t not in nat.declared] + \
              [t for t in targets if t not in nat and re.fullmatch(r"[A-Z0-9_-]+", t) and "-" in t]
    notes = []
    if missing:
        notes.append("fragment: chains jumped to but not shown (evaluated as unknown): " + ", ".join(missing[:8]))
    empty = [c for c in ("PREROUTING", "OUTPUT", "POSTROUTING") if not len(nat.chain(c))]
    if empty:
        notes.append("fragment: no " + "/".join(empty) + " rules shown"
                     + (" — DNAT (kube-proxy Services) is not visible" if "PREROUTING" in empty else ""))
    return notes


def _flow_notes(ev: Evaluation, facts: NodeFacts) -> list[str]:
    notes = []
    seen_dnat = set()
    for o in ev.outcomes:
        if o.dnat is not None and (o.dnat.chain, o.dnat.index) not in seen_dnat:
            seen_dnat.add((o.dnat.chain, o.dnat.index))
            if len(seen_dnat) <= 3:
                notes.append(f"DNAT by {o.dnat.chain} rule {o.dnat.index}: {ev.packet.dst} → {_endpoint(o)}; "
                             "POSTROUTING matches the new destination")
    if any(o.kind == "local" for o in ev.outcomes):
        notes.append("local delivery: a destination that is an address of this node (after DNAT) goes to INPUT; "
                     "nat POSTROUTING never runs, so nothing masquerades it")
    unknown = []
    for o in ev.outcomes:
        for c in o.conditions:
            if c.startswith("assumed") and c not in unknown:
                unknown.append(c)
    if unknown:
        notes.append("unknown facts, both outcomes evaluated: " + "; ".join(unknown[:6])
                     + (f" (and {len(unknown) - 6} more)" if len(unknown) > 6 else ""))
    for o in ev.outcomes:
        if o.kind == "unknown":
            notes.append(f"undecidable: {o.reason}")
            break
    if ev.truncated:
        notes.append("too many branches: enumeration stopped; the verdict is unknown")
    randoms = [o for o in ev.outcomes if o.random]
    if randoms and len(ev.outcomes) > 1:
        k = sum(1 for o in ev.outcomes if o.masqueraded)
        notes.append(f"masqueraded on {k} of {len(ev.outcomes)} branches (kube-proxy picks an endpoint at random)")
    if any(o.kind == "masquerade" and o.source_ip_seen is None for o in ev.outcomes):
        notes.append("MASQUERADE uses the address of the egress interface, which is not known: give --node-ip "
                     "(or --ip-addr / --local-address IP/LEN@DEVICE)")
    if any(o.kind in ("masquerade", "snat") and o.source_ip_seen == str(ev.packet.src) for o in ev.outcomes):
        notes.append("the source already is the address MASQUERADE picks: a binding is made (ports may change), "
                     "the address does not")
    dst = ev.packet.dst
    if dst.version == 4 and dst in ipaddress.ip_network("169.254.0.0/16"):
        extra = (" 169.254.169.254 is the instance metadata service (IMDS on Azure)." if str(dst) == "169.254.169.254"
                 else "")
        notes.append("link-local destination: ip-masq-agent exempts 169.254.0.0/16 only when masqLinkLocal is "
                     "false." + extra)
    if not facts.knows_locals(ev.packet.dst.version):
        notes.append("no node addresses given: whether an address is the node's own (addrtype LOCAL, local "
                     "delivery) was left open — give --local-address or --ip-addr")
    return notes


# --- the one sentence ------------------------------------------------------------------------------

def summarize(ex: Explanation) -> str:
    ev = ex.evaluation
    flow = f"{ev.packet.src} → {_flow_dst(ev.packet)}"
    if not ev.agreed:
        n = len(ev.outcomes)
        k = sum(1 for o in ev.outcomes if o.masqueraded)
        if any(o.kind == "unknown" for o in ev.outcomes) or ev.truncated:
            reason = next((o.reason for o in ev.outcomes if o.kind == "unknown"), "too many branches")
            return f"{flow} cannot be decided: {reason}"
        if all(o.random and not o.assumed for o in ev.outcomes):
            return f"{flow} is masqueraded on {k} of {n} random branches (see branches)"
        if n <= 3:
            parts = [f"{_conditions(o)}: {_short(o)}" for o in ev.outcomes]
            return f"{flow} cannot be decided from the facts given — " + "; ".join(parts)
        return f"{flow} cannot be decided from the facts given: masqueraded on {k} of {n} paths (see branches)"
    o = ev.primary
    either = _either_way(ex, flow)
    if either is not None:
        return either
    d = o.deciding
    where = _rule_ref(d)
    prov = ex.provenance.get((d.chain, d.index)) if d is not None else None
    via = ""
    if o.dnat is not None:
        via = f" (DNAT to {_endpoint(o)})"
    if o.kind == "masquerade":
        why = _masq_why(ex, o)
        return f"{flow}{via} is masqueraded to {o.source_ip_seen or 'the egress interface address'} by {where}" \
               f"{_what(d)}{': ' + why if why else ''}"
    if o.kind == "snat":
        return f"{flow}{via} is SNATed to {_snat_to(o)} by {where}"
    if o.kind == "local":
        return f"{flow}{via} is not masqueraded: the destination is an address of this node, delivered locally " \
               f"(nat POSTROUTING is not walked); it sees {o.source_ip_seen}"
    if o.kind == "dropped":
        return f"{flow} is dropped by {where}"
    if o.kind == "untracked":
        return f"{flow} is not masqueraded: raw {where} untracks it, so the nat table never sees it; the " \
               f"destination sees {o.source_ip_seen}"
    # accept: RETURN to policy, ACCEPT, or nothing matched
    if d is not None and d.action.upper().endswith("RETURN"):
        cidr = prov.cidr if prov else _dest_of(d.text)
        what = f" for {cidr}" if cidr else ""
        origin = f", set by {prov.describe()}" if prov and prov.file else ""
        return f"{flow}{via} is not masqueraded: {where} RETURNs{what}{origin}; the built-in policy ACCEPT keeps " \
               f"the source {o.source_ip_seen}"
    if d is not None and d.index is not None:
        return f"{flow}{via} is not masqueraded: {where} ACCEPTs it with no SNAT; the destination sees " \
               f"{o.source_ip_seen}"
    return f"{flow}{via} is not masqueraded: no nat rule applies (policy ACCEPT); the destination sees " \
           f"{o.source_ip_seen}"


def _either_way(ex: Explanation, flow: str) -> str | None:
    """The sentence when every path gives the same verdict but they get there differently (an
    assumed fact, random branches): the verdict holds either way, and how each path decides."""
    ev = ex.evaluation
    stories: list[tuple] = []
    parts: list[str] = []
    for o in ev.outcomes:
        d = o.deciding
        story = (o.kind, d.hook if d else None, d.chain if d else None, d.index if d else None)
        if story in stories:
            continue
        stories.append(story)
        part = f"{_conditions(o)}, {_decided_by(ex, o)}"
        if part not in parts:
            parts.append(part)
    if len(stories) < 2:
        return None
    o = ev.primary
    if o.masqueraded:
        verdict = f"is masqueraded to {o.source_ip_seen or 'the egress interface address'} either way"
    else:
        verdict = f"is not masqueraded either way (the destination sees {o.source_ip_seen})"
    more = ""
    if len(parts) > 3:
        more = f"; and {len(parts) - 3} more paths (see branches)"
    return f"{flow} {verdict}: " + "; ".join(parts[:3]) + more


def _decided_by(ex: Explanation, o: Outcome) -> str:
    """How one path decides, as a clause."""
    d = o.deciding
    where = _rule_ref(d)
    if o.kind == "masquerade":
        return f"{where} masquerades it"
    if o.kind == "snat":
        return f"{where} SNATs it to {_snat_to(o)}"
    if o.kind == "local":
        via = f" after DNAT by {_rule_ref(o.dnat)}" if o.dnat is not None else ""
        return f"it is delivered locally{via} (nat POSTROUTING is not walked)"
    if o.kind == "untracked":
        return f"raw {where} untracks it"
    if o.kind == "dropped":
        return f"{where} drops it"
    if d is not None and d.action.upper().endswith("RETURN"):
        prov = ex.provenance.get((d.chain, d.index))
        cidr = prov.cidr if prov else _dest_of(d.text)
        origin = f", set by {prov.describe()}" if prov and prov.file else ""
        return f"{where} RETURNs{' for ' + cidr if cidr else ''}{origin}"
    if d is not None and d.index is not None:
        return f"{where} ACCEPTs it with no SNAT"
    return "no nat rule applies (policy ACCEPT)"


def _rule_ref(d: Step | None) -> str:
    """``CHAIN rule N`` (or the chain's policy), with the nat table when the input has several."""
    if d is None:
        return "no rule"
    table = f" of nat table #{d.hook[4:].split(' ', 1)[0]}" if d.hook.startswith("nat#") else ""
    return f"{d.chain} rule {d.index}{table}" if d.index is not None else f"the {d.chain} policy{table}"


def _conditions(o: Outcome) -> str:
    conds = [_condition(c) for c in o.conditions]
    return "if " + " and ".join(conds) if conds else "otherwise"


def _condition(c: str) -> str:
    """An assumption as a clause: ``assumed not: X is Y (hint)`` → ``X is not Y``."""
    import re

    negated = c.startswith("assumed not: ")
    c = c.removeprefix("assumed not: ").removeprefix("assumed: ").removeprefix("assumed ")
    c = re.sub(r" \([^()]*\bgive [^()]*\)$", "", c)        # the hint on how to know it
    if negated:
        if " is not " in c:
            return c.replace(" is not ", " is ", 1)
        if " is " in c and " and " not in c:
            return c.replace(" is ", " is not ", 1)
        return f"not ({c})"
    return c


def _short(o: Outcome) -> str:
    d = o.deciding
    where = f" by {_rule_ref(d)}" if d is not None and d.index is not None else ""
    if o.kind == "masquerade":
        return f"masqueraded to {o.source_ip_seen or 'the egress address'}{where}"
    if o.kind == "snat":
        return f"SNATed to {_snat_to(o)}{where}"
    if o.kind == "local":
        return "not masqueraded (delivered locally)"
    if o.kind == "untracked":
        return f"not masqueraded (untracked{where})"
    if o.kind == "accept":
        return f"not masqueraded{' (' + d.chain + ' rule ' + str(d.index) + ')' if d and d.index else ''}"
    if o.kind == "dropped":
        return f"dropped{where}"
    return f"unknown ({o.reason})"


def _snat_to(o: Outcome) -> str:
    """The source an SNAT outcome gives, or the range the kernel picks it from."""
    if o.source_ip_seen is not None:
        return o.source_ip_seen
    return "one address of " + o.reason.removeprefix("SNAT to ") + " (the kernel picks it per connection)"


def _flow_dst(p: Packet) -> str:
    if p.dport is None:
        return str(p.dst)
    return f"[{p.dst}]:{p.dport}" if p.dst.version == 6 else f"{p.dst}:{p.dport}"


def _what(step: Step | None) -> str:
    if step is None or ": table " in step.hook:     # an nftables rule: not iptables text
        return ""
    from masqctl.netfilter.dump import parse_rule
    rule = parse_rule(step.chain, step.index or 0, step.lineno or 0, step.text)
    if all(m.module == "comment" for m in rule.matches):
        return f" (catch-all {rule.target})"
    return ""


def _dest_of(text: str) -> str | None:
    from masqctl.netfilter.dump import parse_rule
    rule = parse_rule("", 0, 0, text)
    for m in rule.matches:
        if m.module == "-d":
            return ("not " if m.negated else "") + m.value
    return None


def _masq_why(ex: Explanation, o: Outcome) -> str:
    d = o.deciding
    # the mark that made KUBE-POSTROUTING-style rules masquerade
    mark_rule = next((s for s in o.trace if s.chain == d.chain and s.result != "no-match"
                      and " -m mark " in s.text and s.index is not None and s.index < d.index), None)
    if o.marks and (mark_rule is not None or " -m mark " in d.text):
        setter = o.marks[0]
        return f"the packet carries the mark set by {setter.chain} rule {setter.index} ({setter.action})"
    returns = [s for s in o.trace if s.chain == d.chain and s.result == "no-match" and s.text.rstrip().endswith(
        "-j RETURN") and " -d " in s.text]
    if returns:
        cidrs = [c for c in (_dest_of(s.text) for s in returns[:6]) if c]    # the first few: a chain may hold 100k
        listed = ", ".join(cidrs) + (f" and {len(returns) - 6} more" if len(returns) > 6 else "")
        if any((s.chain, s.index) in ex.provenance for s in returns) or "MASQ-AGENT" in d.chain.upper():
            return f"{o.destination} is outside every non-masquerade CIDR ({listed})"
        if len(returns) == 1:
            return f"{o.destination} does not match the RETURN rule before it ({listed})"
        return f"{o.destination} matched none of the {len(returns)} RETURN rules before it ({listed})"
    return ""
