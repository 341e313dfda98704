"""A local Azure Resource Manager for tests: HTTPS with a throwaway CA, the ARM REST shapes the real
``azure-mgmt-containerservice`` and ``azure-mgmt-network`` clients read, token endpoints for the real
``azure-identity`` credentials, and a stand-in ``az`` executable for ``AzureCliCredential``."""

from azurearm.pki import TestPKI, make_pki
from azurearm.server import ARM, arm_cluster, arm_peering, arm_subnet, arm_vnet
from azurearm.fakeaz import FakeAz

__all__ = ["ARM", "FakeAz", "TestPKI", "arm_cluster", "arm_peering", "arm_subnet", "arm_vnet", "make_pki"]
