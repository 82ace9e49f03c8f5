"""Function forms of the registered ops, resolved by name at call time, and the factories
that make tensors (``tensor``, ``zeros``, ``ones``, ``randn``, ``zeros_like``).

``tg.sigmoid(x)`` runs whatever op is registered as ``"sigmoid"``; nothing here imports an
op's code, so a plugin that replaces an op (``register_op(..., replace=True)``) changes what
these call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from .registry import op
from .tensor import Axis, Tensor, TensorLike
from .tensor_operators import _clip_bounds, _shape_arg

__all__ = [
    "abs",
    "add",
    "clip",
    "concat",
    "div",
    "exp",
    "hardsigmoid",
    "hardtanh",
    "leaky_relu",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "maximum",
    "mean",
    "minimum",
    "mul",
    "neg",
    "ones",
    "pow",
    "randn",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "softplus",
    "split",
    "stack",
    "sub",
    "sum",
    "tanh",
    "tensor",
    "transpose",
    "where",
    "zeros",
    "zeros_like",
]


def add(a: TensorLike, b: TensorLike) -> Tensor:
    """a + b, broadcasting."""
    return op("add").apply(a, b)


def sub(a: TensorLike, b: TensorLike) -> Tensor:
    """a - b, broadcasting."""
    return op("sub").apply(a, b)


def mul(a: TensorLike, b: TensorLike) -> Tensor:
    """a * b elementwise, broadcasting."""
    return op("mul").apply(a, b)


def div(a: TensorLike, b: TensorLike) -> Tensor:
    """a / b elementwise, broadcasting."""
    return op("div").apply(a, b)


def neg(x: TensorLike) -> Tensor:
    """-x."""
    return op("neg").apply(x)


def pow(x: TensorLike, exponent: float) -> Tensor:
    """x ** exponent for a scalar exponent."""
    return op("pow").apply(x, exponent=float(exponent))


def exp(x: TensorLike) -> Tensor:
    """e ** x."""
    return op("exp").apply(x)


def log(x: TensorLike) -> Tensor:
    """Natural logarithm (x > 0)."""
    return op("log").apply(x)


def sigmoid(x: TensorLike) -> Tensor:
    """1 / (1 + exp(-x)), numerically stable."""
    return op("sigmoid").apply(x)


def tanh(x: TensorLike) -> Tensor:
    """Hyperbolic tangent."""
    return op("tanh").apply(x)


def relu(x: TensorLike) -> Tensor:
    """max(x, 0)."""
    return op("relu").apply(x)


def abs(x: TensorLike) -> Tensor:
    """|x|; gradient sign(x), 0 at 0 (PyTorch's convention)."""
    return op("abs").apply(x)


def maximum(a: TensorLike, b: TensorLike) -> Tensor:
    """max(a, b) elementwise, broadcasting; a tie gives each side half the gradient."""
    return op("maximum").apply(a, b)


def minimum(a: TensorLike, b: TensorLike) -> Tensor:
    """min(a, b) elementwise, broadcasting; a tie gives each side half the gradient."""
    return op("minimum").apply(a, b)


def where(mask: TensorLike, a: TensorLike, b: TensorLike) -> Tensor:
    """a where ``mask`` (bool, or float: nonzero is true) else b, broadcasting all three.

    A Python number for a or b takes the dtype of the first floating-point tensor given;
    the mask takes no gradient."""
    return op("where").apply(mask if isinstance(mask, Tensor) else Tensor(np.asarray(mask)), a, b)


def clip(x: TensorLike, min: float | None = None, max: float | None = None) -> Tensor:
    """x limited to [min, max] (PyTorch's clamp); None leaves that side open, not both."""
    return op("clip").apply(x, **_clip_bounds(min, max))


def softplus(x: TensorLike, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear (x) where beta x > threshold."""
    return op("softplus").apply(x, beta=float(beta), threshold=float(threshold))


def leaky_relu(x: TensorLike, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return op("leaky_relu").apply(x, negative_slope=float(negative_slope))


def hardsigmoid(x: TensorLike) -> Tensor:
    """relu6(x + 3) / 6: 0 below -3, 1 above 3, linear between."""
    return op("hardsigmoid").apply(x)


def hardtanh(x: TensorLike, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x limited to [min_val, max_val]; gradient 0 at the bounds."""
    return op("hardtanh").apply(x, min_val=float(min_val), max_val=float(max_val))


def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    """Matrix product with NumPy's rules (2-D, batched, 1-D vectors)."""
    return op("matmul").apply(a, b)


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    return op("concat").apply(*tensors, axis=axis)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    return op("stack").apply(*tensors, axis=axis)


def split(x: TensorLike, sections: int | Sequence[int], axis: int = 0) -> tuple[Tensor, ...]:
    """Split into ``sections`` equal parts (an int) or parts of the given sizes (a list)."""
    if not isinstance(sections, int):
        sections = tuple(sections)
    return op("split").apply(x, sections=sections, axis=axis)


def reshape(x: TensorLike, shape: Sequence[int]) -> Tensor:
    """Same data, new shape (one dimension may be -1)."""
    return op("reshape").apply(x, shape=tuple(shape))


def transpose(x: TensorLike, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None)."""
    return op("transpose").apply(x, axes=None if axes is None else tuple(axes))


def sum(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all axes when None)."""
    return op("sum").apply(x, axis=axis, keepdims=keepdims)


def mean(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all axes when None)."""
    return op("mean").apply(x, axis=axis, keepdims=keepdims)


def max(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``; the gradient is shared equally among tied maxima."""
    return op("max").apply(x, axis=axis, keepdims=keepdims)


def logsumexp(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``axis``, computed stably."""
    return op("logsumexp").apply(x, axis=axis, keepdims=keepdims)


def softmax(x: TensorLike, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``."""
    return op("softmax").apply(x, axis=axis)


def log_softmax(x: TensorLike, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis``."""
    return op("log_softmax").apply(x, axis=axis)


def tensor(data: TensorLike, requires_grad: bool = False, dtype: DTypeLike | None = None) -> Tensor:
    """Make a Tensor (lists become float32, NumPy arrays keep their dtype)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(
    *shape: int | Sequence[int], dtype: DTypeLike = np.float32, requires_grad: bool = False
) -> Tensor:
    """A tensor of zeros; ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return Tensor(np.zeros(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def ones(
    *shape: int | Sequence[int], dtype: DTypeLike = np.float32, requires_grad: bool = False
) -> Tensor:
    """A tensor of ones; ``ones(2, 3)`` or ``ones((2, 3))``."""
    return Tensor(np.ones(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def randn(
    *shape: int | Sequence[int],
    dtype: DTypeLike = np.float32,
    requires_grad: bool = False,
    rng: np.random.Generator | None = None,
) -> Tensor:
    """Standard-normal samples, from ``rng`` (a ``np.random.Generator``) when given."""
    rng = np.random.default_rng() if rng is None else rng
    return Tensor(rng.standard_normal(_shape_arg(shape)).astype(dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    """Zeros with ``t``'s shape and dtype."""
    return Tensor(np.zeros_like(t._data), requires_grad=requires_grad)
