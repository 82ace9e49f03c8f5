"""ops/shape.py: concat/split and stack/unstack round trips, indexing gradients (repeated
indices accumulate), reshape and transpose, and the shape errors."""

import re

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import Tensor


def leaf(*shape, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_then_split_is_the_identity_in_values_and_gradients(axis):
    sizes = [1, 2, 3]
    shapes = [[2, 3, 2] for _ in sizes]
    for shape, n in zip(shapes, sizes):
        shape[axis] = n
    parts = [leaf(*shape, seed=i) for i, shape in enumerate(shapes)]
    joined = tg.concat(parts, axis=axis)
    back = tg.split(joined, sizes, axis=axis)
    grads = [np.random.default_rng(9 + i).standard_normal(b.shape) for i, b in enumerate(back)]
    loss = sum(((b * Tensor(g)).sum() for b, g in zip(back, grads)), Tensor(0.0))
    loss.backward()
    for p, b, g in zip(parts, back, grads):
        np.testing.assert_array_equal(b.data, p.data)
        np.testing.assert_array_equal(p.grad, g)


def test_split_into_equal_sections():
    x = leaf(6, 4)
    parts = tg.split(x, 3, axis=0)
    assert [p.shape for p in parts] == [(2, 4)] * 3
    np.testing.assert_array_equal(parts[1].data, x.data[2:4])


def test_split_errors_name_op_and_shape():
    with pytest.raises(tg.ShapeError, match=r"split: axis 0 of shape \(5, 2\).*3 equal"):
        tg.split(leaf(5, 2), 3)
    with pytest.raises(tg.ShapeError, match=r"split: sizes \[1, 2\] sum to 3.*\(5, 2\)"):
        tg.split(leaf(5, 2), [1, 2])


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack_then_unstack_is_the_identity(axis):
    parts = [leaf(2, 3, seed=i) for i in range(4)]
    stacked = tg.stack(parts, axis=axis)
    assert stacked.shape[axis] == 4
    back = tg.op("unstack").apply(stacked, axis=axis)
    (back[1] * 2.0 + back[3]).sum().backward()
    for i, (p, b) in enumerate(zip(parts, back)):
        np.testing.assert_array_equal(b.data, p.data)
        np.testing.assert_array_equal(p.grad, np.full((2, 3), {1: 2.0, 3: 1.0}.get(i, 0.0)))


def test_stack_and_concat_mismatches_name_op_and_shapes():
    with pytest.raises(tg.ShapeError, match=r"stack.*\(2, 3\).*\(3, 2\)"):
        tg.stack([leaf(2, 3), leaf(3, 2)])
    with pytest.raises(tg.ShapeError, match=r"concat.*\(2, 3\).*\(2, 4\).*axis 0"):
        tg.concat([leaf(2, 3), leaf(2, 4)], axis=0)


@pytest.mark.parametrize(
    ("index", "counts"),
    [
        (np.array([0, 0, 2, 0]), [3, 0, 1, 0]),
        ([1, 1], [0, 2, 0, 0]),
        (np.array([True, False, True, True]), [1, 0, 1, 1]),
        (slice(None, None, -1), [1, 1, 1, 1]),
    ],
)
def test_getitem_gradient_accumulates_repeated_indices(index, counts):
    x = leaf(4, 2)
    y = x[index]
    np.testing.assert_array_equal(y.data, x.data[index])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.repeat(np.array(counts, float)[:, None], 2, 1))


def test_getitem_with_index_pairs():
    x = leaf(3, 4)
    y = x[np.array([0, 2, 0]), np.array([1, 3, 1])]
    np.testing.assert_array_equal(y.data, x.data[[0, 2, 0], [1, 3, 1]])
    y.backward(np.array([1.0, 10.0, 100.0]))
    expected = np.zeros((3, 4))
    expected[0, 1], expected[2, 3] = 101.0, 10.0
    np.testing.assert_array_equal(x.grad, expected)


def test_reshape_and_transpose_gradients_return_to_the_input_layout():
    x = leaf(2, 3, 4)
    g = np.random.default_rng(1).standard_normal((4, 6))
    x.reshape(4, -1).backward(g)
    np.testing.assert_array_equal(x.grad, g.reshape(2, 3, 4))
    for axes in [(1, 0, 2), (2, 0, 1), (-1, 0, 1), None]:
        x.grad = None
        y = x.transpose(axes) if axes else x.T
        g = np.random.default_rng(2).standard_normal(y.shape)
        y.backward(g)
        np.testing.assert_array_equal(
            x.grad, np.transpose(g, np.argsort([a % 3 for a in axes]) if axes else None)
        )


