"""Elementwise ops: add, sub, mul, div, neg, pow, exp, log, sigmoid, tanh, relu.

Each op's math is its ``scalar=`` rule, written once in its ``register_op`` line: a
one-element forward ``y`` and one derivative per input. Where a NumPy loop is that rule
itself (``a + b``, ``np.exp``, ``g / b``...) the op runs NumPy; elsewhere it runs
``rule_ufunc(op, key, dtype)``, a Numba ufunc generated from the rule (ops/rule_ufuncs.py),
so the code an op runs cannot drift from the math it declares. The cell compiler generates
its fused kernels from the same rules (tests/ops/test_scalar_rules.py checks every rule
against its op).

Binary ops broadcast like NumPy; their backwards return full-shape gradients and the
engine's ``unbroadcast`` sums them back to each input's shape.

dtype rule, the same for every op here: the output and every gradient have the input's
dtype. The generated ufuncs have float32 and float64 loops only, so a float16 input is
computed in float32 and its result returned as float16 (``_like``). float32 sigmoid runs
its rule's fast variant (``fast=True``; ops/rule_ufuncs.py), as the fused kernels do.
"""

import math

import numpy as np

from tinygrad_lstm import Function, register_op

from .rule_ufuncs import rule_ufunc

_POSITIVE = (0.0, math.inf)


def _like(out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``out`` in ``x``'s dtype (a float16 input computed by a float32 kernel)."""
    return out if out.dtype == x.dtype else out.astype(x.dtype)


@register_op("add", arity=2, scalar={"y": "a + b", "da": "g", "db": "g"})
class Add(Function):
    """y = a + b;  da = g,  db = g."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


@register_op("sub", arity=2, scalar={"y": "a - b", "da": "g", "db": "-g"})
class Sub(Function):
    """y = a - b;  da = g,  db = -g."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


@register_op("mul", arity=2, scalar={"y": "a * b", "da": "g * b", "db": "g * a"})
class Mul(Function):
    """y = a * b;  da = g * b,  db = g * a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None)


# db as PyTorch computes it, (a / b) / b: the same rounding, so gradients agree bitwise.
@register_op(
    "div",
    arity=2,
    scalar={"y": "a / b", "da": "g / b", "db": "-g * (a / b / b)"},
    domain=[(-math.inf, math.inf), (-math.inf, math.inf)],
    avoid=(0.0,),
    margin=0.2,
)
class Div(Function):
    """y = a / b;  da = g / b,  db = -g * a / b**2."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        ga = g / b if need_a else None
        gb = _like(rule_ufunc("div", "db", g.dtype)(g, a, b), g) if need_b else None
        return ga, gb


@register_op("neg", arity=1, scalar={"y": "-x", "dx": "-g"})
class Neg(Function):
    """y = -x;  dx = -g."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


@register_op(
    "pow",
    arity=1,
    domain=(0.1, math.inf),
    scalar={
        "y": "x ** exponent",
        "dx": "0 * g if exponent == 0 else g * exponent * x ** (exponent - 1)",
    },
    attrs={"exponent": [2.0, 3.0, 0.5, -1.5]},
)
class Pow(Function):
    """y = x ** p for a scalar p;  dx = g * p * x ** (p - 1) (0 for p = 0, at x = 0 too)."""

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        return x ** x.dtype.type(exponent)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return _like(rule_ufunc("pow", "dx", x.dtype)(g, x, ctx.exponent), x)


class _SavesOutput(Function):
    """A unary op whose derivative is a function of its output y (exp, sigmoid, tanh):
    forward returns ``value(x)`` and saves it, backward returns ``grad(g, y)``. Each op
    gives those two, the code of its rule's ``y`` and ``dx``."""

    @classmethod
    def forward(cls, ctx, x):
        y = cls.value(x)
        ctx.save_for_backward(y)
        return y

    @classmethod
    def backward(cls, ctx, g):
        (y,) = ctx.saved
        return cls.grad(g, y)


@register_op("exp", arity=1, domain=(-5.0, 5.0), scalar={"y": "exp(x)", "dx": "g * y"})
class Exp(_SavesOutput):
    """y = exp(x);  dx = g * y."""

    value = staticmethod(np.exp)  # NumPy's SIMD loop is the rule itself

    @staticmethod
    def grad(g, y):
        return g * y


@register_op("log", arity=1, domain=_POSITIVE, margin=0.1, scalar={"y": "log(x)", "dx": "g / x"})
class Log(Function):
    """y = log(x), x > 0;  dx = g / x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return g / x


# Written stably: exp never overflows (1 + exp(-x) would, for x < -709 in float64).
@register_op(
    "sigmoid",
    arity=1,
    scalar={"y": "1 / (1 + exp(-x)) if x >= 0 else exp(x) / (1 + exp(x))", "dx": "g * y * (1 - y)"},
)
class Sigmoid(_SavesOutput):
    """y = 1 / (1 + exp(-x));  dx = g * y * (1 - y).  float32 (and float16) run the fast
    variant of y, ops/scalar_math.py's sigmoid_fast (within 3 float32 ulps)."""

    @staticmethod
    def value(x):
        return _like(rule_ufunc("sigmoid", "y", x.dtype, fast=True)(x), x)

    @staticmethod
    def grad(g, y):
        return _like(rule_ufunc("sigmoid", "dx", y.dtype)(g, y), y)


@register_op("tanh", arity=1, scalar={"y": "tanh(x)", "dx": "g * (1 - y * y)"})
class Tanh(_SavesOutput):
    """y = tanh(x);  dx = g * (1 - y**2)."""

    # NumPy's SIMD loop is the rule itself, faster in float32 than a ufunc calling libm's
    # tanhf (benchmarks/README.md), and as accurate.
    value = staticmethod(np.tanh)

    @staticmethod
    def grad(g, y):
        return _like(rule_ufunc("tanh", "dx", y.dtype)(g, y), y)


# PyTorch's relu, NaN and signed zeros included: relu(nan) = nan, relu(-0.0) = -0.0, and the
# gradient is g unless x <= 0 (so g at nan).
@register_op(
    "relu", arity=1, avoid=(0.0,), scalar={"y": "0 if x < 0 else x", "dx": "0 if x <= 0 else g"}
)
class Relu(Function):
    """y = max(x, 0) (NaN stays NaN);  dx = g where x > 0 (or NaN), else 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _like(rule_ufunc("relu", "y", x.dtype)(x), x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return _like(rule_ufunc("relu", "dx", x.dtype)(g, x), x)
