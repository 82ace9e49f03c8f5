"""ops/selection.py: abs, maximum, minimum, where, clip against PyTorch in float64, values and
gradients at and away from the kinks (PyTorch's convention is the reference: abs'(0) = 0, a
tie of maximum/minimum splits the gradient in half, clamp passes it at its bounds), dtypes,
and the mask and argument rules. The generic property tests (tests/ops/test_all_ops.py,
tests/ops/test_scalar_rules.py) cover them from their registration; these cover what
metadata cannot say."""

import math

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import Tensor

# Values at every kink the ops have (0, the clip bounds, ties, NaN) and away from them.
X = np.array([-3.0, -1.0, -0.7, -1e-300, 0.0, 1e-300, 0.3, 0.5, 0.9, 2.5])
A = np.array([1.0, 2.0, -1.0, 0.0, 4.0, np.nan, 3.0, -0.0])
B = np.array([1.0, 3.0, -2.0, -0.0, 4.0, 0.0, np.nan, 0.0])


def leaf(data, dtype=np.float64):
    return Tensor(np.asarray(data, dtype), requires_grad=True)


def torch_pair(ours, theirs, arrays, seed=0):
    """Outputs and input gradients of ``ours`` (on Tensors) and ``theirs`` (on torch tensors)
    under the same random upstream gradient."""
    torch = pytest.importorskip("torch")
    mine = [leaf(a) for a in arrays]
    ref = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    y, ty = ours(*mine), theirs(*ref)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    return (y.data, [t.grad for t in mine]), (ty.detach().numpy(), [t.grad.numpy() for t in ref])


def assert_same(got, want, what):
    """Equal to rounding: gradients summed over broadcast axes may add in another order."""
    (y, grads), (ty, tgrads) = got, want
    np.testing.assert_allclose(
        y, ty, rtol=1e-15, atol=0, equal_nan=True, err_msg=f"{what}: values differ from PyTorch"
    )
    for k, (d, td) in enumerate(zip(grads, tgrads)):
        np.testing.assert_allclose(
            d,
            td,
            rtol=1e-14,
            atol=0,
            equal_nan=True,
            err_msg=f"{what}: gradient of input {k} differs from PyTorch",
        )


def test_abs_matches_pytorch_with_zero_gradient_at_zero():
    torch = pytest.importorskip("torch")
    assert_same(*torch_pair(tg.abs, torch.abs, [X]), "abs")
    x = leaf([-2.0, 0.0, -0.0, 3.0])
    tg.abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_match_pytorch_ties_split_the_gradient(name):
    """Ties (1 vs 1, 0 vs -0, 4 vs 4) give each side g / 2 and NaN gives both sides g, as in
    PyTorch; both broadcast."""
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(tg, name), getattr(torch, name)
    assert_same(*torch_pair(ours, theirs, [A, B]), name)
    assert_same(*torch_pair(ours, theirs, [X[:, None], X[None, ::-1]], seed=1), f"{name} broadcast")
    a, b = leaf([2.0, 5.0]), leaf([2.0, 1.0])
    ours(a, b).backward(np.array([1.0, 1.0]))
    winner = [1.0, 1.0] if name == "maximum" else [1.0, 0.0]
    np.testing.assert_array_equal(a.grad, [0.5, winner[1]])
    np.testing.assert_array_equal(b.grad, [0.5, 1.0 - winner[1]])


@pytest.mark.parametrize(
    ("low", "high"), [(-1.0, 0.5), (None, 0.5), (-1.0, None), (0.5, 0.5), (1.0, -1.0)]
)
def test_clip_matches_pytorch_clamp(low, high):
    """Bounds included in the gradient (x == min or max passes g); min > max gives max
    everywhere and no gradient, as torch.clamp does."""
    torch = pytest.importorskip("torch")
    assert_same(
        *torch_pair(lambda x: tg.clip(x, low, high), lambda t: torch.clamp(t, low, high), [X]),
        f"clip({low}, {high})",
    )


def test_clip_passes_the_gradient_at_its_bounds():
    x = leaf([-2.0, -1.0, 0.0, 0.5, 1.0])
    tg.clip(x, -1.0, 0.5).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_clip_needs_a_bound():
    with pytest.raises(TypeError, match="clip: needs min or max"):
        tg.clip(leaf([1.0]))
    with pytest.raises(TypeError, match="clip: needs min or max"):
        tg.op("clip").apply(leaf([1.0]), min=None, max=None)


def test_where_matches_pytorch_with_a_bool_mask():
    torch = pytest.importorskip("torch")
    mask = np.array([True, False, True, False, False, True, True, False, True, False])
    b = X[::-1].copy()
    assert_same(
        *torch_pair(
            lambda a, b: tg.where(Tensor(mask), a, b),
            lambda a, b: torch.where(torch.tensor(mask), a, b),
            [X, b],
        ),
        "where",
    )


def test_where_broadcasts_and_routes_the_gradient():
    mask = Tensor(np.array([[True], [False]]))
    a, b = leaf([1.0, 2.0, 3.0]), leaf(np.full((2, 1), -1.0))
    y = tg.where(mask, a, b)
    np.testing.assert_array_equal(y.data, [[1, 2, 3], [-1, -1, -1]])
    y.backward(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(a.grad, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(b.grad, [[0.0], [12.0]])


def test_where_takes_a_float_mask_nonzero_true_and_gives_it_no_gradient():
    mask = leaf([0.0, -0.0, 2.0, -3.0, np.nan])
    a, b = leaf(np.ones(5)), leaf(-np.ones(5))
    y = tg.where(mask, a, b)
    np.testing.assert_array_equal(y.data, [-1, -1, 1, 1, 1])
    y.backward(np.full(5, 2.0))
    np.testing.assert_array_equal(a.grad, [0, 0, 2, 2, 2])
    np.testing.assert_array_equal(b.grad, [2, 2, 0, 0, 0])
    np.testing.assert_array_equal(mask.grad, np.zeros(5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_where_gives_a_python_number_the_dtype_of_the_other_branch(dtype):
    """Not the mask's bool: where(x > 0, x, 2.5) keeps 2.5 (a bool constant would be 1.0)."""
    x = leaf([-1.0, 3.0], dtype)
    for y in (tg.where(x > 0, x, 2.5), tg.where(x <= 0, 2.5, x)):
        assert y.dtype == dtype
        np.testing.assert_array_equal(y.data, np.array([2.5, 3.0], dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "call",
    [
        lambda x: tg.abs(x),
        lambda x: tg.maximum(x, x[::-1]),
        lambda x: tg.minimum(x, 0.25),
        lambda x: tg.where(x > 0, x, -x),
        lambda x: tg.clip(x, -1.0, 0.5),
        lambda x: tg.clip(x, max=math.inf),
    ],
    ids=["abs", "maximum", "minimum", "where", "clip", "clip_open"],
)
def test_dtype_is_kept_in_values_and_gradients(call, dtype):
    x = leaf(X, dtype)
    y = call(x)
    y.backward(np.ones(y.shape, dtype))
    assert y.dtype == x.grad.dtype == dtype
