"""Tensor: construction and dtype rules, properties, operators, comparisons, indexing."""

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import Tensor


# ---- construction and dtype rules ------------------------------------------------------------
@pytest.mark.parametrize("data", [[1, 2, 3], [[1.5, 2.5]], 3.0, 7])
def test_python_data_becomes_float32(data):
    assert Tensor(data).dtype == np.float32


def test_boolean_data_stays_boolean_like_comparison_results():
    assert Tensor([True, False]).dtype == np.bool_


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_arrays_keep_their_float_dtype_and_memory(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    t = Tensor(a)
    assert t.dtype == dtype and t.data is a and t.numpy() is a


def test_explicit_dtype_and_tensor_of_tensor():
    t = Tensor([1, 2], dtype=np.float64)
    assert t.dtype == np.float64
    assert Tensor(t).data is t.data


@pytest.mark.parametrize(
    "op",
    [
        lambda t: t + 2.5,
        lambda t: 2.5 + t,
        lambda t: t * 3,
        lambda t: 3 * t,
        lambda t: t - 1.5,
        lambda t: 1.5 - t,
        lambda t: t / 2,
        lambda t: 2 / t,
        lambda t: t**2,
        lambda t: -t,
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_scalars_keep_the_tensor_dtype(op, dtype):
    t = Tensor(np.array([1.0, 2.0], dtype=dtype), requires_grad=True)
    out = op(t)
    assert out.dtype == dtype
    out.sum().backward()
    assert t.grad.dtype == dtype


def test_object_and_integer_dtypes_are_refused():
    with pytest.raises(TypeError, match="object"):
        Tensor(np.array([1, "a"], dtype=object))
    with pytest.raises(TypeError, match="floating-point.*int64"):
        Tensor(np.arange(3), requires_grad=True)
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.arange(3)).requires_grad_()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Tensor(np.arange(3)) + 1.0,
        lambda: tg.sigmoid(Tensor(np.arange(3))),
        lambda: Tensor(np.ones(3, bool)) * Tensor(np.ones(3, bool)),
        lambda: Tensor(np.ones(3, bool)) * Tensor(np.arange(3)),
    ],
)
def test_ops_refuse_non_float_inputs_naming_op_and_dtypes(make):
    with pytest.raises(
        TypeError, match=r"(add|sigmoid|mul): expected floating-point.*(int64|bool)"
    ):
        make()


def test_creation_helpers():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros((2, 3)).dtype == np.float32
    assert np.all(tg.ones(4, dtype=np.float64).data == 1.0)
    assert tg.ones(4, dtype=np.float64).dtype == np.float64
    r1 = tg.randn(3, 2, rng=np.random.default_rng(5))
    r2 = tg.randn((3, 2), rng=np.random.default_rng(5))
    assert r1.dtype == np.float32 and np.array_equal(r1.data, r2.data)
    z = tg.zeros_like(Tensor(np.ones((2, 2), np.float64)), requires_grad=True)
    assert z.shape == (2, 2) and z.dtype == np.float64 and z.requires_grad
    assert tg.tensor([1, 2], requires_grad=True).requires_grad


# ---- properties and conversion ------------------------------------------------------------------
def test_properties():
    t = Tensor(np.zeros((2, 3, 4), np.float32))
    assert (t.shape, t.ndim, t.size, len(t)) == ((2, 3, 4), 3, 24, 2)
    assert t.is_leaf and t.op is None and t.grad is None and not t.requires_grad
    assert Tensor([[1.0, 2.0]]).T.shape == (2, 1)


def test_item_only_for_one_element():
    assert Tensor([[3.5]]).item() == 3.5
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        Tensor([1.0, 2.0]).item()


def test_repr_names_dtype_and_op():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(x) and "float32" in repr(x)
    assert "op=mul" in repr(x * 2)


def test_detach_shares_data_and_leaves_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).detach()
    assert y.is_leaf and not y.requires_grad and y.op is None
    z = x * 2
    assert z.detach().data is z.data


def test_requires_grad_only_changes_on_leaves():
    x = Tensor([1.0]).requires_grad_()
    assert x.requires_grad
    with pytest.raises(RuntimeError, match="only leaf"):
        (x * 2).requires_grad_(False)


