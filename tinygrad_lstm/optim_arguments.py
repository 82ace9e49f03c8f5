"""How the optimizers and gradient clipping read their arguments.

Split from ``optim.py`` so that ``optim.py`` (the optimizers) and ``grad_clipping.py`` share
these without importing each other: the tensors to work on (one tensor or an iterable of
them) and a hyperparameter checked to be a finite real in its range, with a ``ValueError``
that names it otherwise.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from .tensor import Tensor


def _as_list(params: Iterable[Tensor] | Tensor) -> list[Tensor]:
    return [params] if isinstance(params, Tensor) else list(params)


def _in_range(
    what: str, value: Any, low: float, high: float = math.inf, closed: bool = True
) -> float:
    """``value`` as a float, or a ValueError unless it is a finite real in [low, high]
    (``[low, high)`` when not ``closed``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and low <= value and (value <= high if closed else value < high)
    if not ok:
        bound = (
            f"be >= {low:g} and finite"
            if high == math.inf
            else f"lie in [{low:g}, {high:g}{']' if closed else ')'}"
        )
        raise ValueError(f"{what} must {bound}, got {value!r}")
    return value
