"""The masquerade agents' rule engine: config folder → merged config → iptables rules.

stdlib + PyYAML only (plus the stdlib-only ``masqctl.netfilter.tokens``); it never imports the
node-agent (``masqctl.agent`` runs the engine, not the other way round). Entry points:

* ``load_config_dir(path, options)`` / ``effective_config(sources, options)`` → ``EffectiveConfig``
  (raises ``masqctl.errors.ConfigError`` exactly where the agent would fail);
* ``render(config, options)`` → ``RuleSet`` (payloads, jump rule, provenance per rule);
* ``parse_to_ports(text)`` for upstream's ``--to-ports``.

The config reader's names (``masqctl.engine.configdir``, which loads PyYAML, and
``masqctl.engine.flagvalues``) are loaded on first use, so importing ``masqctl.engine.model`` or
rendering rules does not load PyYAML and the config decoder. The render module is imported
here (it needs no YAML): its name is also the ``render`` function's, and a submodule loaded
later would take the name over.
"""

from __future__ import annotations

import importlib

from masqctl.engine.model import (AZURE_V2, DEFAULT_CHAIN, DEFAULT_CONFIG_DIR, FLAVORS, TKE, UPSTREAM,
                                  AgentOptions, CidrEntry, ConfigWarning, EffectiveConfig, Origin,
                                  PortRange, Setting)
from masqctl.engine.render import FamilyRules, Rule, RuleSet, dry_run_text, jump_rule, render

# loaded on first use: public name -> the module of the package that defines it
_LAZY = {
    **dict.fromkeys(("ConfigSource", "read_config_dir", "load_config_dir", "effective_config", "default_cidrs"),
                    "configdir"),
    **dict.fromkeys(("agent_config_json", "check_chain_name", "parse_to_ports"), "flagvalues"),
}

__all__ = [
    "AZURE_V2", "UPSTREAM", "TKE", "FLAVORS", "DEFAULT_CHAIN", "DEFAULT_CONFIG_DIR",
    "AgentOptions", "CidrEntry", "ConfigWarning", "EffectiveConfig", "Origin", "PortRange", "Setting",
    "ConfigSource", "read_config_dir", "load_config_dir", "effective_config", "default_cidrs",
    "FamilyRules", "Rule", "RuleSet", "render", "jump_rule", "dry_run_text",
    "agent_config_json", "check_chain_name", "parse_to_ports",
]


def __getattr__(name: str):
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
