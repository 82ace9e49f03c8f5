"""float32 forward kernels split into one loop per written row (compiler/fission.py).

A scalar stored twice in one sub-loop is computed once and copied, or, as the argument of a
fast activation, read by the activation's pass from its first store (``tanh(c_t)`` reads
``c_t``). These cells put the same scalar under several activations, in every order, and
compare the compiled layer with the composed one: in float32 (the split kernels) to 1e-4,
in float64 to 1e-12.
"""

import warnings

import numpy as np
import pytest
from test_soundness import TOL, TwoGates, _assert_same, _layers, _run
from tinygrad_lstm.layers.unroll import FusionWarning


class TwoActivationsOfOneValue(TwoGates):
    """sigmoid(a) and tanh(a): the second activation's pass must not read the first's
    result from the element the first computes in place."""

    def forward(self, x, h):
        a, g = self.gates(x, h)
        h = a.sigmoid() * a.tanh() + g * 0.5
        return h, h


class ActivationsOfTheNewState(TwoGates):
    """c is the new state (written anyway) and the argument of tanh and sigmoid: both passes
    read it where it was written."""

    def forward(self, x, c):
        a, g = self.gates(x, c)
        c = a.sigmoid() * c + g.tanh()
        return c.tanh() + c.sigmoid() * 0.5, c


class StateActivatedThenActivatedAgain(TwoGates):
    """tanh(tanh(c)) beside sigmoid(c): activations of depth 1 and 2 of one stored value."""

    def forward(self, x, c):
        a, g = self.gates(x, c)
        c = a.sigmoid() * c + (1 - a.sigmoid()) * g
        return c.tanh().tanh() - c.sigmoid(), c


@pytest.mark.parametrize(
    "cls", [TwoActivationsOfOneValue, ActivationsOfTheNewState, StateActivatedThenActivatedAgain]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_value_under_several_activations_compiles_to_what_composed_computes(cls, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FusionWarning)
        fused, composed = _layers(cls, dtype)
    assert set(fused._runners) == {"compiled"}
    tol = TOL if dtype == np.float64 else 1e-4
    for steps, batch in ((4, 3), (1, 1), (6, 5)):
        _assert_same(_run(fused, steps, batch), _run(composed, steps, batch), tol)
