"""Kept for import compatibility: the API server's objects now live in ``clusterkit.served``
(builders in ``clusterkit.objects``). Re-exports only."""

from clusterkit.served import AGENT_IMAGE as AGENT_IMAGE
from clusterkit.served import AGENT_LABELS as AGENT_LABELS
from clusterkit.served import RECONCILED_V4 as RECONCILED_V4
from clusterkit.served import agent_daemonset as agent_daemonset
from clusterkit.served import agent_pod as agent_pod
from clusterkit.served import configmap as configmap
from clusterkit.served import namespace as namespace
from clusterkit.served import node as node
from clusterkit.served import pod as pod
from clusterkit.served import reconciled_configmap as reconciled_configmap
from clusterkit.served import small_cluster as small_cluster
