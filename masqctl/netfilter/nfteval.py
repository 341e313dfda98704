"""Walk a new connection's first packet through every nat-type base chain of an nftables ruleset
(and, when given, the nat table of an ``iptables-save``) the way the kernel does.

At each hook (prerouting or output, then postrouting) the nat chains run in priority order;
each runs on its own: ``accept`` or the chain's policy ends only that chain, the first chain to
bind a NAT (``masquerade``, ``snat``, ``dnat``, ``redirect``) decides the connection and later nat
chains at that hook are not run, ``drop`` ends everything. Chains of equal priority: the one
registered later runs first. Within one table that is the listing order (later listed runs
first); between tables (and between a native table and iptables' ``nat`` table from a separate
``iptables-save``) no listing proves it, so every order is walked and only an answer they all give
stands. iptables' ``nat`` chains sit at their standard priorities (PREROUTING and OUTPUT at
dstnat, POSTROUTING at srcnat).

Expressions: payload (``ip``/``ip6`` addresses and protocol, ``tcp``/``udp``/``sctp``/``th``
ports), ``meta`` (``l4proto``, ``nfproto``, ``mark``, ``iifname``/``oifname``), ``ct`` (``state``,
``status``, ``mark``, ``direction``), ``fib saddr|daddr type``, ``numgen random``, named and
anonymous sets and maps with intervals and concatenations, verdict maps, ``jump``/``goto``/
``return``, marks (``meta mark set``), and the NAT statements. Any other expression makes the
rule's result unknown, naming it (an ``xt`` extension of iptables-nft included: its arguments are
not in the JSON; give the ``iptables-save`` as well).

The walk's data (paths, steps, outcomes) and routing between the hooks are those of
:class:`~masqctl.netfilter.evaluate.Evaluator`, so an explanation reads the same whichever rules
decided.
"""

from __future__ import annotations

import ipaddress
import itertools
import math

from masqctl.netfilter.dump import Dump
from masqctl.netfilter.evaluate import MAX_DEPTH, Evaluator, _cannot_enter, _enter, _take_branch
from masqctl.netfilter.facts import NodeFacts
from masqctl.netfilter.matches import Matcher
from masqctl.netfilter.nft import PRIORITY_NAMES, NftChain, NftError, NftRule, NftSet, NftTable, Ruleset, \
    norm_element
from masqctl.netfilter.nftshow import show_expr, show_stmt
from masqctl.netfilter.outcome import finish
from masqctl.netfilter.values import FULL_MASK, iface_match
from masqctl.netfilter.walk import Evaluation, Packet, PathState, RandomBranch, Step, Unknown

MAX_ORDERS = 24
MAX_CANDIDATES = 16
HOOK_OF = {"PREROUTING": "prerouting", "OUTPUT": "output", "POSTROUTING": "postrouting"}
IPT_PRIO = {"prerouting": PRIORITY_NAMES["dstnat"], "output": PRIORITY_NAMES["dstnat"],
            "postrouting": PRIORITY_NAMES["srcnat"]}
PROTO_NUMBERS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "dccp": 33, "gre": 47, "esp": 50, "ah": 51,
                 "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "udplite": 136}
SERVICES = {"http": 80, "https": 443, "domain": 53, "ssh": 22, "ntp": 123}
_CONTINUE = ("counter", "log", "limit", "quota", "set", "notrack_ignored")
_NOMATCH = object()   # the field does not exist for this packet (tcp dport of a udp packet): the match fails


