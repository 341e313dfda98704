"""One YAML style for Kubernetes objects masqctl prints or saves (plans, backups)."""

from __future__ import annotations

import yaml


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, the way ``kubectl get -o yaml`` shows ConfigMap data."""


def _str(dumper: yaml.SafeDumper, data: str):
    if "\n" in data and all(not ln.endswith((" ", "\t")) for ln in data.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_LiteralDumper.add_representer(str, _str)


def to_yaml(obj: object) -> str:
    """``obj`` as block YAML, keys in the given order; reads back (``yaml.safe_load``) as ``obj``."""
    return yaml.dump(obj, Dumper=_LiteralDumper, default_flow_style=False, sort_keys=False,
                     width=10_000, allow_unicode=True)
