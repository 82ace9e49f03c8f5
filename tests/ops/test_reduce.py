"""ops/reduce.py: reductions over any axes with keepdims, max's tie rule, and the stability of
logsumexp, softmax and log_softmax for large inputs; PyTorch parity when installed."""

import re
import warnings

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import Tensor


def leaf(data, dtype=np.float64):
    return Tensor(np.asarray(data, dtype), requires_grad=True)


def strict():
    """Overflow, invalid and divide raise and warnings are errors (exp of a very negative
    shifted input underflowing to 0 is the correct result, so underflow stays ignored)."""
    return np.errstate(over="raise", invalid="raise", divide="raise", under="ignore")


@pytest.mark.parametrize(
    ("axis", "keepdims"), [(None, False), (0, True), (1, False), ((0, 2), False), (-1, True)]
)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_and_mean_shapes_and_gradients(name, axis, keepdims):
    x = leaf(np.arange(24.0).reshape(2, 3, 4))
    y = tg.op(name).apply(x, axis=axis, keepdims=keepdims)
    reference = getattr(np, name)(x.data, axis=axis, keepdims=keepdims)
    assert y.shape == reference.shape
    np.testing.assert_allclose(y.data, reference, rtol=1e-15)
    y.backward(np.ones(y.shape))
    n = x.data.size // max(reference.size, 1)
    np.testing.assert_allclose(x.grad, 1.0 if name == "sum" else 1.0 / n, rtol=1e-15)


