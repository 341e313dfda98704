"""The one place the tests build Kubernetes/Azure documents and bundles.

* ``objects`` — one builder per kind (namespace, node, pod, agent pod, ConfigMap, reconciled
  ConfigMap, DaemonSet, List, aks.json, vnet/subnet/peering, iptables-save and ``ip -o addr``
  texts), each mirroring what kubectl/az/iptables-save print, in the layouts the tests use.
* ``bundle`` — ``Bundle`` (documents → a bundle folder), ``write_files``, ``list_yaml``, ``run_cli``.
* Clusters built from them: ``served`` (objects of the local test API server, ``small_cluster``),
  ``offline`` (the offline gathering tests' documents), ``akscal`` (the inspect tests' healthy
  cluster, ``base``/``kubenet``), ``seed`` (the explain tests' ``spoke``/``kubenet`` bundles), ``fleet`` (several peered clusters with Services).

``tests/kubeapi/objects.py`` and ``tests/cluster/bundlekit.py`` re-export ``served`` and
``offline`` under their old names.
"""
