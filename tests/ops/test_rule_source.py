"""ops/rule_source.py: the rewriter maps every function a rule may call (the registry's list)
to Numba, and nothing else; a module's header defines what its kernels read."""

import math

import numpy as np
import pytest
from tinygrad_lstm.ops.rule_source import FUNCTIONS, Module

from tinygrad_lstm.registry_records import SCALAR_FUNCTIONS


def test_the_rewriter_maps_exactly_the_functions_the_registry_allows():
    assert set(FUNCTIONS) == set(SCALAR_FUNCTIONS)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_header_defines_every_constant_infinities_and_nan_included(dtype):
    """A constant of the compiled step may be infinite (``minimum(h, math.inf)``): its
    repr ``inf`` is no Python name, so the module would fail to load."""
    module = Module(dtype, [], recurrent_helpers=False)
    names = [module.constant(v) for v in (1.5, math.inf, -math.inf, math.nan)]
    namespace: dict = {}
    exec("\n".join(module.header()), namespace)  # noqa: S102 - our generated text
    values = [namespace[n] for n in names]
    assert all(type(v) is dtype for v in values)
    assert values[:3] == [1.5, math.inf, -math.inf] and math.isnan(values[3])


def test_the_header_imports_the_fast_functions_in_float32_only():
    f32 = "\n".join(Module(np.float32, [], recurrent_helpers=False).header())
    f64 = "\n".join(Module(np.float64, [], recurrent_helpers=False).header())
    assert "import kernel_functions, sigmoid_fast, tanh_fast" in f32
    assert "import kernel_functions\n" in f64 and "kernel_functions()" in f64
    assert "jit_helpers" not in f32 + f64
    assert "jit_helpers()" in "\n".join(Module(np.float64, [2]).header())
