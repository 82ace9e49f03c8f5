"""ops/activations.py: softplus, leaky_relu, hardsigmoid, hardtanh against
torch.nn.functional in float64 (PyTorch's definitions and its gradients at the kinks are the
reference), dtypes and bad attributes; and every new primitive (these and ops/selection.py)
composed in a small custom cell that passes the whole-layer gradient check."""

import math

import numpy as np
import pytest
from tinygrad_lstm.tooling.testing import assert_cell_gradients

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter, Tensor

# Every kink (0, +-1, +-3, the bounds tried below, softplus's threshold 20) and points between.
X = np.array(
    [
        -40.0,
        -4.0,
        -3.0,
        -2.0,
        -1.0,
        -0.5,
        -1e-300,
        0.0,
        0.25,
        0.5,
        1.0,
        2.9,
        3.0,
        4.0,
        19.9,
        20.0,
        20.000001,
        35.0,
    ]
)


def leaf(data, dtype=np.float64):
    return Tensor(np.asarray(data, dtype), requires_grad=True)


def compare_with_torch(ours, theirs, grad_rtol=1e-15):
    """Values and gradients of ``ours`` and ``theirs`` on X under one random upstream
    gradient; values must agree to the last bit or so."""
    torch = pytest.importorskip("torch")
    x, tx = leaf(X), torch.tensor(X, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    g = np.random.default_rng(0).standard_normal(X.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(
        y.data, ty.detach().numpy(), rtol=1e-15, atol=0, err_msg="values differ from PyTorch"
    )
    np.testing.assert_allclose(
        x.grad, tx.grad.numpy(), rtol=grad_rtol, atol=0, err_msg="gradients differ from PyTorch"
    )
    return x.grad


@pytest.mark.parametrize(("beta", "threshold"), [(1.0, 20.0), (2.0, 1.0), (0.5, 3.0), (-1.0, 20.0)])
def test_softplus_matches_pytorch(beta, threshold):
    torch = pytest.importorskip("torch")
    compare_with_torch(
        lambda x: tg.softplus(x, beta, threshold),
        lambda t: torch.nn.functional.softplus(t, beta, threshold),
    )


def test_softplus_is_linear_past_the_threshold_and_finite_far_below():
    x = leaf([-1000.0, 20.0, 20.5, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = tg.softplus(x)
        y.backward(np.ones(4))
    np.testing.assert_array_equal(y.data[2:], [20.5, 1000.0])
    assert y.data[0] == 0.0 and y.data[1] == pytest.approx(20.0 + math.exp(-20.0), rel=1e-15)
    np.testing.assert_array_equal(x.grad[[0, 2, 3]], [0.0, 1.0, 1.0])


def test_softplus_refuses_beta_zero():
    with pytest.raises(ValueError, match="softplus: beta must be nonzero"):
        tg.softplus(leaf([1.0]), beta=0.0)


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0, -0.5, 1.5])
def test_leaky_relu_matches_pytorch_with_the_slope_at_zero(slope):
    torch = pytest.importorskip("torch")
    grad = compare_with_torch(
        lambda x: tg.leaky_relu(x, slope), lambda t: torch.nn.functional.leaky_relu(t, slope)
    )
    zero = list(X).index(0.0)
    x = leaf([0.0])
    tg.leaky_relu(x, slope).backward(np.ones(1))
    assert x.grad[0] == slope and np.isfinite(grad[zero])


def test_hardsigmoid_matches_pytorch():
    """PyTorch's float64 backward multiplies by 1/6 rounded to float32 (0.16666667163...),
    a relative error of 3e-8; ours uses 1/6 in the input's dtype, checked exactly below."""
    torch = pytest.importorskip("torch")
    compare_with_torch(
        tg.hardsigmoid,
        torch.nn.functional.hardsigmoid,
        grad_rtol=abs(float(np.float32(1 / 6)) * 6 - 1) * 1.01,
    )
    x = leaf([-3.5, -3.0, -1.0, 0.0, 2.0, 3.0, 3.5])
    y = tg.hardsigmoid(x)
    y.backward(np.ones(7))
    np.testing.assert_array_equal(y.data, [0, 0, 2 / 6, 0.5, 5 / 6, 1, 1])
    np.testing.assert_array_equal(x.grad, [0, 0, 1 / 6, 1 / 6, 1 / 6, 0, 0])


@pytest.mark.parametrize(("low", "high"), [(-1.0, 1.0), (-2.0, 0.5), (0.5, 0.5)])
def test_hardtanh_matches_pytorch_with_zero_gradient_at_the_bounds(low, high):
    torch = pytest.importorskip("torch")
    compare_with_torch(
        lambda x: tg.hardtanh(x, low, high), lambda t: torch.nn.functional.hardtanh(t, low, high)
    )
    x = leaf([low, (low + high) / 2, high])
    tg.hardtanh(x, low, high).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0 if low == high else 1.0, 0.0])


def test_hardtanh_refuses_min_above_max_as_pytorch_does():
    with pytest.raises(
        ValueError,
        match=r"hardtanh: min_val 1.0 must not be greater than "
        r"max_val -1.0",
    ):
        tg.hardtanh(leaf([0.0]), 1.0, -1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softplus", "leaky_relu", "hardsigmoid", "hardtanh"])
def test_dtype_is_kept_in_values_and_gradients(name, dtype):
    x = leaf(X, dtype)
    with np.errstate(over="raise"):
        y = getattr(tg, name)(x)
        y.backward(np.ones(y.shape, dtype))
    assert y.dtype == x.grad.dtype == dtype
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad))


class HardGatedCell(Module):
    """A small cell that uses every primitive added with these ops, so the whole-layer
    gradient check runs through each backward inside a recurrence:

        [i | f | c] = x W_ih^T + h W_hh^T + b
        keep = clip(softplus(f), max=1),  gate = hardsigmoid(i)
        cand = hardtanh(leaky_relu(c, 0.1), -0.2, 0.5)
        mixed = where(h > 0, maximum(cand, h), minimum(cand, h))
        h' = (keep h + gate mixed) / 2 - 0.1 |h|        (|h'| <= 1.1 max(|h|, 1): no blow-up)
    """

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        rng = rng or np.random.default_rng(0)

        def draw(*shape):  # wide enough that gates saturate and bounds are crossed
            return Parameter(rng.uniform(-2.0, 2.0, shape).astype(dtype))

        self.weight_ih = draw(3 * hidden_size, input_size)
        self.weight_hh = draw(3 * hidden_size, hidden_size)
        self.bias = draw(3 * hidden_size)
        self.hidden_size = hidden_size

    def init_state(self, batch_size, dtype=np.float32):
        return tg.zeros(batch_size, self.hidden_size, dtype=dtype)

    def forward(self, x, h):
        a = x @ self.weight_ih.T + h @ self.weight_hh.T + self.bias
        i, f, c = tg.split(a, 3, axis=1)
        keep = f.softplus().clip(max=1.0)  # the Tensor method forms
        gate = tg.hardsigmoid(i)
        cand = tg.hardtanh(tg.leaky_relu(c, 0.1), -0.2, 0.5)
        mixed = tg.where(h > 0, cand.maximum(h), tg.minimum(cand, h))
        h = (keep * h + gate * mixed) * 0.5 - 0.1 * abs(h)
        return h, h


def test_the_new_primitives_compose_in_a_custom_cell_gradient_check():
    report = assert_cell_gradients(
        HardGatedCell,
        input_size=3,
        hidden_size=4,
        seq_len=5,
        batch=3,
        num_layers=1,
        bidirectional=False,
        seed=1,
    )
    assert report.ok and report.worst_rel_error < 1e-6