# ---- operators ----------------------------------------------------------------------------------
def test_operators_match_numpy():
    rng = np.random.default_rng(0)
    a_np, b_np = rng.uniform(0.5, 2, (3, 4)), rng.uniform(0.5, 2, (4,))
    a, b = Tensor(a_np), Tensor(b_np)
    cases = [
        (a + b, a_np + b_np),
        (a - b, a_np - b_np),
        (a * b, a_np * b_np),
        (a / b, a_np / b_np),
        (a**1.5, a_np**1.5),
        (-a, -a_np),
        (a @ b, a_np @ b_np),
        (a_np + b, a_np + b_np),
        (b_np - a, b_np - a_np),
        (2.0 / a, 2.0 / a_np),
    ]
    for got, want in cases:
        assert isinstance(got, Tensor)
        np.testing.assert_allclose(got.data, want, rtol=1e-15)


def test_ndarray_on_the_left_defers_to_tensor():
    out = np.ones(3) * Tensor(np.arange(3.0), requires_grad=True)
    assert isinstance(out, Tensor) and out.requires_grad


@pytest.mark.parametrize(
    "left",
    [np.array([0.5, 2.0, 3.0]), np.float64(1.5)],
    ids=["ndarray", "numpy scalar"],
)
def test_every_numpy_operator_with_a_tensor_on_the_right_runs_the_tensors(left):
    x = Tensor(np.array([1.0, 2.0, 4.0]), requires_grad=True)
    arithmetic = [(left + x, left + x.data), (left - x, left - x.data)]
    arithmetic += [(left * x, left * x.data), (left / x, left / x.data)]
    for got, want in arithmetic:
        assert isinstance(got, Tensor) and got.requires_grad
        np.testing.assert_array_equal(got.data, want)
    for got, want in [(left < x, left < x.data), (left >= x, left >= x.data)]:
        np.testing.assert_array_equal(got.data, want)
    (left * x).sum().backward()
    np.testing.assert_array_equal(x.grad, np.broadcast_to(left, (3,)))


@pytest.mark.parametrize(
    "call, use",
    [
        (lambda t: np.tanh(t), "use tensor.tanh()"),
        (lambda t: np.exp(t), "use tensor.exp()"),
        (lambda t: np.abs(t), "use tensor.abs()"),
        (lambda t: np.negative(t), "use -tensor"),
        (lambda t: np.sin(t), "use the Tensor methods"),
        (lambda t: np.add.reduce(t), "np.add.reduce() on a Tensor"),
        (lambda t: np.multiply(t, 2.0, out=np.empty(2)), "np.multiply() on a Tensor"),
    ],
)
def test_numpy_functions_on_a_tensor_are_refused_naming_the_method(call, use):
    """np.tanh(tensor) made an object array of per-element tensors ("cannot hold dtype
    object" later); like a PyTorch tensor's, the values would lose their graph."""
    with pytest.raises(TypeError, match="NumPy's functions do not record the graph") as info:
        call(Tensor(np.array([0.5, -1.0]), requires_grad=True))
    assert use in str(info.value) and len(str(info.value).splitlines()) == 1


def test_tensor_exponent_is_refused():
    with pytest.raises(TypeError, match="exponent"):
        Tensor([2.0]) ** Tensor([2.0])


def test_method_forms():
    x = Tensor(np.array([[0.5, -1.0], [2.0, 0.25]]))
    np.testing.assert_allclose(x.exp().data, np.exp(x.data))
    np.testing.assert_allclose(x.relu().data, np.maximum(x.data, 0))
    np.testing.assert_allclose((x * x).log().data, np.log(x.data**2))
    np.testing.assert_allclose(x.tanh().data, np.tanh(x.data))
    np.testing.assert_allclose(x.sigmoid().data, 1 / (1 + np.exp(-x.data)))
    np.testing.assert_allclose(x.sum(axis=0).data, x.data.sum(0))
    np.testing.assert_allclose(x.mean(keepdims=True).data, x.data.mean(keepdims=True))
    np.testing.assert_allclose(x.max(axis=1).data, x.data.max(1))
    assert x.reshape(4).shape == (4,) and x.reshape((1, 4)).shape == (1, 4)
    assert x.transpose(1, 0).shape == (2, 2) and x.transpose().shape == (2, 2)
    np.testing.assert_allclose(x.softmax().data.sum(-1), 1.0)
    np.testing.assert_allclose(np.exp(x.log_softmax(axis=0).data).sum(0), 1.0)
    np.testing.assert_allclose(x.logsumexp().data, np.log(np.exp(x.data).sum()))


