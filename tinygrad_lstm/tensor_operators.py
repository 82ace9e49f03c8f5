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
from typing import TYPE_CHECKING, Any

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


# The NumPy ufuncs behind Python's operators: (the Tensor's method when it is the left
# operand, when it is the right one). ``array * tensor`` reaches ``Tensor.__array_ufunc__`` as
# ``np.multiply(array, tensor)`` and runs as ``tensor.__rmul__(array)``.
_OPERATOR_UFUNCS = {
    "add": ("__add__", "__radd__"),
    "subtract": ("__sub__", "__rsub__"),
    "multiply": ("__mul__", "__rmul__"),
    "divide": ("__truediv__", "__rtruediv__"),
    "matmul": ("__matmul__", "__rmatmul__"),
    "power": ("__pow__", None),
    "less": ("__lt__", "__gt__"),
    "less_equal": ("__le__", "__ge__"),
    "greater": ("__gt__", "__lt__"),
    "greater_equal": ("__ge__", "__le__"),
    "equal": ("__eq__", "__eq__"),
    "not_equal": ("__ne__", "__ne__"),
}
# NumPy's names for ufuncs whose Tensor method is named otherwise.
_METHOD_OF_UFUNC = {"absolute": "abs", "negative": "__neg__"}


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

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Tensor:
        """NumPy's operators with a Tensor operand (``array * tensor``, ``2.0 < tensor``) run
        the Tensor's operator. Any other ufunc (``np.tanh(tensor)``) is refused: NumPy's
        functions would compute on the values and drop the graph, as they do for a PyTorch
        tensor; the message names the Tensor method that records it."""
        names = _OPERATOR_UFUNCS.get(ufunc.__name__)
        if names and method == "__call__" and not kwargs and len(inputs) == 2:
            mine = 0 if inputs[0] is self else 1
            name = names[mine]
            if name is None:
                raise TypeError("pow: the exponent must be a Python number, not a Tensor")
            return getattr(self, name)(inputs[1 - mine])
        raise TypeError(_refusal(self, ufunc.__name__, method))

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


def _refusal(tensor: TensorOperators, name: str, method: str) -> str:
    call = f"np.{name}" + ("" if method == "__call__" else f".{method}")
    own = _METHOD_OF_UFUNC.get(name, name)
    if own == "__neg__":
        use = "-tensor"
    elif callable(getattr(tensor, own, None)):
        use = f"tensor.{own}()"
    else:
        use = "the Tensor methods or tinygrad_lstm's functions (tensor.tanh(), tg.where(...))"
    return (
        f"{call}() on a Tensor: NumPy's functions do not record the graph, so no gradient "
        f"would flow; use {use}, or {call}(tensor.data) for the values alone"
    )
