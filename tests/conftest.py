"""Test configuration: hypothesis profiles, and a terminal summary of measured figures.

Profiles (``HYPOTHESIS_PROFILE``):

- ``ci`` (the default): derandomized, 25 examples per property (the random-program and
  random-cell properties scale theirs from this), no deadline, because Numba compiles a
  kernel the first time it is called;
- ``dev``: randomized, 200 examples, for everyday exploration;
- ``long``: randomized, 2,000 examples, for a long search before a release or after a
  change to the backward walk or the cell compiler (docs/testing.md gives the times).

A test can add a line to the summary printed at the end of the run with the
``summary_line`` fixture (the compile rate of random cells is one).
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
settings.register_profile(
    "long",
    deadline=None,
    max_examples=2000,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_SUMMARY: list[str] = []


@pytest.fixture
def summary_line():
    """``summary_line(text)``: print ``text`` in the terminal summary of the run."""
    return _SUMMARY.append


def pytest_terminal_summary(terminalreporter):
    if _SUMMARY:
        terminalreporter.section("measured by the tests")
        for line in _SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture
def scratch_registry():
    """Let a test register ops and cells; the registry is restored afterwards."""
    tables = (registry.OPS, registry._OP_INFO, registry._CELLS, registry._loaded)
    saved = [table.copy() for table in tables]
    yield
    for table, old in zip(tables, saved):
        table.clear()
        table.update(old)
