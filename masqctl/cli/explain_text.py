"""`masqctl explain`'s answer for a person.

It says each thing once, the answer first: the verdict sentence, the deciding rule with where it
comes from, the source the destination sees, what the destination is, whether the
reply comes back, what was evaluated, the path through the chains, and the notes. Each section is
one function ``(out, result, verbose)`` that prints nothing when it has nothing to say; a new
section (another path renderer, another dataplane's trace) is one more function placed in
OFFLINE_SECTIONS or CLUSTER_SECTIONS. ``result`` is an ``analysis.explain.Explanation`` offline
and an ``analysis.explain_cluster.ClusterExplanation`` on a cluster (``_base`` gives the former).

It is written with ``masqctl.cli.textout`` (styled words, wrapped fields, trees), not rich: no
markup, so nothing in the rules or notes is read as anything but text.
"""

from __future__ import annotations

from masqctl.cli.textout import Node, Writer


LABEL = 12        # width of the label column of the fields
COLLAPSE = 4      # runs of non-matching rules longer than this are folded in the tree (unless -v)


class Out:
    """Where the sections print: fields (a label and text wrapped at words under it), free lines,
    trees, and one blank line between sections that printed something."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self._printed = False
        self._gap = False

    def section(self) -> None:
        """The next print starts a new section (one blank line before it, none at the top)."""
        self._gap = self._printed

    def _start(self) -> None:
        if self._gap:
            self.writer.blank()
            self._gap = False
        self._printed = True

    def line(self, line) -> None:
        """A line of pieces (``str`` or ``(text, style)``), wrapped at words."""
        self._start()
        self.writer.line(line)

    def tree(self, root: Node) -> None:
        self._start()
        self.writer.tree(root)

    def field(self, label: str, text: str, *, style: str | None = None) -> None:
        """``label`` then ``text`` (plain text), wrapped at words with continuation lines under the
        text; a word longer than the line (a long rule comment) is folded, never cut."""
        self._start()
        self.writer.field(label, text, style or "", LABEL)


def _base(result):
    """The evaluator's explanation (offline it is the result itself)."""
    return getattr(result, "base", result)


def _cluster(result) -> bool:
    return hasattr(result, "base")


def _sentence(result) -> str:
    """The evaluator's sentence: the verdict, the source seen and the deciding rule. (On a
    cluster ``summary`` adds the destination and the reply, which have their own sections.)"""
    from masqctl.analysis.explain import summarize

    if not _cluster(result):
        return result.summary
    # the dataplane's sentence where it is not the iptables walk's (Cilium's BPF decision, CNS)
    return result.verdict if getattr(result, "verdict", None) else summarize(result.base)


def section_verdict(out: Out, result, verbose: int) -> None:
    """The answer in one sentence (on a cluster without a capture, labelled WHAT-IF). The fields
    after it say only what it does not."""
    base = _base(result)
    sentence = _sentence(result)
    style = {True: "bold red", False: "bold green", None: "bold yellow"}[base.evaluation.masqueraded]
    if _cluster(result) and getattr(result, "change", None):
        sentence = f"WITH THE CHANGE ({result.change['request']}): " + sentence
    if _cluster(result) and result.what_if:
        sentence = "WHAT-IF (no capture of the node): " + sentence
    out.section()
    out.line([(sentence, style)])


def section_rule(out: Out, result, verbose: int) -> None:
    """The deciding rule as written, and where it comes from (the ConfigMap, key and line of its
    CIDR; another program's chain; drift)."""
    base = _base(result)
    ev = base.evaluation
    step = ev.primary.deciding if ev.agreed else None
    out.section()
    if step is not None and step.index is not None:      # the sentence names it; here it is as written
        out.field("rule", (f"line {step.lineno}: " if step.lineno else "") + step.text)
    provenance = _provenance_text(result, step)
    if provenance:
        out.field("from", provenance)


def _provenance_text(result, step) -> str | None:
    """What the verdict sentence does not already say about where the deciding rule comes from."""
    if _cluster(result):
        prov = result.provenance
        if prov is None or prov["kind"] in ("masquerade", "policy"):   # the sentence says it
            return None if prov is None or "unknown" not in prov["text"] else prov["text"]
        return prov["text"]
    if step is None:
        return None
    prov = _base(result).provenance.get((step.chain, step.index))
    if prov is None or not (prov.cidr or prov.kind == "link-local"):
        return None
    return f"CIDR {prov.cidr} comes from {prov.describe()}" if prov.cidr else prov.describe()


