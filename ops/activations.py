"""Activations beyond sigmoid/tanh/relu: softplus, leaky_relu, hardsigmoid, hardtanh.

PyTorch's definitions and its gradient at the kinks (``torch.nn.functional`` of the same
names): leaky_relu'(0) = negative_slope, hardsigmoid'(+-3) = 0, hardtanh' = 0 at its bounds,
softplus is linear past its threshold. Gated cells with hard or smooth-positive gates
(hard-gated LSTMs, Li-GRU) reach for these.
Their function forms are ``tg.softplus`` and the like (tinygrad_lstm.functional).
"""

from __future__ import annotations

import numpy as np

from tinygrad_lstm import Function, register_op


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
class Softplus(Function):
    """y = log(1 + exp(beta x)) / beta, or x where beta x > threshold (PyTorch's
    beta = 1, threshold = 20 by default);  dx = g * sigmoid(beta x), or g past the threshold."""

    @staticmethod
    def forward(ctx, x, beta=1.0, threshold=20.0):
        if beta == 0:
            raise ValueError("softplus: beta must be nonzero, got 0")
        beta, threshold = x.dtype.type(beta), x.dtype.type(threshold)
        z = x * beta
        linear = z > threshold
        # exp of the clamped input: the linear branch would overflow, and is not used.
        e = np.exp(np.minimum(z, threshold))
        ctx.save_for_backward(linear, e)
        return np.where(linear, x, np.log1p(e) / beta)

    @staticmethod
    def backward(ctx, g):
        linear, e = ctx.saved
        return np.where(linear, g, g * e / (e + 1))


@register_op(
    "leaky_relu",
    arity=1,
    attrs={"negative_slope": [0.01, 0.2, 1.5]},
    avoid=(0.0,),
    scalar={"y": "x if x > 0 else x * negative_slope", "dx": "g if x > 0 else g * negative_slope"},
)
class LeakyRelu(Function):
    """y = x where x > 0 else negative_slope * x;  dx = g where x > 0 else
    negative_slope * g (the slope at 0, as in PyTorch)."""

    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        slope = x.dtype.type(negative_slope)
        ctx.save_for_backward(x)
        ctx.slope = slope
        return np.where(x > 0, x, x * slope)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return np.where(x > 0, g, g * ctx.slope)


@register_op(
    "hardsigmoid",
    arity=1,
    domain=(-6.0, 6.0),
    avoid=(-3.0, 3.0),
    scalar={"y": "min(max(x + 3, 0), 6) / 6", "dx": "g / 6 if x > -3 and x < 3 else 0 * g"},
)
class Hardsigmoid(Function):
    """y = relu6(x + 3) / 6 = min(max(x + 3, 0), 6) / 6;  dx = g / 6 where -3 < x < 3,
    else 0 (0 at +-3, as in PyTorch)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.minimum(np.maximum(x + 3, 0), 6) / x.dtype.type(6)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return np.where((x > -3) & (x < 3), g / g.dtype.type(6), np.zeros_like(g))


@register_op(
    "hardtanh",
    arity=1,
    attrs={"min_val": [-1.0, -2.0], "max_val": [1.0, 0.5]},
    avoid=(-2.0, -1.0, 0.5, 1.0),
    scalar={
        "y": "min_val if x < min_val else (max_val if x > max_val else x)",
        "dx": "g if x > min_val and x < max_val else 0 * g",
    },
)
class Hardtanh(Function):
    """y = x limited to [min_val, max_val] (default [-1, 1]);  dx = g where
    min_val < x < max_val, else 0 (0 at the bounds, as in PyTorch: unlike clip)."""

    @staticmethod
    def forward(ctx, x, min_val=-1.0, max_val=1.0):
        if min_val > max_val:
            raise ValueError(f"min_val {min_val} must not be greater than max_val {max_val}")
        low, high = x.dtype.type(min_val), x.dtype.type(max_val)
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return np.minimum(np.maximum(x, low), high)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return np.where((x > ctx.low) & (x < ctx.high), g, np.zeros_like(g))
