"""Cluster snapshots: what masqctl knows about one cluster, and the ways to fill it.

The model: ``model`` (``ClusterSnapshot`` and the typed objects analysis reads), ``raw`` (the
native documents as gathered: ``RawCluster``), ``build`` (``RawCluster`` → ``ClusterSnapshot``,
through ``kubeobjects`` and ``azureobjects``, which shape Kubernetes and Azure documents, and
``shape``, their typed reading of a document with errors that name the key), ``recognise``
(which agent a DaemonSet runs, from its image and args), ``dumpheader`` (the iptables backend a
dump's header names) and ``armid`` (ARM resource IDs).

Gathering: ``options`` (``GatherOptions``: one definition of what to gather; its defaults in
``defaults``), ``selection`` (the node selector grammar and ``NodeSelection``), ``gather`` (picks
a bundle or the live cluster), ``bundle`` (reads and writes bundle directories and archives,
with ``yamlio`` for YAML and ``redact`` for ``--redact``). Everything that opens a socket lives
in ``live`` (the Kubernetes API, node exec capture, Azure Resource Manager, the ConfigMap write).

Pure apart from ``bundle``'s file I/O and ``live``. May import ``masqctl.errors``
and ``masqctl.agent.flags`` (the node-agent's flag definitions, to read a DaemonSet's args);
never ``analysis``, ``ops`` or ``cli``. See docs/architecture.md.
"""
