"""ops/rule_source.py: the rewriter maps every function a rule may call (the registry's list)
to Numba, and nothing else."""

from tinygrad_lstm.ops.rule_source import FUNCTIONS

from tinygrad_lstm.registry_records import SCALAR_FUNCTIONS


def test_the_rewriter_maps_exactly_the_functions_the_registry_allows():
    assert set(FUNCTIONS) == set(SCALAR_FUNCTIONS)
