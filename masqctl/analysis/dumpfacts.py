"""Pure facts of one parsed ``iptables-save`` (a ``masqctl.netfilter.dump.Dump``), for inspect and explain.

Each function here reads one parsed dump and returns a value: what it shows of an agent chain
and nat POSTROUTING (``chain_of_dump``: a ``LiveView``), what keeps it from showing the whole nat
table (``nat_limit``) or from being a whole ``iptables-save`` (``dump_gap``), the rules that
decide besides the agent's chain (``shadowing_of_dump``, MQ006), the mode's node evidence
(``dump_signs``), and whether one packet's walk rests only on what the dump shows (``walk_gap``).

They sit below their readers: ``nodedumps`` (the parse cache), ``drift``, ``mode`` and
``findings.nodes`` import this module; it imports only the netfilter package.
"""

from __future__ import annotations

from dataclasses import dataclass

from masqctl.netfilter.chaindiff import jumps_to

AGENT_CHAIN = "IP-MASQ-AGENT"
SWIFT_CHAIN = "SWIFT-POSTROUTING"
CALICO_CHAIN = "cali-nat-outgoing"
CILIUM_CHAIN = "CILIUM_POST_nat"

# What limits a capture (said before what it shows), and how the rules it does not show were lost.
FRAGMENT = "from a fragment of iptables-save (grep output)"
CUT = "the capture ends before nat's COMMIT (cut short)"
_HIDDEN_FRAGMENT = "filtered out by the grep"
_HIDDEN_CUT = "after the cut"
_HIDDEN_LIST = "left out of the listing"
NAT_BUILTINS = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")


# --------------------------------------------------------------------------- what a capture shows


@dataclass(frozen=True)
class LiveView:
    """What one capture shows of an agent chain and of nat POSTROUTING, and whether it shows all.

    ``chain_lines``: the chain's rules shown, ``None`` when the chain is not shown at all.
    ``chain_whole``: every rule of the chain is shown (and, with ``chain_lines`` None, the chain
    is known to be absent). ``post_whole``: every POSTROUTING rule is shown. ``capture``: what
    limits the capture (``FRAGMENT``, ``CUT``, …), None for a whole nat table; ``hidden``: how
    the rules it does not show were lost. ``no_nat``: the capture shows nothing of nat, and why.
    """

    chain_lines: tuple[str, ...] | None
    postrouting: tuple[str, ...] = ()
    chain_whole: bool = True
    post_whole: bool = True
    capture: str | None = None
    hidden: str | None = None
    no_nat: str | None = None
    last_cut: bool = False          # the chain's last line, where the capture ends, was left out (maybe cut)

    @property
    def excerpt(self) -> bool:
        """The capture shows only part of the nat table (or none of it)."""
        return self.capture is not None or self.no_nat is not None


def no_nat_reason(dump) -> str | None:
    """Why a parsed dump shows nothing of the nat table; None when it has one."""
    nat = dump.table("nat")
    if nat is not None:
        if dump.list_format and "FORWARD" in nat.declared:
            # `iptables -S` names no table; FORWARD is a chain of filter/mangle, never of nat
            return ("the capture is `iptables -S` output of another table (it lists chain FORWARD, which nat does "
                    "not have): nothing is known about nat — capture `iptables-save -t nat`")
        return None
    if "nat" in dump.incompatible_tables:
        return ("iptables-save could not print the nat table (\"Table `nat' is incompatible, use 'nft' tool\"): "
                "its rules were written with nft directly — `nft list table ip nat` shows them")
    if dump.uncommitted:
        return (f"the capture ends before {dump.uncommitted}'s COMMIT (cut short), before any nat table: "
                "nothing is known about nat — capture the whole `iptables-save -t nat`")
    tables = sorted(dump.tables)
    held = (f"it holds only {tables[0]}, as `iptables-save -t {tables[0]}` prints" if len(tables) == 1
            else f"it holds only {', '.join(tables)}")
    return f"the capture has no nat table ({held}): nothing is known about nat — capture `iptables-save -t nat`"