class NftEvaluator(Evaluator):
    """Evaluate packets against ``ruleset`` (and ``dump``'s nat table, iptables' rules, when given)."""

    def __init__(self, ruleset: Ruleset, dump: Dump | None = None, facts: NodeFacts | None = None):
        super().__init__(dump if dump is not None else Dump("<none>"), facts)
        self.ruleset = ruleset
        self.has_dump = dump is not None and bool(dump.tables_named("nat"))
        self.nft_notes: list[str] = []
        # iptables-nft's own tables in the listing: replaced by the dump when one is given
        self._ipt_tables = [t for t in ruleset.tables if _is_xtables_nat(t)]
        self._skip = set(id(t) for t in self._ipt_tables) if self.has_dump else set()
        self._untrack = self._untracking_chain()
        self._marks_unknown = self._marks_set_elsewhere()
        self._ct_marks = any(_sets_ct_mark(r) for t in ruleset.tables for c in t.chains.values() for r in c.rules)

    # ordering -----------------------------------------------------------------------------------
    def _participants(self, hook: str, family: int) -> list[list]:
        """The tie groups at ``hook`` in priority order: each a list of units (one table's chains
        at that priority, in the order they run) whose order between them is not known."""
        fam = {4: ("ip", "inet"), 6: ("ip6", "inet")}[family]
        by_prio: dict[int, dict] = {}
        for t in self.ruleset.tables:
            if id(t) in self._skip or t.family not in fam:
                continue
            for c in t.chains.values():
                if c.type == "nat" and c.hook == hook:
                    by_prio.setdefault(c.prio, {}).setdefault(("nft", id(t)), []).append(c)
        if self.has_dump:
            for i, _ in enumerate(self.nats):
                by_prio.setdefault(IPT_PRIO[hook], {})[("ipt", i)] = [("ipt", i)]
        groups = []
        for prio in sorted(by_prio):
            units = []
            for key, members in by_prio[prio].items():
                if key[0] == "nft":
                    # within one table the later-created (later-listed) chain runs first
                    members = sorted(members, key=lambda c: -c.seq)
                units.append(members)
            groups.append(units)
        return groups

    def _orders(self, family: int, first_hook: str) -> list[dict]:
        """Every order of the tie groups at both hooks (one when nothing is tied)."""
        per_hook = {}
        for hook in (first_hook, "postrouting"):
            groups = self._participants(hook, family)
            per_hook[hook] = [list(itertools.permutations(units)) for units in groups]
        choices = []
        for hook, groups in per_hook.items():
            for g, perms in enumerate(groups):
                choices.append((hook, g, perms))
        total = math.prod(len(p) for _, _, p in choices) if choices else 1
        if total > MAX_ORDERS:
            return []
        orders = []
        for combo in itertools.product(*[range(len(p)) for _, _, p in choices]):
            order: dict = {first_hook: [], "postrouting": []}
            conds = []
            for (hook, g, perms), k in zip(choices, combo):
                units = perms[k]
                order[hook].extend(m for u in units for m in u)
                if len(units) > 1:
                    conds.append(f"assumed at {hook} priority {_prio_of(units[0][0])}: "
                                 + " runs before ".join(self._unit_name(u) for u in units))
            order["conditions"] = conds
            orders.append(order)
        return orders

    def _unit_name(self, unit) -> str:
        m = unit[0]
        if isinstance(m, tuple):
            return "iptables' nat table" + (f" #{m[1] + 1}" if len(self.nats) > 1 else "")
        return f"table {m.family} {m.table}"

    # public -------------------------------------------------------------------------------------
    def evaluate(self, packet: Packet) -> Evaluation:
        self.notes = []
        self._paths_started = 1
        self._truncated = False
        self._packet = packet
        self._matcher = Matcher(self.facts, self.mangle_marks or self._marks_unknown, packet.proto)
        self._family = packet.dst.version
        outcomes: list = []
        first = "output" if packet.from_host else "prerouting"
        start_known = 0 if (self.mangle_marks or self._marks_unknown) else FULL_MASK
        if self._untrack is not None:
            p = PathState.start(packet, start_known)
            outcomes.append(([], finish(p, "unknown", None, None,
                                        f"chain {self._untrack} untracks packets (notrack): masqctl does not "
                                        "evaluate which skip nat")))
            return Evaluation(packet, [o for _, o in outcomes], self.notes, self._truncated)
        if len(self.nats) > 1 and self.has_dump:
            p = PathState.start(packet, start_known)
            outcomes.append(([], finish(p, "unknown", None, None, "the iptables input holds more than one nat "
                                        "table (dumps concatenated) as well as an nftables ruleset: give one "
                                        "iptables-save")))
            return Evaluation(packet, [o for _, o in outcomes], self.notes, self._truncated)
        orders = self._orders(self._family, first)
        if not orders:
            p = PathState.start(packet, start_known)
            outcomes.append(([], finish(p, "unknown", None, None, f"more than {MAX_ORDERS} orders of nat chains "
                                        "of equal priority in different tables: the kernel runs them in "
                                        "registration order, which the listing does not prove")))
            return Evaluation(packet, [o for _, o in outcomes], self.notes, self._truncated)
        self._order_list = orders
        self._paths_started += len(orders) - 1
        for n, order in enumerate(orders):
            p = PathState.start(packet, start_known)
            p.order.append(n)
            if order["conditions"]:
                p.assumed = True
                p.conditions += order["conditions"]
            self._leave_host(p)
            for q, verdict in self._nat_hook(p, "OUTPUT" if packet.from_host else "PREROUTING"):
                self._after_first_hook(q, verdict, outcomes)
        outcomes.sort(key=lambda item: item[0])
        return Evaluation(packet, [o for _, o in outcomes], self.notes, self._truncated)

    # one hook -----------------------------------------------------------------------------------
    def _nat_hook(self, p: PathState, hook: str) -> list[tuple[PathState, tuple]]:
        nft_hook = HOOK_OF[hook]
        chains = self._order_list[p.order[0]][nft_hook]
        if p.last_return and p.last_return[0] == "unknown":
            return [(p, ("unknown", None, p.last_return[1]))]
        if not chains:
            step = Step(hook, "(no nat chain)", None, f"no nat chain at {nft_hook}", "match", "no NAT", None)
            p.trace.append(step)
            return [(p, ("policy", step))]
        walks = []
        for chain in chains:
            if isinstance(chain, tuple):
                i = chain[1]
                walks.append(lambda path, i=i: self._in_table(
                    i, "iptables nat " if len(self.nats) == 1 else f"iptables nat#{i + 1} ", path, hook))
            else:
                walks.append(lambda path, chain=chain: self._walk_chain(path, chain, hook))
        return self._in_turn(p, walks)

    def _walk_chain(self, p: PathState, base: NftChain, hook: str) -> list[tuple[PathState, tuple]]:
        table = self.ruleset.table(base.family, base.table)
        p.chain, p.pos, p.stack, p.frame, p.last_return = base.name, 0, [], (base.name,), None
        label = f"{base.hook}: table {base.family} {base.table} chain {base.name}"
        done = []
        work: list = [(p, None)]
        while work:
            path, ready = work.pop()
            if ready is not None:
                done.append((path, ready))
                continue
            done.append((path, self._run_nft(path, table, base, label, work)))
        return done

    def _run_nft(self, p: PathState, table: NftTable, base: NftChain, label: str, work: list) -> tuple:
        while True:
            chain = table.chains.get(p.chain)
            if chain is None:
                return ("unknown", None, f"chain {p.chain} is not in table {table.label()}")
            if p.pos >= len(chain.rules):
                if p.stack:
                    p.chain, p.pos, p.frame = p.stack.pop()
                    continue
                return self._policy(p, base, label)
            p.steps += 1
            if p.steps > 2_000_000:
                return ("unknown", None, "the walk did not end (a chain loop?)")
            rule = chain.rules[p.pos]
            verdict = self._rule(p, table, base, chain, rule, label, work)
            if verdict is not None:
                return verdict

    def _policy(self, p: PathState, base: NftChain, label: str) -> tuple:
        policy = base.policy or "accept"
        step = Step(label, base.name, None, f"policy {policy}", "match", f"policy {policy}", None)
        p.trace.append(step)
        return ("dropped", step) if policy == "drop" else ("policy", step)

    def _step(self, p, label, chain, rule, result, action) -> Step:
        s = Step(label, chain.name, rule.index, rule.text, result, action, rule.lineno)
        p.trace.append(s)
        return s

    # one rule -----------------------------------------------------------------------------------
    def _rule(self, p: PathState, table: NftTable, base: NftChain, chain: NftChain, rule: NftRule, label: str,
              work: list) -> tuple | None:
        """Run ``rule``'s statements on ``p``: None to go on (p.pos moved), or a verdict ending the chain."""
        prefix: list[str] = []
        result = "match"
        for stmt in rule.exprs:
            if not isinstance(stmt, dict) or len(stmt) != 1:
                return self._unknown(p, label, chain, rule, prefix, f"statement {show_stmt(stmt)!r} cannot be read")
            (kind, body), = stmt.items()
            if kind == "match":
                r = self._match(p, table, body, base.hook)
                if r is True:
                    continue
                if r is False:
                    self._step(p, label, chain, rule, "no-match", "next")
                    p.pos += 1
                    return None
                if not self._may_fork():
                    self._step(p, label, chain, rule, "unknown", "stopped: too many branches")
                    return ("unknown", p.trace[-1], "too many branches to enumerate")
                alt = p.copy()
                unknowns = [r] if isinstance(r, Unknown) else []
                randoms = [r] if isinstance(r, RandomBranch) else []
                _take_branch(p, unknowns, randoms, True)
                _take_branch(alt, unknowns, randoms, False)
                p.order.append(0)
                alt.order.append(1)
                why = r.why
                alt.trace.append(Step(label, chain.name, rule.index, rule.text, "unknown" if unknowns else "no-match",
                                      f"assumed no match ({why})" if unknowns else f"random branch not taken ({why})",
                                      rule.lineno))
                alt.pos += 1
                work.append((alt, None))
                if unknowns:
                    result = "unknown"
                prefix.append(f"assumed match ({why})" if unknowns else f"random branch taken ({why})")
                continue
            if kind in ("counter", "log", "limit", "quota"):
                if kind == "limit":
                    return self._unknown(p, label, chain, rule, prefix, "limit (a rate: whether this packet is "
                                                                        "under it is not known)")
                continue
            if kind == "set":     # add/update a dynamic set (session affinity): no effect on this packet
                continue
            if kind == "mangle":
                why = self._mangle(p, body)
                if why is not None:
                    return self._unknown(p, label, chain, rule, prefix, why)
                continue
            if kind == "xt":
                name = body.get("name") if isinstance(body, dict) else None
                return self._unknown(p, label, chain, rule, prefix,
                                     f"expression xt {name or '?'} (an iptables-nft extension whose arguments "
                                     "`nft -j` does not show; give the node's iptables-save with --iptables)")
            if kind == "unknown":
                return self._unknown(p, label, chain, rule, prefix, f"expression {body!r} is not evaluated by masqctl")
            # terminal statements
            return self._terminal(p, table, base, chain, rule, label, kind, body, prefix, result, work)
        self._step(p, label, chain, rule, result, _pre(prefix) + "continue")
        p.pos += 1
        return None

    def _unknown(self, p, label, chain, rule, prefix, why) -> tuple:
        s = self._step(p, label, chain, rule, "unknown", _pre(prefix) + "unknown")
        return ("unknown", s, f"{chain.name} rule {rule.index}: {why}")

    def _terminal(self, p, table, base, chain, rule, label, kind, body, prefix, result, work) -> tuple | None:
        hook = base.hook
        if kind in ("accept",):
            return ("accept", self._step(p, label, chain, rule, result, _pre(prefix) + "accept"))
        if kind in ("drop", "reject"):
            return ("dropped", self._step(p, label, chain, rule, result, _pre(prefix) + kind))
        if kind in ("continue",):
            self._step(p, label, chain, rule, result, _pre(prefix) + "continue")
            p.pos += 1
            return None
        if kind in ("return", "jump", "goto"):
            target = body.get("target") if isinstance(body, dict) else None
            return self._verdict(p, table, base, chain, rule, label, kind, target, prefix, result)
        if kind == "vmap":
            return self._vmap(p, table, base, chain, rule, label, body, prefix, result, work)
        if kind == "notrack":
            return self._unknown(p, label, chain, rule, prefix, "notrack in a nat chain")
        if kind == "masquerade":
            if hook != "postrouting":
                return self._unknown(p, label, chain, rule, prefix, f"masquerade is not valid at {hook}")
            return ("masquerade", self._step(p, label, chain, rule, result, _pre(prefix) + "masquerade"))
        if kind == "snat":
            if hook not in ("postrouting", "input"):
                return self._unknown(p, label, chain, rule, prefix, f"snat is not valid at {hook}")
            to = _nat_address(body, self._family)
            if to is None:
                return self._unknown(p, label, chain, rule, prefix, f"snat to {show_stmt({'snat': body})} "
                                                                    "(an address map or a range) is not evaluated")
            return ("snat", self._step(p, label, chain, rule, result, _pre(prefix) + f"SNAT to {to}"), to)
        if kind in ("dnat", "redirect"):
            if hook not in ("prerouting", "output"):
                return self._unknown(p, label, chain, rule, prefix, f"{kind} is not valid at {hook}")
            if kind == "redirect":
                port = body.get("port") if isinstance(body, dict) else None
                return ("redirect", self._step(p, label, chain, rule, result, _pre(prefix) + "redirect (to a local port)"),
                        str(port) if isinstance(port, int) else "")
            addr = body.get("addr") if isinstance(body, dict) else None
            port = body.get("port") if isinstance(body, dict) else None
            try:
                ip = ipaddress.ip_address(addr) if isinstance(addr, str) else None
            except ValueError:
                ip = None
            if ip is None or ip.version != self._family or not (port is None or (isinstance(port, int)
                                                                                  and 0 < port < 65536)):
                return self._unknown(p, label, chain, rule, prefix, f"{show_stmt({kind: body})} (a map, a range or "
                                                                    "an address of another family) is not evaluated")
            return ("dnat", self._step(p, label, chain, rule, result,
                                       _pre(prefix) + f"DNAT to {ip}{':' + str(port) if port else ''}"), (ip, port))
        return self._unknown(p, label, chain, rule, prefix, f"expression {kind} is not evaluated by masqctl")

    def _verdict(self, p, table, base, chain, rule, label, kind, target, prefix, result) -> tuple | None:
        if kind == "return":
            s = self._step(p, label, chain, rule, result, _pre(prefix) + "return")
            p.last_return = ("return", s)
            if p.stack:
                p.chain, p.pos, p.frame = p.stack.pop()
                return None
            return self._policy(p, base, label)
        if kind == "accept":
            return ("accept", self._step(p, label, chain, rule, result, _pre(prefix) + "accept"))
        if kind == "drop":
            return ("dropped", self._step(p, label, chain, rule, result, _pre(prefix) + "drop"))
        if not isinstance(target, str) or target not in table.chains:
            s = self._step(p, label, chain, rule, result, _pre(prefix) + f"{kind} {target}")
            return ("unknown", s, f"chain {target} is not in table {table.label()}")
        if table.chains[target].base:
            s = self._step(p, label, chain, rule, result, _pre(prefix) + f"{kind} {target}")
            return ("unknown", s, f"a {kind} to base chain {target}")
        refused = _cannot_enter(p, target)
        if refused == "loop":
            s = self._step(p, label, chain, rule, result, _pre(prefix) + f"{kind} {target}")
            return ("unknown", s, f"a loop: {chain.name} rule {rule.index} enters {target} again (nft refuses "
                                  "such a ruleset)")
        if refused == "depth":
            s = self._step(p, label, chain, rule, result, _pre(prefix) + f"{kind} {target}")
            return ("unknown", s, f"chain nesting deeper than {MAX_DEPTH}")
        self._step(p, label, chain, rule, result, _pre(prefix) + f"{kind} {target}")
        _enter(p, target, kind == "goto")
        return None

    def _vmap(self, p, table, base, chain, rule, label, body, prefix, result, work) -> tuple | None:
        if not isinstance(body, dict):
            return self._unknown(p, label, chain, rule, prefix, "vmap cannot be read")
        key, data = body.get("key"), body.get("data")
        if isinstance(key, dict) and "numgen" in key:
            ng = key["numgen"]
            mod = ng.get("mod") if isinstance(ng, dict) else None
            if not isinstance(ng, dict) or ng.get("mode") != "random" or not isinstance(mod, int) or mod < 1:
                return self._unknown(p, label, chain, rule, prefix, f"{show_expr(key)} (not numgen random)")
            offset = ng.get("offset") or 0
            elems = self._elements(table, data)
            if isinstance(elems, str):
                return self._unknown(p, label, chain, rule, prefix, elems)
            branches = []
            for n in range(offset, offset + mod):
                hit = [v for k, v in elems if _value_in(n, k, "int")]
                branches.append((n, hit[0] if hit else None))
            for n, verdict in reversed(branches):
                q = p if (n == branches[0][0]) else p.copy()
                if q is not p:
                    if not self._may_fork():
                        self._step(p, label, chain, rule, "unknown", "stopped: too many branches")
                        return ("unknown", p.trace[-1], "too many branches to enumerate")
                    q.order.append(n - offset)
                if mod > 1:
                    q.random = True
                    q.prob *= 1 / mod
                    q.conditions.append(f"random branch {n - offset + 1} of {mod} ({show_expr(key)} = {n})")
                if q is not p:
                    v = self._apply_vmap_verdict(q, table, base, chain, rule, label, verdict,
                                                 prefix + [f"numgen = {n}"], "match")
                    work.append((q, v))
            p.order.append(0)
            n0, verdict0 = branches[0]
            return self._apply_vmap_verdict(p, table, base, chain, rule, label, verdict0,
                                            prefix + [f"numgen = {n0}"], "match")
        parts = key["concat"] if isinstance(key, dict) and "concat" in key and isinstance(key["concat"], list) else [key]
        values = []
        for part in parts:
            v = self._value(p, part, base.hook)
            if v is _NOMATCH:
                self._step(p, label, chain, rule, "no-match", "next")
                p.pos += 1
                return None
            values.append(v)
        elems = self._elements(table, data)
        if isinstance(elems, str):
            return self._unknown(p, label, chain, rule, prefix, elems)
        unknown_at = [i for i, v in enumerate(values) if isinstance(v, Unknown)]
        kinds = [_kind_of(part) for part in parts]
        if not unknown_at:
            for k, verdict in elems:
                if _key_match(values, k, kinds):
                    return self._apply_vmap_verdict(p, table, base, chain, rule, label, verdict,
                                                    prefix + [f"{show_expr(key)} found in {_data_name(data)}"], result)
            self._step(p, label, chain, rule, result if not prefix else "unknown",
                       _pre(prefix) + f"not in {_data_name(data)}: next")
            p.pos += 1
            return None
        # a component is unknown (the port): one branch per element that can match, and one for none
        if len(unknown_at) > 1 or not _is_port(parts[unknown_at[0]]):
            return self._unknown(p, label, chain, rule, prefix,
                                 f"{show_expr(parts[unknown_at[0]])} is not known for the lookup in {_data_name(data)}")
        u = unknown_at[0]
        cands = []
        for k, verdict in elems:
            comps = k if isinstance(k, tuple) and len(parts) > 1 else (k,)
            if not isinstance(comps, tuple) or len(comps) != len(parts):
                continue
            if all(_value_in(values[i], comps[i], kinds[i]) for i in range(len(parts)) if i != u):
                c = comps[u]
                if c is None or c[0] != "int":
                    return self._unknown(p, label, chain, rule, prefix, f"the destination port is not known for "
                                                                        f"the lookup in {_data_name(data)}")
                cands.append((c[1], verdict))
        if not cands:
            self._step(p, label, chain, rule, result if not prefix else "unknown",
                       _pre(prefix) + f"not in {_data_name(data)} (whatever the port): next")
            p.pos += 1
            return None
        if len(cands) > MAX_CANDIDATES:
            return self._unknown(p, label, chain, rule, prefix, f"{len(cands)} ports of {_data_name(data)} could "
                                                                "match: give DST as IP:PORT")
        kind_port = parts[u]["payload"]["field"] if isinstance(parts[u], dict) and "payload" in parts[u] else "dport"
        d = "d" if kind_port == "dport" else "s"
        none = p.copy()
        for port, verdict in cands:
            if not self._may_fork():
                return ("unknown", self._step(p, label, chain, rule, "unknown", "stopped: too many branches"),
                        "too many branches to enumerate")
            q = p.copy()
            q.assume[("port", d, str(port))] = True
            if d == "d":
                q.dport = q.orig_dport = port
            else:
                q.sport = port
            q.assumed = True
            q.conditions.append(f"assumed: {'destination' if d == 'd' else 'source'} port is {port} "
                                "(give DST as IP:PORT)")
            q.order.append(len(work) + 1)
            v = self._apply_vmap_verdict(q, table, base, chain, rule, label, verdict,
                                         prefix + [f"assumed port {port}"], "unknown")
            work.append((q, v))
        for port, _ in cands:
            none.assume[("port", d, str(port))] = False
        none.assumed = True
        none.conditions.append(f"assumed not: the {'destination' if d == 'd' else 'source'} port is "
                               + " or ".join(str(c) for c, _ in cands))
        none.order.append(0)
        # continue the "no element" path in place of p
        for name in PathState.__slots__:
            setattr(p, name, getattr(none, name))
        self._step(p, label, chain, rule, "unknown", _pre(prefix) + f"assumed not in {_data_name(data)}: next")
        p.pos += 1
        return None

    def _apply_vmap_verdict(self, p, table, base, chain, rule, label, verdict, prefix, result) -> tuple | None:
        if verdict is None:
            self._step(p, label, chain, rule, result, _pre(prefix) + "no element: next")
            p.pos += 1
            return None
        if not isinstance(verdict, dict) or len(verdict) != 1:
            return self._unknown(p, label, chain, rule, prefix, f"verdict {verdict!r} cannot be read")
        (kind, body), = verdict.items()
        if kind in ("jump", "goto", "return", "accept", "drop"):
            target = body.get("target") if isinstance(body, dict) else None
            v = self._verdict(p, table, base, chain, rule, label, kind, target, prefix, result)
            if v is None and kind == "return":
                return None
            return v
        if kind == "reject":
            return ("dropped", self._step(p, label, chain, rule, result, _pre(prefix) + "reject"))
        if kind == "continue":
            self._step(p, label, chain, rule, result, _pre(prefix) + "continue")
            p.pos += 1
            return None
        return self._unknown(p, label, chain, rule, prefix, f"verdict {kind} is not evaluated")

    def _elements(self, table: NftTable, data):
        """[(key, data)] of a named set/map (``"@name"``) or an anonymous one; a string says why not."""
        if isinstance(data, str) and data.startswith("@"):
            s = table.sets.get(data[1:])
            if s is None:
                return f"set {data} is not in table {table.label()}"
            if s.unreadable:
                return f"set {data}: {s.unreadable}"
            if s.dynamic:
                return f"set {data} is filled at run time (flags {','.join(s.flags)}): its members for this " \
                       "packet are not known"
            return s.elements
        if isinstance(data, dict) and "set" in data:
            items = data["set"] if isinstance(data["set"], list) else [data["set"]]
            out = []
            for it in items:
                try:
                    if isinstance(it, list) and len(it) == 2:
                        out.append((norm_element(it[0], "anonymous set"), it[1]))
                    else:
                        out.append((norm_element(it, "anonymous set"), None))
                except NftError as exc:
                    return f"anonymous set: {exc.message}"
            return out
        try:
            return [(norm_element(data, "value"), None)]
        except NftError as exc:
            return exc.message

    # values and matches -------------------------------------------------------------------------
    def _value(self, p: PathState, e, hook: str):
        """The packet's value of expression ``e``: an address, an int, a symbol; ``_NOMATCH`` when the
        packet has no such field; an :class:`Unknown` when a fact is missing."""
        if isinstance(e, dict) and len(e) == 1:
            (k, v), = e.items()
            if k == "payload" and isinstance(v, dict):
                proto, fieldname = v.get("protocol"), v.get("field")
                if proto in ("ip", "ip6"):
                    if (proto == "ip") != (self._family == 4):
                        return _NOMATCH
                    if fieldname == "saddr":
                        return p.src
                    if fieldname == "daddr":
                        return p.dst
                    if fieldname in ("protocol", "nexthdr"):
                        return PROTO_NUMBERS.get(self._packet.proto)
                    return Unknown(f"{proto} {fieldname} is not evaluated by masqctl")
                if proto in ("tcp", "udp", "sctp", "th", "udplite", "dccp"):
                    if proto != "th" and proto != self._packet.proto:
                        return _NOMATCH
                    if fieldname == "dport":
                        return p.dport if p.dport is not None else Unknown("the destination port (give DST as "
                                                                           "IP:PORT)", ("port", "d", None))
                    if fieldname == "sport":
                        return p.sport if p.sport is not None else Unknown("the source port", ("port", "s", None))
                    return Unknown(f"{proto} {fieldname} is not evaluated by masqctl")
                return Unknown(f"payload {proto} {fieldname} is not evaluated by masqctl")
            if k == "meta" and isinstance(v, dict):
                key = v.get("key")
                if key == "l4proto":
                    return PROTO_NUMBERS.get(self._packet.proto)
                if key == "protocol":
                    return "ip" if self._family == 4 else "ip6"
                if key == "nfproto":
                    return "ipv4" if self._family == 4 else "ipv6"
                if key == "mark":
                    return ("mark",)
                if key in ("iifname", "iif"):
                    if hook in ("output",) or (hook == "postrouting" and self._packet.from_host):
                        return ""
                    if self.facts.in_interface:
                        return self.facts.in_interface
                    return Unknown("the interface the packet arrives on (give --in-interface)", ("iface-in",))
                if key in ("oifname", "oif"):
                    if hook == "prerouting":
                        return Unknown("meta oifname at prerouting")
                    name = p.egress
                    if name is None:
                        return Unknown("the egress interface (give --out-interface or --ip-addr)", ("iface-out",))
                    return name
                return Unknown(f"meta {key} is not evaluated by masqctl")
            if k == "ct" and isinstance(v, dict):
                key = v.get("key")
                if v.get("dir") not in (None, "original"):
                    return Unknown(f"ct {v.get('dir')} {key} is not evaluated by masqctl")
                if key == "state":
                    return ("flags", {"new"})
                if key == "status":
                    st = set()
                    if hook == "postrouting" and p.dnat is not None:
                        st.add("dnat")
                    return ("flags", st)
                if key == "direction":
                    return "original"
                if key == "mark":
                    if self._ct_marks:
                        return Unknown("the connection mark (a rule sets ct mark)")
                    return 0
                return Unknown(f"ct {key} is not evaluated by masqctl")
            if k == "fib" and isinstance(v, dict):
                return ("fib", v)
            if k in ("&", "|", "^") and isinstance(v, list) and len(v) == 2:
                return ("binop", k, v)
        return Unknown(f"expression {show_expr(e)} is not evaluated by masqctl")

    def _match(self, p: PathState, table: NftTable, m: dict, hook: str):
        if not isinstance(m, dict):
            return Unknown("a match that cannot be read")
        op = m.get("op", "==")
        left, right = m.get("left"), m.get("right")
        neg = op == "!="
        if op not in ("==", "!=", "in", "<", ">", "<=", ">="):
            return Unknown(f"match operator {op!r}")
        parts = left["concat"] if isinstance(left, dict) and "concat" in left and isinstance(left["concat"], list) \
            else None
        if parts is not None:
            values = []
            for part in parts:
                v = self._value(p, part, hook)
                if v is _NOMATCH:
                    return False
                if isinstance(v, Unknown):
                    return Unknown(f"{show_expr(left)} {op} {show_expr(right)}: {v.why}")
                if isinstance(v, tuple):
                    return Unknown(f"{show_expr(part)} in a concatenation is not evaluated by masqctl")
                values.append(v)
            elems = self._elements(table, right)
            if isinstance(elems, str):
                return Unknown(elems)
            kinds = [_kind_of(x) for x in parts]
            hit = any(_key_match(values, k, kinds) for k, _ in elems)
            return hit != neg if op in ("==", "!=", "in") else Unknown(f"operator {op} on a concatenation")
        v = self._value(p, left, hook)
        if v is _NOMATCH:
            return False
        if isinstance(v, Unknown):
            return self._unknown_port(p, v, left, op, right, neg)
        if isinstance(v, tuple) and v and v[0] == "fib":
            return self._fib(p, v[1], op, right, hook)
        if isinstance(v, tuple) and v and v[0] == "flags":
            names = right if isinstance(right, list) else [right]
            if not all(isinstance(x, str) for x in names):
                return Unknown(f"ct flags {right!r}")
            hit = any(x in v[1] for x in names)
            return hit != neg
        if isinstance(v, tuple) and v and v[0] in ("mark", "binop"):
            return self._mark_match(p, left, op, right)
        if op in ("<", ">", "<=", ">="):
            try:
                r = _norm_value(right)
                a, b = _cmp_pair(v, r)
            except (NftError, TypeError):
                return Unknown(f"comparison {show_expr(left)} {op} {show_expr(right)}")
            return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        if isinstance(v, str) and isinstance(right, str) and not right.startswith("@"):
            if _kind_of(left) == "iface":
                return iface_match(right.replace("*", "+"), v) != neg
        elems = self._elements(table, right)
        if isinstance(elems, str):
            return Unknown(elems)
        kind = _kind_of(left)
        hit = any(_value_in(v, k, kind) for k, _ in elems)
        return hit != neg

    def _unknown_port(self, p, v: Unknown, left, op, right, neg):
        if v.key and v.key[0] == "port" and op in ("==", "!="):
            spec = right if isinstance(right, (int, str)) else show_expr(right)
            key = ("port", v.key[1], str(spec))
            if key in p.assume:
                return p.assume[key] != neg
            what = "destination" if v.key[1] == "d" else "source"
            return Unknown(f"{what} port {'not ' if neg else ''}in {spec} (give DST as IP:PORT)", key, not neg)
        if v.key and v.key[0] in ("iface-in", "iface-out") and isinstance(right, str):
            key = (v.key[0], right)
            if key in p.assume:
                return p.assume[key] != neg
            what = "arrives on" if v.key[0] == "iface-in" else "leaves via"
            return Unknown(f"the packet {what} an interface matching {right}", key, not neg)
        return Unknown(f"{show_expr(left)} {op} {show_expr(right)}: {v.why}")

    def _fib(self, p: PathState, fib: dict, op: str, right, hook: str):
        flags = fib.get("flags") or []
        flags = [flags] if isinstance(flags, str) else list(flags)
        if fib.get("result") != "type" or not flags or flags[0] not in ("saddr", "daddr") or \
                any(f not in ("saddr", "daddr", "iif", "oif") for f in flags):
            return Unknown(f"fib {' . '.join(map(str, flags))} {fib.get('result')} is not evaluated by masqctl")
        names = right if isinstance(right, list) else [right]
        if not all(isinstance(x, str) for x in names) or op not in ("==", "!=", "in"):
            return Unknown(f"fib type {right!r}")
        addr = p.src if flags[0] == "saddr" else p.dst
        neg = op == "!="
        if_local = ("local" in names) != neg
        if_not_local = ("unicast" in names) != neg
        if any(x not in ("local", "unicast") for x in names):
            return Unknown(f"fib type {', '.join(names)} (only local and unicast are evaluated)")
        local = self._matcher.local(p, addr)
        if isinstance(local, Unknown):
            if if_local == if_not_local:
                return if_local
            return Unknown(f"{addr} is {'' if if_local else 'not '}an address of this node (fib {flags[0]} type "
                           "local; give --local-address or --ip-addr)", local.key, if_local)
        if local and len(flags) > 1:
            return Unknown(f"fib {' . '.join(flags)} type: {addr} is local, on which interface is not known")
        return if_local if local else if_not_local

    def _mark_match(self, p: PathState, left, op, right):
        got = self._mark_expr(p, left)
        if got is None:
            return Unknown(f"{show_expr(left)} is not evaluated by masqctl")
        value, known = got
        try:
            want = _norm_value(right)
        except NftError:
            return Unknown(f"mark value {right!r}")
        if want[0] != "int":
            return Unknown(f"mark compared with {show_expr(right)}")
        if known != FULL_MASK:
            return Unknown(f"the packet mark ({show_expr(left)}; bits 0x{~known & FULL_MASK:x} may be set where "
                           "masqctl does not see)")
        if op in ("==", "in"):
            return value == want[1]
        if op == "!=":
            return value != want[1]
        return {"<": value < want[1], ">": value > want[1], "<=": value <= want[1], ">=": value >= want[1]}[op]

    def _mark_expr(self, p: PathState, e) -> tuple[int, int] | None:
        """(value, mask of known bits) of a mark expression: ``meta mark``, a constant, or ``& | ^`` of them."""
        if isinstance(e, int) and not isinstance(e, bool):
            return e & FULL_MASK, FULL_MASK
        if isinstance(e, str):
            try:
                return int(e, 0) & FULL_MASK, FULL_MASK
            except ValueError:
                return None
        if isinstance(e, dict) and len(e) == 1:
            (k, v), = e.items()
            if k == "meta" and isinstance(v, dict) and v.get("key") == "mark":
                return p.mark, p.known
            if k in ("&", "|", "^") and isinstance(v, list) and len(v) == 2:
                a, b = self._mark_expr(p, v[0]), self._mark_expr(p, v[1])
                if a is None or b is None:
                    return None
                (av, ak), (bv, bk) = a, b
                if k == "&":
                    known = (ak & bk) | (ak & ~av) | (bk & ~bv)
                    return av & bv, known & FULL_MASK
                if k == "|":
                    known = (ak & bk) | (ak & av) | (bk & bv)
                    return (av | bv) & FULL_MASK, known & FULL_MASK
                return (av ^ bv) & FULL_MASK, ak & bk
        return None

    def _mangle(self, p: PathState, body) -> str | None:
        if not isinstance(body, dict):
            return "a mangle statement that cannot be read"
        key = body.get("key")
        if isinstance(key, dict) and "meta" in key and isinstance(key["meta"], dict) and key["meta"].get("key") == "mark":
            got = self._mark_expr(p, body.get("value"))
            if got is None:
                p.known = 0
                return None
            p.mark, p.known = got
            return None
        if isinstance(key, dict) and "ct" in key and isinstance(key["ct"], dict) and key["ct"].get("key") == "mark":
            return None     # the connection mark: read as unknown wherever it is matched
        return f"{show_expr(key)} set … is not evaluated by masqctl"

    # what the ruleset does outside nat ----------------------------------------------------------
    def _untracking_chain(self) -> str | None:
        for t in self.ruleset.tables:
            for c in t.chains.values():
                if c.base and c.hook in ("prerouting", "output") and any(_has(r.exprs, "notrack") for r in c.rules):
                    return f"{c.family} {c.table} {c.name}"
        return None

    def _marks_set_elsewhere(self) -> bool:
        """True when a chain that runs before nat (not reachable from a nat chain) sets the packet mark."""
        reach: set = set()
        for t in self.ruleset.tables:
            todo = [c.name for c in t.chains.values() if c.type == "nat"]
            while todo:
                name = todo.pop()
                if (id(t), name) in reach or name not in t.chains:
                    continue
                reach.add((id(t), name))
                for r in t.chains[name].rules:
                    todo.extend(_targets(r.exprs, t))
        for t in self.ruleset.tables:
            for c in t.chains.values():
                if (id(t), c.name) in reach:
                    continue
                if any(_sets_meta_mark(r) for r in c.rules):
                    return True
        return False


