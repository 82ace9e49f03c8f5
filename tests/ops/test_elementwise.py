"""ops/elementwise.py: values, broadcasting gradients, fused kernels against the composed
formulas they replace, stability at saturation, and PyTorch parity when it is installed."""

import warnings

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import Tensor

UNARY = {
    "neg": np.negative,
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


def leaf(data, dtype=np.float64):
    return Tensor(np.asarray(data, dtype), requires_grad=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_values_and_dtype(name, dtype):
    x = np.linspace(0.1, 3.0, 7).astype(dtype) * (
        1 if name == "log" else np.array([-1, 1, -1, 1, -1, 1, -1], dtype)
    )
    y = tg.op(name).apply(Tensor(x))
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data, UNARY[name](x), rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_broadcast_values_and_gradients(name):
    rng = np.random.default_rng(0)
    a_np, b_np = rng.uniform(0.5, 2, (2, 3, 1)), rng.uniform(0.5, 2, (4,))
    a, b = leaf(a_np), leaf(b_np)
    y = tg.op(name).apply(a, b)
    np.testing.assert_allclose(y.data, BINARY[name](a_np, b_np), rtol=1e-15)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    da = {"add": g, "sub": g, "mul": g * b_np, "div": g / b_np}[name]
    db = {"add": g, "sub": -g, "mul": g * a_np, "div": -g * a_np / b_np**2}[name]
    np.testing.assert_allclose(a.grad, da.sum(axis=2, keepdims=True), rtol=1e-13)
    np.testing.assert_allclose(b.grad, db.sum(axis=(0, 1)), rtol=1e-13)


@pytest.mark.parametrize("exponent", [2, 3.0, 0.5, -1.5, 0.0])
def test_pow_values_and_gradient(exponent):
    x = leaf([0.5, 1.0, 2.5])
    y = x**exponent
    np.testing.assert_allclose(y.data, x.data**exponent, rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, exponent * x.data ** (exponent - 1), rtol=1e-14)
    assert (Tensor([2.0]) ** exponent).dtype == np.float32


# Every fused kernel against the same function composed of other ops (an independent oracle).
COMPOSED = {
    "sigmoid": lambda x: 1.0 / (1.0 + tg.exp(-x)),
    "tanh": lambda x: (1.0 - tg.exp(-2.0 * x)) / (1.0 + tg.exp(-2.0 * x)),
    "relu": lambda x: x * Tensor((x.data > 0).astype(x.dtype)),
    "div": lambda a, b: a * b**-1.0,
    "pow": lambda x: tg.exp(tg.log(x) * -1.5),
}


@pytest.mark.parametrize("name", sorted(COMPOSED))
def test_fused_kernels_match_the_composed_formula(name):
    rng = np.random.default_rng(1)
    n_in = 2 if name == "div" else 1
    data = [rng.uniform(0.2, 3, 20) * rng.choice([-1, 1], 20) for _ in range(n_in)]
    if name == "pow":
        data = [np.abs(d) for d in data]
    g = rng.standard_normal(20)
    grads = []
    for make in (
        lambda *t: tg.op(name).apply(*t, **({"exponent": -1.5} if name == "pow" else {})),
        COMPOSED[name],
    ):
        ins = [leaf(d) for d in data]
        out = make(*ins)
        out.backward(g)
        grads.append((out.data, [t.grad for t in ins]))
    (y_fused, g_fused), (y_comp, g_comp) = grads
    np.testing.assert_allclose(y_fused, y_comp, rtol=1e-14)
    for a, b in zip(g_fused, g_comp):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_saturated_gates_give_finite_values_and_zero_gradients(name, dtype):
    x = leaf([-1e4, -1e3, 1e3, 1e4], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = tg.op(name).apply(x)
        y.backward(np.ones(4, dtype))
    low = 0.0 if name == "sigmoid" else -1.0
    np.testing.assert_array_equal(y.data, [low, low, 1.0, 1.0])
    np.testing.assert_array_equal(x.grad, 0.0)
    assert y.dtype == x.grad.dtype == dtype


def test_relu_gradient_at_zero_is_zero():
    x = leaf([-1.0, 0.0, 2.0])
    tg.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("name", sorted(UNARY) + sorted(BINARY) + ["pow"])
def test_values_and_gradients_match_pytorch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    shapes = [(3, 1, 4), (2, 4)] if name in BINARY else [(3, 4)]
    data = [
        rng.uniform(0.3, 2.0, s) * (1 if name in ("log", "pow") else rng.choice([-1, 1], s))
        for s in shapes
    ]
    attrs = {"exponent": 1.7} if name == "pow" else {}
    ours = [leaf(d) for d in data]
    theirs = [torch.tensor(d, requires_grad=True) for d in data]
    torch_fn = {
        "neg": torch.neg,
        "exp": torch.exp,
        "log": torch.log,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "add": torch.add,
        "sub": torch.sub,
        "mul": torch.mul,
        "div": torch.div,
        "pow": lambda t: torch.pow(t, 1.7),
    }[name]
    y, ty = tg.op(name).apply(*ours, **attrs), torch_fn(*theirs)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-14, atol=1e-15)
    for t, tt in zip(ours, theirs):
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_pow_zero_has_gradient_zero_everywhere_even_at_zero():
    """d(x**0)/dx = 0 for every x, 0 included (PyTorch's answer: 0, not NaN)."""
    x = leaf([0.0, 1.5, 2.0])
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])
    torch = pytest.importorskip("torch")
    t = torch.tensor([0.0, 1.5, 2.0], dtype=torch.float64, requires_grad=True)
    (t**0).sum().backward()
    np.testing.assert_array_equal(x.grad, t.grad.numpy())


