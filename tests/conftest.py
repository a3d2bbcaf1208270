"""Shared test setup: CI runs hypothesis derandomized.

``HYPOTHESIS_PROFILE=ci`` (set by ``.ci/run``) fixes hypothesis's examples, so a
landing never depends on the luck of a draw; local runs keep exploring new ones.

jax's global float64 switch is deliberately left off: the package computes in
float64 on its own, and the suite proves it (tests/test_numeric.py).
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