# --- helpers -----------------------------------------------------------------------------------------

def _pre(prefix: list[str]) -> str:
    return "".join(f"{x} → " for x in prefix)


def _prio_of(m) -> str:
    if isinstance(m, tuple):
        return "(iptables' standard)"
    return str(m.prio)


def _is_xtables_nat(t: NftTable) -> bool:
    """iptables-nft's ``nat`` table as `nft list ruleset` shows it."""
    return t.family in ("ip", "ip6") and t.name == "nat" and any(
        c.name in ("PREROUTING", "POSTROUTING", "OUTPUT", "INPUT") and c.type == "nat" for c in t.chains.values())


def _has(exprs, kind: str) -> bool:
    return any(isinstance(e, dict) and kind in e for e in exprs)


def _targets(exprs, t: NftTable) -> list[str]:
    out = []
    for e in exprs:
        if not isinstance(e, dict):
            continue
        for k in ("jump", "goto"):
            if isinstance(e.get(k), dict) and isinstance(e[k].get("target"), str):
                out.append(e[k]["target"])
        vm = e.get("vmap")
        if isinstance(vm, dict):
            data = vm.get("data")
            items = []
            if isinstance(data, str) and data.startswith("@") and data[1:] in t.sets:
                items = [d for _, d in t.sets[data[1:]].elements]
            elif isinstance(data, dict) and isinstance(data.get("set"), list):
                items = [x[1] for x in data["set"] if isinstance(x, list) and len(x) == 2]
            for d in items:
                if isinstance(d, dict):
                    for k in ("jump", "goto"):
                        if isinstance(d.get(k), dict) and isinstance(d[k].get("target"), str):
                            out.append(d[k]["target"])
    return out


