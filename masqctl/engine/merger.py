"""The ``azure-ip-masq-merger`` sidecar (AKS Azure CNI powered by Cilium, eBPF host routing).

The merger reads every file of its input folder whose name starts with ``ip-masq`` (the user
ConfigMap ``azure-ip-masq-agent-config`` and AKS's ``-reconciled`` one, projected into
``/etc/config/``), in name order, and writes one file, ``ip-masq-agent``, into the folder that
cilium-agent mounts as its ``/etc/config`` (an ``emptyDir`` shared by the two containers).
What follows is read in Azure/azure-container-networking ``azure-ip-masq-merger/ip_masq_merger.go``
(``mergeConfig``, ``validate``, ``merge``, ``mergeCIDRs``, ``validateCIDR``):

* each file goes through ``k8s.io/apimachinery`` ``yaml.ToJSON`` and ``encoding/json`` into
  ``{nonMasqueradeCIDRs, masqLinkLocal, masqLinkLocalIPv6}`` — the same decoding as
  ip-masq-agent-v2 (case-insensitive keys, YAML 1.1 scalars, a type error is fatal);
* every CIDR must parse (``net.ParseCIDR``) and be the network address of its block; anything
  else is fatal: the merger's loop returns the error, ``klog.Fatalf`` ends the container, kubelet
  restarts it, and the merged file it wrote last stays in the ``emptyDir`` (on a pod that never
  merged successfully there is none, so Cilium runs its own defaults);
* there is no limit on the number of CIDRs (v2's 64 per file does not apply) and no IPv6 check;
* the lists are unioned (exact strings; Go map order, so the merged file's order is not stable:
  masqctl keeps files by name, then position, first occurrence) and the booleans OR'd;
* a file with no CIDRs still counts: an empty ``ip-masq*`` file (JSON ``null``) yields a merged
  file with an empty list — which Cilium does *not* read as "use the defaults";
* with no ``ip-masq*`` file at all the merged file is deleted (Cilium then uses its defaults);
* the merged file is ``gopkg.in/yaml.v2``'s marshalling of the struct: lower-case keys
  (``nonmasqueradecidrs``, ``masqlinklocal``, ``masqlinklocalipv6``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masqctl.engine.cidr import CidrProblem, family, parse_cidr
from masqctl.engine.decode import decode_document
from masqctl.engine.fields import FieldValue, apply_document
from masqctl.engine.model import AZURE_V2, CidrEntry, ConfigWarning, Origin, Setting
from masqctl.errors import ConfigError

MERGER = "azure-ip-masq-merger"
INPUT_PREFIX = "ip-masq"           # configFilePrefix
MERGED_FILE = "ip-masq-agent"      # written under --output (default /etc/merged-config/)
INPUT_DIR = "/etc/config/"
OUTPUT_DIR = "/etc/merged-config/"

E_PARSE = "E330"    # a CIDR net.ParseCIDR refuses: fatal
E_ALIGN = "E331"    # a CIDR with host bits set: fatal

FATAL = ("the azure-ip-masq-merger exits on it (klog.Fatalf) and is restarted; the merged file it wrote last "
         "stays, so Cilium keeps the map it loaded from that file (a pod that never merged has no merged file: "
         "Cilium runs its default non-masquerade ranges)")


@dataclass(frozen=True)
class MergedConfig:
    """What the merger writes: ``written`` False means it deletes the merged file (no input file)."""

    files: tuple[str, ...]
    non_masquerade_cidrs: tuple[CidrEntry, ...]
    masq_link_local: Setting
    masq_link_local_ipv6: Setting
    written: bool
    warnings: tuple[ConfigWarning, ...] = field(default=())

    def cidrs(self) -> list[str]:
        return [c.cidr for c in self.non_masquerade_cidrs]

    def text(self) -> str | None:
        """The merged file as yaml.v2 marshals it (None: the file is deleted)."""
        if not self.written:
            return None
        lines = ["nonmasqueradecidrs:" + ("" if self.non_masquerade_cidrs else " []")]
        lines += [f"- {c.cidr}" for c in self.non_masquerade_cidrs]
        lines.append(f"masqlinklocal: {'true' if self.masq_link_local.value else 'false'}")
        lines.append(f"masqlinklocalipv6: {'true' if self.masq_link_local_ipv6.value else 'false'}")
        return "\n".join(lines) + "\n"

    def line_of(self, cidr: str) -> int | None:
        """The line of ``cidr`` in ``text()`` (1-based)."""
        for i, c in enumerate(self.non_masquerade_cidrs):
            if c.cidr == cidr:
                return i + 2
        return None

    def to_dict(self) -> dict:
        return {"files": list(self.files), "written": self.written,
                "nonMasqueradeCIDRs": [c.to_dict() for c in self.non_masquerade_cidrs],
                "masqLinkLocal": self.masq_link_local.to_dict(),
                "masqLinkLocalIPv6": self.masq_link_local_ipv6.to_dict(),
                "text": self.text(), "warnings": [w.to_dict() for w in self.warnings]}


def reads(name: str) -> bool:
    """Does the merger read a file of this name from its input folder?"""
    return name.startswith(INPUT_PREFIX)


def _check_cidr(file: str, key: str | None, text: str, line: int | None) -> None:
    try:
        parse_cidr(text)
    except CidrProblem as exc:
        if exc.kind == "mapped":
            return          # net.ParseCIDR takes it; the merger has no family check
        code = E_PARSE if exc.kind == "parse" else E_ALIGN
        hint = ("write an address and prefix length such as 10.0.0.0/8" if exc.kind == "parse"
                else "use the network address of the block")
        raise ConfigError(f"{exc}; {FATAL}", file=file, line=line, key=key, value=text, code=code,
                          hint=hint) from None


def merge(sources) -> MergedConfig:
    """Merge ``sources`` (``ConfigSource``: name + bytes, any order) as the merger does.

    Raises ``ConfigError`` where the merger exits (decode/type errors keep the agent codes
    E102/E103 of the shared decoder; CIDRs E330/E331)."""
    chosen = sorted((s for s in sources if reads(s.name)), key=lambda s: s.name.encode())
    cidrs: dict[str, list[Origin]] = {}
    on: dict[str, list[Origin]] = {"masqLinkLocal": [], "masqLinkLocalIPv6": []}
    off: dict[str, list[Origin]] = {"masqLinkLocal": [], "masqLinkLocalIPv6": []}
    warnings: list[ConfigWarning] = []
    for src in chosen:
        doc = decode_document(src.name, src.data)
        fields, found = apply_document(src.name, doc, AZURE_V2)
        warnings.extend(found)
        f: FieldValue | None = fields.get("nonMasqueradeCIDRs")
        items = [(i.value, i.line) for i in f.value] if f is not None and f.value is not None else []
        for text, line in items:
            _check_cidr(src.name, f.key, text, line)
        for text, line in items:
            cidrs.setdefault(text, []).append(Origin("file", src.name, line, f.key))
        for name in on:
            b = fields.get(name)
            if b is not None:
                (on if b.value else off)[name].append(Origin("file", src.name, b.line, b.key))
    entries = tuple(CidrEntry(c, family(c), tuple(o)) for c, o in cidrs.items())

    def setting(name: str) -> Setting:
        if on[name]:
            return Setting(True, tuple(on[name]))
        if off[name]:
            return Setting(False, tuple(off[name]))
        note = "not set in any ip-masq* file (false)" if chosen else "no ip-masq* file: the merged file is deleted"
        return Setting(False, (Origin("default", note=note),))

    return MergedConfig(tuple(s.name for s in chosen), entries, setting("masqLinkLocal"),
                        setting("masqLinkLocalIPv6"), bool(chosen), tuple(warnings))


__all__ = ["MERGER", "MERGED_FILE", "MergedConfig", "merge", "reads"]
