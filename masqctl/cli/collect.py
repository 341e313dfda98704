"""`masqctl collect`: write a bundle (the native documents of a cluster) for offline analysis."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from masqctl.cli import gathering as g
from masqctl.cli.output import Verbose
from masqctl.errors import UsageError

OutputDir = Annotated[str, typer.Option(
    "-o", "--output-dir", metavar="DIR",
    help="Folder to write the bundle into (new or empty; written whole or not at all). Not an output format: "
    "a new folder named json, yaml or table must be written ./json.")]
FORMAT_NAMES = ("json", "yaml", "table", "wide")     # what -o means on every other command
Redact = Annotated[bool, typer.Option(
    "--redact", help="Replace subscription/tenant IDs, resource groups, cluster and VNet names and API server "
    "hostnames with consistent placeholders (IPs and CIDRs are kept). See docs/bundles.md.")]

Conntrack = Annotated[bool, typer.Option(
    "--conntrack", help="Also read each captured node's connection-tracking table (nodes/<node>/conntrack.txt, "
    "for masqctl who). Off by default: it can be large and lists every connection of the node.")]


@g.takes_gather_flags
def collect(output_dir: OutputDir, redact: Redact = False, conntrack: Conntrack = False,
            gathering: g.GatherFlags = g.GatherFlags(), verbose: Verbose = 0) -> None:
    """Write a bundle folder for offline analysis (inspect --bundle, explain --bundle).

    With --bundle SRC, re-write (and with --redact, redact) an existing bundle.

    Examples:

      masqctl collect -o shareable --bundle examples/hub-spoke --redact

      masqctl collect -o kubenet-redacted --bundle examples/aks-kubenet --redact -v

      masqctl collect -o case-1234 --context aks-prod -g rg-prod --cluster aks-prod
    """
    from masqctl.cluster.bundle import check_output_dir, now_rfc3339, write_bundle
    from masqctl.cluster.gather import gather_raw

    check_not_a_format(output_dir)
    options = gathering.options()
    bundle = options.bundle
    if conntrack:
        if bundle is not None:
            raise UsageError("--conntrack reads the tables from live nodes; a bundle re-written with --bundle keeps "
                             "the conntrack.txt files it has", input="--conntrack", code="E262",
                             hint="drop --conntrack")
        if not options.capture:
            raise UsageError("--conntrack reads the tables by exec into the nodes, which --no-capture turns off",
                             input="--conntrack", code="E262", hint="drop one of the two")
        from dataclasses import replace

        options = replace(options, conntrack=True)
    check_output_dir(output_dir)           # before minutes of gathering, not after
    progress = None
    if bundle is None:
        from masqctl.cli.progress import progress_callback

        progress = progress_callback(verbose=verbose)
    started = now_rfc3339()
    raw = gather_raw(options, progress)
    if bundle is None and isinstance(raw.manifest, dict):
        raw.manifest.setdefault("collected_at", started)
    if bundle is not None:
        # validate the source fully (every file and field) before writing anything
        from masqctl.cluster.build import build_snapshot

        build_snapshot(raw)
    files = write_bundle(raw, output_dir, redact=redact)
    _summary(raw, files, output_dir, redact, verbose)
    typer.echo(output_dir)


def check_not_a_format(output_dir: str) -> None:
    """``-o json`` (``yaml``, ``table``) is an output format on every other command; on collect it
    would silently make a folder of that name. Refused (E327) unless the folder exists already;
    ``./json`` names the folder explicitly."""
    if output_dir.lower() in FORMAT_NAMES and not os.path.lexists(output_dir):
        raise UsageError(f"{output_dir!r} is an output format on the other commands, but collect's -o is the folder "
                         f"to write the bundle into, and no folder {output_dir!r} exists here",
                         input=f"-o/--output-dir {output_dir}", code="E327",
                         hint=f"collect's -o is the output folder; collect always writes a bundle; to name a folder "
                              f"'{output_dir}' write ./{output_dir}")


def _summary(raw, files: list[str], output_dir: str, redact: bool, verbose: int) -> None:
    stream = typer.get_text_stream("stderr")

    def say(text: str) -> None:
        """A line on stderr; on a terminal it wraps at words, its indent kept."""
        if stream.isatty():
            import shutil
            import textwrap

            indent = " " * (len(text) - len(text.lstrip(" ")))
            text = textwrap.fill(text, shutil.get_terminal_size().columns, subsequent_indent=indent + "  ",
                                 break_on_hyphens=False, break_long_words=False)
        print(text, file=stream)

    kube = []
    for attr in ("configmaps", "daemonsets", "pods", "nodes"):
        objects = getattr(raw, attr)
        kube.append(f"{len(objects)} {attr}" if objects is not None else f"no {attr}")
    azure = []
    if raw.aks is not None:
        azure.append("aks.json")
    if raw.vnets:
        azure.append(f"{len(raw.vnets)} VNet{'s' if len(raw.vnets) != 1 else ''}")
    captured = [n for n, c in raw.captures.items() if c.iptables_save is not None]
    tables = [n for n, c in raw.captures.items() if c.conntrack is not None]
    say(f"collected: {', '.join(kube)}; Azure: {', '.join(azure) or 'none'}; "
        f"iptables from {len(captured)} node{'s' if len(captured) != 1 else ''}"
        + (f"; conntrack tables from {len(tables)}" if tables else ""))
    failed = {n: c.errors for n, c in sorted(raw.captures.items()) if c.errors}
    if failed:
        say(f"failed on {len(failed)} node{'s' if len(failed) != 1 else ''}:")
        for n, errors in list(failed.items())[: None if verbose else 10]:
            for piece, reason in errors.items():
                say(f"  {n} {piece}: {reason}")
        if not verbose and len(failed) > 10:
            say(f"  … and {len(failed) - 10} more (see manifest.json)")
    if raw.missing:
        say("missing:")
        for key, reason in sorted(raw.missing.items()):
            say(f"  {key}: {reason}")
    say(f"wrote {len(files)} files{' (redacted)' if redact else ''} to {output_dir}")