def nat_limit(dump) -> str | None:
    """What keeps a parsed dump from showing the whole nat table (``no_nat_reason``, ``FRAGMENT``,
    ``CUT``, single chains of ``iptables -S``); None when it shows all of it."""
    reason = no_nat_reason(dump)
    if reason is not None:
        return reason
    return _partial(dump)[0]


def dump_gap(dump) -> str | None:
    """What keeps a parsed dump from being a whole ``iptables-save``: a grep excerpt or a dump cut
    short anywhere (a line such as iptables-nft's legacy warning may be what is missing)."""
    if dump.fragment:
        return FRAGMENT
    if dump.uncommitted:
        return f"the capture ends before {dump.uncommitted}'s COMMIT (cut short)"
    return None


def _partial(dump) -> tuple[str | None, str | None]:
    """(capture, hidden) of a dump that has a nat table: None, None when the table is whole."""
    nat = dump.table("nat")
    if dump.fragment:
        return FRAGMENT, _HIDDEN_FRAGMENT
    if nat.cut:
        return CUT, _HIDDEN_CUT
    if dump.list_format and not set(NAT_BUILTINS) <= set(nat.declared):
        listed = sorted(nat.declared)
        return (f"from `iptables -S` output of chain{'s' if len(listed) > 1 else ''} {', '.join(listed)} only",
                _HIDDEN_LIST)
    return None, None


def _texts(lines) -> tuple[str, ...]:
    return tuple(t for _, t in lines)


def chain_of_dump(dump, chain: str) -> LiveView:
    """What a parsed dump shows of ``chain`` and nat POSTROUTING (``LiveView``)."""
    reason = no_nat_reason(dump)
    if reason is not None:
        return LiveView(None, (), False, False, None, None, reason)
    nat = dump.table("nat")
    lines_of = nat.lines_of
    capture, hidden = _partial(dump)
    lines = lines_of.get(chain)
    declared = chain in nat.declared
    if capture is None:
        if lines is None and not declared:
            return LiveView(None, _texts(lines_of.get("POSTROUTING", [])))
        return LiveView(_texts(lines or []), _texts(lines_of.get("POSTROUTING", [])))
    if hidden == _HIDDEN_LIST:
        # `iptables -S CHAIN` lists the whole chain (-P/-N line, then every rule); others are not listed
        listed = nat.declared
        shown = _texts(lines) if lines else (() if chain in listed else None)
        return LiveView(shown, _texts(lines_of.get("POSTROUTING", [])), chain in listed,
                        "POSTROUTING" in listed, capture, hidden)
    if hidden == _HIDDEN_FRAGMENT:
        shown = _texts(lines) if lines else (() if declared else None)
        return LiveView(shown, _texts(lines_of.get("POSTROUTING", [])), False, False, capture, hidden)
    return _cut_view(nat, chain, capture, hidden)


def _cut_view(nat, chain: str, capture: str, hidden: str) -> LiveView:
    """A nat table whose dump ends before its COMMIT: what it shows whole is the table's own
    record of the cut (``Table.mark_cut``: the rules of one chain are printed together, the
    last rule line may be cut mid-way), the one the evaluator stops at too."""
    last_chain = nat.cut_line[1] if nat.cut_line else None

    def shown(name: str) -> tuple[str, ...]:
        return _texts(nat.shown(name))

    post = shown("POSTROUTING")
    post_whole = nat.whole("POSTROUTING")
    lines = nat.lines_of.get(chain)
    if chain in nat.declared:
        return LiveView(shown(chain), post, nat.whole(chain), post_whole, capture, hidden,
                        last_cut=chain == last_chain)
    if lines:
        return LiveView(shown(chain) or None, post, nat.whole(chain), post_whole, capture, hidden,
                        last_cut=chain == last_chain)
    # neither declared nor with rules: absent once a rule line shows the declarations are over
    absent = last_chain is not None and not chain.startswith(last_chain)
    return LiveView(None, post, absent, post_whole, capture, hidden)


# --------------------------------------------------------------------------- what a walk relied on


def _last_rule_line(nat) -> int | None:
    """The line number of the nat table's last rule line (where a dump cut short ends)."""
    last = None
    for lst in nat.lines_of.values():
        if lst and (last is None or lst[-1][0] > last):
            last = lst[-1][0]
    return last


