"""Reverse-mode autograd: accumulation, fan-out, no_grad, detach, hooks, retain_grad and
retain_graph, unbroadcast, multi-output ops, every error, long chains and graph freeing."""

import gc
import itertools
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lstm as tg
from tinygrad_lstm import Context, Function, Tensor, register_op
from tinygrad_lstm.gradcheck import gradcheck


@pytest.fixture
def counting_op(scratch_registry):
    """Register ``_test_count`` (identity) whose backward logs the forward's sequence number."""
    numbers, calls = itertools.count(), []

    @register_op("_test_count", arity=1)
    class Count(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.number = next(numbers)
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            calls.append(ctx.number)
            return g

    return Count, calls


def leaf(*shape, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


# ---- accumulation and fan-out -------------------------------------------------------------------
def test_grad_accumulates_across_backward_calls():
    x = leaf(3)
    (x * x).sum().backward()
    first = x.grad.copy()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    np.testing.assert_allclose(first, 2 * x.data)


def test_leaf_grad_is_not_aliased_to_the_upstream_gradient():
    x, g = leaf(3), np.ones(3)
    (x * 1.0).backward(g)
    x.grad += 5.0
    assert np.all(g == 1.0)


def test_fan_out_sums_every_use():
    x = leaf(4)
    total = x * 1.0
    for k in range(2, 101):
        total = total + x * float(k)
    total.sum().backward()
    np.testing.assert_allclose(x.grad, 5050.0)


def test_shared_weights_over_time_steps_match_central_differences():
    w, h0 = leaf(3, 3, seed=1), leaf(2, 3, seed=2)

    def unroll(w, h):
        for _ in range(10):
            h = tg.tanh(h @ w)
        return h

    assert gradcheck(unroll, w, h0, rtol=1e-6, atol=1e-9).worst_rel_error < 1e-6


def test_tensor_used_directly_and_through_a_longer_path():
    x = leaf(3)
    a = x * 2.0
    (a + (a * 3.0) * 1.5).sum().backward()  # a reaches the sum directly and via two ops
    np.testing.assert_allclose(x.grad, 2.0 * (1.0 + 4.5))


def test_a_0d_value_used_three_or_more_times_keeps_every_contribution():
    """The sum of two 0-d gradients is a NumPy scalar, not an array: a third contribution
    must still be added (it was once dropped, leaving x.grad == [2, 2] here). Values by hand:
    d(4s)/dx = 4, and d(l + l^2)/dx = (1 + 2l) 2x with l = 5."""
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    s = x.sum()
    (s + s + s + s).backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])
    x.grad = None
    l = (x * x).sum()
    (l + l * l).backward()
    np.testing.assert_array_equal(x.grad, [22.0, 44.0])


def test_a_0d_leaf_used_many_times_gets_the_whole_gradient():
    gain = Tensor(np.array(1.5), requires_grad=True)
    x = leaf(4)
    total = x * gain
    for _ in range(5):
        total = total + x * gain
    total.sum().backward()
    np.testing.assert_allclose(gain.grad, 6.0 * x.data.sum(), rtol=1e-15)
    assert isinstance(gain.grad, np.ndarray) and gain.grad.shape == ()


def test_a_retained_0d_gradient_stays_an_array_across_backward_calls():
    x = leaf(3)
    s = x.sum()
    s.retain_grad()
    (s + s + s).backward(retain_graph=True)
    (s + s + s).backward()
    assert isinstance(s.grad, np.ndarray) and s.grad.shape == ()
    np.testing.assert_array_equal(s.grad, 6.0)


def test_0d_fan_out_matches_pytorch():
    torch = pytest.importorskip("torch")
    data = np.array([0.3, -1.2, 2.0])
    x = Tensor(data.copy(), requires_grad=True)
    l = (x * x).sum()
    (l + l * l + l.tanh() * l).backward()
    xt = torch.tensor(data, requires_grad=True)
    lt = (xt * xt).sum()
    (lt + lt * lt + lt.tanh() * lt).backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-14)


STEP = st.tuples(
    st.sampled_from(["add", "mul", "sub", "tanh", "sigmoid"]),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)