def section_seen(out: Out, result, verbose: int) -> None:
    """The source address the destination sees (and the destination after DNAT, when it changed)."""
    ev = _base(result).evaluation
    if not ev.agreed:
        return
    o = ev.primary
    said = _sentence(result)
    out.section()
    if o.dnat is not None and not _says(said, f"DNAT to {o.destination}"):
        out.field("DNAT", f"{ev.packet.dst} → {o.destination}" + (f":{o.dport}" if o.dport is not None else "")
                  + f" by {o.dnat.chain} rule {o.dnat.index}")
    if o.source_ip_seen is not None and not _says(said, o.source_ip_seen):
        whose = {"masquerade": "the address MASQUERADE picks on the egress interface", "snat": "SNAT's address"}.get(
            o.kind, "the source itself, not translated")
        if o.kind in ("masquerade", "snat") and o.source_ip_seen == str(ev.packet.src):
            whose = "the source already is that address"
        out.field("seen as", f"{o.source_ip_seen} ({whose})")


def _says(sentence: str, words: str) -> bool:
    """``words`` stand in ``sentence`` as words (``10.0.0.1`` is not in ``10.0.0.10``)."""
    import re

    return re.search(r"(?<![\w.:])" + re.escape(words) + r"(?![\w:]|\.\w)", sentence) is not None


def section_destination(out: Out, result, verbose: int) -> None:
    """What the destination is on the network (VNet, peering and its state, service CIDR, pod, …)."""
    places = result.destination_places
    if not places:
        return
    out.section()
    for n, p in enumerate(places):
        out.field("destination" if n == 0 else "", f"{result.destination}: {p.label}" if n == 0 else p.label)
        for note in p.notes:
            out.field("", note, style="dim")


def section_reply(out: Out, result, verbose: int) -> None:
    """Whether the reply can come back to the source the destination sees."""
    if result.reply is None:
        return
    ok, why = result.reply
    word = {True: "comes back", False: "will not come back", None: "unknown"}[ok]
    style = {True: "green", False: "bold red", None: "yellow"}[ok]
    out.field("reply", f"{word}: {why}", style=style)


def section_context(out: Out, result, verbose: int) -> None:
    """What was evaluated: the node, where its rules come from, the network mode, the source."""
    out.section()
    out.field("node", result.node)
    out.field("rules", _what_if_note(result) or result.rules_from,
              style="bold yellow" if result.what_if else None)
    mode = result.mode.describe()
    if verbose and result.mode.evidence:
        mode += " (evidence: " + "; ".join(result.mode.evidence) + ")"
    out.field("mode", mode)
    src = result.source
    if src.pod is not None or src.kind == "host" or src.how:
        out.field("source", src.how)


def _what_if_note(result) -> str | None:
    if not getattr(result, "what_if", False):
        return None
    return next((n for n in result.notes if n.startswith("WHAT-IF: ")), None)


def section_path(out: Out, result, verbose: int) -> None:
    """The walk through the chains, one tree per path (several when facts are unknown or
    kube-proxy picks an endpoint at random)."""
    base = _base(result)
    ev = base.evaluation
    outcomes = ev.outcomes
    out.section()
    shown = outcomes if verbose or len(outcomes) <= 8 else outcomes[:8]
    for n, o in enumerate(shown, start=1):
        flow = f"{ev.packet.src} → {o.destination}"
        if len(outcomes) > 1:
            prob = "" if o.probability is None or o.probability != o.probability else f" p={o.probability:.3g}"
            label: list = [f"branch {n}/{len(outcomes)}{prob}: {flow}"]
            if o.conditions:
                label.append((" (" + "; ".join(o.conditions) + ")", "dim"))
        else:
            label = [(f"path {flow}", "bold")]
        tree = Node(label)
        _fill(tree, o, base, verbose, end=len(outcomes) > 1 or o.kind == "unknown")
        out.tree(tree)
    if len(outcomes) > len(shown):
        out.line([(f"… {len(outcomes) - len(shown)} more branches (-v shows all; -o json lists them)", "dim")])


