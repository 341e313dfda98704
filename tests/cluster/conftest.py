"""Fixtures of the offline gathering tests (build, bundles, redaction, collect, examples).

Documents and bundles come from ``clusterkit`` (tests/clusterkit)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
