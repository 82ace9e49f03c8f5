"""ops/kernels.py: the Numba ufuncs are stable, keep their dtype, broadcast, and the fused
backwards equal the formulas they fuse."""

import decimal
import warnings

import numpy as np
import pytest
from tinygrad_lstm.ops import kernels

DTYPES = [np.float32, np.float64]
LARGE = [-1e4, -1e3, -100.0, -30.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 30.0, 100.0, 1e3, 1e4]
UNARY = ["sigmoid", "tanh", "relu"]
BINARY = ["sigmoid_grad", "tanh_grad", "relu_grad"]
TERNARY = ["pow_grad", "div_grad_denominator"]


def close(got, want, dtype):
    """Equal to a few units in the last place (subnormal results: to the smallest normal)."""
    info = np.finfo(dtype)
    np.testing.assert_allclose(got, want, rtol=4 * info.eps, atol=info.tiny)


def strict():
    """Overflow, invalid and divide raise; warnings are errors. Underflow stays ignored, as by
    NumPy's default: sigmoid(-1e4) rounding to 0 (or to a subnormal) is the correct result."""
    return np.errstate(over="raise", invalid="raise", divide="raise", under="ignore")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_is_stable_and_correct_for_large_inputs(dtype):
    x = np.array(LARGE, dtype)
    with strict(), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = kernels.sigmoid(x)
    with decimal.localcontext(decimal.Context(prec=50)):
        want = np.array([float(1 / (1 + (-decimal.Decimal(v)).exp())) for v in LARGE], dtype)
    assert y.dtype == dtype and np.all(np.isfinite(y))
    close(y, want, dtype)
    assert y[0] == 0.0 and y[-1] == 1.0 and y[LARGE.index(0.0)] == 0.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_and_relu_for_large_inputs(dtype):
    x = np.array(LARGE, dtype)
    with strict(), warnings.catch_warnings():
        warnings.simplefilter("error")
        close(kernels.tanh(x), np.tanh(x), dtype)
        np.testing.assert_array_equal(kernels.relu(x), np.maximum(x, 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_backwards_equal_their_formulas(dtype):
    rng = np.random.default_rng(0)
    g, x = rng.standard_normal(50).astype(dtype), rng.uniform(-3, 3, 50).astype(dtype)
    y_sig, y_tanh = kernels.sigmoid(x), kernels.tanh(x)
    close(kernels.sigmoid_grad(g, y_sig), g * y_sig * (1 - y_sig), dtype)
    close(kernels.tanh_grad(g, y_tanh), g * (1 - y_tanh * y_tanh), dtype)
    np.testing.assert_array_equal(kernels.relu_grad(g, x), np.where(x > 0, g, 0))
    pos, p = np.abs(x) + dtype(0.5), dtype(-1.5)
    close(kernels.pow_grad(g, pos, p), g * p * pos ** (p - 1), dtype)
    b = np.abs(x) + dtype(0.5)
    close(kernels.div_grad_denominator(g, x, b), -g * x / (b * b), dtype)


def test_relu_derivative_at_zero_is_zero_as_in_pytorch():
    assert kernels.relu_grad(np.array([2.0]), np.array([0.0]))[0] == 0.0
    assert kernels.relu(np.array([-0.0]))[0] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY + BINARY + TERNARY)
def test_kernels_keep_the_dtype(name, dtype):
    kernel = getattr(kernels, name)
    args = [np.full(3, 0.5, dtype) for _ in range(kernel.nin)]
    assert kernel(*args).dtype == dtype


def test_kernels_are_ufuncs_that_broadcast_and_write_to_out():
    g, y = np.ones((3, 1)), np.full((1, 4), 0.5)
    out = np.empty((3, 4))
    result = kernels.sigmoid_grad(g, y, out=out)
    assert result is out and np.all(out == 0.25)
    assert kernels.sigmoid(np.float32(0.0)) == 0.5


def test_unknown_kernel_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no kernel 'softplus'"):
        kernels.softplus  # noqa: B018
