"""Which files a masquerade agent reads from its config folder, read consistently.

A leaf module (``os`` only): the rule engine builds its config from what it returns, and the
node-agent's long-running loop, which never loads the engine, compares the same bytes from
one period to the next.

A ConfigMap volume is a folder of symlinks into ``..data``, which kubelet swaps atomically to
a new timestamped folder. The files are read from the generation ``..data`` points to, and
the link is checked again afterwards; ``Swapped`` means it moved in between.
"""

from __future__ import annotations

import os

V2_PREFIX = "ip-masq"            # azure-v2 reads every file whose name starts with this
UPSTREAM_FILE = "ip-masq-agent"  # upstream and tke read this one file
DATA_LINK = "..data"


class Swapped(Exception):
    """kubelet swapped the volume's ``..data`` while it was being read."""


def generation(path: str) -> str | None:
    """Where ``path/..data`` points, or None when ``path`` is not a ConfigMap volume."""
    try:
        return os.readlink(os.path.join(path, DATA_LINK))
    except OSError:
        return None


def read_files(path: str, flavor: str) -> tuple[str | None, tuple[tuple[str, bytes], ...]]:
    """``(generation, ((name, bytes), ...))`` of the files ``flavor`` reads, names sorted as
    Go's ``os.ReadDir`` sorts them. A missing upstream/tke file is no file. Errors of
    ``listdir``/``open`` propagate as they are (their ``filename`` names the path); ``Swapped``
    when the generation changed during the read."""
    gen = generation(path)
    base = os.path.join(path, gen) if gen else path
    if flavor == "azure-v2":
        names = sorted(n for n in os.listdir(base) if n.startswith(V2_PREFIX))
    else:
        names = [UPSTREAM_FILE] if os.path.lexists(os.path.join(base, UPSTREAM_FILE)) else []
    files = []
    for name in names:
        with open(os.path.join(base, name), "rb") as fh:
            files.append((name, fh.read()))
    if gen is not None and generation(path) != gen:
        raise Swapped(path)
    return gen, tuple(files)
