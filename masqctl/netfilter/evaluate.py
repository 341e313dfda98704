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

This module walks the chains and applies targets. What a walk is made of (packet, path
state, steps, outcomes) is in :mod:`~masqctl.netfilter.walk`, what each match means in
:mod:`~masqctl.netfilter.matches`, how a stopped path becomes an outcome in
:mod:`~masqctl.netfilter.outcome`, and how rule values (addresses, ports, marks) are read in
:mod:`~masqctl.netfilter.values`.
"""

from __future__ import annotations

import ipaddress
import itertools

from masqctl.netfilter.dump import Dump, Rule, Table
from masqctl.netfilter.facts import IPAddress, NodeFacts
from masqctl.netfilter.matches import Matcher, destination_index, prefilter
from masqctl.netfilter.outcome import finish, outcome_of
from masqctl.netfilter.values import FULL_MASK, mark_value, nat_target_refusal, parse_to_destination
from masqctl.netfilter.walk import Evaluation, Outcome, Packet, PathState, RandomBranch, Step, Unknown

MAX_PATHS = 512
MAX_NAT_TABLES = 3       # dumps concatenated: every order of at most this many nat tables is walked
MAX_DEPTH = 64
MAX_STEPS = 2_000_000

_CONTINUE_TARGETS = {"LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "CHECKSUM", "TCPMSS", "CLASSIFY",
                     "DSCP", "TOS", "TTL", "HL", "NOTRACK", "CT", "SECMARK", "CONNSECMARK", "IDLETIMER",
                     "LED", "RATEEST", "SET", "TEE"}
_OTHER_TARGETS = {"NETMAP", "TPROXY", "QUEUE", "NFQUEUE", "SAME", "CLUSTERIP", "SYNPROXY", "MIRROR",
                  "IPMARK", "ROUTE", "XOR", "TARPIT", "DELUDE", "CHAOS", "ECHO", "HMARK", "SNPT", "DNPT"}


class Evaluator:
    """Evaluate packets against the nat table of ``dump`` with node ``facts``."""

    def __init__(self, dump: Dump, facts: NodeFacts | None = None):
        self.dump = dump
        self.facts = facts or NodeFacts()
        # each nat table on its own: two dumps concatenated hold two, and the kernel runs each
        # separately at every hook, the first to NAT deciding (see _nat_hook)
        self.nats: list[Table] = dump.tables_named("nat")[:MAX_NAT_TABLES + 1]
        self.nat: Table | None = self.nats[0] if self.nats else None
        self._order: dict[str, tuple[int, ...]] = {}
        self.notes: list[str] = []
        self.mangle_marks = self.facts.mangle_marks or _sets_marks(dump)
        raw = dump.table("raw")
        self.raw: Table | None = raw if raw is not None and _untracks(raw) else None
        self._table, self._prefix = self.nat, ""

    # public ---------------------------------------------------------------------------------
    def evaluate(self, packet: Packet) -> Evaluation:
        self.notes = []
        self._paths_started = 1
        self._truncated = False
        if self.nat is None:
            tables = ", ".join(sorted(self.dump.tables)) or "none"
            cut = self.dump.uncommitted
            if "nat" in self.dump.incompatible_tables:
                self._no_nat = ("iptables-save could not print the nat table (\"Table `nat' is incompatible, use "
                                "'nft' tool\"): its rules are active but unknown — `nft list table ip nat` shows them")
            elif cut:
                self._no_nat = (f"the input ends before {cut}'s COMMIT (cut short), before any nat table: nothing is "
                                "known about nat")
            else:
                self._no_nat = (f"the input has no nat table (tables: {tables}): nothing is known about nat — capture "
                                "`iptables-save -t nat`")
        self._packet = packet
        self._matcher = Matcher(self.facts, self.mangle_marks, packet.proto)
        outcomes: list[tuple[list, Outcome]] = []
        first_hook = "OUTPUT" if packet.from_host else "PREROUTING"
        if len(self.nats) > MAX_NAT_TABLES:
            p = PathState.start(packet, FULL_MASK)
            outcomes.append(([], finish(p, "unknown", None, None, f"the input holds more than {MAX_NAT_TABLES} nat "
                                        "tables (dumps concatenated): the kernel runs each, in an order a dump does "
                                        "not show")))
            return Evaluation(packet, [o for _, o in outcomes], self.notes, self._truncated)
        orders: list = [None]
        if len(self.nats) > 1:
            # which table the kernel runs first at a hook is registration order, which no dump shows:
            # every order at each hook is walked, and only an answer they all give stands
            perms = list(itertools.permutations(range(len(self.nats))))
            orders = [(a, b) for a in perms for b in perms]
            self._paths_started += len(orders) - 1
        for n, order in enumerate(orders):
            p = PathState.start(packet, 0 if self.mangle_marks else FULL_MASK)
            if order is not None:
                self._order = {first_hook: order[0], "POSTROUTING": order[1]}
                p.order.append(n)
                p.assumed = True
                p.conditions += [self._order_condition(first_hook, order[0]),
                                 self._order_condition("POSTROUTING", order[1])]
            self._leave_host(p)
            for path in self._raw(p, first_hook, outcomes):
                for q, verdict in self._nat_hook(path, first_hook):
                    self._after_first_hook(q, verdict, outcomes)
        outcomes.sort(key=lambda item: item[0])
        return Evaluation(packet, [o for _, o in outcomes], self.notes, self._truncated)

    def _order_condition(self, hook: str, order: tuple[int, ...]) -> str:
        names = [f"#{i + 1} (line {self.nats[i].lineno})" if self.nats[i].lineno else f"#{i + 1}" for i in order]
        return f"assumed the kernel runs nat table {' before '.join(names)} at {hook}"

    def _nat_hook(self, p: PathState, hook: str) -> list[tuple[PathState, tuple]]:
        """Walk nat ``hook``: with several nat tables, each in this path's order until one NATs
        the packet (ACCEPT or the policy ends only its own table; DROP ends them all)."""
        if len(self.nats) <= 1:
            return self._hook(p, hook)
        return self._in_turn(p, [lambda path, i=i: self._in_table(i, f"nat#{i + 1} ", path, hook)
                                 for i in self._order[hook]])

    def _in_table(self, i: int, prefix: str, p: PathState, hook: str) -> list:
        """``_hook`` on nat table ``i`` of several (its steps labelled ``prefix``)."""
        self._table, self._prefix = self.nats[i], prefix
        try:
            return self._hook(p, hook)
        finally:
            self._table, self._prefix = self.nat, ""

    @staticmethod
    def _in_turn(p: PathState, walks: list) -> list:
        """Each of ``walks`` (path -> [(path, verdict)]) in turn, as the kernel runs the nat chains of
        one hook: ACCEPT or a policy ends only its own walk, and the path goes on to the next; any
        other verdict (a NAT, DROP, unknown) ends the hook."""
        done: list = []
        pending = [p]
        for k, walk in enumerate(walks):
            later = []
            for path in pending:
                for q, verdict in walk(path):
                    if verdict[0] in ("policy", "accept") and k + 1 < len(walks):
                        q.last_return = None
                        later.append(q)
                    else:
                        done.append((q, verdict))
            pending = later
        return done

    # hooks ----------------------------------------------------------------------------------
    def _raw(self, p: PathState, hook: str, outcomes: list) -> list[PathState]:
        """Walk raw ``hook`` when raw untracks some packets; return the paths nat sees. An
        untracked packet (NOTRACK, CT --notrack) skips the nat table: no NAT at all."""
        if self.raw is None:
            return [p]
        self._table, self._prefix = self.raw, "raw "
        try:
            walked = self._hook(p, hook)
        finally:
            self._table, self._prefix = self.nat, ""
        tracked = []
        for q, verdict in walked:
            kind = verdict[0]
            if kind in ("dropped", "unknown"):
                outcomes.append((q.order, outcome_of(q, verdict)))
            elif kind not in ("policy", "accept"):
                outcomes.append((q.order, finish(q, "unknown", None, verdict[1],
                                                 f"{verdict[1].action} is not valid in the raw table")))
            elif q.untracked is not None:
                outcomes.append((q.order, finish(q, "untracked", None, q.untracked,
                                                 "untracked (raw table): the nat table never sees it")))
            else:
                q.last_return = None
                if self.mangle_marks:   # a raw MARK is simulated, but mangle may change it again
                    q.known = 0
                tracked.append(q)
        return tracked

    def _after_first_hook(self, p: PathState, verdict: tuple, outcomes: list) -> None:
        kind = verdict[0]
        if kind in ("dropped", "unknown"):
            outcomes.append((p.order, outcome_of(p, verdict)))
            return
        if kind in ("masquerade", "snat"):
            outcomes.append((p.order, finish(p, "unknown", None, verdict[1],
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
            if not self._packet.from_host:
                outcomes.append((p.order, finish(p, "local", None, verdict[1],
                                                 "REDIRECT delivers to a local port")))
                return
            # nat OUTPUT maps host traffic to the loopback address; it leaves over lo, so
            # POSTROUTING still runs
            p.dst = ipaddress.ip_address("127.0.0.1" if p.dst.version == 4 else "::1")
            ports = verdict[2]
            if ports:
                first, _, last = ports.partition("-")
                p.dport = int(first) if first.isdigit() and (not last or last == first) else None
        # routing decision on the (possibly rewritten) destination
        for q in self._route(p):
            if q.out_iface == "<local>":
                if self._packet.from_host:
                    q.out_iface, q.masq_src = "lo", None
                else:
                    outcomes.append((q.order, finish(
                        q, "local", None, q.dnat,
                        f"{q.dst} is an address of this node: delivered locally, nat POSTROUTING is not "
                        "walked")))
                    continue
            for r, v in self._nat_hook(q, "POSTROUTING"):
                outcomes.append((r.order, outcome_of(r, v)))

    def _route(self, p: PathState) -> list[PathState]:
        local = self._matcher.local(p, p.dst)
        if isinstance(local, Unknown):
            if not self._may_fork():
                p.conditions.append("stopped: too many branches")
                return [_stopped(p, "too many branches")]
            # The ordinary case (a remote destination) is the first path, so the primary
            # answer, sentence and deciding rule describe it; local delivery is the other.
            q = p.copy()
            p.assume[local.key] = False
            p.conditions.append(f"assumed {p.dst} is not an address of this node")
            p.order.append(0)
            p.assumed = True
            q.assume[local.key] = True
            q.conditions.append(f"assumed {q.dst} is an address of this node")
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

    def _leave_host(self, p: PathState) -> None:
        """Host traffic (``from_host``) is routed before nat OUTPUT: a local destination leaves over
        ``lo``, another over the interface (and with the source address) its route gives; when the
        node facts do not say whether it is local, the egress stays unset until the routing after
        the first hook decides it (both evaluators start their paths here)."""
        if not self._packet.from_host:
            return
        local = self.facts.is_local(self._packet.dst)
        if local:
            p.out_iface = "lo"
        elif local is False:
            p.out_iface, p.masq_src = self._egress(self._packet.dst)

    def _egress(self, dst: IPAddress) -> tuple[str | None, IPAddress | None]:
        best = None
        for a in self.facts.addresses:
            if a.network is not None and a.interface and dst in a.network and not a.ip.is_loopback:
                if best is None or a.network.prefixlen > best.network.prefixlen:
                    best = a
        if best is not None:
            return best.interface, best.ip
        return self.facts.default_interface(dst.version), self.facts.default_source(dst.version)

    def _hook(self, p: PathState, hook: str) -> list[tuple[PathState, tuple]]:
        if p.last_return and p.last_return[0] == "unknown":
            return [(p, ("unknown", None, p.last_return[1]))]
        p.chain, p.pos, p.stack, p.frame, p.last_return = hook, 0, [], (hook,), None
        done = []
        work = [p]
        while work:
            path = work.pop()
            verdict = self._run(path, hook, work)
            done.append((path, verdict))
        return done

    # the walk -------------------------------------------------------------------------------
    def _run(self, p: PathState, hook: str, work: list) -> tuple:
        table = self._table
        label = self._prefix + hook
        if table is None:    # no nat table: nothing shows what nat does (raw is walked only when present)
            return ("unknown", None, self._no_nat)
        match_rule = self._matcher.match_rule
        while True:
            chain = table.chain(p.chain)
            if chain is None:
                return ("unknown", None, f"chain {p.chain} is missing")
            if chain.cut_at is not None and p.pos >= chain.cut_at:
                return ("unknown", None, _cut_reason(table, chain, p.pos))
            if p.pos >= len(chain.lines):
                if p.stack:
                    p.chain, p.pos, p.frame = p.stack.pop()
                    continue
                return _policy(p, hook, table, self._prefix)
            pos = p.pos
            index = destination_index(chain)
            if index is not None:
                # rules prefilter rules out for this destination, taken in one go (as one by one below)
                end = min(index.next_read(pos, str(p.dst)), MAX_STEPS - p.steps + pos)
                if chain.cut_at is not None:
                    end = min(end, chain.cut_at)
                if end > pos:
                    name, lines = chain.name, chain.lines
                    p.trace += [Step(label, name, i + 1, lines[i][1], "no-match", "next", lines[i][0])
                                for i in range(pos, end)]
                    p.steps += end - pos
                    p.pos = end
                    continue
            p.steps += 1
            if p.steps > MAX_STEPS:
                return ("unknown", None, "the walk did not end (a chain loop?)")
            lineno, text = chain.lines[pos]
            if prefilter(p, text) is False:
                p.trace.append(Step(label, chain.name, pos + 1, text, "no-match", "next", lineno))
                p.pos += 1
                continue
            rule = chain.rule(pos)
            result = match_rule(rule, p, hook)
            if result is False:
                p.trace.append(Step(label, chain.name, rule.index, text, "no-match", "next", lineno))
                p.pos += 1
                continue
            if result is not True:
                unknowns, randoms = result
                if not self._may_fork():
                    p.trace.append(Step(label, chain.name, rule.index, text, "unknown",
                                        "stopped: too many branches", lineno))
                    return ("unknown", p.trace[-1], "too many branches to enumerate")
                alt = p.copy()
                _take_branch(p, unknowns, randoms, True)
                _take_branch(alt, unknowns, randoms, False)
                # the ordinary case first: when the fork is whether an address is the node's own,
                # the path that takes it as remote leads (the sentence and deciding rule describe it)
                local_first = (len(unknowns) == 1 and not randoms and unknowns[0].key is not None
                               and unknowns[0].key[0] == "local" and unknowns[0].if_true)
                alt.order.append(0 if local_first else 1)
                p.order.append(1 if local_first else 0)
                why = "; ".join([u.why for u in unknowns] + [r.why for r in randoms])
                res = "unknown" if unknowns else "match"
                alt_res = "unknown" if unknowns else "no-match"
                alt.trace.append(Step(label, chain.name, rule.index, text, alt_res,
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

    def _target(self, rule: Rule, p: PathState, hook: str, table: Table, text: str, lineno: int,
                result: str, prefix: str) -> tuple | None:
        """Apply the target of a matching rule; return a verdict that ends the hook, or None."""
        target = rule.target
        chain_name = rule.chain

        def step(action: str) -> Step:
            s = Step(self._prefix + hook, chain_name, rule.index, text, result, prefix + action, lineno)
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
                p.chain, p.pos, p.frame = p.stack.pop()
                return None
            return _policy(p, hook, table, self._prefix)   # RETURN at built-in level (also after -g)
        user = table.chain(target)
        if user is not None and not user.builtin:
            how = "goto" if rule.goto else "jump"
            refused = _cannot_enter(p, target)
            if refused == "loop":
                # the kernel refuses a rule set whose jumps and gotos form a loop
                s = step(f"{how} {target}")
                return ("unknown", s, f"a loop: {chain_name} rule {rule.index} enters {target} again, so the "
                                      "chain nesting never ends (the kernel refuses such a rule set)")
            if refused == "depth":
                s = step(f"{how} {target}")
                return ("unknown", s, f"chain nesting deeper than {MAX_DEPTH} (a loop through {target}?)")
            step(f"{how} {target}")
            _enter(p, target, rule.goto)
            return None
        if target == "ACCEPT":
            return ("accept", step("ACCEPT"))
        if target in ("DROP", "REJECT"):
            return ("dropped", step(target))
        if target == "MARK":
            s = step(_apply_mark(rule, p))
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
        if target == "NOTRACK" or (target == "CT" and "--notrack" in rule.target_options):
            p.untracked = step(f"{target} (untracked: nat is skipped)")
            p.pos += 1
            return None
        if target in _CONTINUE_TARGETS:
            step(f"{target} (continues)")
            p.pos += 1
            return None
        if target in ("MASQUERADE", "SNAT", "DNAT", "REDIRECT"):
            refused = nat_target_refusal(target, rule.target_options, any(m.module == "-p" for m in rule.matches),
                                         p.dst.version)
            if refused is not None:     # not a rule the kernel can hold: the dump was edited or damaged
                return ("unknown", step(target), f"line {lineno}: {refused}, so this rule cannot be what the "
                                                  "kernel runs (the dump was edited or damaged)")
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
                return ("redirect", step("REDIRECT (to a local port)"),
                        (rule.target_options.get("--to-ports") or ("",))[0])
            to = (rule.target_options.get("--to-destination") or ("",))[0]
            parsed = parse_to_destination(to, p.dst.version)
            if parsed is None:
                return ("unknown", step(f"DNAT to {to}"), f"DNAT destination {to!r} cannot be read")
            if not parsed[2]:
                return ("unknown", step(f"DNAT to {to}"), f"DNAT to a range ({to}): the kernel picks one "
                                                         "address and port per connection")
            return ("dnat", step(f"DNAT to {to}"), parsed[:2])
        if user is not None and user.builtin:
            return ("unknown", step(f"jump {target}"), f"a jump to built-in chain {target}")
        if target in _OTHER_TARGETS:
            return ("unknown", step(target), f"target {target} is not evaluated by masqctl")
        missing = f"chain {target} is not in the input"
        if self.dump.fragment:
            missing += " (the input is a fragment)"
        return ("unknown", step(f"jump {target}"), missing)


def evaluate(dump: Dump, packet: Packet, facts: NodeFacts | None = None) -> Evaluation:
    """Convenience: one evaluation of ``packet`` against ``dump``."""
    return Evaluator(dump, facts).evaluate(packet)


def _cannot_enter(p: PathState, target: str) -> str | None:
    """Why a jump or goto to ``target`` cannot be followed: "loop" (``target`` is already being
    walked: the kernel refuses such a rule set), "depth" (deeper than MAX_DEPTH), else None."""
    if target in p.frame or any(target in frame for _, _, frame in p.stack):
        return "loop"
    if len(p.stack) >= MAX_DEPTH:
        return "depth"
    return None


def _enter(p: PathState, target: str, goto: bool) -> None:
    """Continue ``p`` at the first rule of ``target``: a goto replaces the current chain (a RETURN
    from ``target`` goes back where the current chain was entered from), a jump comes back."""
    if goto:
        p.frame = p.frame + (target,)
    else:
        p.stack.append((p.chain, p.pos + 1, p.frame))
        p.frame = (target,)
    p.chain, p.pos = target, 0


def _cut_reason(table: Table, chain, pos: int) -> str:
    """Why a walk stops at rule ``pos`` of ``chain`` in a table the input left before its COMMIT."""
    where = f"the input ends before {table.name}'s COMMIT (cut short)"
    if pos < len(chain.lines):
        return f"{where}: line {chain.lines[pos][0]}, its last rule line, may be cut mid-way ({chain.name} rule " \
               f"{pos + 1} is not relied on)"
    if pos:
        return f"{where}: {chain.name} may have rules after the {pos} shown"
    return f"{where}: {chain.name} may have rules after the cut, none of them shown"


def _stopped(p: PathState, why: str) -> PathState:
    """Mark ``p`` as ended before routing; its next hook answers unknown with ``why``."""
    p.out_iface = "<unknown>"
    p.last_return = ("unknown", why)
    return p


def _take_branch(p: PathState, unknowns: list[Unknown], randoms: list[RandomBranch], matched: bool) -> None:
    """Record on ``p`` which side of a fork it takes: the rule matched, or it did not."""
    if unknowns:
        p.assumed = True
    if randoms:
        p.random = True
    if matched:
        for u in unknowns:
            if u.key is not None:
                p.assume[u.key] = u.if_true
                if u.key[0] == "port" and u.if_true and u.key[2].isdigit():
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


def _policy(p: PathState, hook: str, table: Table, prefix: str = "") -> tuple:
    """The end of built-in chain ``hook``: its policy decides."""
    chain = table.chain(hook)
    policy = (chain.policy if chain is not None else None) or "ACCEPT"
    step = Step(prefix + hook, hook, None, f":{hook} {policy}", "match", f"policy {policy}", None)
    p.trace.append(step)
    if policy == "DROP":
        return ("dropped", step)
    return ("policy", step)


def _apply_mark(rule: Rule, p: PathState) -> str:
    """Apply a MARK target to the path's mark; return the step's action text."""
    o = rule.target_options
    try:
        if "--set-xmark" in o:
            v, m = mark_value(o["--set-xmark"][0])
            p.mark = (p.mark & ~m & FULL_MASK) ^ v
            p.known |= m
        elif "--set-mark" in o:
            v, m = mark_value(o["--set-mark"][0])
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


_MARK_SETTERS = ("-j MARK", "-j CONNMARK", "-j TPROXY", "-j HMARK")   # TPROXY sets --tproxy-mark


def _untracks(raw: Table) -> bool:
    """True when raw rules may untrack packets (then raw is walked before nat)."""
    return any(" -j NOTRACK" in text or "--notrack" in text for lines in raw.lines_of.values() for _, text in lines)


def _sets_marks(dump: Dump) -> bool:
    """True when mangle or raw rules may set the packet mark before nat sees it."""
    for name in ("mangle", "raw"):
        table = dump.table(name)
        if table is None:
            continue
        for lines in table.lines_of.values():
            for _, text in lines:
                if any(t in text for t in _MARK_SETTERS):
                    return True
    return False


__all__ = ["Packet", "Step", "Outcome", "Evaluation", "Evaluator", "evaluate"]