@given(st.lists(STEP, min_size=1, max_size=12), st.integers(1, 3))
def test_random_dags_match_central_differences(steps, n_outputs):
    """Random graphs over two leaves: fan-out, fan-in and paths of every length at once."""

    def build(a, b):
        nodes = [a, b]
        for op, i, j in steps:
            x, y = nodes[i % len(nodes)], nodes[j % len(nodes)]
            nodes.append(
                tg.op(op).apply(x) if op in ("tanh", "sigmoid") else tg.op(op).apply(x, y) * 0.5
            )
        return tuple(nodes[-n_outputs:])

    a, b = leaf(3), leaf(3, seed=1)
    assert gradcheck(build, a, b, rtol=1e-6, atol=1e-9)


# ---- no_grad and detach -------------------------------------------------------------------------
def test_no_grad_as_context_manager_restores_on_error():
    x = leaf(2)
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2
        with tg.enable_grad():
            assert (x * 2).requires_grad
    assert not y.requires_grad and y.is_leaf and tg.is_grad_enabled()
    with pytest.raises(ValueError), tg.no_grad():
        raise ValueError
    assert tg.is_grad_enabled()


def test_no_grad_as_decorator():
    @tg.no_grad()
    def infer(t):
        """Docstring kept."""
        return t * 2

    x = leaf(2)
    assert not infer(x).requires_grad and infer.__doc__ == "Docstring kept."
    assert (x * 2).requires_grad


def test_detach_blocks_the_gradient():
    x = leaf(3)
    (x * x.detach()).sum().backward()
    np.testing.assert_allclose(x.grad, x.data)


# ---- hooks, retain_grad, retain_graph -----------------------------------------------------------
def test_leaf_hook_sees_and_replaces_the_gradient():
    x, seen = leaf(3), []
    x.register_hook(lambda g: seen.append(g.copy()))
    x.register_hook(lambda g: g * 10.0)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(seen[0], 3.0)
    np.testing.assert_allclose(x.grad, 30.0)


def test_non_leaf_hook_replacement_flows_on_to_the_inputs():
    x, seen = leaf(3), []
    y = x * 3.0
    y.register_hook(lambda g: seen.append(g.copy()))
    y.register_hook(lambda g: g * 2.0)
    (y * 5.0).sum().backward()
    np.testing.assert_allclose(seen[0], 5.0)
    np.testing.assert_allclose(x.grad, 30.0)
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).register_hook(print)


def test_retain_grad_keeps_non_leaf_gradients():
    x = leaf(3)
    y, other = x * 2.0, x * 4.0
    y.retain_grad()
    (y * y + y + other).sum().backward()
    np.testing.assert_allclose(y.grad, 2 * y.data + 1)
    assert other.grad is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).retain_grad()


