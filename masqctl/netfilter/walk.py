"""The data of a walk through the nat table.

* :class:`Packet`: what is asked about; :class:`Step`: one rule the walk looked at;
  :class:`Outcome`: where one path ended; :class:`Evaluation`: all paths of one packet.
* :class:`PathState`: one path while it is walked (position, call stack, the packet as rewritten
  so far, what it assumed); copied when the walk forks.
* :class:`Unknown` and :class:`RandomBranch`: what a match answers when it cannot say yes or no.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masqctl.netfilter.facts import IPAddress


@dataclass(frozen=True)
class Packet:
    """The first packet of a new connection as it leaves the pod (or the host)."""

    src: IPAddress
    dst: IPAddress
    proto: str = "tcp"
    dport: int | None = None
    sport: int | None = None
    from_host: bool = False


@dataclass(slots=True)
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

    kind: str                       # masquerade | snat | accept | local | untracked | dropped | unknown
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


class Unknown:
    """A match that depends on a fact nobody gave."""

    __slots__ = ("why", "key", "if_true")

    def __init__(self, why: str, key=None, if_true: bool = True):
        self.why = why
        self.key = key          # assumption key this unknown depends on (None: not memorised)
        self.if_true = if_true  # the value of that key under which the match holds


class RandomBranch:
    """A ``statistic --mode random`` match: it holds with probability ``p``."""

    __slots__ = ("p", "why")

    def __init__(self, p: float, why: str):
        self.p = p
        self.why = why


class PathState:
    """One path of the walk: where it is, the packet as rewritten so far, what it assumed.

    ``out_iface`` is an interface name, None (not routed yet, or no route known), ``"<local>"``
    (delivered to this node) or ``"<unknown>"`` (the path stopped before routing: see
    ``last_return``). ``stack`` holds (chain, position, frame) return points; ``frame`` the
    chains entered since the last ``-j`` (the jumped-to chain, then every ``-g`` target), so a
    jump or goto to a chain already on the way is a loop. ``known`` is the set of mark bits whose value is known. ``order`` sorts
    the outcomes (the "match" side of each fork first)."""

    __slots__ = ("chain", "pos", "stack", "frame", "src", "dst", "dport", "sport", "orig_dst", "orig_dport",
                 "mark", "known", "trace", "conditions", "prob", "assume", "order", "dnat", "marks",
                 "out_iface", "masq_src", "last_return", "random", "assumed", "steps", "untracked")

    @classmethod
    def start(cls, packet: Packet, known_mark_bits: int) -> "PathState":
        p = cls.__new__(cls)
        p.chain, p.pos, p.stack, p.frame = "", 0, [], ()
        p.src, p.dst, p.dport, p.sport = packet.src, packet.dst, packet.dport, packet.sport
        p.orig_dst, p.orig_dport = packet.dst, packet.dport
        p.mark, p.known = 0, known_mark_bits
        p.trace, p.conditions, p.prob, p.assume, p.order = [], [], 1.0, {}, []
        p.dnat, p.marks, p.out_iface, p.masq_src, p.last_return = None, [], None, None, None
        p.random = p.assumed = False
        p.steps = 0
        p.untracked = None      # the raw rule that untracked the packet (nat is skipped)
        return p

    def copy(self) -> "PathState":
        p = PathState.__new__(PathState)
        for name in PathState.__slots__:
            setattr(p, name, getattr(self, name))
        p.stack = list(self.stack)
        p.trace = list(self.trace)
        p.conditions = list(self.conditions)
        p.assume = dict(self.assume)
        p.order = list(self.order)
        p.marks = list(self.marks)
        return p

    @property
    def egress(self) -> str | None:
        """The egress interface's name, when the path has one."""
        return self.out_iface if self.out_iface not in (None, "<local>", "<unknown>") else None
