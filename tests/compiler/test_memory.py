"""compiler/memory.py: gradients are stored, not added into zero-filled arrays, so every
column of every gradient array must be written at every step, or zeroed. Cells whose
steps leave a state part, or some of its columns, unread, on both time loops (the
whole-pass drivers and the per-step BLAS loop), against composed in float64; and the
projected LSTM, whose new state is a matmul's product."""

import numpy as np
import pytest
from tinygrad_lstm.compiler import runtime
from tinygrad_lstm.layers import LSTM, Recurrent

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter

H = 3


class Cell(Module):
    def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float64, rng=None):
        super().__init__()
        rng = rng or np.random.default_rng(0)
        self.w = Parameter(rng.uniform(-0.5, 0.5, (input_size, H)).astype(dtype))
        self.u = Parameter(rng.uniform(-0.5, 0.5, (H, H)).astype(dtype))


class IgnoresAPart(Cell):
    """State (h, s): the step never reads s, so s's gradient is zero at every step."""

    def init_state(self, batch, dtype=np.float64):
        return tg.zeros(batch, H, dtype=dtype), tg.zeros(batch, H, dtype=dtype)

    def forward(self, x, state):
        h, _ = state
        h = (x @ self.w + h @ self.u).tanh()
        return h, (h, h * 2.0)


class ReadsHalfAPart(Cell):
    """State (h, m (N, 2H)): the step reads m's first H columns only."""

    def init_state(self, batch, dtype=np.float64):
        return tg.zeros(batch, H, dtype=dtype), tg.zeros(batch, 2 * H, dtype=dtype)

    def forward(self, x, state):
        h, m = state
        h = (x @ self.w + h @ self.u + m[:, :H]).tanh()
        return h, (h, tg.concat([h, h * h], axis=1))


def _results(layer, x):
    """Outputs and every gradient (x, parameters, initial state) of one loss."""
    rng = np.random.default_rng(7)
    zeros = layer.init_state(x.shape[1])
    state = tuple(tg.Tensor(rng.uniform(-1, 1, z.shape), requires_grad=True) for z in zeros)
    xt = tg.Tensor(x, requires_grad=True)
    y, finals = layer(xt, state)
    loss = (y * y).sum() + sum((f * f).sum() for f in finals)
    loss.backward()
    return [y.data, xt.grad, *(p.grad for p in layer.parameters()), *(s.grad for s in state)]


def _assert_compiled_equals_composed(make):
    x = np.random.default_rng(3).uniform(-1, 1, (5, 2, 2))
    got, want = (_results(make(fused), x) for fused in ("compiled", False))
    for k, (a, b) in enumerate(zip(got, want)):
        assert (a is None) == (b is None), f"array {k}: compiled {a}, composed {b}"
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=f"array {k}")


LOOPS = {"driver": runtime.SMALL_STEP, "blas": -1}


@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize("cls", [IgnoresAPart, ReadsHalfAPart])
def test_state_columns_the_step_does_not_read_get_zero_gradient(cls, loop, monkeypatch):
    monkeypatch.setattr(runtime, "SMALL_STEP", LOOPS[loop])
    _assert_compiled_equals_composed(
        lambda fused: Recurrent(
            cls, 2, H, dtype=np.float64, fused=fused, rng=np.random.default_rng(1)
        )
    )


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_new_state_made_by_a_matmul_gets_its_gradient(loop, monkeypatch):
    """LSTM with proj_size: h' = (o * tanh(c')) W_hr^T, a product; the step's end is copied
    by a kernel, which adds the gradients arriving for it."""
    monkeypatch.setattr(runtime, "SMALL_STEP", LOOPS[loop])
    _assert_compiled_equals_composed(
        lambda fused: LSTM(
            2, 4, proj_size=2, dtype=np.float64, fused=fused, rng=np.random.default_rng(1)
        )
    )
