"""Fixtures of the inspect tests; the helpers live in ``inspectlib`` beside this file."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
