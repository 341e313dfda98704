"""The node-agent daemon: engine + iptables on a host (stdlib and the engine only).

``main`` is its entry point, ``loop`` the long-running process (standard library only),
``worker`` the short-lived process that runs the engine. Other packages import only
``masqctl.agent.flags`` (its flag definitions and checks); the engine never imports the agent.
"""
