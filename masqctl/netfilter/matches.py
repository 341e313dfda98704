"""What each match of a rule means for one path of the walk.

A match answers True, False, an :class:`Unknown` (it needs a fact nobody gave: the node's
addresses, ipset contents, the egress interface, a port, the packet mark) or a
:class:`RandomBranch` (``statistic --mode random``). An unknown carries an assumption key: once
a path has assumed an answer for that key, later matches on the same path that need the same
fact read it from ``PathState.assume`` instead of forking again.

Basic matches (``-s -d -p -i -o -f``) are decided in :meth:`Matcher.match`; each ``-m MODULE``
by the method ``_m_MODULE`` (a module with no such method is unknown).
"""

from __future__ import annotations

import re
from bisect import bisect_left

from masqctl.netfilter.dump import Chain, Match, Rule
from masqctl.netfilter.facts import IPAddress, IpSet, NodeFacts
from masqctl.netfilter.values import FULL_MASK, iface_match, in_net, in_ports, mark_value
from masqctl.netfilter.vocabulary import proto_name
from masqctl.netfilter.walk import PathState, RandomBranch, Unknown

_PREFIX = re.compile(r"-A \S+(?:( !)? -s (\S+))?(?:( !)? -d (\S+))? ")

_PORT_OPTIONS = {"--dport": "d", "--destination-port": "d", "--sport": "s", "--source-port": "s"}
_MULTIPORT_OPTIONS = {"--dports": "d", "--destination-ports": "d", "--sports": "s", "--source-ports": "s",
                      "--ports": "b"}


def prefilter(p: PathState, text: str) -> bool | None:
    """Decide cheaply from the leading ``-s``/``-d`` of a saved rule, without tokenizing:
    False when they rule the path out, None when the rule must be read."""
    m = _PREFIX.match(text)
    if m is None:
        return None
    if m.group(2) is not None:
        r = in_net(p.src, m.group(2))
        if r is not None and r == bool(m.group(1)):
            return False
    if m.group(4) is not None:
        r = in_net(p.dst, m.group(4))
        if r is not None and r == bool(m.group(3)):
            return False
    return None


# "-A CHAIN -d A.B.C.D/32 " with A.B.C.D written as the kernel prints it (no leading zeros): no other
# text means that address, so a packet to any other destination is ruled out by prefilter
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HOST_DST = re.compile(rf"-A \S+ -d ({_OCTET}(?:\.{_OCTET}){{3}})/32 ")
INDEX_MIN = 64      # chains with fewer rules are read rule by rule


class DestinationIndex:
    """Which rules of a long chain :func:`prefilter` may let through for a destination: the
    rules that start ``-A CHAIN -d ADDR/32`` (a kube-proxy ``KUBE-SERVICES`` holds thousands)
    are kept by address; a packet to any other address skips them in bulk. Every other rule
    is always read."""

    __slots__ = ("size", "by_dst", "others")

    def __init__(self, lines: list):
        self.size = len(lines)
        self.by_dst: dict[str, list[int]] = {}
        self.others: list[int] = []
        match = _HOST_DST.match
        for pos, (_, text) in enumerate(lines):
            m = match(text)
            if m is None:
                self.others.append(pos)
            else:
                self.by_dst.setdefault(m.group(1), []).append(pos)

    def next_read(self, pos: int, dst: str) -> int:
        """The first position from ``pos`` whose rule prefilter may keep for destination ``dst``
        (``str`` of the address); ``size`` when there is none. Rules before it are ruled out."""
        nxt = self.size
        others = self.others
        i = bisect_left(others, pos)
        if i < len(others):
            nxt = others[i]
        same = self.by_dst.get(dst)
        if same is not None:
            j = bisect_left(same, pos)
            if j < len(same) and same[j] < nxt:
                nxt = same[j]
        return nxt


def destination_index(chain: Chain) -> DestinationIndex | None:
    """The chain's :class:`DestinationIndex` (built on first use, kept on the chain); None for a
    short chain."""
    lines = chain.lines
    if len(lines) < INDEX_MIN:
        return None
    index = chain.index
    if index is None or index.size != len(lines):
        index = chain.index = DestinationIndex(lines)
    return index


