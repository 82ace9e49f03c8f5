"""ops/rule_function.py: an op runs its scalar rule, forward and backward; its NumPy fast
variants compute exactly the expressions they stand for (at NaN, infinities and signed
zeros too); forward saves only what the derivatives read; dtypes and attributes."""

import math

import numpy as np
import pytest
from tinygrad_lstm.ops.rule_function import RuleFunction
from tinygrad_lstm.ops.rule_ufuncs import rule_arguments, rule_ufunc

import tinygrad_lstm as tg

EDGES = [math.nan, math.inf, -math.inf, 0.0, -0.0]
VARIANTS = [
    (info.name, key)
    for info in tg.list_ops()
    if isinstance(info.fn, type) and issubclass(info.fn, RuleFunction)
    for key in info.fn.numpy
]


def test_the_variants_are_the_measured_ones():
    """benchmarks/README.md gives the figures for exactly these."""
    assert sorted(VARIANTS) == [("exp", "y"), ("log", "y"), ("tanh", "y")]


def _values(dtype, arity):
    """Edges, ties and 4000 random values (over a wide range: the exponentials saturate)."""
    rng = np.random.default_rng(0)
    wide = np.concatenate([rng.uniform(-5, 5, 2000), rng.uniform(-800, 800, 2000)])
    columns = [np.concatenate([EDGES * len(EDGES), wide]) for _ in range(arity)]
    if arity == 2:
        columns[1][: len(EDGES) ** 2] = np.repeat(EDGES, len(EDGES))  # every pair of edges
        columns[1][len(EDGES) ** 2 :: 3] = columns[0][len(EDGES) ** 2 :: 3]  # ties
    return [c.astype(dtype) for c in columns]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op, key", VARIANTS)
def test_a_numpy_variant_computes_its_rule_expression(op, key, dtype):
    """Within 2 ulps of the rule's libm ufunc (NumPy's loops are SIMD approximations),
    equal at every edge (NaN, infinities, zeros with their signs). (NumPy's maximum, 0.75x
    the rule's time, is no variant: at a tie of 0.0 and -0.0 it does not return a.)"""
    arity = len(rule_arguments(op, key))
    args = _values(dtype, arity)
    with np.errstate(all="ignore"):
        want = rule_ufunc(op, key, np.dtype(dtype))(*args)
        got = tg.op(op).numpy[key](*args)
    assert got.dtype == want.dtype
    edges = ~np.isfinite(want) | (want == 0) | ~np.isfinite(got) | (got == 0)
    np.testing.assert_array_equal(got[edges], want[edges])
    zeros = want == 0
    assert list(np.signbit(got[zeros])) == list(np.signbit(want[zeros]))
    np.testing.assert_array_max_ulp(got[~edges], want[~edges], maxulp=2)


@pytest.mark.parametrize(
    "name, saved",
    [("sigmoid", ["y"]), ("mul", ["a", "b"]), ("add", []), ("relu", ["x"]), ("where", ["mask"])],
)
def test_forward_saves_only_what_the_derivatives_read(name, saved):
    info = tg.op_info(name)
    inputs = [tg.Tensor(np.full(3, 0.5), requires_grad=True) for _ in range(info.arity)]
    y = tg.op(name).apply(*inputs)
    arrays = {**{n: t.data for n, t in zip(info.scalar.inputs, inputs)}, "y": y.data}
    assert [id(a) for a in y._node.saved] == [id(arrays[n]) for n in saved]


def test_a_derivative_that_is_g_passes_g_on_without_a_kernel():
    a, b = (tg.Tensor(np.ones(3), requires_grad=True) for _ in range(2))
    y = a + b
    g = np.arange(3.0)
    da, db = y._node.fn.backward(y._node, g)
    assert da is g and db is g


def test_a_needed_gradient_the_rule_declares_none_is_zeros():
    """where's mask: the output does not move when a float mask moves a little."""
    mask = tg.Tensor(np.array([0.0, 2.0]), requires_grad=True)
    a, b = tg.Tensor(np.ones(2), requires_grad=True), tg.Tensor(np.zeros(2))
    tg.where(mask, a, b).backward(np.ones(2))
    np.testing.assert_array_equal(mask.grad, [0.0, 0.0])
    assert b.grad is None


def test_inputs_of_two_dtypes_promote_as_numpy_and_a_mask_does_not_count():
    a32, b64 = np.ones(2, np.float32), np.ones(2)
    assert tg.add(tg.Tensor(a32), tg.Tensor(b64)).dtype == np.float64
    y = tg.where(tg.Tensor(np.array([1.0, 0.0])), tg.Tensor(a32), tg.Tensor(2 * a32))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [1.0, 2.0])


def test_attributes_are_named_checked_and_defaulted():
    x = tg.Tensor(np.array([-1.0, 30.0]))
    np.testing.assert_array_equal(tg.op("leaky_relu").apply(x).data, [-0.01, 30.0])
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'exponent'"):
        tg.op("pow").apply(x)
    with pytest.raises(TypeError, match="unexpected keyword argument 'slope'"):
        tg.op("leaky_relu").apply(x, slope=0.5)


def test_an_op_of_ones_own_runs_its_rule(scratch_registry):
    """A plugin's op needs only its rule: y = a + w (b - a), with its gradients."""

    @tg.register_op(
        "lerp_rule_test",
        arity=2,
        attrs={"w": [0.25]},
        scalar={"y": "a + w * (b - a)", "da": "g * (1 - w)", "db": "g * w"},
    )
    class Lerp(RuleFunction):
        """y = a + w (b - a)."""

        @staticmethod
        def attributes(w=0.5):
            return {"w": w}

    a = tg.Tensor(np.array([[0.0], [1.0]], np.float32), requires_grad=True)
    b = tg.Tensor(np.array([2.0, 4.0, 8.0], np.float32), requires_grad=True)
    y = Lerp.apply(a, b, w=0.25)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, a.data + 0.25 * (b.data - a.data))
    y.backward(np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(a.grad, [[2.25], [2.25]])
    np.testing.assert_array_equal(b.grad, [0.5, 0.5, 0.5])
