"""The operators and method forms of ``Tensor`` that run a registered op by name.

``Tensor`` (tensor.py) inherits them from ``TensorOperators``, a mixin with no
state of its own, so ``a + b`` runs whatever is registered as ``"add"`` and ``x.sigmoid()``
whatever is registered as ``"sigmoid"``; this file knows op names, not op code. The operators
that need the ``Tensor`` class itself (``**``, indexing, comparisons) stay in ``tensor.py``.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .registry import op

if TYPE_CHECKING:  # tensor.py imports this module: Tensor is only named in annotations here
    from .tensor import Axis, Tensor, TensorLike

__all__ = ["TensorOperators"]


def _shape_arg(shape: tuple) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` alike: the shape (or axes) given either way."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return shape


# Operators and method forms: each runs the op registered under its name when called.
def _binary(name: str, reflected: bool = False) -> Callable[[Tensor, TensorLike], Tensor]:
    if reflected:

        def method(self: Tensor, other: TensorLike) -> Tensor:
            return op(name).apply(other, self)
    else:

        def method(self: Tensor, other: TensorLike) -> Tensor:
            return op(name).apply(self, other)

    return method


def _unary(name: str) -> Callable[[Tensor], Tensor]:
    def method(self: Tensor) -> Tensor:
        return op(name).apply(self)

    method.__name__ = method.__doc__ = name
    return method


def _reduction(name: str) -> Callable[..., Tensor]:
    def method(self: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return op(name).apply(self, axis=axis, keepdims=keepdims)

    method.__name__ = method.__doc__ = name
    return method


def _clip_bounds(low: float | None, high: float | None) -> dict[str, float]:
    """clip's attributes: None leaves that side open (infinite), but not both sides."""
    if low is None and high is None:
        raise TypeError("clip: needs min or max (both are None)")
    return {
        "min": -math.inf if low is None else float(low),
        "max": math.inf if high is None else float(high),
    }


class TensorOperators:
    """Arithmetic operators and method forms of common ops, each dispatched by op name.

    ``a + b`` is ``op("add").apply(a, b)``, ``b + a`` with a non-Tensor ``b`` is
    ``op("add").apply(b, a)``, ``x.sum(axis)`` is ``op("sum").apply(x, axis=axis,
    keepdims=False)``: the op registered under that name when the operator runs.
    """

    # No instance dict: Tensor keeps its attributes in __slots__.
    __slots__ = ()

    # ---- arithmetic (dispatch by op name) ----------------------------------------------
    __add__, __radd__ = _binary("add"), _binary("add", reflected=True)
    __sub__, __rsub__ = _binary("sub"), _binary("sub", reflected=True)
    __mul__, __rmul__ = _binary("mul"), _binary("mul", reflected=True)
    __truediv__, __rtruediv__ = _binary("div"), _binary("div", reflected=True)
    __matmul__, __rmatmul__ = _binary("matmul"), _binary("matmul", reflected=True)

    def __neg__(self) -> Tensor:
        return op("neg").apply(self)

    # ---- method forms of common ops ------------------------------------------------------
    exp, log, sigmoid, tanh, relu = map(_unary, ("exp", "log", "sigmoid", "tanh", "relu"))
    abs, hardsigmoid = map(_unary, ("abs", "hardsigmoid"))
    __abs__ = abs
    maximum, minimum = _binary("maximum"), _binary("minimum")

    def clip(self, min: builtins.float | None = None, max: builtins.float | None = None) -> Tensor:
        return op("clip").apply(self, **_clip_bounds(min, max))

    def softplus(self, beta: builtins.float = 1.0, threshold: builtins.float = 20.0) -> Tensor:
        return op("softplus").apply(self, beta=float(beta), threshold=float(threshold))

    def leaky_relu(self, negative_slope: builtins.float = 0.01) -> Tensor:
        return op("leaky_relu").apply(self, negative_slope=float(negative_slope))

    def hardtanh(self, min_val: builtins.float = -1.0, max_val: builtins.float = 1.0) -> Tensor:
        return op("hardtanh").apply(self, min_val=float(min_val), max_val=float(max_val))

    sum, mean, max, logsumexp = map(_reduction, ("sum", "mean", "max", "logsumexp"))

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return op("reshape").apply(self, shape=_shape_arg(shape))

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        return op("transpose").apply(self, axes=_shape_arg(axes) or None)

    def softmax(self, axis: int = -1) -> Tensor:
        return op("softmax").apply(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return op("log_softmax").apply(self, axis=axis)
