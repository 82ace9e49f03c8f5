"""Argument and input checks shared by the layers.

Each raises at the layer boundary, before any state changes, with a message naming the
layer and what was expected versus what arrived.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from tinygrad_lstm import Tensor, TensorLike

__all__ = ["as_float_input", "check_float_dtype", "check_size"]


def check_size(layer: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, or a ``ValueError`` naming the layer and argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{layer}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float_dtype(layer: str, dtype: DTypeLike) -> np.dtype:
    """``dtype`` as a NumPy dtype, or a ``TypeError`` unless it is float32 or float64."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype}")
    return dtype


def as_float_input(layer: str, x: TensorLike, dtype: np.dtype) -> Tensor:
    """``x`` as a Tensor, or a ``ValueError`` when its dtype differs from the weights'; the
    message suggests conversions that work (a layer converts only to float32 or float64)."""
    how = "x.to" if isinstance(x, Tensor) else "x.astype"
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.dtype != dtype:
        fix = f"convert the input with {how}(np.{dtype})"
        if x.dtype in (np.float32, np.float64):
            fix += f", or the layer with layer.to(np.{x.dtype})"
        raise ValueError(
            f"{layer}: input dtype {x.dtype} does not match the weights' dtype {dtype}; {fix}"
        )
    return x