def section_notes(out: Out, result, verbose: int) -> None:
    """Every note once, without those another section already says."""
    said = set()
    if _cluster(result):
        said.add(_what_if_note(result))
        src = result.source
        said.update(n for n in result.notes if n.startswith("SRC ") and src.how and n.endswith(src.how))
    notes = [n for n in dict.fromkeys(_base(result).notes) if n not in said]
    if not notes:
        return
    out.section()
    for n in notes:
        out.field("note", n, style="dim")


OFFLINE_SECTIONS = [section_verdict, section_rule, section_seen, section_path, section_notes]
CLUSTER_SECTIONS = [section_verdict, section_rule, section_seen, section_destination, section_reply,
                    section_context, section_path, section_notes]


def render_cluster(result, verbose: int = 0, stream=None) -> None:
    out = Out(Writer(stream))
    for section in CLUSTER_SECTIONS:
        section(out, result, verbose)


def render_human(result, verbose: int = 0, stream=None) -> None:
    out = Out(Writer(stream))
    for section in OFFLINE_SECTIONS:
        section(out, result, verbose)


def _fill(tree: Node, o, result, verbose: int, end: bool = True) -> None:
    deciding = o.deciding
    hooks: dict = {}
    stack: list = []
    pending: list = []

    def flush() -> None:
        if not pending:
            return
        node = pending[0][0]
        steps = [s for _, s in pending]
        if verbose or len(steps) <= COLLAPSE:
            for s in steps:
                node.add([(f"{s.index:>4} ✗ {s.text}", "dim")])
        else:
            node.add([(f"… rules {steps[0].index}–{steps[-1].index} did not match ({len(steps)} rules)", "dim")])
        pending.clear()

    for s in o.trace:
        if s.hook not in hooks:
            flush()
            if _postrouting(s.hook) and hooks and not any(_postrouting(h) for h in hooks):
                tree.add([("routing", "cyan"), f": {o.destination} leaves via {o.egress or 'an unknown interface'}"])
            plain = s.hook.startswith(('raw ', 'nat#', 'iptables ')) or ": table " in s.hook
            hooks[s.hook] = tree.add([(f"{'' if plain else 'nat '}{s.hook}", "bold cyan")])
            stack = [(s.hook, hooks[s.hook])]
        while len(stack) > 1 and stack[-1][0] != s.chain:
            if any(c == s.chain for c, _ in stack):
                flush()
                stack.pop()
            else:
                break
        node = stack[-1][1]
        if s.result == "no-match":
            if pending and pending[0][0] is not node:
                flush()
            pending.append((node, s))
            continue
        flush()
        mark = {"match": "✓", "unknown": "?"}.get(s.result, "✗")
        index = f"{s.index:>4}" if s.index is not None else "   -"
        if s is deciding:
            text = [(f"{index} {mark} {s.text}", "bold reverse"), "  ", (f"→ {s.action}", "bold")]
        elif s.result == "unknown":
            text = [(f"{index} {mark} {s.text}  ", "yellow"), (f"→ {s.action}", "yellow italic")]
        else:
            text = [f"{index} {mark} {s.text}  ", (f"→ {s.action}", "italic")]
        child = node.add(text)
        act = s.action.split("→ ")[-1]
        if act.startswith(("jump ", "goto ")):
            target = act.split(" ", 1)[1]
            if act.startswith("goto "):
                stack.pop() if len(stack) > 1 else None
            stack.append((target, child))
    flush()
    if o.kind == "local":
        tree.add([("routing", "cyan"), f": {o.destination} is an address of this node → local delivery "
                  "(no nat POSTROUTING)"])
    verdict = {"masquerade": f"MASQUERADE → source {o.source_ip_seen or '?'}",
               "snat": f"SNAT → source {o.source_ip_seen or 'one of ' + o.reason.removeprefix('SNAT to ')}",
               "accept": f"no SNAT → source {o.source_ip_seen}",
               "local": f"delivered locally → source {o.source_ip_seen}", "dropped": "dropped",
               "untracked": f"untracked, nat skipped → source {o.source_ip_seen}",
               "unknown": f"unknown: {o.reason}"}[o.kind]
    if end:      # a single path's end is the verdict, said above
        tree.add([(verdict, "bold")])


def _postrouting(hook: str) -> bool:
    """The hook is nat POSTROUTING (of the iptables walk or of an nftables chain)."""
    return hook == "POSTROUTING" or hook.startswith(("postrouting: ", "iptables nat POSTROUTING"))
