"""Activations beyond sigmoid/tanh/relu: softplus, leaky_relu, hardsigmoid, hardtanh.

PyTorch's definitions and its gradient at the kinks (``torch.nn.functional`` of the same
names): leaky_relu'(0) = negative_slope, hardsigmoid'(+-3) = 0, hardtanh' = 0 at its bounds,
softplus is linear past its threshold. Gated cells with hard or smooth-positive gates
(hard-gated LSTMs, Li-GRU) reach for these.
Each runs its ``scalar=`` rule (``RuleFunction``, ops/rule_function.py); its attributes'
defaults and checks are its ``attributes``. Their function forms are ``tg.softplus`` and the
like (tinygrad_lstm.functional).
"""

from __future__ import annotations

from tinygrad_lstm import register_op

from .rule_function import RuleFunction


# The linear branch starts at x = threshold / beta: 0.5, 1, 2, 10, 20 and 40 for the choices
# tried (a jump of log1p(exp(-threshold)) / beta there).
@register_op(
    "softplus",
    arity=1,
    attrs={"beta": [1.0, 2.0, 0.5], "threshold": [20.0, 1.0]},
    avoid=(0.5, 1.0, 2.0, 10.0, 20.0, 40.0),
    scalar={
        "y": "x if x * beta > threshold else log1p(exp(x * beta)) / beta",
        "dx": "g if x * beta > threshold else g * exp(x * beta) / (exp(x * beta) + 1)",
    },
)
class Softplus(RuleFunction):
    """y = log(1 + exp(beta x)) / beta, or x where beta x > threshold (PyTorch's
    beta = 1, threshold = 20 by default);  dx = g * sigmoid(beta x), or g past the threshold."""

    @staticmethod
    def attributes(beta=1.0, threshold=20.0):
        if beta == 0:
            raise ValueError("softplus: beta must be nonzero, got 0")
        return {"beta": beta, "threshold": threshold}


@register_op(
    "leaky_relu",
    arity=1,
    attrs={"negative_slope": [0.01, 0.2, 1.5]},
    avoid=(0.0,),
    scalar={"y": "x if x > 0 else x * negative_slope", "dx": "g if x > 0 else g * negative_slope"},
)
class LeakyRelu(RuleFunction):
    """y = x where x > 0 else negative_slope * x;  dx = g where x > 0 else
    negative_slope * g (the slope at 0, as in PyTorch)."""

    @staticmethod
    def attributes(negative_slope=0.01):
        return {"negative_slope": negative_slope}


@register_op(
    "hardsigmoid",
    arity=1,
    domain=(-6.0, 6.0),
    avoid=(-3.0, 3.0),
    scalar={"y": "min(max(x + 3, 0), 6) / 6", "dx": "g / 6 if x > -3 and x < 3 else 0"},
)
class Hardsigmoid(RuleFunction):
    """y = relu6(x + 3) / 6 = min(max(x + 3, 0), 6) / 6;  dx = g / 6 where -3 < x < 3,
    else 0 (0 at +-3 and at NaN, as in PyTorch)."""


@register_op(
    "hardtanh",
    arity=1,
    attrs={"min_val": [-1.0, -2.0], "max_val": [1.0, 0.5]},
    avoid=(-2.0, -1.0, 0.5, 1.0),
    scalar={
        "y": "min_val if x < min_val else (max_val if x > max_val else x)",
        "dx": "0 if x <= min_val or x >= max_val else g",
    },
)
class Hardtanh(RuleFunction):
    """y = x limited to [min_val, max_val] (default [-1, 1]);  dx = 0 where x <= min_val or
    x >= max_val, else g (0 at the bounds, unlike clip; g at NaN: PyTorch's rule)."""

    @staticmethod
    def attributes(min_val=-1.0, max_val=1.0):
        if min_val > max_val:
            raise ValueError(f"min_val {min_val} must not be greater than max_val {max_val}")
        return {"min_val": min_val, "max_val": max_val}
