"""Test configuration: a deterministic hypothesis profile for CI and everyday runs.

``ci`` (the default) is derandomized and has no deadline, because Numba compiles a kernel
the first time it is called. Set HYPOTHESIS_PROFILE=dev for randomized, longer runs.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

from tinygrad_lstm import registry

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "dev", deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def scratch_registry():
    """Let a test register ops and cells; the registry is restored afterwards."""
    tables = (registry.OPS, registry._OP_INFO, registry._CELLS, registry._loaded)
    saved = [table.copy() for table in tables]
    yield
    for table, old in zip(tables, saved):
        table.clear()
        table.update(old)
