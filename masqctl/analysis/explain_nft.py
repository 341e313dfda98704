"""The nftables part of ``explain``: read the ruleset a request names, and the notes every answer
over an nftables ruleset carries (what was walked, in which order, and what is not known)."""

from __future__ import annotations

from masqctl.errors import InputError
from masqctl.netfilter.dump import Dump
from masqctl.netfilter.nftread import NftError, Ruleset, parse_ruleset
from masqctl.netfilter.walk import Evaluation
from masqctl.textinput import read_text

_HINT = "give the output of `nft -j list ruleset` (or `nft list ruleset`)"


def load_ruleset(req) -> Ruleset:
    """The ruleset of ``req.nft`` (a path, ``-`` with ``req.nft_text``, or a bundle's text)."""
    if req.nft_text is not None:
        text = req.nft_text
        label = req.nft_label or ("stdin" if req.nft == "-" else req.nft)
    else:
        text = read_text(req.nft, what="nft ruleset", binary_hint="give the text output of `nft -j list ruleset`")
        label = "stdin" if req.nft == "-" else req.nft
    return read_ruleset(text, label)


def read_ruleset(text: str, label: str) -> Ruleset:
    try:
        return parse_ruleset(text, label)
    except NftError as exc:
        raise ruleset_error(exc, label) from None


def ruleset_error(exc: NftError, label: str) -> InputError:
    """The user-facing error for a ruleset that cannot be read: the file and the JSON path or line."""
    where = f"{exc.where}: " if exc.where else ""
    code = {"json": "E341", "structure": "E342", "syntax": "E343", "empty": "E344"}.get(exc.kind, "E342")
    text = f": {exc.text.strip()[:120]!r}" if exc.text else ""
    return InputError(f"{where}{exc.message}{text}", input=label, code=code, hint=_HINT)


def ruleset_notes(rs: Ruleset, dump: Dump, ev: Evaluation) -> list[str]:
    notes = []
    fam = ("ip", "inet") if ev.packet.dst.version == 4 else ("ip6", "inet")
    chains = [c for c in rs.nat_chains() if c.family in fam and c.hook in ("prerouting", "output", "postrouting")]
    first = "output" if ev.packet.from_host else "prerouting"
    with_dump = bool(dump.tables_named("nat"))
    xt = [t for t in rs.tables if t.family in fam[:1] and t.name == "nat" and
          any(c.name in ("PREROUTING", "POSTROUTING", "OUTPUT") for c in t.chains.values())]
    listed = []
    for hook in (first, "postrouting"):
        at = sorted((c for c in chains if c.hook == hook and not (with_dump and xt and c.table == "nat")),
                    key=lambda c: (c.prio, -c.seq))
        names = [f"{c.family} {c.table} {c.name} ({c.prio})" for c in at]
        if with_dump:
            names.append(f"iptables nat {hook.upper()} ({-100 if hook != 'postrouting' else 100})")
        listed.append(f"{hook}: " + (", ".join(names) if names else "none"))
    notes.append(f"nftables ruleset ({rs.form}{', nft ' + rs.version if rs.version else ''}, "
                 f"{len(rs.tables)} table(s)): nat chains walked in priority order — " + "; ".join(listed))
    if xt and not with_dump:
        notes.append("the ruleset holds iptables-nft's `ip nat` table: `nft -j` shows its iptables extensions "
                     "(xt) without their arguments, so rules using them are unknown — give the node's "
                     "iptables-save with --iptables to evaluate those chains from it")
    if xt and with_dump:
        notes.append("iptables-nft's `ip nat` table of the ruleset was evaluated from the iptables-save given "
                     "(same rules, with their arguments)")
    ties = [o for o in ev.outcomes for c in o.conditions if "runs before" in c]
    if ties:
        same = "every order gives the same answer" if ev.agreed else "the answer depends on the order (see branches)"
        notes.append("nat chains of equal priority in different tables: the kernel runs the one registered later "
                     "first, which no listing proves — every order was walked: " + same)
    if not chains:
        notes.append(f"the ruleset has no nat chain for IPv{ev.packet.dst.version} at prerouting/output/postrouting")
    return notes
