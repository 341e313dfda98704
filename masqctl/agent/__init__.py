"""The node-agent daemon: engine + iptables on a host (stdlib and the engine only)."""