def test_max_shares_the_gradient_among_ties():
    x = leaf([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 0.0]])
    x.max(axis=1).backward(np.array([1.0, 6.0]))
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5, 0], [2.0, 2.0, 2.0, 0]])
    y = leaf([[2.0, 7.0], [7.0, 1.0]])
    y.max().backward()
    np.testing.assert_allclose(y.grad, [[0, 0.5], [0.5, 0]])
    z = leaf([[2.0, 7.0], [7.0, 1.0]])
    out = z.max(axis=0, keepdims=True)
    assert out.shape == (1, 2)
    out.backward(np.ones((1, 2)))
    np.testing.assert_allclose(z.grad, [[0, 1], [1, 0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_is_stable_for_large_inputs(dtype):
    data = [[1e4, 1e4, -1e4], [1e3, 0.0, -1e3]]
    with strict(), warnings.catch_warnings():
        warnings.simplefilter("error")
        xs = [leaf(data, dtype) for _ in range(3)]
        lse, sm, lsm = xs[0].logsumexp(axis=1), xs[1].softmax(), xs[2].log_softmax()
        for out in (lse, sm, lsm):
            out.backward(np.ones(out.shape, dtype))
    np.testing.assert_allclose(lse.data, [1e4 + np.log(2.0), 1e3], rtol=1e-6)
    np.testing.assert_allclose(sm.data, [[0.5, 0.5, 0], [1, 0, 0]], atol=1e-7)
    log2 = np.log(2.0)
    np.testing.assert_allclose(lsm.data, [[-log2, -log2, -2e4 - log2], [0, -1e3, -2e3]], rtol=1e-6)
    # logsumexp's gradient is exp(x - y) with y rounded at the scale of x (as in PyTorch,
    # which gives the same 0.49989 in float32): its error is ~ |x| * eps, not eps.
    np.testing.assert_allclose(
        xs[0].grad, [[0.5, 0.5, 0], [1, 0, 0]], atol=4 * 1e4 * np.finfo(dtype).eps
    )
    np.testing.assert_allclose(xs[1].grad, 0.0, atol=1e-7)  # softmax sums to 1 whatever x
    np.testing.assert_allclose(xs[2].grad, [[-0.5, -0.5, 1.0], [-2.0, 1.0, 1.0]], atol=1e-6)
    for t, out in zip(xs, (lse, sm, lsm)):
        assert out.dtype == t.grad.dtype == dtype


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_normalizes_along_its_axis(axis):
    x = leaf(np.random.default_rng(0).standard_normal((3, 4, 5)))
    np.testing.assert_allclose(x.softmax(axis=axis).data.sum(axis=axis), 1.0, rtol=1e-14)
    np.testing.assert_allclose(
        np.exp(x.log_softmax(axis=axis).data).sum(axis=axis), 1.0, rtol=1e-14
    )


@pytest.mark.parametrize("name", ["sum", "mean", "max", "logsumexp", "softmax", "log_softmax"])
def test_values_and_gradients_match_pytorch(name):
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(1).standard_normal((3, 4, 5)) * 3
    x, tx = leaf(data), torch.tensor(data, requires_grad=True)
    if name in ("softmax", "log_softmax"):
        y, ty = tg.op(name).apply(x, axis=1), getattr(torch, name)(tx, dim=1)
    elif name == "max":
        y, ty = x.max(axis=1), tx.amax(dim=1)
    else:
        y, ty = tg.op(name).apply(x, axis=(0, 2)), getattr(torch, name)(tx, dim=(0, 2))
    g = np.random.default_rng(2).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-13, atol=1e-14)


INF = np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "row", [[-INF, -INF], [INF, 0.0], [INF, INF], [INF, -INF], [-INF, 1.0], [np.nan, 1.0]]
)
def test_logsumexp_of_infinities_matches_pytorch(row, dtype):
    """PyTorch is the reference: all -inf gives -inf, any +inf gives +inf (an unshifted max
    made these NaN). Its gradient exp(x - y) is PyTorch's too, NaN where x = y = +-inf."""
    torch = pytest.importorskip("torch")
    x, tx = leaf(row, dtype), torch.tensor(np.array(row, dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning for log(0) or inf - inf
        y = x.logsumexp(axis=0)
        y.backward(np.array(1.0, dtype))
    ty = torch.logsumexp(tx, dim=0)
    ty.backward()
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())
    assert y.dtype == x.grad.dtype == dtype


def test_logsumexp_of_an_empty_axis_is_minus_inf():
    """As in PyTorch: log of an empty sum is log(0)."""
    x = leaf(np.zeros((0, 3)))
    y = x.logsumexp(axis=0)
    np.testing.assert_array_equal(y.data, [-INF] * 3)
    y.backward(np.ones(3))
    assert x.grad.shape == (0, 3)


REDUCTIONS = ["sum", "mean", "max", "logsumexp", "softmax", "log_softmax"]
SOFTMAXES = ("softmax", "log_softmax")  # one int axis, no keepdims


@pytest.mark.parametrize(
    ("name", "axis", "keepdims"),
    [
        (name, axis, keepdims)
        for name in REDUCTIONS
        for axis in (0, -1, (0,), (-1,))
        for keepdims in (False, True)
        if name not in SOFTMAXES or not (keepdims or isinstance(axis, tuple))
    ],
)
def test_reductions_of_a_0d_tensor_match_pytorch(name, axis, keepdims):
    """PyTorch is the reference: a 0-d tensor reduces over dim 0 or -1 as over one element
    (the backward divided by its 0 axes: ZeroDivisionError)."""
    torch = pytest.importorskip("torch")
    x, tx = leaf(1.5), torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    if name in SOFTMAXES:
        y, ty = tg.op(name).apply(x, axis=axis), getattr(torch, name)(tx, dim=axis)
    else:
        y = tg.op(name).apply(x, axis=axis, keepdims=keepdims)
        ty = getattr(torch, "amax" if name == "max" else name)(tx, dim=axis, keepdim=keepdims)
    y.backward(np.array(3.0))
    ty.backward(torch.tensor(3.0, dtype=torch.float64))
    assert y.shape == tuple(ty.shape) == ()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-15)


@pytest.mark.parametrize(
    ("name", "shape", "axis"),
    [
        (name, shape, axis)
        for name in REDUCTIONS
        for shape, axis in [
            ((), 1),
            ((), (0, -1)),
            ((2, 3), 2),
            ((2, 3), (0, -2)),
            ((2, 3), (1, 1)),
        ]
        if name not in SOFTMAXES or not isinstance(axis, tuple)
    ],
)
def test_axes_out_of_range_or_repeated_name_the_op(name, shape, axis):
    with pytest.raises(
        tg.ShapeError,
        match=rf"{name}: axis .* is out of range or repeated "
        rf"for an input of shape {re.escape(str(shape))}",
    ):
        tg.op(name).apply(leaf(np.zeros(shape)), axis=axis)


def test_mean_of_an_empty_axis_is_nan_with_an_empty_gradient():
    """PyTorch gives NaN too."""
    x = leaf(np.zeros((0, 2)))
    y = x.mean(axis=0)
    np.testing.assert_array_equal(y.data, [np.nan, np.nan])
    y.backward(np.ones(2))
    assert x.grad.shape == (0, 2)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "logsumexp"])
def test_numpy_integer_axes_are_taken(name):
    x = leaf(np.arange(6.0).reshape(2, 3))
    y = tg.op(name).apply(x, axis=np.int64(1))
    assert y.shape == (2,)
    y.backward(np.ones(2))
    assert x.grad.shape == (2, 3)
