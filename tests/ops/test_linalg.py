"""ops/linalg.py: matmul with NumPy's rules (2-D, batched with broadcast batch dims, 1-D
vectors on either side) in values, gradients and errors."""

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import Tensor
from tinygrad_lstm.gradcheck import gradcheck

CASES = [
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((2, 1, 2, 3), (4, 3, 2)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((3,), (3,)),
    ((5, 2, 3), (3,)),
    ((3,), (5, 3, 4)),
]


def leaf(shape, seed):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize(("sa", "sb"), CASES)
def test_matmul_values_and_gradients(sa, sb):
    a, b = leaf(sa, 0), leaf(sb, 1)
    y = a @ b
    np.testing.assert_allclose(y.data, np.matmul(a.data, b.data), rtol=1e-15)
    result = gradcheck(lambda a, b: tg.matmul(a, b), a, b, rtol=1e-6, atol=1e-9)
    assert result.worst_rel_error < 1e-6
    assert [r.shape for r in result.inputs] == [sa, sb]


@pytest.mark.parametrize(("sa", "sb"), CASES)
def test_matmul_matches_pytorch(sa, sb):
    torch = pytest.importorskip("torch")
    a, b = leaf(sa, 2), leaf(sb, 3)
    ta, tb = (torch.tensor(t.data, requires_grad=True) for t in (a, b))
    y, ty = a @ b, ta @ tb
    g = np.random.default_rng(4).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-13, atol=1e-14)


def test_float32_stays_float32():
    a = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    b = Tensor(np.ones((3, 4), np.float32), requires_grad=True)
    y = a @ b
    y.backward(np.ones((2, 4), np.float32))
    assert y.dtype == a.grad.dtype == b.grad.dtype == np.float32


def test_only_the_needed_gradient_is_computed():
    a, b = leaf((2, 3), 0), Tensor(np.ones((3, 4)))
    (a @ b).sum().backward()
    np.testing.assert_allclose(a.grad, np.full((2, 3), 4.0))
    assert b.grad is None


@pytest.mark.parametrize(
    ("sa", "sb"),
    [
        ((2, 3), (4, 5)),
        ((3,), (4,)),
        ((2, 3), (2,)),
        ((5, 2, 3), (5, 4, 2)),
        ((3, 2, 3), (4, 3, 2)),
        ((), (3,)),
    ],
)
def test_mismatch_names_matmul_and_both_shapes(sa, sb):
    a, b = leaf(sa, 0), leaf(sb, 1)
    with pytest.raises(tg.ShapeError) as info:
        a @ b
    assert "matmul" in str(info.value) and str(sa) in str(info.value) and str(sb) in str(info.value)


@pytest.mark.parametrize(
    ("sa", "sb"),
    [
        ((0,), (0, 8)),
        ((0,), (0,)),
        ((3, 0), (0,)),
        ((2, 3, 0), (0, 4)),
        ((0,), (2, 0, 5)),
        ((4, 0), (0, 2)),
    ],
)
def test_an_empty_contraction_matches_pytorch(sa, sb):
    """PyTorch is the reference: a zero-length contraction gives zeros forward and
    zero-size gradients backward (the 1-D folding reshaped to (-1, 0): ValueError)."""
    torch = pytest.importorskip("torch")
    a, b = leaf(sa, 0), leaf(sb, 1)
    ta, tb = (torch.tensor(t.data, requires_grad=True) for t in (a, b))
    y, ty = a @ b, ta @ tb
    g = np.random.default_rng(2).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert y.shape == tuple(ty.shape)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    for ours, theirs in ((a, ta), (b, tb)):
        assert ours.grad.shape == tuple(theirs.grad.shape) == ours.shape
        np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())
