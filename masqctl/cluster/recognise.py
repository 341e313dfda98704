"""Which containers run a masquerade agent, and of which kind and flavour.

Recognition is by image first (the repository path, tag ignored), then by shape:

| image | kind | flavour |
|---|---|---|
| ``…/azure-ip-masq-agent…`` or ``…/ip-masq-agent-v2`` (AKS, Azure/ip-masq-agent-v2) | ``azure-ip-masq-agent`` | ``azure-v2`` |
| ``ccr.ccs.tencentyun.com/…`` with ip-masq in the name, or ``…/tke-ip-masq-agent`` | ``tke`` | ``tke`` |
| ``…/ip-masq-agent`` (kubernetes-sigs: registry.k8s.io/networking/ip-masq-agent, ``-amd64`` builds, mcr.microsoft.com/oss/kubernetes/ip-masq-agent:v2.5.0.x) | ``ip-masq-agent`` | ``upstream`` |
| ``…/masqctl-node-agent`` (deploy/Dockerfile), or any image whose command and args run ``masqctl node-agent`` or ``python -m masqctl.agent`` | ``masqctl-node-agent`` | its ``--flavor`` flag (default ``azure-v2``) |
| ``…/azure-ip-masq-merger`` (AKS Azure CNI powered by Cilium, eBPF host routing: merges both ConfigMaps for Cilium) | ``azure-ip-masq-merger`` | ``azure-cilium`` |
| ``…/cilium`` or ``…/cilium-distroless`` whose volumes project an ``ip-masq`` ConfigMap (pod subnet: the AKS-owned DNS/IMDS config) | ``cilium-agent`` | ``cilium`` |
| anything else, when the container's name contains ``ip-masq`` or its volumes project a ConfigMap with ``ip-masq`` in its name or key | ``unknown`` | ``None`` |

The invocation of masqctl's node-agent wins over the image (it runs in any image). Its flavour
is not fixed by the kind: ``flavor_of`` reads the ``--flavor`` flag, parsed with the
node-agent's own flag definitions (``masqctl.agent.flags``, the one module of the node-agent
other packages read), so the snapshot's ``AgentDaemonSet.flavor`` says what it really runs.
"""

from __future__ import annotations

import posixpath
import shlex

from masqctl.agent.flags import flag_set
from masqctl.configfolder import FLAVORS
from masqctl.errors import UsageError

KIND_AZURE = "azure-ip-masq-agent"
KIND_UPSTREAM = "ip-masq-agent"
KIND_TKE = "tke"
KIND_NODE_AGENT = "masqctl-node-agent"
KIND_MERGER = "azure-ip-masq-merger"   # AKS Cilium eBPF: merges the ConfigMaps for Cilium's ip-masq-agent
KIND_CILIUM = "cilium-agent"           # cilium-agent reading an ip-masq ConfigMap as its /etc/config itself
KIND_UNKNOWN = "unknown"

# KIND_NODE_AGENT: the node-agent's default; flavor_of() reads its --flavor flag.
FLAVOR_OF_KIND = {KIND_AZURE: "azure-v2", KIND_UPSTREAM: "upstream", KIND_TKE: "tke", KIND_NODE_AGENT: "azure-v2",
                  KIND_MERGER: "azure-cilium", KIND_CILIUM: "cilium", KIND_UNKNOWN: None}

NODE_AGENT_MODULE = "masqctl.agent"
CLI_MODULE = "masqctl.cli.main"          # the ``masqctl`` script's module; it hands node-agent to masqctl.agent
_SHELLS = ("sh", "bash", "ash", "dash", "zsh", "busybox")
_SHELL_OPERATORS = (";", "&&", "||", "|", "&", ">", ">>", "<", "2>&1")


def image_repository(image: str) -> str:
    """``registry/path/name`` of an image reference, without tag or digest, lower case."""
    ref = image.strip().split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref = ref[:colon]
    return ref.lower()


def kind_of_image(image: str) -> str | None:
    """The agent kind an image is, or None when the image is not a known agent."""
    repo = image_repository(image)
    if not repo:
        return None
    name = repo.rsplit("/", 1)[-1]
    registry = repo.split("/", 1)[0] if "/" in repo else ""
    if name.startswith(KIND_NODE_AGENT):
        return KIND_NODE_AGENT
    if name.startswith(KIND_MERGER):
        return KIND_MERGER
    if name.startswith(("azure-ip-masq-agent", "ip-masq-agent-v2")):
        return KIND_AZURE
    if name.startswith("tke-ip-masq-agent") or (registry.endswith("tencentyun.com") and "ip-masq" in name):
        return KIND_TKE
    if name == "ip-masq-agent" or name.startswith("ip-masq-agent-"):
        # kubernetes-sigs builds: ip-masq-agent, ip-masq-agent-amd64, ip-masq-agent-arm64 …
        return KIND_UPSTREAM
    return None


class NodeAgentInvocation:
    """How a container's command and args start masqctl's node-agent.

    ``flags`` are the words the node-agent parses as its flags; ``via`` is the words that start
    it (``masqctl node-agent``, ``python3 -S -m masqctl.agent``, or ``(image entrypoint)``);
    ``shell`` is the shell whose ``-c`` script holds the invocation, if any."""

    __slots__ = ("flags", "shell", "via")

    def __init__(self, flags: tuple[str, ...], via: tuple[str, ...], shell: str | None = None):
        self.flags = flags
        self.via = via
        self.shell = shell


