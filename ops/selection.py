"""Elementwise selection: abs, maximum, minimum, where, clip.

Each output element is one of its inputs (or a bound), so each gradient is the upstream
gradient routed to whichever input was picked. Where the pick is a tie PyTorch's convention
holds: abs'(0) = 0, a tie of maximum/minimum gives each side half, clip passes the gradient
at its bounds. Cells such as IndRNN, JANET or hard-gated variants reach for these.
Their function forms are ``tg.abs``, ``tg.where`` and the like (tinygrad_lstm.functional).
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_lstm import Function, register_op


@register_op(
    "abs",
    arity=1,
    avoid=(0.0,),
    scalar={"y": "abs(x)", "dx": "g if x > 0 else (-g if x < 0 else 0 * g)"},
)
class Abs(Function):
    """y = |x|;  dx = g * sign(x) (0 at x = 0, as in PyTorch)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return g * np.sign(x)


def _half_at_ties(g, a, b, loses):
    """g where this side won, g / 2 at a tie, 0 where it lost (``loses``); with a NaN
    neither wins nor ties, and both sides get g (PyTorch's rule)."""
    with np.errstate(invalid="ignore"):
        return np.where(a == b, g / 2, np.where(loses, np.zeros_like(g), g))


@register_op(
    "maximum",
    arity=2,
    scalar={
        "y": "a if a > b or a != a else b",
        "da": "g / 2 if a == b else (0 * g if a < b else g)",
        "db": "g / 2 if a == b else (0 * g if a > b else g)",
    },
)
class Maximum(Function):
    """y = max(a, b) elementwise, broadcasting (NaN if either is NaN);
    da = g where a > b, g / 2 where a == b, else 0;  db likewise."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (
            _half_at_ties(g, a, b, a < b) if need_a else None,
            _half_at_ties(g, a, b, a > b) if need_b else None,
        )


@register_op(
    "minimum",
    arity=2,
    scalar={
        "y": "a if a < b or a != a else b",
        "da": "g / 2 if a == b else (0 * g if a > b else g)",
        "db": "g / 2 if a == b else (0 * g if a < b else g)",
    },
)
class Minimum(Function):
    """y = min(a, b) elementwise, broadcasting (NaN if either is NaN);
    da = g where a < b, g / 2 where a == b, else 0;  db likewise."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (
            _half_at_ties(g, a, b, a > b) if need_a else None,
            _half_at_ties(g, a, b, a < b) if need_b else None,
        )


@register_op(
    "where",
    arity=3,
    scalar={
        "y": "a if mask != 0 else b",
        "dmask": None,
        "da": "g if mask != 0 else 0 * g",
        "db": "0 * g if mask != 0 else g",
    },
)
class Where(Function):
    """y = a where mask else b, broadcasting all three; mask is bool or float (nonzero is
    true) and a constant: da = g where mask else 0,  db = g where not mask else 0.

    A float mask that requires grad gets zeros: y does not change when it moves a little."""

    @staticmethod
    def forward(ctx, mask, a, b):
        ctx.save_for_backward(mask)
        return np.where(mask, a, b)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved
        need_mask, need_a, need_b = ctx.needs_input_grad
        zero = np.zeros_like(g)
        return (
            np.zeros_like(mask) if need_mask else None,
            np.where(mask, g, zero) if need_a else None,
            np.where(mask, zero, g) if need_b else None,
        )


# The bounds the generic property tests try; ``avoid`` keeps their inputs off the finite ones.
_CLIP_ATTRS = {"min": [-1.0, -math.inf], "max": [0.5, math.inf]}


@register_op(
    "clip",
    arity=1,
    attrs=_CLIP_ATTRS,
    avoid=(-1.0, 0.5),
    scalar={
        "y": "max if x > max or min > max else (min if x < min else x)",
        "dx": "g if x >= min and x <= max else 0 * g",
    },
)
class Clip(Function):
    """y = min(max(x, min), max) (all ``max`` when min > max), PyTorch's clamp;
    dx = g where min <= x <= max (bounds included), else 0.

    ``min`` or ``max`` None (or -inf / inf) leaves that side open."""

    @staticmethod
    def forward(ctx, x, min=-math.inf, max=math.inf):
        if min is None and max is None:
            raise TypeError("clip: needs min or max (both are None)")
        low = x.dtype.type(-math.inf if min is None else min)
        high = x.dtype.type(math.inf if max is None else max)
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return np.minimum(np.maximum(x, low), high)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return np.where((x >= ctx.low) & (x <= ctx.high), g, np.zeros_like(g))
