"""Which files a masquerade agent reads from its config folder, read consistently.

A leaf module (``os`` only): the rule engine builds its config from what it returns, and the
node-agent's long-running loop, which never loads the engine, compares the same bytes from
one period to the next. The agents' names both sides need (the flavours, the default folder
and chain) are defined here once; ``masqctl.engine.model`` re-exports them.

A ConfigMap volume is a folder of symlinks into ``..data``, which kubelet swaps atomically to
a new timestamped folder. The files are read from the generation ``..data`` points to, and
the link is checked again afterwards; ``Swapped`` means it moved in between.
"""

from __future__ import annotations

import os

# the agent behaviours masqctl reproduces (the engine's "flavours")
AZURE_V2 = "azure-v2"   # Azure/ip-masq-agent-v2
UPSTREAM = "upstream"   # kubernetes-sigs/ip-masq-agent
TKE = "tke"             # Tencent's fork of the upstream agent
CILIUM = "cilium"              # Cilium's ip-masq-agent (pkg/ipmasq) reading the folder itself
AZURE_CILIUM = "azure-cilium"  # AKS: the azure-ip-masq-merger sidecar, then Cilium's ip-masq-agent
FLAVORS = (AZURE_V2, UPSTREAM, TKE, CILIUM, AZURE_CILIUM)
PREFIX_FLAVORS = (AZURE_V2, AZURE_CILIUM)       # read every ip-masq* file of the folder
CILIUM_FLAVORS = (CILIUM, AZURE_CILIUM)         # load a BPF map, write no iptables rules

DEFAULT_CONFIG_DIR = "/etc/config/"  # where the agents' DaemonSets mount the ConfigMap
DEFAULT_CHAIN = "IP-MASQ-AGENT"      # the nat chain the agents write by default
DEFAULT_RESYNC_SECONDS = 60

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
    gen, files, _ = _read(path, flavor, False)
    return gen, files


def read_folder(path: str, flavor: str) -> tuple[str | None, tuple[tuple[str, bytes], ...], tuple[str, ...]]:
    """``read_files`` plus the names of the folder's other entries that are not folders, which
    the agent never reads (names starting with ``.`` left out: kubelet's ``..data`` and its
    timestamped generations, editor swap files). A folder upstream/tke cannot list has none."""
    return _read(path, flavor, True)


def _read(path: str, flavor: str, want_unread: bool):
    gen = generation(path)
    base = os.path.join(path, gen) if gen else path
    if flavor in PREFIX_FLAVORS:
        listing = os.listdir(base)
        names = sorted(n for n in listing if n.startswith(V2_PREFIX))
    else:
        try:
            listing = os.listdir(base) if want_unread else []
        except OSError:
            listing = []
        names = [UPSTREAM_FILE] if os.path.lexists(os.path.join(base, UPSTREAM_FILE)) else []
    unread = tuple(sorted(n for n in listing if n not in names and not n.startswith(".")
                          and not os.path.isdir(os.path.join(base, n)))) if want_unread else ()
    files = []
    for name in names:
        with open(os.path.join(base, name), "rb") as fh:
            files.append((name, fh.read()))
    if gen is not None and generation(path) != gen:
        raise Swapped(path)
    return gen, tuple(files), unread
