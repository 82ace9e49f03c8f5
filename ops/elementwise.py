"""Elementwise ops: add, sub, mul, div, neg, pow, exp, log, sigmoid, tanh, relu.

Binary ops broadcast like NumPy; their backwards return full-shape gradients and the
engine's ``unbroadcast`` sums them back to each input's shape.

dtype rule, the same for every op here: the output and every gradient have the input's
dtype. The Numba kernels have float32 and float64 loops only, so a float16 input is
computed in float32 and its result returned as float16 (``_like``).

Each op's ``scalar=`` rule is its math on one element, the source the cell compiler
generates fused kernels from (tests/ops/test_scalar_rules.py checks it against the class).
"""

import math

import numpy as np

from tinygrad_lstm import Function, register_op

from . import kernels

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


@register_op("div", arity=2, scalar={"y": "a / b", "da": "g / b", "db": "-g * y / b"},
             domain=[(-math.inf, math.inf), (-math.inf, math.inf)],
             avoid=(0.0,), margin=0.2)
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
        gb = _like(kernels.div_grad_denominator(g, a, b), g) if need_b else None
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


@register_op("pow", arity=1, domain=(0.1, math.inf),
             scalar={"y": "x ** exponent",
                     "dx": "0 * g if exponent == 0 else g * exponent * x ** (exponent - 1)"},
             attrs={"exponent": [2.0, 3.0, 0.5, -1.5]})
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
        return _like(kernels.pow_grad(g, x, x.dtype.type(ctx.exponent)), x)


@register_op("exp", arity=1, domain=(-5.0, 5.0), scalar={"y": "exp(x)", "dx": "g * y"})
class Exp(Function):
    """y = exp(x);  dx = g * y."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g * y


@register_op("log", arity=1, domain=_POSITIVE, margin=0.1,
             scalar={"y": "log(x)", "dx": "g / x"})
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


@register_op("sigmoid", arity=1,
             scalar={"y": "1 / (1 + exp(-x))", "dx": "g * y * (1 - y)"})
class Sigmoid(Function):
    """y = 1 / (1 + exp(-x));  dx = g * y * (1 - y)."""

    @staticmethod
    def forward(ctx, x):
        # The vectorized float32 loop wins from about a thousand elements on.
        fast = x.dtype == np.float32 and x.size >= 1024
        y = _like(kernels.sigmoid_float32(x) if fast else kernels.sigmoid(x), x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return _like(kernels.sigmoid_grad(g, y), y)


@register_op("tanh", arity=1, scalar={"y": "tanh(x)", "dx": "g * (1 - y * y)"})
class Tanh(Function):
    """y = tanh(x);  dx = g * (1 - y**2)."""

    @staticmethod
    def forward(ctx, x):
        y = kernels.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return _like(kernels.tanh_grad(g, y), y)


@register_op("relu", arity=1, avoid=(0.0,),
             scalar={"y": "x if x > 0 else 0 * x", "dx": "g if x > 0 else 0 * g"})
class Relu(Function):
    """y = max(x, 0);  dx = g where x > 0 else 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _like(kernels.relu(x), x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return _like(kernels.relu_grad(g, x), x)