def _action(step) -> str:
    return step.action.split(" → ")[-1]


def _chains_fallen_off(trace) -> list[str]:
    """The nat chains whose end a walk (``trace``: its Steps, in order) reached: the ones where
    "no rule decided" was read from the absence of further rules. A RETURN is a rule, not an end."""
    fell: list[str] = []
    hook = cur = None
    stack: list[str] = []
    returned = False
    for s in trace:
        if s.hook.startswith("raw "):
            continue
        if s.hook != hook:                       # a new hook: a new walk from its built-in chain
            hook, cur, stack, returned = s.hook, s.hook, [], False
        if s.index is None:                      # the built-in chain's policy
            if not returned:
                while True:
                    fell.append(cur)
                    if not stack:
                        break
                    cur = stack.pop()
            cur, stack = hook, []
            continue
        while s.chain != cur and stack:
            fell.append(cur)
            cur = stack.pop()
        if s.chain != cur:                       # left a chain entered by goto from the built-in one
            fell.append(cur)
            cur = s.chain
        returned = False
        act = _action(s)
        if s.result == "no-match" or act.startswith("assumed no match") or act.startswith("random branch not"):
            continue
        if act.startswith("jump "):
            stack.append(cur)
            cur = act.split()[1]
        elif act.startswith("goto "):
            cur = act.split()[1]
        elif act == "RETURN":
            if stack:
                cur = stack.pop()
            else:
                returned = True
    return list(dict.fromkeys(fell))


def walk_gap(dump, trace) -> str | None:
    """Why the verdict of a walk over ``dump`` (``trace``: its Steps) cannot be relied on, or None.

    A dump that shows only part of the nat table (``nat_limit``: cut short, a grep fragment, single
    chains of ``iptables -S``) still decides a packet where the walk ends at a rule it shows whole:
    the rules before it are there. It cannot decide where the walk reached the end of a chain whose
    end it does not show (the rules after the cut may decide), nor where the walk read the line at
    which a cut dump ends (that line may itself be cut). This is the completeness inspect reports
    for the capture (``chain_of_dump``), applied to one packet's path."""
    limit = nat_limit(dump)
    if limit is None:
        return None
    nat = dump.table("nat")
    if nat is None or no_nat_reason(dump) is not None:
        return limit                         # nothing of nat is known: no walk over it decides
    for chain in _chains_fallen_off(trace):
        if not chain_of_dump(dump, chain).chain_whole:
            how = "after the cut" if dump.uncommitted == "nat" else "not shown"
            return (f"{limit}: no rule of chain {chain} shown decides the packet, and the rest of {chain} "
                    f"({how}) is not known")
    if dump.uncommitted == "nat":
        last = _last_rule_line(nat)
        cut = next((s for s in trace if not s.hook.startswith("raw ") and s.lineno is not None
                    and s.lineno == last), None)
        if cut is not None:
            return (f"{limit}: the walk reads {cut.chain} rule {cut.index}, the line where the capture ends, "
                    "which may itself be cut")
    return None



@dataclass(frozen=True)
class DumpSigns:
    """What one node's ``iptables-save`` shows about the masquerading engine (its nat table)."""

    chains: frozenset = frozenset()
    agent_jump: bool = False
    swift_rules: bool = False
    calico_masq: bool = False
    cilium_post_nat: bool | None = None
    no_nat: str | None = None        # the dump shows nothing of nat (``no_nat_reason``)
    post_whole: bool = True          # every POSTROUTING rule is shown: a jump not shown is not there
    limit: str | None = None         # what limits the dump (``FRAGMENT``, ``CUT``, …)