def _sets_meta_mark(rule: NftRule) -> bool:
    for e in rule.exprs:
        if isinstance(e, dict) and isinstance(e.get("mangle"), dict):
            key = e["mangle"].get("key")
            if isinstance(key, dict) and isinstance(key.get("meta"), dict) and key["meta"].get("key") == "mark":
                return True
        if isinstance(e, dict) and "xt" in e and isinstance(e["xt"], dict) and e["xt"].get("name") in ("MARK", "mark"):
            return True
    return False


def _sets_ct_mark(rule: NftRule) -> bool:
    for e in rule.exprs:
        if isinstance(e, dict) and isinstance(e.get("mangle"), dict):
            key = e["mangle"].get("key")
            if isinstance(key, dict) and isinstance(key.get("ct"), dict) and key["ct"].get("key") == "mark":
                return True
    return False


def _nat_address(body, family: int):
    if not isinstance(body, dict):
        return None
    addr = body.get("addr")
    if not isinstance(addr, str):
        return None
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    if ip.version != family:
        return None
    return str(ip)


def _kind_of(e) -> str:
    if isinstance(e, dict) and len(e) == 1:
        (k, v), = e.items()
        if k == "payload" and isinstance(v, dict):
            if v.get("field") in ("saddr", "daddr"):
                return "addr"
            if v.get("field") in ("dport", "sport"):
                return "port"
            if v.get("field") in ("protocol", "nexthdr"):
                return "proto"
        if k == "meta" and isinstance(v, dict):
            if v.get("key") in ("l4proto", "protocol"):
                return "proto"
            if v.get("key") in ("iifname", "oifname", "iif", "oif"):
                return "iface"
    return "any"