def test_retain_graph_allows_a_second_backward():
    x = leaf(3)
    loss = tg.sigmoid(x * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    with pytest.raises(RuntimeError, match=r"already released.*retain_graph=True"):
        loss.backward()


# ---- broadcasting and multi-output ops ----------------------------------------------------------
def test_unbroadcast_sums_added_and_stretched_axes():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(tg.unbroadcast(g, (4,)), g.sum((0, 1)))
    np.testing.assert_array_equal(tg.unbroadcast(g, (3, 1)), g.sum(0).sum(1, keepdims=True))
    np.testing.assert_array_equal(tg.unbroadcast(g, (1, 3, 4)), g.sum(0, keepdims=True))
    assert tg.unbroadcast(g, ()).shape == () and tg.unbroadcast(g, ()) == g.sum()
    assert tg.unbroadcast(g, g.shape) is g


def test_broadcast_gradients_take_each_input_shape():
    a, b, s = leaf(3, 1), leaf(1, 4, seed=1), leaf(seed=2)
    (a + b * s).sum().backward()
    np.testing.assert_allclose(a.grad, np.full((3, 1), 4.0))
    np.testing.assert_allclose(b.grad, np.full((1, 4), 3.0 * s.data))
    np.testing.assert_allclose(s.grad, 3.0 * b.data.sum())


def test_multi_output_ops_with_unused_outputs():
    x = leaf(6, 2)
    _, middle, _ = tg.split(x, 3, axis=0)
    middle.sum().backward()
    np.testing.assert_array_equal(x.grad, np.repeat([0.0, 1.0, 0.0], 2)[:, None] * np.ones(2))
    y = leaf(3, 2)
    tg.op("unstack").apply(y, axis=1)[1].sum().backward()
    np.testing.assert_array_equal(y.grad, [[0.0, 1.0]] * 3)
    z = leaf(6, seed=3)
    assert gradcheck(lambda t: tg.split(t, [1, 2, 3])[2] * 2.0, z, rtol=1e-6, atol=1e-9)


# ---- errors -------------------------------------------------------------------------------------
def test_backward_errors():
    x = leaf(2, 3)
    with pytest.raises(RuntimeError, match=r"scalar output.*\(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(tg.ShapeError, match=r"\(3,\), expected \(2, 3\)"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0, 2.0]).sum().backward()


def test_backward_with_a_gradient_of_the_wrong_shape_names_the_op(scratch_registry):
    @register_op("_test_wrong_shape", arity=1, kind="shape", shapes=lambda d, a: [(2, 3)])
    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x.T.copy()

        @staticmethod
        def backward(ctx, g):
            return g  # should be g.T

    x = leaf(2, 3)
    with pytest.raises(tg.ShapeError, match=r"_test_wrong_shape.*\(2, 3\).*\(3, 2\)"):
        WrongShape.apply(x).sum().backward()
    assert x.grad is None


@pytest.mark.parametrize(
    ("make", "op", "shapes"),
    [
        (lambda: leaf(2, 3) @ leaf(4, 5), "matmul", ("(2, 3)", "(4, 5)")),
        (lambda: tg.concat([leaf(2, 3), leaf(3, 4)], axis=0), "concat", ("(2, 3)", "(3, 4)")),
        (lambda: tg.stack([leaf(2, 3), leaf(3, 2)]), "stack", ("(2, 3)", "(3, 2)")),
        (lambda: leaf(2, 3) + leaf(4), "add", ("(2, 3)", "(4,)")),
        (lambda: leaf(2, 3) * leaf(2, 1, 2), "mul", ("(2, 3)", "(2, 1, 2)")),
    ],
)
def test_shape_mismatch_names_op_and_both_shapes(make, op, shapes):
    with pytest.raises(tg.ShapeError) as info:
        make()
    message = str(info.value)
    assert op in message and all(s in message for s in shapes), message


# ---- long graphs: no recursion, linear time, freed by reference counting ------------------------
def test_100k_op_chain_backpropagates_each_node_once(counting_op):
    count, calls = counting_op
    x = leaf(2)
    y = x
    for _ in range(100_000):
        y = count.apply(y)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 1.0)
    assert sorted(calls) == list(range(100_000))


def test_diamonds_with_2_to_the_40_paths_visit_each_node_once(counting_op):
    count, calls = counting_op
    x = leaf(1)
    y = x
    for _ in range(40):
        c = count.apply(y)
        y = c + c
    y.sum().backward()
    assert sorted(calls) == list(range(40))
    np.testing.assert_array_equal(x.grad, [2.0**40])


def _recurrence(steps=5):
    """A small graph using shared weights, multi-output ops, getitem, a hook and retain_grad."""
    w, x = leaf(4, 4), leaf(steps, 2, 4, seed=1)
    h, kept = tg.zeros(2, 4, dtype=np.float64), []
    for x_t in tg.op("unstack").apply(x, axis=0):
        a, b = tg.split(x_t @ w + h, 2, axis=1)
        h = tg.concat([tg.sigmoid(a) * tg.tanh(b), a[:, ::-1]], axis=1)
        kept.append(h)
    kept[1].register_hook(lambda g: g * 1.0)
    kept[2].retain_grad()
    return (h * h).sum(), kept


def test_saved_arrays_are_released_after_backward_unless_retained():
    loss, kept = _recurrence()
    loss.backward(retain_graph=True)
    assert all(t._node.saved != () or t._node.inputs is not None for t in kept)
    loss.backward()
    assert all(t._node.saved == () and t._node.inputs is None for t in kept)


@pytest.mark.parametrize("backward", [True, False])
def test_graph_is_freed_by_reference_counting_alone(backward):
    gc.collect()
    gc.disable()
    try:
        loss, kept = _recurrence()
        if backward:
            loss.backward()
        tensor_ref, node_ref = weakref.ref(kept[2]), weakref.ref(kept[2]._node)
        del loss, kept
        assert tensor_ref() is None and node_ref() is None, "a reference cycle keeps the graph"
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        ours = [o for o in gc.garbage if isinstance(o, (Tensor, Context))]
        assert not ours, f"the cyclic collector found {len(ours)} tensors/nodes"
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_scope_labels_nodes_and_nests():
    x = leaf(2)
    with tg.scope("layer0"), tg.scope("t3"):
        y = x * 2
    z = y * 2
    assert y._node.scope == "layer0/t3" and z._node.scope is None


def test_a_comparison_mask_is_a_constant_in_arithmetic():
    # A NumPy habit (and a natural way to gate a custom cell): x * (x > 0). The mask takes
    # no gradient, as in PyTorch, where a bool tensor never requires grad.
    x = tg.Tensor(np.array([1.5, -2.0, 3.0]), requires_grad=True)
    y = (x * (x > 0)).sum() + ((x < 0) * x * x).sum()
    y.backward()
    assert y.dtype == np.float64
    np.testing.assert_array_equal(x.grad, [1.0, -4.0, 1.0])


# ---- hooks return a gradient of the tensor's shape ----------------------------------------------
def test_a_leaf_hook_returning_the_wrong_shape_is_refused_before_any_grad_changes():
    x, other = leaf(3), leaf(2, seed=1)
    x.register_hook(lambda g: np.ones((2, 3)))
    with pytest.raises(tg.ShapeError, match=r"hook.*shape \(2, 3\) for a tensor of shape \(3,\)"):
        ((x * 2.0).sum() + (other * 3.0).sum()).backward()
    assert x.grad is None and other.grad is None


def test_a_non_leaf_hook_returning_the_wrong_shape_is_refused():
    x = leaf(3)
    y = x * 2.0
    y.register_hook(lambda g: g[:2])
    with pytest.raises(tg.ShapeError, match=r"hook.*shape \(2,\) for a tensor of shape \(3,\)"):
        (y * 5.0).sum().backward()


# ---- a forward's ValueError: ShapeError only for shapes, the op named once ----------------------
def test_a_value_error_that_is_not_about_shapes_stays_a_value_error_named_once():
    seq = tg.op("rnn_sequence")
    x, h0 = Tensor(np.zeros((2, 1, 3))), Tensor(np.zeros((1, 4)))
    w_ih, w_hh, b = Tensor(np.zeros((4, 3))), Tensor(np.zeros((4, 4))), Tensor(np.zeros(4))
    with pytest.raises(ValueError) as info:
        seq.apply(x, h0, w_ih, w_hh, b, b, nonlinearity="sigmoid")
    assert type(info.value) is ValueError, type(info.value)
    message = str(info.value)
    assert message.startswith("rnn_sequence: nonlinearity") and message.count("rnn_sequence") == 1


def test_an_op_value_error_without_the_op_name_gets_it(scratch_registry):
    @register_op("_test_bad_value", arity=1)
    class BadValue(Function):
        @staticmethod
        def forward(ctx, x, level=0):
            raise ValueError(f"level must be positive, got {level}")

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(ValueError, match=r"^_test_bad_value: level must be positive, got -1$"):
        BadValue.apply(leaf(2), level=-1)


def test_numpys_shape_errors_become_shape_errors_naming_the_op_once(scratch_registry):
    @register_op("_test_numpy_add", arity=2)
    class NumpyAdd(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(tg.ShapeError) as info:
        NumpyAdd.apply(leaf(2, 3), leaf(4))
    message = str(info.value)
    assert message.startswith("_test_numpy_add: operands could not be broadcast"), message
    assert "input shapes (2, 3), (4,)" in message


def test_accumulation_never_writes_into_an_array_it_did_not_make():
    """Fan-in sums into a fresh array, then in place into that one: the caller's upstream
    gradient and the first gradient that arrived are left alone."""
    x = leaf(3)
    g = np.ones(3)
    y = x * 1.0
    (y + y + y).backward(g)
    np.testing.assert_array_equal(g, np.ones(3))
    np.testing.assert_array_equal(x.grad, np.full(3, 3.0))
