"""Walk a new connection's first packet through the nat table the way the kernel does.

Pod traffic: nat PREROUTING (DNAT, marks) → routing on the post-DNAT destination (a local
destination is delivered locally: POSTROUTING never runs) → nat POSTROUTING. Host traffic
(``from_host``): nat OUTPUT → POSTROUTING (a local destination goes out over ``lo``).

Traversal: ``-j`` pushes a return point, ``-g`` does not (a RETURN after a goto resumes in
the chain that ``-j``-called the goto-ing chain), RETURN or the end of a built-in chain applies
its policy (ACCEPT: no NAT), MASQUERADE/SNAT/DNAT/REDIRECT/ACCEPT/DROP end the hook, MARK and
target-less rules continue.

Three-valued matching: a match that needs a fact nobody gave (a local address list, ipset
contents, the egress interface, a port) is *unknown*. The walk then continues on both
outcomes, each path remembering what it assumed, so the same unknown fact is answered the same
way later on that path. ``statistic --mode random`` splits the walk into weighted branches.
Every path ends in an :class:`Outcome`; :class:`Evaluation` aggregates them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from masqctl.netfilter.dump import Dump, Rule, Table
from masqctl.netfilter.facts import IPAddress, NodeFacts

MAX_PATHS = 512
MAX_DEPTH = 64
MAX_STEPS = 2_000_000
FULL_MASK = 0xFFFFFFFF

_CONTINUE_TARGETS = {"LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "CHECKSUM", "TCPMSS", "CLASSIFY",
                     "DSCP", "TOS", "TTL", "HL", "NOTRACK", "CT", "SECMARK", "CONNSECMARK", "IDLETIMER",
                     "LED", "RATEEST", "SET", "TEE"}
_OTHER_TARGETS = {"NETMAP", "TPROXY", "QUEUE", "NFQUEUE", "SAME", "CLUSTERIP", "SYNPROXY", "MIRROR",
                  "IPMARK", "ROUTE", "XOR", "TARPIT", "DELUDE", "CHAOS", "ECHO", "HMARK", "NOTRACK_",
                  "SNPT", "DNPT", "MASQUERADE6"}
_PROTOS = {"6": "tcp", "17": "udp", "132": "sctp", "1": "icmp", "58": "ipv6-icmp", "0": "all",
           "icmpv6": "ipv6-icmp"}


@dataclass(frozen=True)
class Packet:
    """The first packet of a new connection as it leaves the pod (or the host)."""

    src: IPAddress
    dst: IPAddress
    proto: str = "tcp"
    dport: int | None = None
    sport: int | None = None
    from_host: bool = False


@dataclass
class Step:
    """One rule the walk looked at. ``index`` is 1-based within ``chain`` (None: the policy)."""

    hook: str
    chain: str
    index: int | None
    text: str
    result: str            # match | no-match | unknown
    action: str            # what happened: "next", "jump X", "MASQUERADE", "assumed match: ..."
    lineno: int | None = None

    def to_dict(self) -> dict:
        return {"hook": self.hook, "chain": self.chain, "index": self.index, "text": self.text,
                "result": self.result, "action": self.action, "line": self.lineno}


@dataclass
class Outcome:
    """Where one path of the walk ended."""

    kind: str                       # masquerade | snat | accept | local | dropped | unknown
    masqueraded: bool | None
    source_ip_seen: str | None
    destination: str                # after DNAT
    dport: int | None
    deciding: Step | None
    trace: list[Step]
    conditions: list[str]           # what this path assumed (unknown facts, random branches)
    probability: float | None       # product of random-branch probabilities (None: not random)
    reason: str = ""                # why it ended this way (for unknown: what is unknown)
    dnat: Step | None = None        # the DNAT that rewrote the destination
    marks: list[Step] = field(default_factory=list)   # rules that changed the mark
    egress: str | None = None
    random: bool = False            # took at least one random branch
    assumed: bool = False           # relied on at least one unknown fact


@dataclass
class Evaluation:
    packet: Packet
    outcomes: list[Outcome]
    notes: list[str]
    truncated: bool = False

    @property
    def primary(self) -> Outcome:
        return self.outcomes[0]

    @property
    def agreed(self) -> bool:
        """Every path gives the same verdict and source, and no path is unknown."""
        first = self.outcomes[0]
        return not self.truncated and all(
            o.kind != "unknown" and o.masqueraded == first.masqueraded
            and o.source_ip_seen == first.source_ip_seen for o in self.outcomes)

    @property
    def masqueraded(self) -> bool | None:
        return self.primary.masqueraded if self.agreed else None

    @property
    def source_ip_seen(self) -> str | None:
        return self.primary.source_ip_seen if self.agreed else None


class _Unknown:
    __slots__ = ("why", "key", "if_true")

    def __init__(self, why: str, key=None, if_true: bool = True):
        self.why = why
        self.key = key          # assumption key this unknown depends on (None: not memorised)
        self.if_true = if_true  # the value of that key under which the match holds


class _Random:
    __slots__ = ("p", "why")

    def __init__(self, p: float, why: str):
        self.p = p
        self.why = why


class _Path:
    __slots__ = ("chain", "pos", "stack", "src", "dst", "dport", "sport", "orig_dst", "orig_dport",
                 "mark", "known", "trace", "conditions", "prob", "assume", "order", "dnat", "marks",
                 "out_iface", "masq_src", "last_return", "random", "assumed", "steps")

    def copy(self) -> "_Path":
        p = _Path.__new__(_Path)
        for name in _Path.__slots__:
            setattr(p, name, getattr(self, name))
        p.stack = list(self.stack)
        p.trace = list(self.trace)
        p.conditions = list(self.conditions)
        p.assume = dict(self.assume)
        p.order = list(self.order)
        p.marks = list(self.marks)
        return p


# --- addresses, cached ---------------------------------------------------------------------------

_NET_CACHE: dict[str, tuple | None] = {}


def _net(text: str):
    """``a/len`` or ``a/dotted-mask`` → (version, network int, mask int); None if unreadable."""
    hit = _NET_CACHE.get(text)
    if hit is not None or text in _NET_CACHE:
        return hit
    result = None
    addr, _, mask = text.partition("/")
    if mask.isdigit() and addr.count(".") == 3:     # fast path: a.b.c.d/len
        try:
            a, b, c, d = (int(x) for x in addr.split("."))
            plen = int(mask)
            if max(a, b, c, d) < 256 and plen <= 32:
                m = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
                result = (4, ((a << 24) | (b << 16) | (c << 8) | d) & m, m)
                _NET_CACHE[text] = result
                return result
        except ValueError:
            pass
    try:
        ip = ipaddress.ip_address(addr)
        bits = ip.max_prefixlen
        if not mask:
            m = (1 << bits) - 1
        elif mask.isdigit():
            plen = int(mask)
            if plen > bits:
                raise ValueError
            m = ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
        else:
            m = int(ipaddress.ip_address(mask))
        result = (ip.version, int(ip) & m, m)
    except ValueError:
        result = None
    if len(_NET_CACHE) > 200_000:
        _NET_CACHE.clear()
    _NET_CACHE[text] = result
    return result


def _in(ip: IPAddress, text: str) -> bool | None:
    n = _net(text)
    if n is None:
        return None
    if n[0] != ip.version:
        return False
    return (int(ip) & n[2]) == n[1]


def _iface_match(pattern: str, name: str) -> bool:
    if pattern.endswith("+"):
        return name.startswith(pattern[:-1])
    return name == pattern


def _ports(spec: str) -> list[tuple[int, int]]:
    out = []
    for part in spec.split(","):
        a, _, b = part.partition(":")
        lo = int(a) if a else 0
        hi = int(b) if b else (65535 if _ else lo)
        out.append((lo, hi))
    return out


def _in_ports(port: int, spec: str) -> bool:
    """Raises ValueError for an unreadable port list (callers turn it into an unknown)."""
    return any(lo <= port <= hi for lo, hi in _ports(spec))


def _mark_value(spec: str) -> tuple[int, int]:
    v, _, m = spec.partition("/")
    return int(v, 0), (int(m, 0) if m else FULL_MASK)


_PREFIX = re.compile(r"-A \S+(?:( !)? -s (\S+))?(?:( !)? -d (\S+))? ")


# --- the evaluator -------------------------------------------------------------------------------

class Evaluator:
    """Evaluate packets against the nat table of ``dump`` with node ``facts``."""

    def __init__(self, dump: Dump, facts: NodeFacts | None = None):
        self.dump = dump
        self.facts = facts or NodeFacts()
        self.nat: Table | None = dump.table("nat")
        self.notes: list[str] = []
        self.mangle_marks = self.facts.mangle_marks or _sets_marks(dump)

    # public ---------------------------------------------------------------------------------
    def evaluate(self, packet: Packet) -> Evaluation:
        self.notes = []
        self._paths_started = 1
        self._truncated = False
        if self.nat is None:
            tables = ", ".join(sorted(self.dump.tables)) or "none"
            self.notes.append(f"the input has no nat table (tables: {tables}); nothing can SNAT the packet "
                              "in iptables")
        p = _Path()
        p.chain, p.pos, p.stack = "", 0, []
        p.src, p.dst, p.dport, p.sport = packet.src, packet.dst, packet.dport, packet.sport
        p.orig_dst, p.orig_dport = packet.dst, packet.dport
        p.mark, p.known = 0, (0 if self.mangle_marks else FULL_MASK)
        p.trace, p.conditions, p.prob, p.assume, p.order = [], [], 1.0, {}, []
        p.dnat, p.marks, p.out_iface, p.masq_src, p.last_return = None, [], None, None, None
        p.random = p.assumed = False
        p.steps = 0
        self._packet = packet
        outcomes: list[tuple[list, Outcome]] = []
        first_hook = "OUTPUT" if packet.from_host else "PREROUTING"
        if packet.from_host:
            local = self.facts.is_local(packet.dst)
            if local:
                p.out_iface = "lo"
            elif local is False:
                p.out_iface, p.masq_src = self._egress(packet.dst)
        for path, verdict in self._hook(p, first_hook):
            self._after_first_hook(path, verdict, outcomes)
        outcomes.sort(key=lambda item: item[0])
        return Evaluation(packet, [o for _, o in outcomes], self.notes, self._truncated)

    # hooks ----------------------------------------------------------------------------------
    def _after_first_hook(self, p: _Path, verdict: tuple, outcomes: list) -> None:
        kind = verdict[0]
        if kind in ("dropped", "unknown"):
            outcomes.append((p.order, self._outcome(p, verdict)))
            return
        if kind in ("masquerade", "snat"):
            outcomes.append((p.order, self._finish(p, "unknown", None, verdict[1],
                                                   f"{verdict[1].action} is not valid in nat PREROUTING")))
            return
        if kind == "dnat":
            step, to = verdict[1], verdict[2]
            p.dnat = step
            addr, port = to
            p.dst = addr
            if port is not None:
                p.dport = port
        elif kind == "redirect":
            p.dnat = verdict[1]
            outcomes.append((p.order, self._finish(p, "local", None, verdict[1],
                                                   "REDIRECT delivers to a local port")))
            return
        # routing decision on the (possibly rewritten) destination
        for q in self._route(p):
            if q.out_iface == "<local>":
                if self._packet.from_host:
                    q.out_iface, q.masq_src = "lo", None
                else:
                    outcomes.append((q.order, self._finish(
                        q, "local", None, q.dnat,
                        f"{q.dst} is an address of this node: delivered locally, nat POSTROUTING is not "
                        "walked")))
                    continue
            for r, v in self._hook(q, "POSTROUTING"):
                outcomes.append((r.order, self._outcome(r, v)))

    def _route(self, p: _Path) -> list[_Path]:
        local = self._local(p, p.dst)
        if isinstance(local, _Unknown):
            if not self._may_fork():
                p.conditions.append("stopped: too many branches")
                return [self._unknown_path(p, "too many branches")]
            q = p.copy()
            p.assume[local.key] = True
            p.conditions.append(f"assumed {p.dst} is an address of this node")
            p.order.append(0)
            p.assumed = True
            q.assume[local.key] = False
            q.conditions.append(f"assumed {q.dst} is not an address of this node")
            q.order.append(1)
            q.assumed = True
            paths = [p, q]
        else:
            paths = [p]
        for path in paths:
            if path.assume.get(("local", path.dst)) or local is True:
                path.out_iface = "<local>"
                continue
            path.out_iface, path.masq_src = self._egress(path.dst)
        return paths

    def _unknown_path(self, p: _Path, why: str) -> _Path:
        p.out_iface = "<unknown>"
        p.last_return = ("unknown", why)
        return p

    def _egress(self, dst: IPAddress) -> tuple[str | None, IPAddress | None]:
        best = None
        for a in self.facts.addresses:
            if a.network is not None and a.interface and dst in a.network and not a.ip.is_loopback:
                if best is None or a.network.prefixlen > best.network.prefixlen:
                    best = a
        if best is not None:
            return best.interface, best.ip
        return self.facts.default_interface(), self.facts.default_source()

    def _hook(self, p: _Path, hook: str) -> list[tuple[_Path, tuple]]:
        if getattr(p, "last_return", None) and p.last_return[0] == "unknown":
            return [(p, ("unknown", None, p.last_return[1]))]
        p.chain, p.pos, p.stack, p.last_return = hook, 0, [], None
        done = []
        work = [p]
        while work:
            path = work.pop()
            verdict = self._run(path, hook, work)
            done.append((path, verdict))
        return done

    # the walk -------------------------------------------------------------------------------
    def _run(self, p: _Path, hook: str, work: list) -> tuple:
        table = self.nat
        if table is None:
            return ("policy", None)
        while True:
            chain = table.chain(p.chain)
            if chain is None:
                return ("unknown", None, f"chain {p.chain} is missing")
            if p.pos >= len(chain.lines):
                if p.stack:
                    p.chain, p.pos = p.stack.pop()
                    continue
                return self._policy(p, hook, table)
            p.steps += 1
            if p.steps > MAX_STEPS:
                return ("unknown", None, "the walk did not end (a chain loop?)")
            pos = p.pos
            lineno, text = chain.lines[pos]
            if self._prefilter(p, text) is False:
                p.trace.append(Step(hook, chain.name, pos + 1, text, "no-match", "next", lineno))
                p.pos += 1
                continue
            rule = chain.rule(pos)
            result = self._match_rule(rule, p, hook)
            if result is False:
                p.trace.append(Step(hook, chain.name, rule.index, text, "no-match", "next", lineno))
                p.pos += 1
                continue
            if result is not True:
                unknowns, randoms = result
                if not self._may_fork():
                    p.trace.append(Step(hook, chain.name, rule.index, text, "unknown",
                                        "stopped: too many branches", lineno))
                    return ("unknown", p.trace[-1], "too many branches to enumerate")
                alt = p.copy()
                self._assume(p, unknowns, randoms, True)
                self._assume(alt, unknowns, randoms, False)
                alt.order.append(1)
                p.order.append(0)
                why = "; ".join([u.why for u in unknowns] + [r.why for r in randoms])
                res = "unknown" if unknowns else "match"
                alt_res = "unknown" if unknowns else "no-match"
                alt.trace.append(Step(hook, chain.name, rule.index, text, alt_res,
                                      f"assumed no match ({why})" if unknowns else
                                      f"random branch not taken ({why})", lineno))
                alt.pos += 1
                work.append(alt)
                verdict = self._target(rule, p, hook, table, text, lineno, res,
                                       f"assumed match ({why}) → " if unknowns else
                                       f"random branch taken ({why}) → ")
            else:
                verdict = self._target(rule, p, hook, table, text, lineno, "match", "")
            if verdict is not None:
                return verdict

    def _may_fork(self) -> bool:
        if self._paths_started >= MAX_PATHS:
            self._truncated = True
            return False
        self._paths_started += 1
        return True

    def _assume(self, p: _Path, unknowns: list, randoms: list, matched: bool) -> None:
        if unknowns:
            p.assumed = True
        if randoms:
            p.random = True
        if matched:
            for u in unknowns:
                if u.key is not None:
                    p.assume[u.key] = u.if_true
                    if u.key[0] == "port" and not u.key[3] and u.key[2].isdigit():
                        if u.key[1] == "d":
                            p.dport = p.orig_dport = int(u.key[2])
                        else:
                            p.sport = int(u.key[2])
                p.conditions.append(f"assumed: {u.why}")
            for r in randoms:
                p.prob *= r.p
                p.conditions.append(f"random branch taken ({r.why})")
        else:
            if len(unknowns) == 1 and unknowns[0].key is not None:
                p.assume[unknowns[0].key] = not unknowns[0].if_true
            if unknowns:
                p.conditions.append("assumed not: " + " and ".join(u.why for u in unknowns))
            if randoms and not unknowns:
                for r in randoms:
                    p.prob *= (1 - r.p)
                p.conditions.append("random branch not taken (" + "; ".join(r.why for r in randoms) + ")")
            elif randoms:
                p.prob = float("nan")

    def _policy(self, p: _Path, hook: str, table: Table) -> tuple:
        chain = table.chain(hook)
        policy = (chain.policy if chain is not None else None) or "ACCEPT"
        step = Step(hook, hook, None, f":{hook} {policy}", "match", f"policy {policy}", None)
        p.trace.append(step)
        if policy == "DROP":
            return ("dropped", step)
        return ("policy", step)

    def _prefilter(self, p: _Path, text: str) -> bool | None:
        """Decide cheaply from the leading ``-s``/``-d`` of a saved rule, without tokenizing."""
        m = _PREFIX.match(text)
        if m is None:
            return None
        if m.group(2) is not None:
            r = _in(p.src, m.group(2))
            if r is not None and r == bool(m.group(1)):
                return False
        if m.group(4) is not None:
            r = _in(p.dst, m.group(4))
            if r is not None and r == bool(m.group(3)):
                return False
        return None

    def _target(self, rule: Rule, p: _Path, hook: str, table: Table, text: str, lineno: int,
                result: str, prefix: str) -> tuple | None:
        """Apply the target of a matching rule; return a verdict that ends the hook, or None."""
        target = rule.target
        chain_name = rule.chain

        def step(action: str) -> Step:
            s = Step(hook, chain_name, rule.index, text, result, prefix + action, lineno)
            p.trace.append(s)
            return s

        if target is None:
            step("continue (no target)")
            p.pos += 1
            return None
        if target == "RETURN":
            s = step("RETURN")
            p.last_return = ("return", s)
            if p.stack:
                p.chain, p.pos = p.stack.pop()
                return None
            return self._policy(p, hook, table)   # RETURN at built-in level (also after -g)
        user = table.chain(target)
        if user is not None and not user.builtin:
            if len(p.stack) >= MAX_DEPTH:
                s = step(f"{'goto' if rule.goto else 'jump'} {target}")
                return ("unknown", s, f"chain nesting deeper than {MAX_DEPTH} (a loop through {target}?)")
            if rule.goto:
                step(f"goto {target}")
            else:
                step(f"jump {target}")
                p.stack.append((p.chain, p.pos + 1))
            p.chain, p.pos = target, 0
            return None
        if target == "ACCEPT":
            return ("accept", step("ACCEPT"))
        if target in ("DROP", "REJECT"):
            return ("dropped", step(target))
        if target == "MARK":
            s = step(self._apply_mark(rule, p))
            p.marks.append(s)
            p.pos += 1
            return None
        if target == "CONNMARK":
            opts = rule.target_options
            if "--restore-mark" in opts:
                p.known = 0
                s = step("CONNMARK --restore-mark (mark now unknown)")
                p.marks.append(s)
            else:
                step("CONNMARK (packet mark unchanged)")
            p.pos += 1
            return None
        if target in _CONTINUE_TARGETS:
            step(f"{target} (continues)")
            p.pos += 1
            return None
        if target == "MASQUERADE":
            if hook not in ("POSTROUTING", "INPUT"):
                return ("unknown", step("MASQUERADE"), f"MASQUERADE is not valid in {hook}")
            return ("masquerade", step("MASQUERADE"))
        if target == "SNAT":
            to = (rule.target_options.get("--to-source") or ("",))[0]
            return ("snat", step(f"SNAT to {to}"), to)
        if target in ("DNAT", "REDIRECT"):
            if hook not in ("PREROUTING", "OUTPUT"):
                return ("unknown", step(target), f"{target} is not valid in {hook}")
            if target == "REDIRECT":
                return ("redirect", step("REDIRECT (to a local port)"))
            to = (rule.target_options.get("--to-destination") or ("",))[0]
            parsed = _parse_to_destination(to, p.dst.version)
            if parsed is None:
                return ("unknown", step(f"DNAT to {to}"), f"DNAT destination {to!r} cannot be read")
            return ("dnat", step(f"DNAT to {to}"), parsed)
        if user is not None and user.builtin:
            return ("unknown", step(f"jump {target}"), f"a jump to built-in chain {target}")
        if target in _OTHER_TARGETS:
            return ("unknown", step(target), f"target {target} is not evaluated by masqctl")
        missing = f"chain {target} is not in the input"
        if self.dump.fragment:
            missing += " (the input is a fragment)"
        return ("unknown", step(f"jump {target}"), missing)

    def _apply_mark(self, rule: Rule, p: _Path) -> str:
        o = rule.target_options
        try:
            if "--set-xmark" in o:
                v, m = _mark_value(o["--set-xmark"][0])
                p.mark = (p.mark & ~m & FULL_MASK) ^ v
                p.known |= m
            elif "--set-mark" in o:
                v, m = _mark_value(o["--set-mark"][0])
                p.mark = (p.mark & ~m & FULL_MASK) | v
                p.known |= m
            elif "--or-mark" in o:
                v = int(o["--or-mark"][0], 0)
                p.mark |= v
                p.known |= v
            elif "--and-mark" in o:
                v = int(o["--and-mark"][0], 0)
                p.mark &= v
                p.known |= (~v & FULL_MASK)
            elif "--xor-mark" in o:
                p.mark ^= int(o["--xor-mark"][0], 0)
            else:
                p.known = 0
                return "MARK (unreadable; mark now unknown)"
        except ValueError:
            p.known = 0
            return "MARK (unreadable; mark now unknown)"
        if p.known == FULL_MASK:
            return f"MARK → 0x{p.mark:x}"
        return f"MARK → 0x{p.mark:x} (bits outside 0x{p.known:x} unknown)"

    # matches --------------------------------------------------------------------------------
    def _match_rule(self, rule: Rule, p: _Path, hook: str):
        """True, False, or (unknowns, randoms) when the outcome depends on them."""
        unknowns: list[_Unknown] = []
        randoms: list[_Random] = []
        if rule.problem:
            unknowns.append(_Unknown(f"rule not fully understood ({rule.problem})"))
        for m in rule.matches:
            r = self._match(m, rule, p, hook)
            if r is True:
                continue
            if r is False:
                return False
            if isinstance(r, _Random):
                randoms.append(r)
            else:
                unknowns.append(r)
        if not unknowns and not randoms:
            return True
        return unknowns, randoms

    def _match(self, m, rule: Rule, p: _Path, hook: str):
        mod = m.module
        if mod in ("-s", "-d"):
            addr = p.src if mod == "-s" else p.dst
            r = _in(addr, m.value)
            if r is None:
                return _Unknown(f"address {m.value!r} cannot be read")
            return r != m.negated
        if mod == "-p":
            want = _PROTOS.get(m.value.lower(), m.value.lower())
            have = self._packet.proto
            r = want == "all" or want == have
            return r != m.negated
        if mod == "-o":
            return self._iface(p, m.value, m.negated, "egress")
        if mod == "-i":
            if hook in ("OUTPUT", "POSTROUTING"):
                return _Unknown(f"-i in {hook}")
            if self.facts.in_interface is None:
                key = ("iface-in", m.value)
                if key in p.assume:
                    return p.assume[key] != m.negated
                return _Unknown(f"the packet enters on an interface matching {m.value}" if not m.negated
                                else f"the packet does not enter on {m.value}",
                                ("iface-in", m.value), not m.negated)
            return _iface_match(m.value, self.facts.in_interface) != m.negated
        if mod == "-f":
            return m.negated
        fn = getattr(self, "_m_" + mod.replace("-", "_"), None)
        if fn is None:
            return _Unknown(f"match -m {mod} is not evaluated by masqctl")
        r = fn(m, p, hook)
        if m.negated and isinstance(r, bool):   # "! -m mod" (rare)
            return not r
        return r

    def _iface(self, p: _Path, pattern: str, negated: bool, what: str):
        name = p.out_iface if p.out_iface not in (None, "<local>", "<unknown>") else None
        if name is None:
            key = ("iface-out", pattern)
            if key in p.assume:
                return p.assume[key] != negated
            known = [k[1] for k, v in p.assume.items() if k[0] == "iface-out" and v and not k[1].endswith("+")]
            if known:
                return _iface_match(pattern, known[0]) != negated
            desc = (f"the egress interface matches {pattern}" if not negated
                    else f"the egress interface does not match {pattern}")
            return _Unknown(desc, key, not negated)
        return _iface_match(pattern, name) != negated

    def _m_comment(self, m, p, hook):
        return True

    def _ports_match(self, m, p, opts: dict) -> bool | _Unknown:
        for neg, opt, vals in m.options:
            kind = opts.get(opt)
            if kind is None:
                if opt == "--syn":
                    r = self._packet.proto == "tcp"
                elif opt == "--tcp-flags":
                    flags = {"SYN"}
                    mask = set(vals[0].split(","))
                    comp = set(vals[1].split(","))
                    if "ALL" in mask:
                        mask = {"SYN", "ACK", "FIN", "RST", "URG", "PSH"}
                    if "ALL" in comp:
                        comp = set(mask)
                    comp.discard("NONE")
                    r = (flags & mask) == comp
                else:
                    return _Unknown(f"{m.module} option {opt} is not evaluated")
                if r == neg:
                    return False
                continue
            port = p.dport if kind == "d" else (p.sport if kind == "s" else None)
            if kind == "b":
                if p.dport is None and p.sport is None:
                    return _Unknown(f"port {vals[0]} (the query has no ports)")
                try:
                    r = any(x is not None and _in_ports(x, vals[0]) for x in (p.dport, p.sport))
                except ValueError:
                    return _Unknown(f"port list {vals[0]!r} cannot be read")
                if r == neg:
                    return False
                continue
            if port is None and ("port", kind, vals[0], neg) in p.assume:
                if p.assume[("port", kind, vals[0], neg)]:
                    continue
                return False
            if port is None:
                return _Unknown(f"destination port {'not ' if neg else ''}in {vals[0]} (give --dport/DST:PORT)"
                                if kind == "d" else f"source port {vals[0]} (unknown)",
                                ("port", kind, vals[0], neg))
            try:
                r = _in_ports(port, vals[0])
            except ValueError:
                return _Unknown(f"port list {vals[0]!r} cannot be read")
            if r == neg:
                return False
        return True

    def _m_tcp(self, m, p, hook):
        if self._packet.proto != "tcp":
            return False
        return self._ports_match(m, p, {"--dport": "d", "--destination-port": "d", "--sport": "s",
                                        "--source-port": "s"})

    def _m_udp(self, m, p, hook):
        if self._packet.proto != "udp":
            return False
        return self._ports_match(m, p, {"--dport": "d", "--destination-port": "d", "--sport": "s",
                                        "--source-port": "s"})

    def _m_sctp(self, m, p, hook):
        if self._packet.proto != "sctp":
            return False
        return self._ports_match(m, p, {"--dport": "d", "--destination-port": "d", "--sport": "s",
                                        "--source-port": "s"})

    def _m_multiport(self, m, p, hook):
        if self._packet.proto not in ("tcp", "udp", "sctp", "udplite", "dccp"):
            return False
        return self._ports_match(m, p, {"--dports": "d", "--destination-ports": "d", "--sports": "s",
                                        "--source-ports": "s", "--ports": "b"})

    def _m_mark(self, m, p, hook):
        for neg, opt, vals in m.options:
            if opt != "--mark":
                return _Unknown(f"mark option {opt} is not evaluated")
            try:
                v, mask = _mark_value(vals[0])
            except ValueError:
                return _Unknown(f"mark {vals[0]!r} cannot be read")
            if mask & ~p.known & FULL_MASK:
                why = ("the packet mark may be set by the mangle table"
                       if self.mangle_marks else "the packet mark is unknown")
                return _Unknown(f"mark {vals[0]} ({why})")
            r = (p.mark & mask) == v
            if r == neg:
                return False
        return True

    def _m_conntrack(self, m, p, hook):
        for neg, opt, vals in m.options:
            if opt == "--ctstate":
                states = vals[0].upper().split(",")
                r = False
                for s in states:
                    if s == "NEW":
                        r = True
                    elif s == "DNAT":
                        r = r or (p.dnat is not None)
                    elif s in ("SNAT", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"):
                        pass
                    else:
                        return _Unknown(f"conntrack state {s}")
            elif opt == "--ctdir":
                r = vals[0].upper() == "ORIGINAL"
            elif opt in ("--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst"):
                addr = {"--ctorigsrc": p.src, "--ctorigdst": p.orig_dst, "--ctreplsrc": p.dst,
                        "--ctrepldst": p.src}[opt]
                r = _in(addr, vals[0])
                if r is None:
                    return _Unknown(f"conntrack address {vals[0]!r} cannot be read")
            elif opt == "--ctproto":
                want = _PROTOS.get(vals[0].lower(), vals[0].lower())
                r = want == self._packet.proto
            elif opt in ("--ctorigdstport", "--ctreplsrcport"):
                port = p.orig_dport if opt == "--ctorigdstport" else p.dport
                if port is None:
                    return _Unknown(f"conntrack {opt} {vals[0]} (no destination port given)")
                try:
                    r = _in_ports(port, vals[0])
                except ValueError:
                    return _Unknown(f"port {vals[0]!r} cannot be read")
            else:
                return _Unknown(f"conntrack option {opt} is not evaluated")
            if r == neg:
                return False
        return True

    def _m_statistic(self, m, p, hook):
        mode = m.option("--mode")
        prob = m.option("--probability")
        if mode and mode[1][0] == "random" and prob:
            try:
                value = float(prob[1][0])
            except ValueError:
                return _Unknown(f"probability {prob[1][0]!r}")
            if prob[0]:
                value = 1 - value
            return _Random(value, f"statistic p={value:.4g}")
        return _Unknown("statistic mode other than random (packet counters)")

    def _m_addrtype(self, m, p, hook):
        limit_in = m.option("--limit-iface-in") is not None
        limit_out = m.option("--limit-iface-out") is not None
        dev = None
        if limit_out:
            dev = p.out_iface if p.out_iface not in (None, "<local>", "<unknown>") else None
            if p.out_iface == "<local>":
                dev = "lo"
        elif limit_in:
            dev = self.facts.in_interface
        for neg, opt, vals in m.options:
            if opt not in ("--src-type", "--dst-type"):
                if opt in ("--limit-iface-in", "--limit-iface-out"):
                    continue
                return _Unknown(f"addrtype option {opt}")
            addr = p.src if opt == "--src-type" else p.dst
            types = set(vals[0].upper().split(","))
            r = self._addrtype(p, addr, types, neg, limit_in or limit_out, dev)
            if r is True:
                continue
            return r
        return True

    def _addrtype(self, p: _Path, addr: IPAddress, types: set, neg: bool, limited: bool, dev):
        fixed = _fixed_type(addr)
        if fixed is not None:
            return (fixed in types) != neg
        if_local = ("LOCAL" in types) != neg
        non_local_type = "UNICAST"
        for a in self.facts.addresses:
            if a.network is not None and a.network.prefixlen < a.network.max_prefixlen - 1 and \
                    addr.version == 4 and addr == a.network.broadcast_address:
                if not limited or dev is None or a.interface == dev:
                    non_local_type = "BROADCAST"
        if_not_local = (non_local_type in types) != neg
        local = self._local(p, addr)
        if isinstance(local, _Unknown):
            if if_local == if_not_local:
                return if_local
            return _Unknown(f"{addr} is {'' if if_local else 'not '}an address of this node "
                            "(addrtype LOCAL; give --local-address or --ip-addr)", local.key, if_local)
        if not local:
            return if_not_local
        if not limited:
            return if_local
        # LOCAL, but --limit-iface-*: local only on the device it is assigned to
        devs = {a.interface for a in self.facts.addresses if a.ip == addr}
        if addr.is_loopback:
            devs = {"lo"}
        if dev is not None and devs and None not in devs:
            return if_local if dev in devs else ((("UNICAST" in types) != neg))
        key = ("local-on", addr, dev)
        if key in p.assume:
            return if_local if p.assume[key] else (("UNICAST" in types) != neg)
        if if_local == (("UNICAST" in types) != neg):
            return if_local
        return _Unknown(f"{addr} is {'' if if_local else 'not '}local on the "
                        f"{'egress' if dev is None else dev} device (addrtype --limit-iface; "
                        "give DEVICE with --local-address IP@DEVICE and --out-interface)", key, True)

    def _local(self, p: _Path, addr: IPAddress):
        r = self.facts.is_local(addr)
        if r is not None:
            return r
        key = ("local", addr)
        if key in p.assume:
            return p.assume[key]
        return _Unknown(f"{addr} is an address of this node", key, True)

    def _m_set(self, m, p, hook):
        for neg, opt, vals in m.options:
            if opt != "--match-set":
                if opt in ("--return-nomatch", "--update-counters", "--no-update-counters",
                           "--update-subcounters", "--no-update-subcounters"):
                    continue
                return _Unknown(f"set option {opt} is not evaluated")
            name, flags = vals[0], vals[1].split(",")
            sets = self.facts.ipsets
            if sets is None or name not in sets:
                why = "no ipset contents given (--ipset)" if sets is None else "not in the --ipset file"
                return _Unknown(f"{'not ' if neg else ''}member of ipset {name} ({why})")
            r = _set_member(sets, name, flags, p, self._packet.proto, 0)
            if r is None:
                return _Unknown(f"membership in ipset {name} (type {sets[name].type} or a port is unknown)")
            if r == neg:
                return False
        return True

    def _m_physdev(self, m, p, hook):
        bridged = self.facts.bridged
        if bridged is None:
            return _Unknown("bridged frame (physdev; give --bridged or --not-bridged)", ("bridged",), True
                            if all(not neg for neg, _, _ in m.options) else False)
        if not bridged:
            for neg, opt, vals in m.options:
                if not neg:
                    return False
            return True
        for neg, opt, vals in m.options:
            if opt == "--physdev-is-bridged":
                r = True
            elif opt in ("--physdev-is-in", "--physdev-is-out"):
                r = True
            else:
                return _Unknown(f"physdev {opt} {' '.join(vals)} (bridge port names unknown)")
            if r == neg:
                return False
        return True


def _sets_marks(dump: Dump) -> bool:
    """True when mangle or raw rules may set the packet mark before nat sees it."""
    for name in ("mangle", "raw"):
        table = dump.table(name)
        if table is None:
            continue
        for lines in table.lines_of.values():
            for _, text in lines:
                if "-j MARK" in text or "-j CONNMARK" in text:
                    return True
    return False


def _fixed_type(addr: IPAddress) -> str | None:
    if addr.version == 4:
        n = int(addr)
        if (n >> 24) == 0 or n == 0xFFFFFFFF:
            return "BROADCAST"
        if (n >> 28) == 0xE:
            return "MULTICAST"
        if (n >> 24) == 127:
            return "LOCAL"
        return None
    if addr.is_multicast:
        return "MULTICAST"
    if addr.is_loopback:
        return "LOCAL"
    return None


def _set_member(sets: dict, name: str, flags: list, p: _Path, proto: str, depth: int) -> bool | None:
    s = sets[name]
    if not s.supported or depth > 8:
        return None
    if s.type == "list:set":
        any_unknown = False
        for (member,) in s.members:
            if member not in sets:
                any_unknown = True
                continue
            r = _set_member(sets, member, flags, p, proto, depth + 1)
            if r:
                return True
            if r is None:
                any_unknown = True
        return None if any_unknown else False
    dims = s.dimensions()
    if len(flags) < len(dims):
        flags = flags + [flags[-1]] * (len(dims) - len(flags))
    values = []
    for d, f in zip(dims, flags):
        if d in ("ip", "net"):
            values.append(p.src if f == "src" else p.dst)
        elif d == "port":
            port = p.sport if f == "src" else p.dport
            if port is None:
                return None
            values.append((proto, port))
        else:
            return None

    def fits(member) -> bool:
        for d, v, spec in zip(dims, values, member):
            if spec[0] == "net":
                if v.version != spec[1].version or v not in spec[1]:
                    return False
            elif spec[0] == "range":
                if not spec[1] <= int(v) <= spec[2]:
                    return False
            elif spec[0] == "port":
                if v[0] != spec[1] or not spec[2] <= v[1] <= spec[3]:
                    return False
            else:
                return False
        return True

    if any(fits(m) for m in s.nomatch):
        return False
    return any(fits(m) for m in s.members)


def _parse_to_destination(text: str, version: int):
    """``a[-b][:p[-q]]`` or ``[v6]:p`` → (address, port or None); the first of a range."""
    try:
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        elif version == 6 or text.count(":") > 1:
            host, port = text, ""
        else:
            host, _, port = text.partition(":")
        host = host.split("-", 1)[0]
        addr = ipaddress.ip_address(host) if host else None
        if addr is None:
            return None
        pnum = int(port.split("-", 1)[0]) if port else None
        return addr, pnum
    except ValueError:
        return None


# Outcome building is a method to keep access to facts and the packet.
def _outcome(self: Evaluator, p: _Path, verdict: tuple) -> Outcome:
    kind = verdict[0]
    step = verdict[1] if len(verdict) > 1 else None
    if kind == "policy":
        deciding = p.last_return[1] if p.last_return and p.last_return[0] == "return" else step
        reason = ("RETURN to the built-in chain: its policy ACCEPT applies (no SNAT)"
                  if deciding is not step else "no rule masqueraded it: the policy ACCEPT applies (no SNAT)")
        return self._finish(p, "accept", None, deciding, reason)
    if kind == "accept":
        return self._finish(p, "accept", None, step, "ACCEPT ends the nat table with no SNAT")
    if kind == "masquerade":
        return self._finish(p, "masquerade", p.masq_src, step, "MASQUERADE")
    if kind == "snat":
        to = verdict[2]
        host = to.split(":", 1)[0] if to.count(":") <= 1 else to.strip("[").split("]", 1)[0]
        host = host.split("-", 1)[0]
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            addr = None
        return self._finish(p, "snat", addr, step, f"SNAT to {to}")
    if kind == "dropped":
        return self._finish(p, "dropped", None, step, "dropped")
    reason = verdict[2] if len(verdict) > 2 else "unknown"
    return self._finish(p, "unknown", None, step, reason)


def _finish(self: Evaluator, p: _Path, kind: str, new_src, deciding: Step | None, reason: str) -> Outcome:
    masq = {"masquerade": True, "snat": True, "accept": False, "local": False, "dropped": False}.get(kind)
    if kind in ("masquerade", "snat"):
        seen = str(new_src) if new_src is not None else None
    elif kind in ("accept", "local"):
        seen = str(p.src)
    else:
        seen = None
    egress = p.out_iface if p.out_iface not in ("<local>", "<unknown>") else None
    return Outcome(kind, masq, seen, str(p.dst), p.dport, deciding, p.trace, p.conditions,
                   p.prob if p.random else None, reason, p.dnat, p.marks, egress, p.random, p.assumed)


Evaluator._outcome = _outcome
Evaluator._finish = _finish


def evaluate(dump: Dump, packet: Packet, facts: NodeFacts | None = None) -> Evaluation:
    """Convenience: one evaluation of ``packet`` against ``dump``."""
    return Evaluator(dump, facts).evaluate(packet)


__all__ = ["Packet", "Step", "Outcome", "Evaluation", "Evaluator", "evaluate"]
