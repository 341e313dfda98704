"""Which files an agent reads, per-file validation, and the merge, with provenance.

azure-v2 (AKS): every file in the folder whose name starts with ``ip-masq``, in name order
(Go's ``os.ReadDir`` sorts); each file is decoded and validated alone, then merged into an
initially empty config: CIDR lists unioned (exact-string de-duplication), booleans OR'd.
Defaults apply only when no such file exists. The Go agent emits the union in random map
order; masqctl keeps a deterministic order (files by name, then position in the file, first
occurrence wins). The order of RETURN rules never changes which packets are masqueraded.

upstream / tke: the single file ``ip-masq-agent``; missing file means defaults; a present file
is decoded over the defaults (a key it does not set keeps its default).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from dataclasses import dataclass

from masqctl.configfolder import UPSTREAM_FILE, V2_PREFIX, Swapped, generation, read_folder
from masqctl.engine.cidr import CidrProblem, family, parse_cidr
from masqctl.engine.cilium import effective_config as cilium_config
from masqctl.engine.decode import decode_document
from masqctl.engine.fields import FieldValue, apply_document
from masqctl.engine.model import (AZURE_V2, CILIUM_FLAVORS, DEFAULT_CIDR_LIMIT, FLAVORS, PREFIX_FLAVORS, RESERVED_RANGES, RFC1918,
                                  AgentOptions, CidrEntry, ConfigWarning, EffectiveConfig,
                                  FileReport, Origin, Setting)
from masqctl.errors import ConfigError, UsageError

V2_CIDR_LIMIT = 64
_SWAP_RETRIES = 5


@dataclass(frozen=True)
class ConfigSource:
    """The bytes of one config file as the agent would read them."""

    name: str
    data: bytes


def read_config_dir(path: str, flavor: str) -> list[ConfigSource]:
    """Read the files ``flavor`` reads from folder ``path``.

    In a ConfigMap volume the files are read from the generation ``..data`` points to; if
    kubelet swaps it meanwhile they are read again, so a half-updated folder is never
    returned (``masqctl.configfolder``).
    """
    return read_config_folder(path, flavor)[0]


def read_config_folder(path: str, flavor: str) -> tuple[list[ConfigSource], tuple[str, ...]]:
    """``read_config_dir`` plus the names of the folder's other files, which the agent never reads."""
    _check_flavor(flavor)
    for _ in range(_SWAP_RETRIES):
        try:
            _, files, unread = read_folder(path, flavor)
        except Swapped:
            continue
        except FileNotFoundError as exc:
            if generation(path) is not None:
                continue  # the old generation vanished while we read it
            if os.path.normpath(exc.filename or "") == os.path.normpath(path):
                why = " (the azure-v2 agent exits on this)" if flavor == "azure-v2" else ""
                raise ConfigError(f"the config folder does not exist{why}",
                                  file=path, code="E101",
                                  hint="mount the ConfigMap volume at this path, or pass --config-dir") from None
            raise ConfigError("the config file vanished while the folder was read",
                              file=os.path.basename(exc.filename or path), code="E101") from None
        except IsADirectoryError as exc:
            raise ConfigError("is a folder, not a file (the agent fails to read it)",
                              file=os.path.basename(exc.filename or path), code="E101") from None
        except OSError as exc:
            if os.path.normpath(exc.filename or "") == os.path.normpath(path):
                raise ConfigError(f"the config folder cannot be read: {exc.strerror}", file=path,
                                  code="E101") from None
            raise ConfigError(f"cannot be read: {exc.strerror}", file=os.path.basename(exc.filename or path),
                              code="E101") from None
        return [ConfigSource(name, data) for name, data in files], unread
    raise ConfigError(f"the config folder kept changing while it was read ({_SWAP_RETRIES} tries)",
                      file=path, code="E101", hint="try again; kubelet is updating the ConfigMap volume")


def load_config_dir(path: str, options: AgentOptions) -> EffectiveConfig:
    """Read and merge the config folder as the agent with ``options`` would. Files of the folder
    the agent does not read (a misnamed ``config.yaml``, a saved manifest) are warnings (W104):
    the agent ignores them without a word, and may run its defaults because of it."""
    sources, unread = read_config_folder(path, options.flavor)
    config = effective_config(sources, options)
    if not unread:
        return config
    ignored = tuple(_unread_warning(path, name, options.flavor, config) for name in unread)
    return dataclasses.replace(config, warnings=ignored + config.warnings)


