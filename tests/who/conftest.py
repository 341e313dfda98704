import os
import sys

# helpers of these tests (whonet.py) live beside them
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
