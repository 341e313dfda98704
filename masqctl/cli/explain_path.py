"""The path of ``masqctl explain`` across clusters as text: one line per hop, the source changing along it."""

from __future__ import annotations

_STAGE = {"egress": "egress", "network": "network", "ingress": "ingress", "endpoint": "endpoint"}


def _masq(hop) -> str:
    if hop.stage in ("network", "endpoint"):
        return ""
    return {True: "[bold red]masqueraded[/]", False: "[green]kept[/]", None: "[yellow]undecided[/]"}[hop.masqueraded]


def _rule(hop) -> str:
    d = hop.deciding_rule
    if not d:
        return ""
    where = f"{d['chain']} rule {d['index']}" if d.get("index") is not None else f"the {d['chain']} policy"
    return f" by {where}"


def path_lines(result) -> list[str]:
    """Rich-markup lines: a head, one line per hop, and what the destination sees."""
    from rich.markup import escape

    lines = [f"[bold]path[/] {escape(result.egress.source.ip)} → {escape(result.target.dst)}"
             + (f" [dim]({escape(result.target.how)})[/]" if result.target.how else "")]
    for hop in result.path:
        where = escape(hop.cluster or "") + (f"/{escape(hop.node)}" if hop.node else "")
        src = hop.src or "?"
        if hop.stage == "egress" or hop.stage == "ingress":
            after = _after(result, hop)
            change = f"{escape(src)} → {escape(after or '?')}" if after != src else escape(src)
        elif hop.stage == "endpoint":
            change = f"sees {escape(src)}"
        else:
            change = escape(src)
        text = f"  {_STAGE[hop.stage]:<9}{where}  {change}  {_masq(hop)}{escape(_rule(hop))}"
        if hop.stage == "endpoint":
            text += f"  [dim]{escape(hop.dst)}[/]"
        lines.append(text.rstrip())
        note = hop.notes[0] if hop.notes and hop.stage in ("network",) else None
        if note:
            lines.append(f"           [dim]{escape(note)}[/]")
    seen = result.seen
    who = f" at {escape(seen.endpoint)}" if seen.endpoint else ""
    head = f"[bold]seen by the destination{who}[/]: "
    if seen.ip is not None:
        lines.append(head + f"[bold]{escape(seen.ip)}[/]")
    else:
        # one entry per (address, node): several endpoints behind one node are seen alike
        options = ", ".join(list(dict.fromkeys(f"{c['ip'] or '?'} (via {c['node']})" for c in seen.candidates))[:8])
        lines.append(head + "[bold yellow]not one address[/]" + (f": {escape(options)}" if options else ""))
    if any(h.stage == "ingress" for h in result.path) or seen.ip is None:
        lines.append(f"  [dim]{escape(seen.why)}[/]")   # else the summary above said it
    return lines


def _after(result, hop) -> str | None:
    """The source after ``hop``: the egress hop's is the next hop's src; an ingress hop's its endpoint's."""
    i = result.path.index(hop)
    for nxt in result.path[i + 1:]:
        if hop.stage == "egress":
            return nxt.src
        if nxt.stage == "endpoint":
            return nxt.src
        if nxt.stage == "ingress":
            break
    if hop.stage == "ingress":
        ing = next((h for h in result.ingress if h.node == hop.node), None)
        return ing.seen_ip if ing is not None else None
    return result.seen.ip


def render_path(result) -> None:
    """The lines wrap at words; a hop's wrapped text stays right of its stage column."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from masqctl.cli.output import console as make_console

    console = make_console()
    console.print()
    stages = set(_STAGE.values())
    for line in path_lines(result):
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        stage, _, rest = body.partition(" ")
        if indent == 2 and stage in stages:
            grid = Table.grid()
            grid.add_column(width=11, no_wrap=True)
            grid.add_column()
            grid.add_row(Text("  " + stage), Text.from_markup(rest.lstrip(" ")))
            console.print(grid)
        elif indent:
            console.print(Padding(Text.from_markup(body), (0, 0, 0, indent), expand=False))
        else:
            console.print(Text.from_markup(body))
