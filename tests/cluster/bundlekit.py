"""Kept for import compatibility: the offline tests' documents now live in ``clusterkit.offline``
and ``clusterkit.bundle`` (builders in ``clusterkit.objects``). Re-exports only."""

from clusterkit.bundle import EXAMPLES as EXAMPLES
from clusterkit.bundle import ROOT as ROOT
from clusterkit.bundle import run_cli as run_cli
from clusterkit.offline import AKS_PROJECTION as AKS_PROJECTION
from clusterkit.offline import SUB as SUB
from clusterkit.offline import configmap as configmap
from clusterkit.offline import daemonset as daemonset
from clusterkit.offline import kube_list as kube_list
from clusterkit.offline import node as node
from clusterkit.offline import pod as pod
