"""Shared test setup: jax computes in float64 everywhere in the suite."""

try:
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover - jax is a dependency, but keep collection working without it
    pass