# ---- comparisons ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "compare",
    [
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
        lambda a, b: a == b,
        lambda a, b: a != b,
    ],
)
def test_comparisons_give_plain_boolean_tensors(compare):
    a = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = Tensor([2.0, 2.0, 2.0], requires_grad=True)
    for other, raw in ((b, b.data), (2.0, 2.0)):
        out = compare(a, other)
        assert isinstance(out, Tensor) and out.dtype == np.bool_
        assert not out.requires_grad and out.is_leaf
        np.testing.assert_array_equal(out.data, compare(a.data, raw))


def test_tensors_stay_hashable_by_identity():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b, a}) == 2


def test_tensors_keep_their_attributes_in_slots():
    # A graph holds many tensors: every class in Tensor's bases (the operator mixin included)
    # declares __slots__, so no tensor carries a per-instance __dict__.
    for t in (Tensor([1.0]), tg.Parameter([1.0])):
        without = [c.__qualname__ for c in type(t).__mro__[:-1] if "__slots__" not in vars(c)]
        assert not hasattr(t, "__dict__"), (
            f"{type(t).__name__} has a __dict__; no __slots__ in {without}"
        )


# ---- indexing ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "index", [1, -1, slice(1, 3), (slice(None), 0), (0, slice(None, None, 2)), (Ellipsis, 1)]
)
def test_getitem_values_and_gradient(index):
    data = np.arange(12.0).reshape(3, 4)
    x = Tensor(data, requires_grad=True)
    y = x[index]
    np.testing.assert_array_equal(y.data, data[index])
    y.backward(np.ones(y.shape))
    expected = np.zeros_like(data)
    expected[index] = 1.0
    np.testing.assert_array_equal(x.grad, expected)


def test_tensor_indices_mask_and_positions():
    data = np.array([[-1.0, 2.0], [3.0, -4.0]])
    x = Tensor(data, requires_grad=True)
    y = x[x > 0]  # a boolean Tensor selects, as in NumPy
    np.testing.assert_array_equal(y.data, [2.0, 3.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, data > 0)
    rows = Tensor(np.array([1, 1, 0]))
    z = x[rows, Tensor(np.array([0, 0, 1]))]  # repeated positions add their gradients
    x.grad = None
    z.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0], [2.0, 0.0]])


def test_getitem_out_of_range_names_op_and_shape():
    with pytest.raises(tg.ShapeError, match=r"getitem.*\(3, 4\)"):
        Tensor(np.zeros((3, 4)))[5]


# ---- PyTorch habits: to / float / double / clone / tolist / argmax ---------------------------
def _leaf(dtype=np.float32, seed=0):
    values = np.random.default_rng(seed).standard_normal((2, 3)).astype(dtype)
    return Tensor(values, requires_grad=True)


@pytest.mark.parametrize(
    ("source", "call", "target"),
    [
        (np.float32, lambda t: t.double(), np.float64),
        (np.float64, lambda t: t.float(), np.float32),
        (np.float32, lambda t: t.to(np.float64), np.float64),
        (np.float64, lambda t: t.to("float32"), np.float32),
        (np.float32, lambda t: t.to(np.float16), np.float16),
    ],
)
def test_casts_are_differentiable_and_cast_the_gradient_back(source, call, target):
    """As torch: y = x.double() is on the graph; x.grad has x's dtype."""
    x = _leaf(source)
    y = call(x)
    assert y.dtype == target and y.requires_grad and y.op == "cast"
    np.testing.assert_array_equal(y.data, x.data.astype(target))
    upstream = np.arange(6, dtype=target).reshape(2, 3)
    y.backward(upstream)
    assert x.grad.dtype == source
    np.testing.assert_array_equal(x.grad, upstream.astype(source))


def test_casts_match_torch_values_and_gradients():
    torch = pytest.importorskip("torch")
    x = _leaf(np.float32)
    tx = torch.tensor(x.data, requires_grad=True)
    y, ty = (x.double() * 3.0).sum(), (tx.double() * 3.0).sum()
    y.backward()
    ty.backward()
    assert y.dtype == np.float64 and ty.dtype == torch.float64
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())
    assert x.grad.dtype == np.float32 and tx.grad.dtype == torch.float32


