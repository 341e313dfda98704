"""What a failed command leaves on stdout: nothing for table output, and with -o json/-o yaml
exactly one error document (``{"error": {"code", "message", "input", "hint"}}``) that repeats the
coded line on stderr. Tests of failing commands assert ``no_result(proc)`` instead of an empty
stdout."""

from __future__ import annotations

import json

import yaml

from masqctl.cli.app import output_format


def error_of(stdout: str) -> dict | None:
    """The ``error`` of the error document on stdout; None when stdout is not exactly one."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        try:
            doc = yaml.safe_load(stdout)
        except yaml.YAMLError:
            return None
    if not (isinstance(doc, dict) and set(doc) == {"error"} and isinstance(doc["error"], dict)
            and set(doc["error"]) == {"code", "message", "input", "hint"}):
        return None
    return doc["error"]


def no_result(proc) -> bool:
    """stdout holds no result: empty for table output; with -o json/yaml one error document whose
    code stderr names too."""
    args = [str(a) for a in proc.args] if isinstance(proc.args, (list, tuple)) else str(proc.args).split()
    if output_format(args) in ("json", "yaml"):
        err = error_of(proc.stdout)
        return err is not None and err["code"] in proc.stderr
    return proc.stdout == ""