ELEMENTWISE = [
    info.name
    for info in tg.list_ops()
    if info.kind == "elementwise" and info.origin.endswith("ops.elementwise")
]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_elementwise_op_keeps_float16(name):
    """The rule for every elementwise op: y and every gradient have the input's dtype.
    float16 is computed in float32 where a Numba kernel has no float16 loop, and comes
    back as float16 (sigmoid used to return float32 while tanh kept float16)."""
    info = tg.op_info(name)
    arity = info.arity
    data = [np.linspace(0.5, 1.5, 6).astype(np.float16) for _ in range(arity)]
    inputs = [Tensor(d, requires_grad=True) for d in data]
    attrs = {key: choices[0] for key, choices in info.attrs.items()}
    y = tg.op(name).apply(*inputs, **attrs)
    assert y.dtype == np.float16, f"{name}: float16 input gave {y.dtype} output"
    # The op's own backward (the engine casts leaf gradients, which would hide it).
    grads = y._node.fn.backward(y._node, np.ones(y.shape, np.float16))
    for k, g in enumerate(grads if isinstance(grads, tuple) else (grads,)):
        assert g is None or g.dtype == np.float16, f"{name}: gradient {k} is {g.dtype}"


def test_relu_matches_pytorch_at_nan_signed_zeros_and_infinities():
    """PyTorch is the reference: relu(nan) = nan, relu(-0.0) = -0.0, relu(-inf) = +0.0,
    and the gradient passes at nan but not at +-0 or below, even for an infinite g."""
    torch = pytest.importorskip("torch")
    values = [np.nan, -0.0, 0.0, -np.inf, np.inf, -2.0, 3.0]
    for dtype, torch_dtype in ((np.float64, torch.float64), (np.float32, torch.float32)):
        for upstream in (1.0, np.inf):
            x = leaf(values, dtype)
            g = np.full(len(values), upstream, dtype)
            with np.errstate(invalid="ignore"):  # comparing nan sets the invalid flag
                y = tg.relu(x)
                y.backward(g)
            tx = torch.tensor(values, dtype=torch_dtype, requires_grad=True)
            ty = torch.relu(tx)
            ty.backward(torch.tensor(g))
            for ours, theirs, what in (
                (y.data, ty.detach().numpy(), "relu"),
                (x.grad, tx.grad.numpy(), "relu gradient"),
            ):
                np.testing.assert_array_equal(ours, theirs, err_msg=f"{what}, {dtype}")
                assert list(np.signbit(ours)) == list(np.signbit(theirs)), (
                    f"{what}, {dtype}: signs of zero {ours} against PyTorch's {theirs}"
                )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_div_gradients_round_as_pytorchs(dtype):
    """PyTorch is the reference: its denominator gradient -g * ((a / b) / b) rounds
    differently from -g * a / b**2 in about half the elements; ours is bitwise the same."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a_np = rng.standard_normal(2000).astype(dtype)
    b_np = (rng.uniform(0.3, 3, 2000) * rng.choice([-1, 1], 2000)).astype(dtype)
    g = rng.standard_normal(2000).astype(dtype)
    a, b = leaf(a_np, dtype), leaf(b_np, dtype)
    tg.div(a, b).backward(g)
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a_np, b_np))
    (ta / tb).backward(torch.tensor(g))
    np.testing.assert_array_equal(a.grad, ta.grad.numpy())
    np.testing.assert_array_equal(b.grad, tb.grad.numpy())
