"""Pure answers over a ``ClusterSnapshot`` (or a node dump): no I/O, no clients, no printing.

What the cluster runs: ``agentconfig`` (the config each agent DaemonSet really runs, from its
real projection of the ConfigMaps, with provenance), ``mode`` (who masquerades pod traffic in this
network mode, on what evidence), ``network`` (what an address or CIDR is on the VNets),
``nodedumps`` (each distinct node capture parsed once for every reader) and ``drift`` (does each
node's live chain match the effective config).

The questions the commands ask: ``inspect`` (the report) with ``findings/`` (one module per
family of MQ codes; a new finding goes there), ``explain`` (one flow through one node's rules)
and ``explain_cluster`` (the same on a snapshot: the pod's node, its capture, the reply path),
``ingress`` (a packet arriving from outside through a destination node's kube-proxy rules),
``plan`` with ``recommend`` and ``userconfig`` (what ``apply`` would write and what it would
change), ``verify`` (has a written change reached the nodes, given a function that observes them).

May import ``masqctl.engine``, ``masqctl.netfilter``, the pure modules of ``masqctl.cluster``
(model, shape, selection, …; never ``cluster.live``) and ``masqctl.errors``. Never ``ops`` or
``cli``. See docs/architecture.md.
"""
