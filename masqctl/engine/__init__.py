"""The masquerade agents' rule engine: config folder → merged config → iptables rules.

stdlib + PyYAML only (plus the stdlib-only ``masqctl.netfilter.tokens``). Entry points:

* ``load_config_dir(path, options)`` / ``effective_config(sources, options)`` → ``EffectiveConfig``
  (raises ``masqctl.errors.ConfigError`` exactly where the agent would fail);
* ``render(config, options)`` → ``RuleSet`` (payloads, jump rule, provenance per rule);
* ``parse_to_ports(text)`` for upstream's ``--to-ports``.
"""

from masqctl.engine.configdir import (ConfigSource, default_cidrs, effective_config, load_config_dir,
                                      read_config_dir)
from masqctl.engine.model import (AZURE_V2, DEFAULT_CHAIN, DEFAULT_CONFIG_DIR, FLAVORS, TKE, UPSTREAM,
                                  AgentOptions, CidrEntry, ConfigWarning, EffectiveConfig, Origin,
                                  PortRange, Setting)
from masqctl.engine.options import agent_config_json, check_chain_name, parse_to_ports
from masqctl.engine.render import FamilyRules, Rule, RuleSet, dry_run_text, jump_rule, render

__all__ = [
    "AZURE_V2", "UPSTREAM", "TKE", "FLAVORS", "DEFAULT_CHAIN", "DEFAULT_CONFIG_DIR",
    "AgentOptions", "CidrEntry", "ConfigWarning", "EffectiveConfig", "Origin", "PortRange", "Setting",
    "ConfigSource", "read_config_dir", "load_config_dir", "effective_config", "default_cidrs",
    "FamilyRules", "Rule", "RuleSet", "render", "jump_rule", "dry_run_text",
    "agent_config_json", "check_chain_name", "parse_to_ports",
]
