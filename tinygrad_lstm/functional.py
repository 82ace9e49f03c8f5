"""Function forms of the registered ops, resolved by name at call time.

``tg.sigmoid(x)`` runs whatever op is registered as ``"sigmoid"``; nothing here imports an
op's code, so a plugin that replaces an op (``register_op(..., replace=True)``) changes what
these call.
"""

from __future__ import annotations

from collections.abc import Sequence

from .tensor import Tensor, _op

__all__ = [
    "add",
    "concat",
    "div",
    "exp",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "mean",
    "mul",
    "neg",
    "pow",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "split",
    "stack",
    "sub",
    "sum",
    "tanh",
    "transpose",
]


def add(a, b) -> Tensor:
    """a + b, broadcasting."""
    return _op("add").apply(a, b)


def sub(a, b) -> Tensor:
    """a - b, broadcasting."""
    return _op("sub").apply(a, b)


def mul(a, b) -> Tensor:
    """a * b elementwise, broadcasting."""
    return _op("mul").apply(a, b)


def div(a, b) -> Tensor:
    """a / b elementwise, broadcasting."""
    return _op("div").apply(a, b)


def neg(x) -> Tensor:
    """-x."""
    return _op("neg").apply(x)


def pow(x, exponent: float) -> Tensor:
    """x ** exponent for a scalar exponent."""
    return _op("pow").apply(x, exponent=float(exponent))


def exp(x) -> Tensor:
    """e ** x."""
    return _op("exp").apply(x)


def log(x) -> Tensor:
    """Natural logarithm (x > 0)."""
    return _op("log").apply(x)


def sigmoid(x) -> Tensor:
    """1 / (1 + exp(-x)), numerically stable."""
    return _op("sigmoid").apply(x)


def tanh(x) -> Tensor:
    """Hyperbolic tangent."""
    return _op("tanh").apply(x)


def relu(x) -> Tensor:
    """max(x, 0)."""
    return _op("relu").apply(x)


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules (2-D, batched, 1-D vectors)."""
    return _op("matmul").apply(a, b)


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    return _op("concat").apply(*tensors, axis=axis)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    return _op("stack").apply(*tensors, axis=axis)


def split(x, sections, axis: int = 0) -> tuple[Tensor, ...]:
    """Split into ``sections`` equal parts (an int) or parts of the given sizes (a list)."""
    if not isinstance(sections, int):
        sections = tuple(sections)
    return _op("split").apply(x, sections=sections, axis=axis)


def reshape(x, shape) -> Tensor:
    """Same data, new shape (one dimension may be -1)."""
    return _op("reshape").apply(x, shape=tuple(shape))


def transpose(x, axes=None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None)."""
    return _op("transpose").apply(x, axes=None if axes is None else tuple(axes))


def sum(x, axis=None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all axes when None)."""
    return _op("sum").apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all axes when None)."""
    return _op("mean").apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``; the gradient is shared equally among tied maxima."""
    return _op("max").apply(x, axis=axis, keepdims=keepdims)


def logsumexp(x, axis=None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``axis``, computed stably."""
    return _op("logsumexp").apply(x, axis=axis, keepdims=keepdims)


def softmax(x, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``."""
    return _op("softmax").apply(x, axis=axis)


def log_softmax(x, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis``."""
    return _op("log_softmax").apply(x, axis=axis)
