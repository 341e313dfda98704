#!/usr/bin/env python3
"""Build the krew plugin archive and its manifest for one release.

    python3 deploy/krew/render.py --version v0.1.0 --uri https://RELEASES/kubectl-masq-v0.1.0.tar.gz --out DIR

writes ``DIR/kubectl-masq-VERSION.tar.gz`` (the ``kubectl-masq`` launcher) and ``DIR/masq.yaml``
(the krew ``Plugin`` manifest with that archive's sha256). Upload the archive to ``--uri``, then
``kubectl krew install --manifest=DIR/masq.yaml`` installs it, or submit the manifest to an index.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "kubectl-masq")


def archive_bytes() -> bytes:
    """A reproducible tar.gz holding the launcher (fixed mtime, owner and mode)."""
    buf = io.BytesIO()
    with open(LAUNCHER, "rb") as f:
        data = f.read()

    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        info = tarfile.TarInfo("kubectl-masq")
        info.size, info.mode, info.mtime, info.uid, info.gid = len(data), 0o755, 0, 0, 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def manifest(version: str, uri: str, sha256: str) -> str:
    return f"""apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: masq
spec:
  version: {version}
  shortDescription: Troubleshoot and fix IP masquerading (SNAT of pod traffic), AKS first
  description: |
    kubectl masq inspects what decides masquerading in a cluster (the ip-masq-agent ConfigMaps,
    its DaemonSet, each node's nat rules, the AKS network and its peerings), explains whether a
    flow is masqueraded and by which rule, and plans the ConfigMap change that fixes it.
  caveats: |
    The plugin runs the masqctl Python package: install it first with
      python3 -m pip install masqctl
  platforms:
  - selector:
      matchExpressions:
      - key: os
        operator: In
        values: [linux, darwin]
    uri: {uri}
    sha256: {sha256}
    bin: kubectl-masq
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", required=True, help="release version, e.g. v0.1.0")
    ap.add_argument("--uri", required=True, help="where the archive will be downloaded from (https)")
    ap.add_argument("--out", required=True, help="folder to write the archive and masq.yaml into")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"v\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?", args.version):
        print(f"error: --version {args.version!r}: krew wants a semantic version with a leading v (v0.1.0)",
              file=sys.stderr)
        return 2
    if not args.uri.startswith("https://"):
        print(f"error: --uri {args.uri!r}: krew downloads over https", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    data = archive_bytes()
    with open(os.path.join(args.out, f"kubectl-masq-{args.version}.tar.gz"), "wb") as f:
        f.write(data)
    with open(os.path.join(args.out, "masq.yaml"), "w") as f:
        f.write(manifest(args.version, args.uri, hashlib.sha256(data).hexdigest()))
    print(os.path.join(args.out, "masq.yaml"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
