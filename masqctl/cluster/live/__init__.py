"""The code that talks to the outside: every module here opens sockets or runs clients.

``kube`` gathers a cluster over the Kubernetes API (``kubeclient`` is the thin HTTP client it uses,
``kubeconfig`` reads the kubeconfig or the in-cluster service account, ``capture`` is what is run
on a node by exec to capture its tables and how the answer is read), ``azure`` reads the AKS
cluster and its VNets from Azure Resource Manager (``azure_discovery`` finds the cluster from the
kubeconfig, ``azure_json`` writes SDK models as the JSON ``az`` prints), and ``configmap_write``
writes and verifies the user ConfigMap for ``apply``.

May import the pure modules of ``masqctl.cluster`` (model, raw, options, selection, armid,
dumpheader, yamlio) and ``masqctl.errors``; nothing above the cluster package. The heavy client
libraries (kubernetes, azure-*) are imported inside the functions that use them, so that
importing a module here stays cheap.
"""
