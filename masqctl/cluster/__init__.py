"""Cluster snapshots: the model (``model``), native documents (``raw``), gathering options
(``options``), and the ways to fill them: bundles (``bundle``), the Kubernetes API (``kube``),
Azure Resource Manager (``azure``). ``gather`` picks one. See docs/architecture.md."""
