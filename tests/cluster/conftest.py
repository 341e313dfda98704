"""Fixtures of the offline gathering tests (build, bundles, redaction, collect, examples).

Helpers live in ``bundlekit`` beside this file."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