_PEEK_BYTES = 64 << 10
_MANIFEST_TEXT = re.compile(rb'^kind:[ \t]*["\']?(ConfigMap|List)["\']?[ \t]*(#.*)?\r?$|"kind"\s*:\s*"(ConfigMap|List)"',
                            re.MULTILINE)


def _peek(path: str) -> bytes:
    """The start of a regular file, or b"" (a device, pipe or unreadable file is never read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, _PEEK_BYTES)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _unread_warning(path: str, name: str, flavor: str, config: EffectiveConfig) -> ConfigWarning:
    if flavor in PREFIX_FLAVORS:
        rule = f"the {flavor} agent reads only files whose names start with {V2_PREFIX!r}"
    else:
        rule = f"the {flavor} agent reads only the file {UPSTREAM_FILE!r}"
    if _MANIFEST_TEXT.search(_peek(os.path.join(path, name))):
        fix = (f"it looks like a Kubernetes manifest: save the value of its data key as file {UPSTREAM_FILE} "
               f"(kubectl get configmap NAME -o jsonpath='{{.data.KEY}}' > {UPSTREAM_FILE})")
    else:
        fix = f"if it holds agent config, rename it to {UPSTREAM_FILE}"
    consequence = ""
    if not config.files:
        consequence = ("; no file here is read, so the agent runs its defaults (nonMasqueradeCIDRs "
                       + ", ".join(config.cidrs()) + ")")
    return ConfigWarning("W104", name, None, None, f"not read: {rule}{consequence}; {fix}")


def _check_flavor(flavor: str) -> None:
    if flavor not in FLAVORS:
        raise UsageError(f"unknown flavour {flavor!r}; use one of {', '.join(FLAVORS)}",
                         input="--flavor", code="E201")


def default_cidrs(options: AgentOptions) -> tuple[str, ...]:
    return RFC1918 + (RESERVED_RANGES if options.nomasq_all_reserved_ranges else ())


def effective_config(sources: list[ConfigSource], options: AgentOptions) -> EffectiveConfig:
    """Decode, validate and merge ``sources`` (already in the agent's reading order)."""
    _check_flavor(options.flavor)
    if options.flavor in CILIUM_FLAVORS:
        return cilium_config(sources, options)
    if options.flavor == AZURE_V2:
        return _merge_v2(sources, options)
    return _over_defaults(sources[0] if sources else None, options)


def _validate_cidrs(name: str, key: str | None, items, options: AgentOptions, limit: int | None,
                    count_line: int | None) -> None:
    if limit is not None and len(items) > limit:
        raise ConfigError(f"{len(items)} CIDRs in one file; the agent accepts at most {limit} "
                          "(excluding link-local)", file=name, line=count_line, key=key, code="E106",
                          hint="merge ranges into wider CIDRs, or split them over two ip-masq* files"
                          if options.flavor == AZURE_V2 else "merge ranges, or raise cidrLimit")
    for item in items:
        text, line = item
        try:
            parse_cidr(text)
        except CidrProblem as exc:
            code = {"parse": "E104", "align": "E105", "mapped": "E109"}[exc.kind]
            hint = {"parse": "write an address and prefix length such as 10.0.0.0/8",
                    "align": "use the network address of the block",
                    "mapped": "write the IPv4 CIDR itself"}[exc.kind]
            raise ConfigError(str(exc), file=name, line=line, key=key, value=text, code=code,
                              hint=hint) from None
        if not options.enable_ipv6 and family(text) == 6:
            raise ConfigError(f"IPv6 CIDR {text!r} but IPv6 is not enabled (the agent runs without "
                              "--enable-ipv6)", file=name, line=line, key=key, value=text, code="E107",
                              hint="remove the IPv6 CIDR, or run the agent with --enable-ipv6")


def _items(field: FieldValue | None) -> list[tuple[str, int | None]]:
    if field is None or field.value is None:
        return []
    return [(i.value, i.line) for i in field.value]


def _merge_v2(sources: list[ConfigSource], options: AgentOptions) -> EffectiveConfig:
    cidrs: dict[str, list[Origin]] = {}
    link_local: list[Origin] = []
    link_local_false: list[Origin] = []
    link_local6: list[Origin] = []
    link_local6_false: list[Origin] = []
    warnings: list[ConfigWarning] = []
    files: list[FileReport] = []
    for src in sources:
        doc = decode_document(src.name, src.data)
        fields, file_warnings = apply_document(src.name, doc, options.flavor)
        warnings.extend(file_warnings)
        cidr_field = fields.get("nonMasqueradeCIDRs")
        items = _items(cidr_field)
        _validate_cidrs(src.name, cidr_field.key if cidr_field else None, items, options,
                        V2_CIDR_LIMIT, cidr_field.line if cidr_field else None)
        for text, line in items:
            cidrs.setdefault(text, []).append(Origin("file", src.name, line, cidr_field.key))
        for name, on, off in (("masqLinkLocal", link_local, link_local_false),
                              ("masqLinkLocalIPv6", link_local6, link_local6_false)):
            f = fields.get(name)
            if f is not None:
                (on if f.value else off).append(Origin("file", src.name, f.line, f.key))
        files.append(FileReport(src.name, doc.format, tuple(fields)))
    if not sources:
        note = "default (no ip-masq* file in the config folder)"
        entries = tuple(CidrEntry(c, 4, (Origin("default", note=note),)) for c in default_cidrs(options))
        off = Setting(False, (Origin("default", note=note),))
        return EffectiveConfig(options.flavor, entries, off, off, (), True,
                               resync_interval=_flag_period(options))
    entries = tuple(CidrEntry(c, family(c), tuple(o)) for c, o in cidrs.items())
    return EffectiveConfig(
        options.flavor, entries,
        _or_setting(link_local, link_local_false),
        _or_setting(link_local6, link_local6_false),
        tuple(files), False, warnings=tuple(warnings),
        resync_interval=_flag_period(options))


def _flag_period(options: AgentOptions) -> Setting:
    return Setting(options.resync_interval, (Origin("flag", note="flag --resync-interval"),))


def _or_setting(on: list[Origin], off: list[Origin]) -> Setting:
    if on:
        return Setting(True, tuple(on))
    if off:
        return Setting(False, tuple(off))
    return Setting(False, (Origin("default", note="not set in any file (false)"),))


def _over_defaults(src: ConfigSource | None, options: AgentOptions) -> EffectiveConfig:
    default_note = ("default (no ip-masq-agent file)" if src is None
                    else "default (the file does not set it)")
    dflt = (Origin("default", note=default_note),)
    fields: dict[str, FieldValue] = {}
    warnings: list[ConfigWarning] = []
    files: tuple[FileReport, ...] = ()
    if src is not None:
        doc = decode_document(src.name, src.data)
        fields, warnings = apply_document(src.name, doc, options.flavor)
        files = (FileReport(src.name, doc.format, tuple(fields)),)

    def origin(f: FieldValue | None) -> tuple[Origin, ...]:
        return (Origin("file", src.name, f.line, f.key),) if f is not None else dflt

    cidr_field = fields.get("nonMasqueradeCIDRs")
    if cidr_field is not None:
        items = _items(cidr_field)
    else:
        items = [(c, None) for c in default_cidrs(options)]
    limit_field = fields.get("cidrLimit")
    limit = limit_field.value if limit_field is not None else DEFAULT_CIDR_LIMIT
    name = src.name if src is not None else "defaults"
    _validate_cidrs(name, cidr_field.key if cidr_field else None, items, options, limit,
                    cidr_field.line if cidr_field else None)
    src_field = fields.get("nonMasqueradeSrcCIDRs")
    src_items = _items(src_field)
    if src_items:
        _validate_cidrs(name, src_field.key, src_items, options, None, src_field.line)

    def entries(pairs, field: FieldValue | None) -> tuple[CidrEntry, ...]:
        seen: dict[str, list[Origin]] = {}
        for text, line in pairs:
            o = Origin("file", src.name, line, field.key) if field is not None else dflt[0]
            seen.setdefault(text, []).append(o)
        return tuple(CidrEntry(c, family(c), tuple(o)) for c, o in seen.items())

    ll, ll6 = fields.get("masqLinkLocal"), fields.get("masqLinkLocalIPv6")
    resync = fields.get("resyncInterval")
    return EffectiveConfig(
        options.flavor,
        entries(items, cidr_field),
        Setting(ll.value if ll else False, origin(ll)),
        Setting(ll6.value if ll6 else False, origin(ll6)),
        files, src is None or cidr_field is None,
        non_masquerade_src_cidrs=entries(src_items, src_field),
        cidr_limit=Setting(limit, origin(limit_field)),
        resync_interval=Setting(resync.value / 1e9 if resync else 60.0, origin(resync)),
        cidrs_nil=cidr_field is not None and cidr_field.value is None,
        warnings=tuple(warnings))