def _python_module(words: list[str], i: int) -> tuple[str | None, int]:
    """``(module, index after it)`` when ``words[i]`` is python's ``-m MODULE`` or ``-mMODULE``."""
    word = words[i]
    if word == "-m" and i + 1 < len(words):
        return words[i + 1], i + 2
    if word.startswith("-m") and len(word) > 2 and not word.startswith("--"):
        return word[2:], i + 1
    return None, i + 1


def _start_of_flags(words: list[str]) -> int | None:
    """The index after ``masqctl node-agent``, ``python… -m masqctl.agent`` or ``python… -m
    masqctl.cli.main node-agent`` (what the ``masqctl`` script runs) in ``words``."""
    for i, word in enumerate(words):
        module, after = _python_module(words, i)
        if module == NODE_AGENT_MODULE:
            return after
        if module == CLI_MODULE or posixpath.basename(word) == "masqctl":
            if words[after:after + 1] == ["node-agent"]:
                return after + 1
    return None


def node_agent_invocation(command, args) -> NodeAgentInvocation | None:
    """Where the words of ``command`` + ``args`` start masqctl's node-agent, or None.

    A shell's ``-c`` script is split into words (``sh -c "exec masqctl node-agent --v=2"``);
    its flags then end at the first shell operator."""
    words = list(command) + list(args)
    start = _start_of_flags(words)
    if start is not None:
        return NodeAgentInvocation(tuple(words[start:]), tuple(words[:start]))
    if command and posixpath.basename(command[0]) in _SHELLS:
        for i, word in enumerate(words[:-1]):
            if word != "-c":
                continue
            try:
                script = shlex.split(words[i + 1], comments=True)
            except ValueError:
                script = words[i + 1].split()
            start = _start_of_flags(script)
            if start is not None:
                flags = []
                for w in script[start:]:
                    if w in _SHELL_OPERATORS:
                        break
                    flags.append(w)
                return NodeAgentInvocation(tuple(flags), tuple(script[:start]), posixpath.basename(command[0]))
    return None


def node_agent_flags(command, args) -> tuple[dict | None, Exception | None, NodeAgentInvocation]:
    """The node-agent's flag values for a container, parsed exactly as ``masqctl.agent`` parses
    them, or the ``UsageError`` it exits with at start.

    Without an invocation in command/args, the image's entry point (``python3 -S -m
    masqctl.agent`` in the masqctl-node-agent image) runs: the args are the flags, and a
    command replaces the entry point, so its words after the program are read."""
    inv = node_agent_invocation(command, args)
    if inv is None:
        words = tuple(command[1:]) + tuple(args) if command else tuple(args)
        inv = NodeAgentInvocation(words, tuple(command[:1]) if command else ("(image entrypoint)",))
    try:
        return flag_set().parse(list(inv.flags)), None, inv
    except UsageError as exc:
        return None, exc, inv


def flavor_of(kind: str | None, command=(), args=()) -> str | None:
    """The engine flavour that models an agent of ``kind``; for the node-agent, its ``--flavor``
    flag (default ``azure-v2``), None when that value is no flavour. When its flags cannot be
    read (it then exits at start), the last ``--flavor`` word given, else the default."""
    if kind != KIND_NODE_AGENT:
        return FLAVOR_OF_KIND.get(kind) if kind is not None else None
    values, _, inv = node_agent_flags(command, args)
    if values is not None:
        flavor = values["flavor"]
    else:
        flavor = FLAVOR_OF_KIND[KIND_NODE_AGENT]
        words = list(inv.flags)
        for i, word in enumerate(words):
            name, eq, value = word.lstrip("-").partition("=")
            if word.startswith("-") and name == "flavor":
                flavor = value if eq else (words[i + 1] if i + 1 < len(words) else flavor)
    return flavor if flavor in FLAVORS else None


def recognise(container_name: str, image: str, projected: list[tuple[str, tuple[str, ...] | None]],
              command=(), args=()) -> str | None:
    """The kind of agent a container runs, or None when it does not look like one.

    ``projected`` lists the ConfigMaps its volume mounts project: (name, keys or None for all).
    ``command`` and ``args`` are the container's: a ``masqctl node-agent`` or ``python -m
    masqctl.agent`` invocation makes it the node-agent whatever its image.
    """
    if node_agent_invocation(command, args) is not None:
        return KIND_NODE_AGENT
    kind = kind_of_image(image)
    if kind is not None:
        return kind
    repo = image_repository(image).rsplit("/", 1)[-1]
    if repo in ("cilium", "cilium-distroless") and any(
            "ip-masq" in name.lower() or any("ip-masq" in k.lower() for k in keys or ()) for name, keys in projected):
        return KIND_CILIUM
    if "ip-masq" in container_name.lower():
        return KIND_UNKNOWN
    for name, keys in projected:
        if "ip-masq" in name.lower() or any("ip-masq" in k.lower() for k in keys or ()):
            return KIND_UNKNOWN
    return None
