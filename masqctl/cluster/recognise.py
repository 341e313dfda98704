"""Which containers run a masquerade agent, and of which kind and flavour.

Recognition is by image first (the repository path, tag ignored), then by shape:

| image | kind | flavour |
|---|---|---|
| ``…/azure-ip-masq-agent…`` or ``…/ip-masq-agent-v2`` (AKS, Azure/ip-masq-agent-v2) | ``azure-ip-masq-agent`` | ``azure-v2`` |
| ``ccr.ccs.tencentyun.com/…`` with ip-masq in the name, or ``…/tke-ip-masq-agent`` | ``tke`` | ``tke`` |
| ``…/ip-masq-agent`` (kubernetes-sigs: registry.k8s.io/networking/ip-masq-agent, ``-amd64`` builds, mcr.microsoft.com/oss/kubernetes/ip-masq-agent:v2.5.0.x) | ``ip-masq-agent`` | ``upstream`` |
| anything else, when the container's name contains ``ip-masq`` or its volumes project a ConfigMap with ``ip-masq`` in its name or key | ``unknown`` | ``None`` |
"""

from __future__ import annotations

KIND_AZURE = "azure-ip-masq-agent"
KIND_UPSTREAM = "ip-masq-agent"
KIND_TKE = "tke"
KIND_UNKNOWN = "unknown"

FLAVOR_OF_KIND = {KIND_AZURE: "azure-v2", KIND_UPSTREAM: "upstream", KIND_TKE: "tke", KIND_UNKNOWN: None}


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
    if name.startswith(("azure-ip-masq-agent", "ip-masq-agent-v2")):
        return KIND_AZURE
    if name.startswith("tke-ip-masq-agent") or (registry.endswith("tencentyun.com") and "ip-masq" in name):
        return KIND_TKE
    if name == "ip-masq-agent" or name.startswith("ip-masq-agent-"):
        # kubernetes-sigs builds: ip-masq-agent, ip-masq-agent-amd64, ip-masq-agent-arm64 …
        return KIND_UPSTREAM
    return None


def recognise(container_name: str, image: str, projected: list[tuple[str, tuple[str, ...] | None]]) -> str | None:
    """The kind of agent a container runs, or None when it does not look like one.

    ``projected`` lists the ConfigMaps its volume mounts project: (name, keys or None for all).
    """
    kind = kind_of_image(image)
    if kind is not None:
        return kind
    if "ip-masq" in container_name.lower():
        return KIND_UNKNOWN
    for name, keys in projected:
        if "ip-masq" in name.lower() or any("ip-masq" in k.lower() for k in keys or ()):
            return KIND_UNKNOWN
    return None
