"""Reductions: sum, mean, max, logsumexp, and the softmax pair.

Each backward first gives the gradient back its reduced axes (``_expand``) and then lets
NumPy broadcast it over the input.
"""

import numpy as np

from tinygrad_lstm import Function, register_op

_AXES = {"axis": [None, 0, -1, (0, 1)], "keepdims": [False, True]}


def _any_shape(dims, attrs):
    return [(dims[0] + 1, dims[1] + 1, dims[2])]


def _expand(g, shape, axis, keepdims):
    """g with the reduced axes put back as size 1, ready to broadcast to ``shape``."""
    if axis is None:
        return np.reshape(g, (1,) * len(shape))
    if keepdims:
        return g
    axes = (axis,) if isinstance(axis, int) else axis
    return np.expand_dims(g, tuple(a % len(shape) for a in axes))


def _count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


@register_op("sum", arity=1, kind="reduction", shapes=_any_shape, attrs=_AXES)
class Sum(Function):
    """y = sum of x over ``axis``;  dx = g broadcast back over the summed axes."""

    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return np.sum(x, axis=axis, keepdims=keepdims)

    def backward(ctx, g):
        return np.broadcast_to(_expand(g, ctx.shape, ctx.axis, ctx.keepdims), ctx.shape)


@register_op("mean", arity=1, kind="reduction", shapes=_any_shape, attrs=_AXES)
class Mean(Function):
    """y = mean of x over ``axis``;  dx = g / n broadcast back (n = elements averaged)."""

    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return np.mean(x, axis=axis, keepdims=keepdims)

    def backward(ctx, g):
        g = _expand(g, ctx.shape, ctx.axis, ctx.keepdims) / _count(ctx.shape, ctx.axis)
        return np.broadcast_to(g, ctx.shape)


@register_op("max", arity=1, kind="reduction", shapes=_any_shape, attrs=_AXES)
class Max(Function):
    """y = max of x over ``axis``;  dx = g shared equally among the elements equal to the max."""

    def forward(ctx, x, axis=None, keepdims=False):
        y = np.max(x, axis=axis, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.axis, ctx.keepdims = axis, keepdims
        return y if keepdims else np.squeeze(y, axis=axis)

    def backward(ctx, g):
        x, y = ctx.saved
        mask = (x == y).astype(x.dtype)
        mask /= mask.sum(axis=ctx.axis, keepdims=True)
        return mask * _expand(g, x.shape, ctx.axis, ctx.keepdims)


@register_op("logsumexp", arity=1, kind="reduction", shapes=_any_shape, attrs=_AXES)
class LogSumExp(Function):
    """y = log(sum(exp(x))) over ``axis``, shifted by the max so exp cannot overflow;
    dx = g * softmax(x)."""

    def forward(ctx, x, axis=None, keepdims=False):
        m = np.max(x, axis=axis, keepdims=True)
        y = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
        ctx.save_for_backward(x, y)
        ctx.axis, ctx.keepdims = axis, keepdims
        return y if keepdims else np.squeeze(y, axis=axis)

    def backward(ctx, g):
        x, y = ctx.saved
        return np.exp(x - y) * _expand(g, x.shape, ctx.axis, ctx.keepdims)


_SOFTMAX_AXES = {"axis": [-1, 0, 1]}


@register_op("softmax", arity=1, kind="reduction", shapes=_any_shape, attrs=_SOFTMAX_AXES)
class Softmax(Function):
    """y = exp(x) / sum(exp(x)) along ``axis``;  dx = y * (g - sum(g * y))."""

    def forward(ctx, x, axis=-1):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        y = e / np.sum(e, axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    def backward(ctx, g):
        (y,) = ctx.saved
        return y * (g - np.sum(g * y, axis=ctx.axis, keepdims=True))


@register_op("log_softmax", arity=1, kind="reduction", shapes=_any_shape,
             attrs=_SOFTMAX_AXES)
class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``axis``;  dx = g - softmax(x) * sum(g)."""

    def forward(ctx, x, axis=-1):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        y = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    def backward(ctx, g):
        (y,) = ctx.saved
        return g - np.exp(y) * np.sum(g, axis=ctx.axis, keepdims=True)
