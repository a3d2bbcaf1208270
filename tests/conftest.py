"""Shared test setup: jax computes in float64 everywhere in the suite; CI runs hypothesis derandomized.

``HYPOTHESIS_PROFILE=ci`` (set by ``.ci/run``) fixes hypothesis's examples, so a
landing never depends on the luck of a draw; local runs keep exploring new ones.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

try:
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover - jax is a dependency, but keep collection working without it
    pass
