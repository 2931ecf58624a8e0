"""Test-wide settings: notebooks run in the smoke profile and never touch the network."""

import os

# Set before any notebook kernel starts, so nbval's kernels inherit them.
os.environ.setdefault("SEG_SMOKE", "1")
os.environ.setdefault("SEG_OFFLINE", "1")