def test_to_the_same_dtype_is_the_tensor_itself():
    """torch: x.to(x.dtype) is x, x.float() of a float32 tensor is x."""
    x = _leaf(np.float32)
    assert x.to(np.float32) is x and x.float() is x
    y = _leaf(np.float64)
    assert y.double() is y


def test_to_an_integer_or_bool_dtype_gives_a_tensor_without_graph():
    torch = pytest.importorskip("torch")
    x = Tensor(np.array([1.7, -2.2, 0.0], np.float32), requires_grad=True)
    for ours, theirs in ((np.int64, torch.int64), (np.bool_, torch.bool)):
        got = x.to(ours)
        expected = torch.tensor(x.data, requires_grad=True).to(theirs)
        assert got.dtype == ours and not got.requires_grad and got.is_leaf
        assert not expected.requires_grad
        np.testing.assert_array_equal(got.data, expected.numpy())
    ints = Tensor(np.array([1, 2], np.int64))
    assert ints.float().dtype == np.float32 and ints.float().tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match=r"Tensor\.to: expected a dtype"):
        x.to("cpu")


def test_clone_copies_and_stays_on_the_graph():
    x = _leaf(np.float64)
    y = x.clone()
    assert y.op == "cast" and y.dtype == x.dtype and not np.shares_memory(y.data, x.data)
    np.testing.assert_array_equal(y.data, x.data)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data, rtol=1e-15)
    plain = Tensor([1.0, 2.0])
    copy = plain.clone()
    assert not copy.requires_grad and not np.shares_memory(copy.data, plain.data)
    mask = Tensor(np.array([True, False]))
    assert mask.clone().dtype == np.bool_ and mask.clone().tolist() == [True, False]


def test_tolist_matches_torch():
    torch = pytest.importorskip("torch")
    for values in (np.arange(6.0).reshape(2, 3), np.float64(2.5), np.array([True, False])):
        ours = Tensor(np.asarray(values)).tolist()
        assert ours == torch.tensor(np.asarray(values)).tolist()
    assert isinstance(Tensor(np.float64(2.5)).tolist(), float)


@pytest.mark.parametrize(
    ("axis", "keepdims"),
    [(None, False), (0, False), (1, False), (-1, True), (0, True), (None, True)],
)
def test_argmax_matches_torch(axis, keepdims):
    """torch.argmax(x, dim, keepdim), ties and NaN included (first index; NaN is largest)."""
    torch = pytest.importorskip("torch")
    values = np.array([[1.0, 3.0, 3.0], [np.nan, 2.0, 5.0], [4.0, 4.0, -1.0]])
    x = Tensor(values, requires_grad=True)
    got = x.argmax(axis=axis, keepdims=keepdims)
    expected = torch.argmax(torch.tensor(values), dim=axis, keepdim=keepdims)
    assert got.dtype == np.int64 and not got.requires_grad
    assert got.shape == tuple(expected.shape)
    np.testing.assert_array_equal(got.data, expected.numpy())


def test_method_and_function_forms_of_the_selection_and_activation_ops_agree():
    x = Tensor(np.array([-2.5, -0.5, 0.25, 4.0]))
    other = Tensor(np.array([0.0, -1.0, 1.0, 3.0]))
    pairs = [
        (abs(x), tg.abs(x)),
        (x.abs(), tg.abs(x)),
        (x.clip(-1, 1), tg.clip(x, -1, 1)),
        (x.clip(max=0.0), tg.clip(x, None, 0.0)),
        (x.maximum(other), tg.maximum(x, other)),
        (x.minimum(other), tg.minimum(x, other)),
        (x.softplus(2.0), tg.softplus(x, 2.0)),
        (x.leaky_relu(0.2), tg.leaky_relu(x, 0.2)),
        (x.hardsigmoid(), tg.hardsigmoid(x)),
        (x.hardtanh(-2, 2), tg.hardtanh(x, -2, 2)),
    ]
    for method, function in pairs:
        np.testing.assert_array_equal(method.data, function.data)
    np.testing.assert_array_equal(x.clip(-1, 1).data, np.clip(x.data, -1, 1))
    with pytest.raises(TypeError, match="clip: needs min or max"):
        x.clip()


def test_a_python_number_beside_a_mask_takes_the_float_inputs_dtype():
    x = Tensor(np.array([-1.0, 2.0]))
    y = tg.where(x > 0, 2.5, x)  # the engine, not the op, picks float64 for 2.5 over the bool
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.data, [-1.0, 2.5])
