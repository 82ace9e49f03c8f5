"""Elementwise ops: add, sub, mul, div, neg, pow, exp, log, sigmoid, tanh, relu.

Each op's math is its ``scalar=`` rule, written once in its ``register_op`` line: a
one-element forward ``y`` and one derivative per input. The op runs that rule
(``RuleFunction``, ops/rule_function.py: Numba ufuncs generated from it), or, where NumPy's
own routine computes exactly one of its expressions and is measurably faster, that routine
(``numpy = {...}``, its fast variant: exp, log and tanh's forward; the figures are in
benchmarks/README.md). The cell compiler generates its fused kernels from the same rules.

Binary ops broadcast like NumPy; the engine's ``unbroadcast`` sums their gradients back to
each input's shape. The output and every gradient have the inputs' dtype (float16 is
computed in float32); float32 sigmoid runs its rule's fast variant (ops/scalar_math.py).
"""

import math

import numpy as np

from tinygrad_lstm import register_op

from .rule_function import RuleFunction

_POSITIVE = (0.0, math.inf)


@register_op("add", arity=2, scalar={"y": "a + b", "da": "g", "db": "g"})
class Add(RuleFunction):
    """y = a + b;  da = g,  db = g."""


@register_op("sub", arity=2, scalar={"y": "a - b", "da": "g", "db": "-g"})
class Sub(RuleFunction):
    """y = a - b;  da = g,  db = -g."""


@register_op("mul", arity=2, scalar={"y": "a * b", "da": "g * b", "db": "g * a"})
class Mul(RuleFunction):
    """y = a * b;  da = g * b,  db = g * a."""


# db as PyTorch computes it, (a / b) / b: the same rounding, so gradients agree bitwise.
@register_op(
    "div",
    arity=2,
    scalar={"y": "a / b", "da": "g / b", "db": "-g * (a / b / b)"},
    domain=[(-math.inf, math.inf), (-math.inf, math.inf)],
    avoid=(0.0,),
    margin=0.2,
)
class Div(RuleFunction):
    """y = a / b;  da = g / b,  db = -g * a / b**2."""


@register_op("neg", arity=1, scalar={"y": "-x", "dx": "-g"})
class Neg(RuleFunction):
    """y = -x;  dx = -g."""


# As PyTorch computes it: x ** 0.5 as sqrt(x) and x ** -0.5 as 1 / sqrt(x) (they differ
# from pow at -inf and -0), the derivative as g * (p * x ** (p - 1)) with the same cases.
@register_op(
    "pow",
    arity=1,
    domain=(0.1, math.inf),
    scalar={
        "y": "sqrt(x) if exponent == 0.5 else (1 / sqrt(x) if exponent == -0.5 else x ** exponent)",
        "dx": "0 if exponent == 0 else g * (exponent * (sqrt(x) if exponent == 1.5 else "
        "(1 / sqrt(x) if exponent == 0.5 else x ** (exponent - 1))))",
    },
    attrs={"exponent": [2.0, 3.0, 0.5, -1.5]},
)
class Pow(RuleFunction):
    """y = x ** p for a scalar p;  dx = g * p * x ** (p - 1) (0 for p = 0, at x = 0 and for
    any g too)."""

    @staticmethod
    def attributes(exponent):
        return {"exponent": exponent}


@register_op("exp", arity=1, domain=(-5.0, 5.0), scalar={"y": "exp(x)", "dx": "g * y"})
class Exp(RuleFunction):
    """y = exp(x);  dx = g * y."""

    numpy = {"y": np.exp}  # NumPy's SIMD loop: 5-7x the rule's libm ufunc at 16k elements


@register_op("log", arity=1, domain=_POSITIVE, margin=0.1, scalar={"y": "log(x)", "dx": "g / x"})
class Log(RuleFunction):
    """y = log(x), x > 0;  dx = g / x."""

    numpy = {"y": np.log}  # NumPy's SIMD loop: 4-5x the rule's libm ufunc at 16k elements


# Written stably: exp never overflows (1 + exp(-x) would, for x < -709 in float64).
@register_op(
    "sigmoid",
    arity=1,
    scalar={"y": "1 / (1 + exp(-x)) if x >= 0 else exp(x) / (1 + exp(x))", "dx": "g * y * (1 - y)"},
)
class Sigmoid(RuleFunction):
    """y = 1 / (1 + exp(-x));  dx = g * y * (1 - y).  float32 (and float16) run the fast
    variant of y, ops/scalar_math.py's sigmoid_fast (within 3 float32 ulps)."""


@register_op("tanh", arity=1, scalar={"y": "tanh(x)", "dx": "g * (1 - y * y)"})
class Tanh(RuleFunction):
    """y = tanh(x);  dx = g * (1 - y**2)."""

    # NumPy's SIMD loop: 3x the float32 fast variant, 8x libm's tanh in float64, at 16k
    # elements (the cell compiler's float32 kernels call tanh_fast, inside their loops).
    numpy = {"y": np.tanh}


# PyTorch's relu, NaN and signed zeros included: relu(nan) = nan, relu(-0.0) = -0.0, and the
# gradient is g unless x <= 0 (so g at nan).
@register_op(
    "relu", arity=1, avoid=(0.0,), scalar={"y": "0 if x < 0 else x", "dx": "0 if x <= 0 else g"}
)
class Relu(RuleFunction):
    """y = max(x, 0) (NaN stays NaN);  dx = g where x > 0 (or NaN), else 0."""
