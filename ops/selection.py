"""Elementwise selection: abs, maximum, minimum, where, clip.

Each output element is one of its inputs (or a bound), so each gradient is the upstream
gradient routed to whichever input was picked. Where the pick is a tie PyTorch's convention
holds: abs'(0) = 0, a tie of maximum/minimum gives each side half, clip passes the gradient
at its bounds. Cells such as IndRNN, JANET or hard-gated variants reach for these.

The functions at the bottom (``abs(x)``, ``where(mask, a, b)`` ...) call the ops by name
through the registry, so a plugin that replaces one changes what they run.
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_lstm import Function, Tensor, op, register_op

__all__ = ["abs", "clip", "maximum", "minimum", "where"]


@register_op("abs", arity=1, avoid=(0.0,),
             scalar={"y": "abs(x)", "dx": "g if x > 0 else (-g if x < 0 else 0 * g)"})
class Abs(Function):
    """y = |x|;  dx = g * sign(x) (0 at x = 0, as in PyTorch)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g * np.sign(x)


def _half_at_ties(g, a, b, loses):
    """g where this side won, g / 2 at a tie, 0 where it lost (``loses``); with a NaN
    neither wins nor ties, and both sides get g (PyTorch's rule)."""
    with np.errstate(invalid="ignore"):
        return np.where(a == b, g / 2, np.where(loses, np.zeros_like(g), g))


@register_op("maximum", arity=2, scalar={
    "y": "a if a > b or a != a else b",
    "da": "g / 2 if a == b else (0 * g if a < b else g)",
    "db": "g / 2 if a == b else (0 * g if a > b else g)"})
class Maximum(Function):
    """y = max(a, b) elementwise, broadcasting (NaN if either is NaN);
    da = g where a > b, g / 2 where a == b, else 0;  db likewise."""

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (_half_at_ties(g, a, b, a < b) if need_a else None,
                _half_at_ties(g, a, b, a > b) if need_b else None)


@register_op("minimum", arity=2, scalar={
    "y": "a if a < b or a != a else b",
    "da": "g / 2 if a == b else (0 * g if a > b else g)",
    "db": "g / 2 if a == b else (0 * g if a < b else g)"})
class Minimum(Function):
    """y = min(a, b) elementwise, broadcasting (NaN if either is NaN);
    da = g where a < b, g / 2 where a == b, else 0;  db likewise."""

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (_half_at_ties(g, a, b, a > b) if need_a else None,
                _half_at_ties(g, a, b, a < b) if need_b else None)


@register_op("where", arity=3, scalar={
    "y": "a if mask != 0 else b", "dmask": None,
    "da": "g if mask != 0 else 0 * g", "db": "0 * g if mask != 0 else g"})
class Where(Function):
    """y = a where mask else b, broadcasting all three; mask is bool or float (nonzero is
    true) and a constant: da = g where mask else 0,  db = g where not mask else 0.

    A float mask that requires grad gets zeros: y does not change when it moves a little."""

    def forward(ctx, mask, a, b):
        ctx.save_for_backward(mask)
        return np.where(mask, a, b)

    def backward(ctx, g):
        (mask,) = ctx.saved
        need_mask, need_a, need_b = ctx.needs_input_grad
        zero = np.zeros_like(g)
        return (np.zeros_like(mask) if need_mask else None,
                np.where(mask, g, zero) if need_a else None,
                np.where(mask, zero, g) if need_b else None)


# The bounds the generic property tests try; ``avoid`` keeps their inputs off the finite ones.
_CLIP_ATTRS = {"min": [-1.0, -math.inf], "max": [0.5, math.inf]}


@register_op("clip", arity=1, attrs=_CLIP_ATTRS, avoid=(-1.0, 0.5), scalar={
    "y": "max if x > max or min > max else (min if x < min else x)",
    "dx": "g if x >= min and x <= max else 0 * g"})
class Clip(Function):
    """y = min(max(x, min), max) (all ``max`` when min > max), PyTorch's clamp;
    dx = g where min <= x <= max (bounds included), else 0.

    ``min`` or ``max`` None (or -inf / inf) leaves that side open."""

    def forward(ctx, x, min=-math.inf, max=math.inf):
        if min is None and max is None:
            raise TypeError("clip: needs min or max (both are None)")
        low = x.dtype.type(-math.inf if min is None else min)
        high = x.dtype.type(math.inf if max is None else max)
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return np.minimum(np.maximum(x, low), high)

    def backward(ctx, g):
        (x,) = ctx.saved
        return np.where((x >= ctx.low) & (x <= ctx.high), g, np.zeros_like(g))


def _like(value, dtype):
    """A Python number as a constant of ``dtype``; a Tensor or an array as it is."""
    if isinstance(value, Tensor):
        return value
    return Tensor(np.asarray(value, dtype) if isinstance(value, (int, float)) else value)


def abs(x) -> Tensor:
    """|x| elementwise; gradient sign(x), 0 at 0."""
    return op("abs").apply(x)


def maximum(a, b) -> Tensor:
    """max(a, b) elementwise, broadcasting; a tie gives each side half the gradient."""
    return op("maximum").apply(a, b)


def minimum(a, b) -> Tensor:
    """min(a, b) elementwise, broadcasting; a tie gives each side half the gradient."""
    return op("minimum").apply(a, b)


def where(mask, a, b) -> Tensor:
    """a where ``mask`` (bool, or float: nonzero is true) else b, broadcasting all three.

    A Python number for a or b takes the dtype of the other one (float32 if neither is a
    Tensor); the mask takes no gradient."""
    floats = [t.dtype for t in (a, b) if isinstance(t, Tensor) and t.dtype.kind == "f"]
    dtype = floats[0] if floats else np.float32
    # Not left to the engine, which gives a Python number the first input's dtype: the mask's.
    mask = mask if isinstance(mask, Tensor) else Tensor(np.asarray(mask))
    return op("where").apply(mask, _like(a, dtype), _like(b, dtype))


def clip(x, min: float | None = None, max: float | None = None) -> Tensor:
    """x limited to [min, max] (PyTorch's clamp); None leaves a side open, not both."""
    if min is None and max is None:
        raise TypeError("clip: needs min or max (both are None)")
    return op("clip").apply(x, min=-math.inf if min is None else float(min),
                            max=math.inf if max is None else float(max))