def test_reshape_and_transpose_errors():
    with pytest.raises(tg.ShapeError, match=r"reshape.*\(2, 3\).*6 elements.*\(4, 2\)"):
        leaf(2, 3).reshape(4, 2)
    with pytest.raises(tg.ShapeError, match=r"transpose: axes \(0, 0\).*\(2, 3\)"):
        leaf(2, 3).transpose(0, 0)


def test_iterating_and_unpacking_a_tensor_stop_at_the_end():
    x = leaf(3, 2)
    rows = list(x)
    assert [r.shape for r in rows] == [(2,)] * 3
    first, _, last = x
    (first + last).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 1], [0, 0], [1, 1]])
    with pytest.raises(IndexError, match=r"getitem.*\(3, 2\)") as info:
        x[3]
    assert isinstance(info.value, tg.ShapeError)


@pytest.mark.parametrize("sizes", [[-1, 6], [6, -1], [2, -2, 5], [2.5, 2.5]])
def test_split_refuses_negative_or_fractional_sizes(sizes):
    """[-1, 6] sums to 5 but gave parts of shapes (4,) and (1,)."""
    with pytest.raises(
        tg.ShapeError,
        match=r"split: sizes .* must be non-negative integers "
        r"\(splitting axis 0 of shape \(5,\)\)",
    ):
        tg.split(leaf(5), sizes)


def test_split_takes_empty_parts():
    a, b, c = tg.split(leaf(5), [0, 5, 0])
    assert (a.shape, b.shape, c.shape) == ((0,), (5,), (0,))


@pytest.mark.parametrize(
    ("op", "call"),
    [
        ("split", lambda x: tg.split(x, 2, axis=2)),
        ("concat", lambda x: tg.concat([x, x], axis=-3)),
    ],
)
def test_shape_ops_name_an_axis_out_of_range(op, call):
    with pytest.raises(
        tg.ShapeError,
        match=rf"{op}: axis -?\d is out of range for shape "
        r"\(4, 2\) \(expected an axis in \[-2, 1\]\)",
    ):
        call(leaf(4, 2))


def test_concat_of_0d_tensors_is_refused_as_in_pytorch():
    """torch.cat refuses 0-d tensors too ("zero-dimensional tensor cannot be
    concatenated"); this raised a bare IndexError."""
    with pytest.raises(tg.ShapeError, match=r"concat: input 1 is 0-d \(shape \(\)\).*stack"):
        tg.concat([leaf(1), Tensor(np.float64(2.0))])
    with pytest.raises(tg.ShapeError, match=r"concat: input 0 is 0-d"):
        tg.concat([leaf(), leaf()])
    assert tg.stack([leaf(), leaf()]).shape == (2,)


@pytest.mark.parametrize(
    "transpose",
    [lambda x: x.T, lambda x: x.transpose(), lambda x: tg.transpose(x, ())],
    ids=["T", "transpose()", "axes=()"],
)
def test_transpose_of_a_0d_tensor_is_itself_as_in_pytorch(transpose):
    """torch allows .T and permute(()) on a 0-d tensor; this raised ZeroDivisionError."""
    torch = pytest.importorskip("torch")
    x = leaf()
    y = transpose(x)
    y.backward(np.array(3.0))
    t = torch.tensor(x.data, requires_grad=True)
    ty = t.permute(())
    ty.backward(torch.tensor(3.0, dtype=torch.float64))
    assert y.shape == tuple(ty.shape) == ()
    assert y.data == ty.item() and x.grad == t.grad.item()


@pytest.mark.parametrize(
    ("shape", "axes"),
    [((), (0,)), ((), (0, -1)), ((2, 3), (0, 2)), ((2, 3), (0, -2)), ((2, 3), (1,))],
)
def test_transpose_refuses_what_is_not_a_permutation(shape, axes):
    with pytest.raises(
        tg.ShapeError,
        match=rf"transpose: axes {re.escape(str(axes))} are "
        rf"not a permutation of the {len(shape)} axes",
    ):
        tg.transpose(leaf(*shape), axes)