def dump_signs(dump) -> DumpSigns:
    """``DumpSigns`` of a parsed dump (``masqctl.netfilter.dump.Dump``). Only what the dump shows
    counts: a dump without a nat table shows nothing (``no_nat``), and a grep excerpt or a dump cut
    short shows some rules without proving the others absent (``post_whole``, ``limit``)."""
    view = chain_of_dump(dump, AGENT_CHAIN)
    if view.no_nat is not None:
        return DumpSigns(no_nat=view.no_nat, post_whole=False)
    nat = dump.table("nat")
    limit = nat_limit(dump)
    cilium = None
    if CILIUM_CHAIN in nat:
        cilium = True if nat.lines_of.get(CILIUM_CHAIN) else (False if limit is None else None)
    return DumpSigns(
        chains=frozenset(name for name in nat.names() if name in nat.declared or nat.lines_of.get(name)),
        agent_jump=any(_target(t) == AGENT_CHAIN for t in view.postrouting),
        swift_rules=bool(nat.lines_of.get(SWIFT_CHAIN)),
        calico_masq=any(_target(t) == "MASQUERADE" for _, t in nat.lines_of.get(CALICO_CHAIN, [])),
        cilium_post_nat=cilium, post_whole=view.post_whole, limit=limit)



def _target(text: str) -> str | None:
    parts = text.split()
    for i, p in enumerate(parts[:-1]):
        if p in ("-j", "-g", "--jump", "--goto"):
            return parts[i + 1]
    return None



# Addresses whose SNAT is specific on AKS (pod-subnet mode's CNS rules): never "shadowing".
AZURE_FIXED = ("168.63.129.16/32", "169.254.169.254/32")


def _gated(rule) -> bool:
    """Rules that act only on marked or hairpin packets (kube-proxy style) or on Azure's fixed addresses."""
    for m in rule.matches:
        if m.module in ("mark", "connmark"):
            return True
        if m.module == "-d" and not m.negated and m.value in AZURE_FIXED:
            return True
    return False


def _negated_mark_return(rule) -> bool:
    return rule.target == "RETURN" and any(
        m.module in ("mark", "connmark") and any(neg for neg, _, _ in m.options) for m in rule.matches)


def _chain_masquerades(nat, name: str, depth: int = 0, seen=None) -> str | None:
    """A rule of chain ``name`` (or a chain it jumps to) that masquerades ungated traffic."""
    seen = seen or set()
    if depth > 6 or name in seen or name.startswith("KUBE-"):
        # kube-proxy's chains masquerade only packets it marked (or hairpin traffic): not pod egress
        return None
    seen.add(name)
    chain = nat.chain(name)
    if chain is None:
        return None
    for rule in chain.rules:
        if _negated_mark_return(rule):
            return None          # only marked packets go on
        if _gated(rule):
            continue
        if rule.target in ("MASQUERADE", "SNAT"):
            return rule.text
        if rule.target and rule.target not in ("RETURN", "ACCEPT", "DROP", "MARK", "LOG", "DNAT", "REDIRECT",
                                               "CONNMARK", "NOTRACK", "CT") and rule.target in nat:
            inner = _chain_masquerades(nat, rule.target, depth + 1, seen)
            if inner:
                return inner
    return None



def shadowing_of_dump(dump, chain: str) -> tuple[list[str], str | None]:
    """``shadowing`` of a parsed dump."""
    limit = nat_limit(dump)
    nat = dump.table("nat")
    if nat is None or "POSTROUTING" not in nat or (dump.list_format and "FORWARD" in nat.declared):
        return [], limit
    post = nat.chain("POSTROUTING")
    lines = [t for _, t in post.lines]
    jumps = set(jumps_to(lines, chain))
    at = next((i for i, t in enumerate(lines) if t in jumps), None)
    if at is None:
        return [], limit          # no jump: MQ005
    out = []
    for i, rule in enumerate(post.rules):
        if i == at or rule.text in jumps or _gated(rule):
            continue
        before = i < at
        if rule.target in ("MASQUERADE", "SNAT"):
            what = (f"before the agent's jump, `{rule.text}` masquerades the packets it matches" if before else
                    f"after the agent's jump, `{rule.text}` masquerades packets the agent's chain exempted")
        elif before and rule.target in ("ACCEPT", "RETURN"):
            what = f"before the agent's jump, `{rule.text}` ends nat POSTROUTING for the packets it matches"
        elif rule.target and rule.target in nat and rule.target != chain:
            inner = _chain_masquerades(nat, rule.target)
            if not inner:
                continue
            what = (f"{'before' if before else 'after'} the agent's jump, `{rule.text}` leads to "
                    f"`{inner}` (a second masquerade chain)")
        else:
            continue
        out.append(what)
    return out, limit