def _is_port(e) -> bool:
    return _kind_of(e) == "port"


def _data_name(data) -> str:
    return data if isinstance(data, str) else "the anonymous map"


def _norm_value(right):
    return norm_element(right, "value")


def _scalar(comp, kind: str):
    """An element component as a comparable scalar for ``kind``."""
    tag = comp[0]
    if tag == "int":
        return comp[1]
    if tag == "ip":
        return comp[1]
    if tag == "sym":
        s = comp[1]
        if kind == "proto":
            return PROTO_NUMBERS.get(s, s)
        if kind == "port":
            return SERVICES.get(s, s)
        return s
    return None


def _value_in(v, comp, kind: str) -> bool:
    """Whether packet value ``v`` is in element component ``comp``."""
    if comp is None:
        return False
    tag = comp[0]
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        if tag == "ip":
            return v == comp[1]
        if tag == "net":
            return v.version == comp[1].version and v in comp[1]
        if tag == "range":
            lo, hi = comp[1], comp[2]
            return lo[0] == "ip" and lo[1].version == v.version and lo[1] <= v <= hi[1]
        return False
    if tag == "range":
        lo, hi = _scalar(comp[1], kind), _scalar(comp[2], kind)
        return isinstance(v, int) and isinstance(lo, int) and isinstance(hi, int) and lo <= v <= hi
    if tag in ("net",):
        return False
    s = _scalar(comp, kind)
    if kind == "proto" and isinstance(v, int):
        return s == v
    if kind == "port" and isinstance(v, int):
        return s == v
    if isinstance(v, str):
        return s == v or (isinstance(s, str) and s.endswith("*") and v.startswith(s[:-1]))
    return s == v


def _key_match(values: list, key, kinds: list[str]) -> bool:
    comps = key if isinstance(key, tuple) and key and isinstance(key[0], tuple) else (key,)
    if len(comps) != len(values):
        return False
    return all(_value_in(v, c, k) for v, c, k in zip(values, comps, kinds))


def _cmp_pair(v, r):
    s = _scalar(r, "any")
    if isinstance(v, int) and isinstance(s, int):
        return v, s
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and isinstance(s, type(v)):
        return v, s
    raise TypeError


__all__ = ["NftEvaluator"]
