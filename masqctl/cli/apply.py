"""`masqctl apply`: recommend and write the user ConfigMap safely, and verify it on the nodes."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from masqctl.cli import gathering as g
from masqctl.cli.output import Output, OutputOpt, Verbose, emit, console as make_console
from masqctl.errors import ApplyError, UsageError
from masqctl.textinput import Codes, read_bytes

PANEL_CHANGE = "Change"
PANEL_WRITE = "Write and verify"
MAX_FROM_FILE = 1024 * 1024
FROM_FILE = Codes(open="E253", binary="E253", size="E253", error=UsageError)


def default_backup_dir(environ=os.environ) -> str:
    """``$XDG_STATE_HOME/masqctl/backups``, else ``~/.local/state/masqctl/backups``."""
    base = environ.get("XDG_STATE_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "masqctl", "backups")


@g.takes_gather_flags
def apply(gathering: g.GatherFlags,
          output: OutputOpt = Output.table, verbose: Verbose = 0,
          goal: Annotated[Optional[str], typer.Option(
              "--goal", metavar="preserve-source-ip|fix|reset",
              help="preserve-source-ip: pods keep their IP toward peered VNets (only where pod IPs are routable); "
                   "fix: what inspect's remedies name --goal fix for; reset: delete the user ConfigMap.",
              rich_help_panel=PANEL_CHANGE)] = None,
          to: Annotated[Optional[list[str]], typer.Option(
              "--to", metavar="CIDR|VNET", help="With --goal preserve-source-ip: only toward these (repeatable). "
              "Default: every Connected peered VNet.", rich_help_panel=PANEL_CHANGE)] = None,
          add: Annotated[Optional[list[str]], typer.Option(
              "--add", metavar="CIDR", help="Add a non-masquerade CIDR (repeatable).",
              rich_help_panel=PANEL_CHANGE)] = None,
          remove: Annotated[Optional[list[str]], typer.Option(
              "--remove", metavar="CIDR", help="Remove a CIDR of the user ConfigMap (repeatable).",
              rich_help_panel=PANEL_CHANGE)] = None,
          from_file: Annotated[Optional[str], typer.Option(
              "--from-file", metavar="FILE", help="Set the user config to this file (YAML or JSON).",
              rich_help_panel=PANEL_CHANGE)] = None,
          from_backup: Annotated[Optional[str], typer.Option(
              "--from-backup", metavar="FILE", help="Restore the user ConfigMap from a backup apply wrote.",
              rich_help_panel=PANEL_CHANGE)] = None,
          dry_run: Annotated[bool, typer.Option(
              "--dry-run", help="Print the plan, write nothing (the default when stdout is not a terminal).",
              rich_help_panel=PANEL_WRITE)] = False,
          yes: Annotated[bool, typer.Option("--yes", "-y", help="Write without asking.",
                                            rich_help_panel=PANEL_WRITE)] = False,
          diff: Annotated[bool, typer.Option(
              "--diff", help="Print only the change, as kubectl diff does (a unified diff of the ConfigMap "
              "manifest, live → planned), and write nothing.", rich_help_panel=PANEL_WRITE)] = False,
          backup_dir: Annotated[Optional[str], typer.Option(
              "--backup-dir", metavar="DIR", help="Where the current ConfigMap is saved before writing "
              "(default: $XDG_STATE_HOME/masqctl/backups or ~/.local/state/masqctl/backups).",
              rich_help_panel=PANEL_WRITE)] = None,
          verify: Annotated[bool, typer.Option(
              "--verify/--no-verify", help="After writing, wait until every agent node runs the new chain.",
              rich_help_panel=PANEL_WRITE)] = True,
          timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="How long verify waits.",
                                                 rich_help_panel=PANEL_WRITE)] = 300.0,
          poll_interval: Annotated[float, typer.Option(
              "--poll-interval", metavar="SECONDS", help="Time between two verify polls.",
              rich_help_panel=PANEL_WRITE)] = 10.0,
          rollback_on_failure: Annotated[bool, typer.Option(
              "--rollback-on-failure", help="When verify fails, restore the backup (with the same concurrency "
              "checks).", rich_help_panel=PANEL_WRITE)] = False,
          allow_unsafe: Annotated[bool, typer.Option(
              "--allow-unsafe", help="Write a plan that adds unsafe ranges you named yourself (--add, --from-file, "
              "--from-backup): internet space such as 0.0.0.0/0 (MQ009 error) or IMDS/link-local. Goals never "
              "derive them.", rich_help_panel=PANEL_WRITE)] = False,
          force: Annotated[bool, typer.Option(
              "--force", help="Write a plan that would introduce an error-severity finding (what `masqctl inspect` "
              "would then report).", rich_help_panel=PANEL_WRITE)] = False,
          ) -> None:
    """Recommend or write the user ConfigMap azure-ip-masq-agent-config, safely.

    Examples:

      masqctl apply --goal preserve-source-ip --bundle examples/hub-spoke

      masqctl apply --add 10.50.0.0/16 --bundle examples/aks-pod-subnet --diff

      masqctl apply --add 10.50.0.0/16 --context aks-prod -g rg-prod --cluster aks-prod --yes
    """
    from masqctl.analysis.plan import ApplyRequest, Replacement, check_introduced, check_request, check_unsafe

    bundle = gathering.bundle
    if timeout <= 0:
        raise UsageError("must be positive", input=f"--timeout {timeout:g}", code="E256")
    if poll_interval <= 0:
        raise UsageError("must be positive", input=f"--poll-interval {poll_interval:g}", code="E256")
    if dry_run and yes:
        raise UsageError("--dry-run writes nothing; --yes writes: give one", input="--dry-run --yes", code="E254")
    if diff and (yes or not output.human):
        raise UsageError("--diff prints the change and writes nothing" + (
            "; --yes writes: give one" if yes else f"; it is text, not -o {output.value} (-o json carries it "
            "as \"diff\")"), input="--diff --yes" if yes else f"--diff -o {output.value}", code="E258")
    if bundle is not None and yes:
        raise UsageError("a bundle is a copy of a cluster: apply can only plan on it (writing needs a live cluster: "
                         "--kubeconfig/--context)", input=f"--bundle {bundle} --yes", code="E254")
    if (rollback_on_failure and not verify):
        raise UsageError("--rollback-on-failure needs verify (it restores when verify fails)",
                         input="--rollback-on-failure --no-verify", code="E254")

    file_input = _read_from_file(from_file) if from_file is not None else None
    replacement = None
    backup_in = None
    if from_backup is not None:
        from masqctl.cluster.live.configmap_write import load_backup

        backup_in = load_backup(from_backup)
        replacement = Replacement(from_backup, None if backup_in.object is None else
                                  dict(backup_in.object.get("data") or {}),
                                  dict((backup_in.object or {}).get("metadata", {}).get("labels") or {}),
                                  dict((backup_in.object or {}).get("metadata", {}).get("annotations") or {}))
    request = ApplyRequest(goal=goal, to=tuple(to or ()), add=tuple(add or ()), remove=tuple(remove or ()),
                           from_file=file_input, replacement=replacement)
    check_request(request)

    options = gathering.options()
    from masqctl.analysis.plan import plan_apply
    from masqctl.cluster.gather import gather

    progress = _progress()
    snapshot = gather(options, progress)
    plan = plan_apply(snapshot, request)
    if backup_in is not None and (backup_in.namespace, backup_in.name) != (plan.namespace, plan.name):
        raise UsageError(f"the backup is of ConfigMap {backup_in.namespace}/{backup_in.name}, but the agent reads "
                         f"{plan.ref}", input=f"--from-backup {from_backup}", code="E255")

    as_json = output == Output.json
    doc = {"schema": PLAN_SCHEMA, **plan.to_dict()}
    writing = yes or (not dry_run and bundle is None and sys.stdout.isatty())
    if diff:
        _print_diff(plan)
    elif output == Output.yaml:
        _print_manifest(plan)
    elif not as_json:
        print_plan(plan, verbose, wide=output == Output.wide)
    try:
        check_unsafe(plan, allow_unsafe)     # dry runs too: a plan with an error-level range exits 1
        check_introduced(plan, force, allow_unsafe)   # and one that brings an error-severity finding
    except ApplyError as exc:
        if as_json:
            doc["written"] = False
            doc["error"] = {"code": exc.code, "message": exc.one_line(), "hint": exc.hint}
            _print_json(doc)
        raise
    if plan.nothing_to_do or not writing or diff:
        if not as_json and not plan.nothing_to_do and not diff:
            why = ("a bundle can only be planned" if bundle is not None else
                   "--dry-run" if dry_run else "stdout is not a terminal")
            _err(f"nothing written ({why}); re-run with --yes against the live cluster to write")
        if as_json:
            doc["written"] = False
            _print_json(doc)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("cannot ask for confirmation (stdin is not a terminal); give --yes to write, or "
                             "--dry-run", input="apply", code="E257")
        if not typer.confirm(f"Write ConfigMap {plan.ref} ({plan.action})?", default=False, err=True):
            _err("nothing written")
            if as_json:
                doc["written"] = False
                _print_json(doc)
            return

    from masqctl.ops.apply import WriteRecord, write_plan

    record = WriteRecord()
    failure: ApplyError | None = None
    try:
        write_plan(plan, snapshot, options, backup_dir=backup_dir or default_backup_dir(), environ=os.environ,
                   verify=verify, timeout=timeout, interval=poll_interval, rollback=rollback_on_failure,
                   progress=progress, record=record,
                   on_step=None if as_json else lambda step, rec: _tell(plan.ref, step, rec))
        if not verify and not as_json:
            print("not verified (--no-verify): the nodes pick the change up within about 1-2 minutes plus one "
                  "resync period; `masqctl inspect` shows whether they did")
    except ApplyError as exc:
        failure = exc
    doc.update(record.to_dict())
    if as_json:
        if failure is not None:
            doc["error"] = {"code": failure.code, "message": failure.one_line(), "hint": failure.hint}
        _print_json(doc)
    if failure is not None:
        raise failure


def _tell(ref: str, step: str, record) -> None:
    """What each step of the write did, as it happens (``ops.apply.write_plan``'s ``on_step``)."""
    if step == "backup":
        _err(f"backup of {ref} saved to {record.backup.path}")
        _err("to restore: " + "  or  ".join(record.backup.restore_commands()))
    elif step == "written":
        result = record.write
        print(f"{result.action} ConfigMap {ref}" + (f" (resourceVersion {result.resource_version})"
                                                   if result.resource_version else ""))
    elif step == "verified":
        print_verify(record.verify)
    elif step == "rolled-back":
        print(f"rolled back: {record.rollback.action} ConfigMap {ref} from {record.backup.path}; the nodes return to "
              "the previous rules within about 1-2 minutes plus one resync period")


def _read_from_file(path: str):
    from masqctl.analysis.plan import FileInput

    data = read_bytes(path, label=f"--from-file {path}", what="", max_bytes=MAX_FROM_FILE, codes=FROM_FILE,
                      stdin_ok=False, binary_hint="give the agent config as YAML or JSON text",
                      size_hint="a ConfigMap holds at most 1 MiB and an agent config is a few lines")
    return FileInput(path, data)


# --------------------------------------------------------------------------- output

PLAN_SCHEMA = 1   # the version of apply's -o json document; it changes only when a field changes meaning


def _err(text: str) -> None:
    if sys.stderr.isatty():         # at words, not where the terminal cuts the line
        import shutil
        import textwrap

        text = textwrap.fill(text, shutil.get_terminal_size().columns, break_on_hyphens=False,
                             break_long_words=False)
    print(text, file=sys.stderr)


def _print_json(doc: dict) -> None:
    emit(doc, Output.json)


def _print_manifest(plan) -> None:
    """``-o yaml``: stdout is the planned ConfigMap alone, for ``kubectl apply -f -`` or
    ``kubectl diff -f -``; what else the plan says goes to stderr."""
    if plan.new_object is not None:
        emit(plan.new_object, Output.yaml)
        return
    if plan.nothing_to_do:
        _err(f"nothing to do: ConfigMap {plan.ref} stays as it is (no manifest printed)")
    else:
        _err(f"the plan {plan.action}s ConfigMap {plan.ref}: there is no manifest to print; "
             f"`kubectl -n {plan.namespace} delete configmap {plan.name}` does the same by hand")


def _print_diff(plan) -> None:
    """``--diff``: stdout is the unified diff alone (``git apply``/``patch`` read it, as kubectl
    diff's); what else the plan says goes to stderr."""
    text = plan.diff()
    if text is None:
        _err(f"nothing to do: ConfigMap {plan.ref} stays as it is (no difference)")
        return
    sys.stdout.write(text)


def _progress():
    """A stderr progress callback ``(what, done, total)`` that accepts every call."""
    from masqctl.cli.progress import stderr_progress

    return stderr_progress()


def _mark(value: bool | None) -> str:
    return {True: "masqueraded", False: "pod IP kept", None: "unknown"}[value]


def print_plan(plan, verbose: int = 0, wide: bool = False) -> None:
    """The plan for a person; ``wide`` (``-o wide``): the representative flows as one table row each
    (flow, destination, before, after, the rules deciding before and after)."""

    from rich.padding import Padding
    from rich.text import Text

    console = make_console(soft_wrap=True)      # what is copied as written: the manifest, its diff
    prose = make_console()                      # the rest wraps at words at the terminal's width

    def out(text: str = "", markup: bool = True) -> None:
        """A line of prose, wrapped at words; its leading blanks indent every wrapped line."""
        body = text.lstrip(" ")
        indent = len(text) - len(body)
        rendered = Text.from_markup(body) if markup else Text(body)
        prose.print(Padding(rendered, (0, 0, 0, indent), expand=False) if indent else rendered)

    flavor = plan.before.options.flavor if plan.before.options else "?"
    out(f"[bold]Plan[/] for ConfigMap [bold]{plan.ref}[/] key {plan.key} "
        f"(agent DaemonSet {plan.before.daemonset.ref}, {flavor})", markup=True)
    out(f"snapshot: {plan.snapshot_source}" + (f", taken {plan.collected_at}" if plan.collected_at else "")
        + f"; planned against resourceVersion {plan.resource_version or '(absent)'}")
    if plan.mode is not None:
        out(f"network mode: {plan.mode.describe()}")
    out("")
    if plan.nothing_to_do:
        out("[bold]Nothing to do.[/]", markup=True)
    else:
        out(f"[bold]Action:[/] {plan.action}", markup=True)
    for c in plan.changes:
        out(f"  • {c}")
    for n in plan.notes:
        out(f"  [dim]note:[/] {n}", markup=True)
    if plan.nothing_to_do and not plan.warnings and not plan.refused:
        return
    if plan.new_object is not None and plan.current is not None:
        out("\n[bold]Change[/] (as kubectl diff shows it; `--diff` prints only this):", markup=True)
        console.print(plan.diff() or "  (no change of the manifest)\n", markup=False, highlight=False, end="")
    elif plan.new_object is not None:
        out("\n[bold]New ConfigMap:[/]", markup=True)
        console.print(plan.new_yaml(), markup=False, highlight=False, end="")
    elif plan.action == "delete":
        out(f"\n[bold]Delete ConfigMap[/] {plan.ref}", markup=True)

    def cidr_lines(view, title: str) -> None:
        out(f"\n[bold]{title}[/]", markup=True)
        if view.config is None:
            out(f"  the agent refuses it: {view.error.one_line() if view.error else 'unknown'}")
            return
        for c in view.config.non_masquerade_cidrs:
            out(f"  {c.cidr:<20} from {view.source_of(c.origins[0])}")
        ll = view.config.masq_link_local
        out(f"  masqLinkLocal: {str(ll.value).lower()} (from {view.source_of(ll.origins[0])})")

    if not plan.nothing_to_do:
        cidr_lines(plan.before, "Effective config before:")
        cidr_lines(plan.after, "Effective config after:")
        before, after = plan.rules_before(), plan.rules_after()
        if verbose or before is None or after is None:
            for title, rs in (("Rules before:", before), ("Rules after:", after)):
                out(f"\n[bold]{title}[/]", markup=True)
                if rs is None:
                    flavor = plan.before.options.flavor if plan.before.options else None
                    out("  (none: Cilium loads a BPF map, shown above as the effective config)"
                        if flavor in ("cilium", "azure-cilium") else "  (none: the agent exits on this config)")
                    continue
                for fam in rs.families():
                    for r in fam.rules:
                        out("  " + r.text, markup=False)
        else:
            b = [r.text for f in before.families() for r in f.rules]
            a = [r.text for f in after.families() for r in f.rules]
            out(f"\n[bold]{after.ipv4.chain} rules[/] (- removed, + added):", markup=True)
            import difflib

            diff = [ln for ln in difflib.unified_diff(b, a, lineterm="", n=0) if not ln.startswith(("---", "+++",
                                                                                                     "@@"))]
            for ln in diff or ["  (unchanged)"]:
                out("  " + ln, markup=False)
    if plan.flows and wide:
        from rich.markup import escape
        from rich.table import Table

        from masqctl.cli.output import print_wide

        out("")
        out("[bold]Representative flows (from a pod)[/]", markup=True)
        prefix = f"ConfigMap {plan.namespace}/"
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        for name in ("FLOW", "DST", "BEFORE", "AFTER", "DECIDED BY (BEFORE)", "DECIDED BY (AFTER)"):
            table.add_column(name, no_wrap=True)
        for f in plan.flows:
            table.add_row(escape(f.label), escape(f.dst), _mark(f.before),
                          ("[bold]" + _mark(f.after) + "[/]") if f.changed else _mark(f.after),
                          escape((f.before_rule or "-").replace(prefix, "ConfigMap ")),
                          escape((f.after_rule or "-").replace(prefix, "ConfigMap ")))
        print_wide(console, table)
    elif plan.flows:
        # one block per flow rather than a table: addresses and names are never cut or broken mid-word,
        # at 80 columns as at 200 (each line wraps at words)
        from rich.markup import escape
        from rich.padding import Padding

        words = make_console()          # wraps at words at the terminal's width
        out("")
        out("[bold]Representative flows (from a pod)[/]", markup=True)
        prefix = f"ConfigMap {plan.namespace}/"
        for f in plan.flows:
            mark = "  [bold]⇐ changes[/]" if f.changed else ""
            words.print(Padding(f"{escape(f.label)} → [bold]{escape(f.dst)}[/]", (0, 0, 0, 2), expand=False))
            words.print(Padding(f"before: {_mark(f.before)}   after: {_mark(f.after)}{mark}", (0, 0, 0, 6), expand=False))
            if f.after_rule:
                words.print(Padding(f"decided by: {escape(f.after_rule.replace(prefix, 'ConfigMap '))}",
                                    (0, 0, 0, 6), expand=False))
    from rich.markup import escape

    for r in plan.refused:
        out(f"[red]refused:[/] {escape(r.describe())}", markup=True)
    for u in plan.unsafe:
        out(f"[red]error:[/] {escape(u.describe())}", markup=True)
    for w in plan.warnings:
        out(f"[yellow]warning:[/] {escape(w)}", markup=True)
    if plan.introduced or plan.resolved or plan.changed_findings:
        out("\n[bold]Findings (as `masqctl inspect` would report them after the change):[/]", markup=True)
        style = {"error": "red", "warning": "yellow", "info": "cyan"}
        for word, items in (("introduces", plan.introduced), ("resolves", plan.resolved),
                            ("changes", plan.changed_findings)):
            for f in items:
                out(f"  {word} [{style.get(f.severity, 'bold')}]{f.severity.upper()}[/] {f.code} {escape(f.title)}"
                    + (f" [dim]({escape(', '.join(f.nodes[:3]))})[/]" if f.nodes else ""), markup=True)
                if word != "resolves" and verbose:
                    out(f"    {escape(f.detail)}", markup=True)


def print_verify(outcome) -> None:
    print(("verified: " if outcome.ok else "verify failed: ") + outcome.summary())
    for node, state in sorted(outcome.pending.items()):
        print(f"  not converged: {node}: {state}")
    for c in outcome.crashes:
        print(f"  crashing: {c.describe()}")
    for n in outcome.notes:
        print(f"  note: {n}")
