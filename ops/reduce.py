"""Reductions: sum, mean, max, logsumexp, and the softmax pair.

Each backward first gives the gradient back its reduced axes (``_expand``) and then lets
NumPy broadcast it over the input. Axes follow PyTorch: a 0-d tensor reduces over axis 0 or
-1 as if it were one element long (``_axes``).
"""

import numpy as np

from tinygrad_lstm import Function, ShapeError, register_op

_AXES = {"axis": [None, 0, -1, (0, 1)], "keepdims": [False, True]}


def _any_shape(dims, attrs):
    return [(dims[0] + 1, dims[1] + 1, dims[2])]


def _axes(name: str, shape: tuple[int, ...], axis):
    """``axis`` checked against ``shape`` and made non-negative: None, an int or a tuple.

    A 0-d input takes axis 0 or -1 (PyTorch's rule) and reduces its one element, which is
    what axis None does, so it becomes None; the backwards then never divide by ``ndim``."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    ndim = max(len(shape), 1)
    if any(not -ndim <= a < ndim for a in axes) or len({a % ndim for a in axes}) < len(axes):
        raise ShapeError(
            f"{name}: axis {axis} is out of range or repeated for an input of "
            f"shape {shape} (axes must be distinct, in [{-ndim}, {ndim - 1}])"
        )
    if not shape:
        return None
    positive = tuple(int(a) % ndim for a in axes)
    return positive[0] if isinstance(axis, (int, np.integer)) else positive


def _expand(g, shape, axis, keepdims):
    """g with the reduced axes put back as size 1, ready to broadcast to ``shape``."""
    if axis is None:
        return np.reshape(g, (1,) * len(shape))
    if keepdims:
        return g
    return np.expand_dims(g, axis)


def _count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


@register_op("sum", arity=1, kind="reduction", shapes=_any_shape, attrs=_AXES)
class Sum(Function):
    """y = sum of x over ``axis``;  dx = g broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, _axes(ctx.name, x.shape, axis), keepdims
        return np.sum(x, axis=ctx.axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        return np.broadcast_to(_expand(g, ctx.shape, ctx.axis, ctx.keepdims), ctx.shape)


@register_op("mean", arity=1, kind="reduction", shapes=_any_shape, attrs=_AXES)
class Mean(Function):
    """y = sum(x) / n over ``axis`` (n = elements averaged);  dx = sum's dx of g / n."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        total = Sum.forward(ctx, x, axis, keepdims)
        ctx.count = _count(x.shape, ctx.axis)
        with np.errstate(invalid="ignore"):  # the mean of nothing is NaN, as in PyTorch
            return total / x.dtype.type(ctx.count)

    @staticmethod
    def backward(ctx, g):
        # An empty mean has an empty gradient: any nonzero divisor avoids 0 / 0 there.
        return Sum.backward(ctx, g / g.dtype.type(max(ctx.count, 1)))


@register_op("max", arity=1, kind="reduction", shapes=_any_shape, attrs=_AXES)
class Max(Function):
    """y = max of x over ``axis``;  dx = g shared equally among the elements equal to the max."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axis = _axes(ctx.name, x.shape, axis)
        y = np.max(x, axis=axis, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.axis, ctx.keepdims = axis, keepdims
        return y if keepdims else np.squeeze(y, axis=axis)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        mask = (x == y).astype(x.dtype)
        mask /= mask.sum(axis=ctx.axis, keepdims=True)
        return mask * _expand(g, x.shape, ctx.axis, ctx.keepdims)


def _finite_max(x, axis):
    """The max over ``axis`` (kept as size 1), replaced by 0 where it is +-inf or the axis is
    empty: subtracting an infinite max would turn inf - inf into NaN."""
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    return np.where(np.isfinite(m), m, np.zeros_like(m))


@register_op("logsumexp", arity=1, kind="reduction", shapes=_any_shape, attrs=_AXES)
class LogSumExp(Function):
    """y = log(sum(exp(x))) over ``axis``, shifted by the max so exp cannot overflow;
    dx = g * exp(x - y) = g * softmax(x).

    As in PyTorch, all -inf gives -inf (an empty axis too), any +inf gives +inf, and the
    gradient is exp(x - y) even there (NaN where x and y are the same infinity)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axis = _axes(ctx.name, x.shape, axis)
        m = _finite_max(x, axis)
        with np.errstate(divide="ignore"):  # log(0) = -inf is the answer for all -inf
            y = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
        ctx.save_for_backward(x, y)
        ctx.axis, ctx.keepdims = axis, keepdims
        return y if keepdims else np.squeeze(y, axis=axis)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        with np.errstate(invalid="ignore"):
            return np.exp(x - y) * _expand(g, x.shape, ctx.axis, ctx.keepdims)


_SOFTMAX_AXES = {"axis": [-1, 0, 1]}


@register_op("softmax", arity=1, kind="reduction", shapes=_any_shape, attrs=_SOFTMAX_AXES)
class Softmax(Function):
    """y = exp(x) / sum(exp(x)) along ``axis``;  dx = y * (g - sum(g * y))."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        axis = _axes(ctx.name, x.shape, axis)
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        y = e / np.sum(e, axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return y * (g - np.sum(g * y, axis=ctx.axis, keepdims=True))


@register_op("log_softmax", arity=1, kind="reduction", shapes=_any_shape, attrs=_SOFTMAX_AXES)
class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``axis``;  dx = g - softmax(x) * sum(g)."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        axis = _axes(ctx.name, x.shape, axis)
        shifted = x - np.max(x, axis=axis, keepdims=True)
        y = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g - np.exp(y) * np.sum(g, axis=ctx.axis, keepdims=True)