class Matcher:
    """Match rules for one packet (its protocol) on a node described by ``facts``.

    ``mangle_marks``: the mangle or raw table may have set the mark before nat sees it."""

    def __init__(self, facts: NodeFacts, mangle_marks: bool, proto: str):
        self.facts = facts
        self.mangle_marks = mangle_marks
        self.proto = proto

    def match_rule(self, rule: Rule, p: PathState, hook: str):
        """True, False, or (unknowns, randoms) when the outcome depends on them."""
        unknowns: list[Unknown] = []
        randoms: list[RandomBranch] = []
        if rule.problem:
            unknowns.append(Unknown(f"rule not fully understood ({rule.problem})"))
        for m in rule.matches:
            r = self.match(m, p, hook)
            if r is True:
                continue
            if r is False:
                return False
            if isinstance(r, RandomBranch):
                randoms.append(r)
            else:
                unknowns.append(r)
        if not unknowns and not randoms:
            return True
        return unknowns, randoms

    def match(self, m: Match, p: PathState, hook: str):
        mod = m.module
        if mod in ("-s", "-d"):
            addr = p.src if mod == "-s" else p.dst
            r = in_net(addr, m.value)
            if r is None:
                return Unknown(f"address {m.value!r} cannot be read")
            return r != m.negated
        if mod == "-p":
            want = proto_name(m.value)
            r = want == "all" or want == self.proto
            return r != m.negated
        if mod == "-o":
            return self._out_iface(p, m.value, m.negated)
        if mod == "-i":
            if hook in ("OUTPUT", "POSTROUTING"):
                return Unknown(f"-i in {hook}")
            if self.facts.in_interface is None:
                key = ("iface-in", m.value)
                if key in p.assume:
                    return p.assume[key] != m.negated
                return Unknown(f"the packet enters on an interface matching {m.value}" if not m.negated
                               else f"the packet does not enter on {m.value}",
                               ("iface-in", m.value), not m.negated)
            return iface_match(m.value, self.facts.in_interface) != m.negated
        if mod == "-f":
            return m.negated
        fn = getattr(self, "_m_" + mod.replace("-", "_"), None)
        if fn is None:
            return Unknown(f"match -m {mod} is not evaluated by masqctl")
        r = fn(m, p)
        if m.negated and isinstance(r, bool):   # "! -m mod" (rare)
            return not r
        return r

    def local(self, p: PathState, addr: IPAddress):
        """Whether ``addr`` is an address of this node: the facts, else what ``p`` assumed, else
        an :class:`Unknown`."""
        r = self.facts.is_local(addr)
        if r is not None:
            return r
        key = ("local", addr)
        if key in p.assume:
            return p.assume[key]
        return Unknown(f"{addr} is an address of this node", key, True)

    def _out_iface(self, p: PathState, pattern: str, negated: bool):
        name = p.egress
        if name is None:
            key = ("iface-out", pattern)
            if key in p.assume:
                return p.assume[key] != negated
            known = [k[1] for k, v in p.assume.items() if k[0] == "iface-out" and v and not k[1].endswith("+")]
            if known:
                return iface_match(pattern, known[0]) != negated
            desc = (f"the egress interface matches {pattern}" if not negated
                    else f"the egress interface does not match {pattern}")
            return Unknown(desc, key, not negated)
        return iface_match(pattern, name) != negated

    # -m modules ---------------------------------------------------------------------------
    def _m_comment(self, m, p):
        return True

    def _ports_match(self, m: Match, p: PathState, opts: dict) -> bool | Unknown:
        for neg, opt, vals in m.options:
            kind = opts.get(opt)
            if kind is None:
                if opt == "--syn":
                    r = self.proto == "tcp"
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
                    return Unknown(f"{m.module} option {opt} is not evaluated")
                if r == neg:
                    return False
                continue
            port = p.dport if kind == "d" else (p.sport if kind == "s" else None)
            if kind == "b":
                if p.dport is None and p.sport is None:
                    return Unknown(f"port {vals[0]} (the query has no ports)")
                try:
                    r = any(x is not None and in_ports(x, vals[0]) for x in (p.dport, p.sport))
                except ValueError:
                    return Unknown(f"port list {vals[0]!r} cannot be read")
                if r == neg:
                    return False
                continue
            key = ("port", kind, vals[0])     # the assumption: the port is in vals[0]
            if port is None and key in p.assume:
                if p.assume[key] != neg:
                    continue
                return False
            if port is None:
                return Unknown(f"destination port {'not ' if neg else ''}in {vals[0]} (give --dport/DST:PORT)"
                               if kind == "d" else f"source port {'not ' if neg else ''}in {vals[0]} (unknown)",
                               key, not neg)
            try:
                r = in_ports(port, vals[0])
            except ValueError:
                return Unknown(f"port list {vals[0]!r} cannot be read")
            if r == neg:
                return False
        return True

    def _m_tcp(self, m, p):
        return self.proto == "tcp" and self._ports_match(m, p, _PORT_OPTIONS)

    def _m_udp(self, m, p):
        return self.proto == "udp" and self._ports_match(m, p, _PORT_OPTIONS)

    def _m_sctp(self, m, p):
        return self.proto == "sctp" and self._ports_match(m, p, _PORT_OPTIONS)

    def _m_multiport(self, m, p):
        return self.proto in ("tcp", "udp", "sctp", "udplite", "dccp") and \
            self._ports_match(m, p, _MULTIPORT_OPTIONS)

    def _m_mark(self, m, p):
        for neg, opt, vals in m.options:
            if opt != "--mark":
                return Unknown(f"mark option {opt} is not evaluated")
            try:
                v, mask = mark_value(vals[0])
            except ValueError:
                return Unknown(f"mark {vals[0]!r} cannot be read")
            if mask & ~p.known & FULL_MASK:
                why = ("the packet mark may be set by the mangle table"
                       if self.mangle_marks else "the packet mark is unknown")
                return Unknown(f"mark {vals[0]} ({why})")
            r = (p.mark & mask) == v
            if r == neg:
                return False
        return True

    def _m_conntrack(self, m, p):
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
                        return Unknown(f"conntrack state {s}")
            elif opt == "--ctdir":
                r = vals[0].upper() == "ORIGINAL"
            elif opt in ("--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst"):
                addr = {"--ctorigsrc": p.src, "--ctorigdst": p.orig_dst, "--ctreplsrc": p.dst,
                        "--ctrepldst": p.src}[opt]
                r = in_net(addr, vals[0])
                if r is None:
                    return Unknown(f"conntrack address {vals[0]!r} cannot be read")
            elif opt == "--ctproto":
                r = proto_name(vals[0]) == self.proto
            elif opt in _CT_PORTS:
                port = {"--ctorigdstport": p.orig_dport, "--ctreplsrcport": p.dport,
                        "--ctorigsrcport": p.sport, "--ctrepldstport": p.sport}[opt]
                if port is None:
                    return Unknown(f"conntrack {opt} {vals[0]} (the query gives no such port)")
                try:
                    r = in_ports(port, vals[0])
                except ValueError:
                    return Unknown(f"port {vals[0]!r} cannot be read")
            else:
                return Unknown(f"conntrack option {opt} is not evaluated")
            if r == neg:
                return False
        return True

    def _m_statistic(self, m, p):
        mode = m.option("--mode")
        prob = m.option("--probability")
        if mode and mode[1][0] == "random" and prob:
            try:
                value = float(prob[1][0])
            except ValueError:
                return Unknown(f"probability {prob[1][0]!r}")
            if prob[0]:
                value = 1 - value
            return RandomBranch(value, f"statistic p={value:.4g}")
        return Unknown("statistic mode other than random (packet counters)")

    def _m_addrtype(self, m, p):
        limit_in = m.option("--limit-iface-in") is not None
        limit_out = m.option("--limit-iface-out") is not None
        dev = None
        if limit_out:
            dev = "lo" if p.out_iface == "<local>" else p.egress
        elif limit_in:
            dev = self.facts.in_interface
        for neg, opt, vals in m.options:
            if opt not in ("--src-type", "--dst-type"):
                if opt in ("--limit-iface-in", "--limit-iface-out"):
                    continue
                return Unknown(f"addrtype option {opt}")
            addr = p.src if opt == "--src-type" else p.dst
            types = set(vals[0].upper().split(","))
            r = self._addrtype(p, addr, types, neg, limit_in or limit_out, dev)
            if r is True:
                continue
            return r
        return True

    def _addrtype(self, p: PathState, addr: IPAddress, types: set, neg: bool, limited: bool, dev):
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
        local = self.local(p, addr)
        if isinstance(local, Unknown):
            if if_local == if_not_local:
                return if_local
            return Unknown(f"{addr} is {'' if if_local else 'not '}an address of this node "
                           "(addrtype LOCAL; give --local-address or --ip-addr)", local.key, if_local)
        if not local:
            return if_not_local
        if not limited:
            return if_local
        # LOCAL, but --limit-iface-*: local only on the device it is assigned to
        if_unicast = ("UNICAST" in types) != neg
        devs = {a.interface for a in self.facts.addresses if a.ip == addr}
        if addr.is_loopback:
            devs = {"lo"}
        if dev is not None and devs and None not in devs:
            return if_local if dev in devs else if_unicast
        key = ("local-on", addr, dev)
        if key in p.assume:
            return if_local if p.assume[key] else if_unicast
        if if_local == if_unicast:
            return if_local
        return Unknown(f"{addr} is {'' if if_local else 'not '}local on the "
                       f"{'egress' if dev is None else dev} device (addrtype --limit-iface; "
                       "give DEVICE with --local-address IP@DEVICE and --out-interface)", key, True)

    def _m_set(self, m, p):
        for neg, opt, vals in m.options:
            if opt != "--match-set":
                if opt in ("--return-nomatch", "--update-counters", "--no-update-counters",
                           "--update-subcounters", "--no-update-subcounters"):
                    continue
                return Unknown(f"set option {opt} is not evaluated")
            name, flags = vals[0], vals[1].split(",")
            sets = self.facts.ipsets
            if sets is None or name not in sets:
                why = "no ipset contents given (--ipset)" if sets is None else "not in the --ipset file"
                return Unknown(f"{'not ' if neg else ''}member of ipset {name} ({why})")
            r = set_member(sets, name, flags, p, self.proto)
            if r is None:
                return Unknown(f"membership in ipset {name} (type {sets[name].type} or a port is unknown)")
            if r == neg:
                return False
        return True

    def _m_physdev(self, m, p):
        bridged = self.facts.bridged
        if bridged is None:
            bridged = p.assume.get(("bridged",))     # what this path assumed earlier
        if bridged is None:
            flags_only = all(opt in _PHYSDEV_FLAGS for _, opt, _ in m.options)
            negs = {neg for neg, _, _ in m.options}
            if flags_only and len(negs) == 1:
                holds_if = not negs.pop()           # holds for a bridged frame, or for a routed one
                return Unknown("bridged frame (physdev; give --bridged or --not-bridged)" if holds_if else
                               "not a bridged frame (physdev; give --bridged or --not-bridged)", ("bridged",), holds_if)
            if not flags_only:
                return Unknown("physdev with bridge port names (and whether the frame is bridged) unknown")
        if not bridged:
            for neg, opt, vals in m.options:
                if not neg:
                    return False
            return True
        for neg, opt, vals in m.options:
            if opt not in _PHYSDEV_FLAGS:
                return Unknown(f"physdev {opt} {' '.join(vals)} (bridge port names unknown)")
            if neg:     # the option holds for a bridged frame
                return False
        return True


_PHYSDEV_FLAGS = ("--physdev-is-bridged", "--physdev-is-in", "--physdev-is-out")


# the reply's destination port is the original source port until SNAT changes it (POSTROUTING)
_CT_PORTS = ("--ctorigdstport", "--ctreplsrcport", "--ctorigsrcport", "--ctrepldstport")


def _fixed_type(addr: IPAddress) -> str | None:
    """The addrtype of an address whose type does not depend on the node, else None."""
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


def set_member(sets: dict[str, IpSet], name: str, flags: list, p: PathState, proto: str,
               depth: int = 0) -> bool | None:
    """Whether the path's packet is in ipset ``name`` (``flags``: src/dst per dimension);
    None when it cannot be told (an unsupported set type, a port the query does not give)."""
    s = sets[name]
    if not s.supported or depth > 8:
        return None
    if s.type == "list:set":
        any_unknown = False
        for (member,) in s.members:
            if member not in sets:
                any_unknown = True
                continue
            r = set_member(sets, member, flags, p, proto, depth + 1)
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
        for v, spec in zip(values, member):
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
