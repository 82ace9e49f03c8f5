"""Every built-in elementwise primitive at NaN, +-inf and signed zeros, forward and backward,
under finite, infinite and NaN upstream gradients, against PyTorch (the reference: e.g.
abs'(nan) = 0 and hardtanh'(nan) = 1 there). Each registered built-in elementwise op is
enumerated (with every attribute choice its registration gives the generic tests, plus the
exponents PyTorch treats apart), in float64 and float32.

PyTorch's vectorized CPU kernels disagree with its scalar ones at a few of these points
(hardtanh'(nan) is 0 in the vectorized path, 1 in the scalar one; maximum(0.0, -0.0) is
-0.0 or 0.0), so the reference is PyTorch one element at a time: its scalar path, whose
formulas are the ones its derivatives are documented with."""

import itertools
import math

import numpy as np
import pytest

import tinygrad_lstm as tg

torch = pytest.importorskip("torch")
F = torch.nn.functional

# op -> its PyTorch counterpart, called with torch tensors and our attributes.
TORCH = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
    "neg": torch.neg,
    "pow": lambda x, exponent: torch.pow(x, exponent),
    "exp": torch.exp,
    "log": torch.log,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softplus": lambda x, beta, threshold: F.softplus(x, beta, threshold),
    "leaky_relu": lambda x, negative_slope: F.leaky_relu(x, negative_slope),
    "hardsigmoid": F.hardsigmoid,
    "hardtanh": lambda x, min_val, max_val: F.hardtanh(x, min_val, max_val),
    "abs": torch.abs,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "where": lambda mask, a, b: torch.where(mask != 0, a, b),
    "clip": lambda x, min, max: torch.clamp(x, min, max),
}
# Attributes tried besides the registered choices: PyTorch computes some exponents apart
# (0.5 as sqrt, -0.5 as 1 / sqrt, 0 and 1 by filling and copying), and a clip whose min
# exceeds its max gives max.
EXTRA = {
    "pow": [{"exponent": p} for p in (0.0, 1.0, -0.5, 1.5, -1.0, -2.0)],
    "clip": [{"min": 1.0, "max": -1.0}],
}
EDGES = [math.nan, math.inf, -math.inf, 0.0, -0.0]
# Finite points around the kinks of the ops (their bounds, thresholds and ties).
FINITE = [-3.0, -1.0, 0.5, 1.0, 1.5, 3.0, 20.0]
UPSTREAM = [1.25, -0.75, math.inf, math.nan]
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def builtin_elementwise_ops():
    return [
        info.name
        for info in tg.list_ops()
        if info.kind == "elementwise" and info.fn.__module__.startswith("tinygrad_lstm.ops.")
    ]


def attribute_sets(info):
    names = list(info.attrs)
    sets = [dict(zip(names, values)) for values in itertools.product(*info.attrs.values())]
    return sets + EXTRA.get(info.name, [])


def test_every_builtin_elementwise_op_has_a_torch_counterpart_here():
    missing = set(builtin_elementwise_ops()) - set(TORCH)
    assert not missing, f"no PyTorch counterpart listed for {missing}"


def grid(arity):
    """Every combination of edge and finite values over ``arity`` inputs, each under every
    upstream gradient: (inputs as flat arrays, g)."""
    values = EDGES + FINITE
    if arity == 3:  # where: a mask that is 0, -0, nonzero or NaN; the edges for a and b
        combos = list(itertools.product([0.0, -0.0, 1.0, math.nan], EDGES + [1.5], EDGES))
    else:
        combos = list(itertools.product(values, repeat=arity))
    combos = [c for c in combos for _ in UPSTREAM]
    inputs = [np.array([c[k] for c in combos]) for k in range(arity)]
    return inputs, np.array(UPSTREAM * (len(combos) // len(UPSTREAM)))


def assert_like_torch(ours, theirs, dtype, what):
    """NaN where PyTorch has NaN, the same infinities, zeros with PyTorch's sign; finite
    values agree to rtol 1e-7 (float64) or 1e-5 (float32: the fast sigmoid and tanh run a
    few ulps from libm), which is all that this test is about: the tight comparisons of
    finite values are in the ops' own tests (PyTorch's float64 hardsigmoid gradient
    multiplies by 1/6 rounded to float32, a relative difference of 3e-8)."""
    nan = np.isnan(theirs)
    bad = np.flatnonzero(np.isnan(ours) != nan)
    special = ~nan & (np.isinf(theirs) | (theirs == 0))
    bad = np.union1d(bad, np.flatnonzero(special & (ours != theirs)))
    zeros = special & (theirs == 0)
    bad = np.union1d(bad, np.flatnonzero(zeros & (np.signbit(ours) != np.signbit(theirs))))
    assert not bad.size, f"{what}: at {bad[:8]} ours {ours[bad[:8]]}, PyTorch {theirs[bad[:8]]}"
    finite = ~nan & ~special
    rtol = 1e-7 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=rtol, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", builtin_elementwise_ops())
def test_values_and_gradients_at_nan_and_infinity_match_pytorch(name, dtype):
    info = tg.op_info(name)
    inputs, g = grid(info.arity)
    # where's mask is a constant (PyTorch's is bool and takes no gradient)
    grads = [not (name == "where" and k == 0) for k in range(info.arity)]
    for attrs in attribute_sets(info):
        mine = [tg.Tensor(x.astype(dtype), requires_grad=r) for x, r in zip(inputs, grads)]
        with np.errstate(all="ignore"):  # NumPy warns at log(-1), exp(1000)...; PyTorch not
            y = tg.op(name).apply(*mine, **attrs)
            y.backward(g.astype(dtype))
        ty, tgrads = torch_one_by_one(name, inputs, g, grads, dtype, attrs)
        where = f"{name}{attrs} {np.dtype(dtype).name}"
        assert y.dtype == dtype, where
        assert_like_torch(y.data, ty, dtype, f"{where}: values")
        for k, (t, tgrad) in enumerate(zip(mine, tgrads)):
            if tgrad is not None:
                assert_like_torch(t.grad, tgrad, dtype, f"{where}: gradient {k}")


def torch_one_by_one(name, inputs, g, grads, dtype, attrs):
    """PyTorch's values and input gradients, each element computed alone."""
    ys, ds = [], [[] for _ in inputs]
    for i in range(g.size):
        ts = [
            torch.tensor([x[i]], dtype=TORCH_DTYPE[dtype], requires_grad=r)
            for x, r in zip(inputs, grads)
        ]
        y = TORCH[name](*ts, **attrs)
        y.backward(torch.tensor([g[i]], dtype=TORCH_DTYPE[dtype]))
        ys.append(y.item())
        for k, t in enumerate(ts):
            ds[k].append(t.grad.item() if t.grad is not None else None)
    grads_out = [np.array(d, dtype) if r else None for d, r in zip(ds, grads)]
    return np.array(ys, dtype), grads_out
