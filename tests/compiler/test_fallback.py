"""A step the cell compiler cannot take runs composed, and ``fused=`` says what blocked it.

Chosen behaviour: a ``FusionWarning`` (not an error) at construction, naming the op and
what to do, then the composed layer (same results): the user asked for speed, and still
gets a correct layer. Turn it into an error with ``warnings.simplefilter("error",
FusionWarning)``.
"""

import warnings

import numpy as np
import pytest
from tinygrad_lstm.compiler import NotFusible, lower
from tinygrad_lstm.layers import Recurrent
from tinygrad_lstm.layers.unroll import FusionWarning

import tinygrad_lstm as tg
from tinygrad_lstm import Function, Module, Parameter, Tensor, register_cell, register_op


def _cell_class(name: str, activation):
    """A registered Elman-like cell h' = activation(x W^T + h U^T)."""

    @register_cell(name)
    class Cell(Module):
        def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
            super().__init__()
            rng = rng or np.random.default_rng(0)
            self.w = Parameter(rng.uniform(-0.5, 0.5, (hidden_size, input_size)).astype(dtype))
            self.u = Parameter(rng.uniform(-0.5, 0.5, (hidden_size, hidden_size)).astype(dtype))
            self.hidden_size = hidden_size

        def init_state(self, batch, dtype=np.float32):
            return tg.zeros(batch, self.hidden_size, dtype=dtype)

        def forward(self, x, h):
            h = activation(x @ self.w.T + h @ self.u.T)
            return h, h

    return Cell


def _outputs(layer, x):
    xt = Tensor(x, requires_grad=True)
    y, h = layer(xt)
    (y * y).sum().backward()
    return [y.data, h.data, xt.grad] + [p.grad for p in layer.parameters()]


def test_an_op_without_a_scalar_rule_blocks_fusion_by_name(scratch_registry):
    @register_op("cube_no_rule", arity=1)
    class Cube(Function):
        """y = x**3 / 4;  dx = 3 g x**2 / 4 (no scalar rule declared)."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3 / 4

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved
            return 3 * g * x * x / 4

    _cell_class("cube_cell", lambda a: Cube.apply(a))
    with pytest.warns(
        FusionWarning,
        match=r"op 'cube_no_rule'.*has no scalar rule.*"
        r"scalar=.*docs/plugins.md.*runs composed",
    ):
        fused = Recurrent(
            "cube_cell", 3, 4, fused=True, dtype=np.float64, rng=np.random.default_rng(2)
        )
    assert fused._runners == ["composed"]
    composed = Recurrent("cube_cell", 3, 4, dtype=np.float64, rng=np.random.default_rng(2))
    x = np.random.default_rng(1).uniform(-1, 1, (4, 2, 3))
    for got, want in zip(_outputs(fused, x), _outputs(composed, x)):
        np.testing.assert_array_equal(got, want)


def test_a_reduction_inside_the_step_blocks_fusion_by_name(scratch_registry):
    def normalised(a):
        return a / (1 + (a * a).sum(axis=1, keepdims=True))

    _cell_class("norm_cell", normalised)
    with pytest.warns(FusionWarning, match=r"op 'sum'.*reduction op inside the recurrence"):
        layer = Recurrent("norm_cell", 3, 4, fused=True, dtype=np.float64)
    assert layer._runners == ["composed"]


def test_a_mask_computed_outside_registered_ops_is_refused(scratch_registry):
    """A mask made from the state's array (not by an op) would be frozen by the compiler:
    reading a tensor's values while the step is captured refuses it, naming the line."""

    def masked(a):
        return a * Tensor((a.data > 0).astype(a.dtype))

    cls = _cell_class("mask_cell", masked)
    with pytest.raises(NotFusible, match=r"reads a tensor's values with \.data at .*test_fallback"):
        lower(cls(3, 4, dtype=np.float64), 3, np.float64)


def test_fused_takes_only_known_modes():
    with pytest.raises(
        ValueError,
        match=r"fused must be one of \(False, True, 'compiled'\), "
        r"got 'yes'",
    ):
        Recurrent("rnn", 3, 4, fused="yes")


def test_a_concat_read_inside_its_own_stage_compiles(scratch_registry):
    """Once refused ("concat read by an op of the stage that makes it"): an op acts column by
    column, so on a concat it is the concat of the op on each part."""

    def doubled(a):
        both = tg.concat([a, a * 2.0], axis=1)
        return tg.split(both.tanh() * (1 - both), 2, axis=1)[1]

    _cell_class("concat_cell", doubled)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FusionWarning)
        layer = Recurrent("concat_cell", 3, 4, fused=True, dtype=np.float64)
    assert layer._runners == ["compiled"]
    composed = Recurrent("concat_cell", 3, 4, dtype=np.float64)
    composed.load_state_dict(layer.state_dict())
    x = np.random.default_rng(0).uniform(-1, 1, (4, 2, 3))
    for got, want in zip(_outputs(layer, x), _outputs(composed, x)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_a_step_that_fails_on_sample_inputs_runs_composed(scratch_registry):
    def failing(a):
        raise RuntimeError("this cell only works on weekdays")

    _cell_class("failing_cell", failing)
    with pytest.warns(FusionWarning, match=r"sample inputs .* raised RuntimeError: this cell"):
        Recurrent("failing_cell", 3, 4, fused=True)
