"""Gradient norms and clipping: ``grad_norm``, ``clip_grad_norm_``, ``clip_grad_value_``.

The clipping functions follow ``torch.nn.utils``' semantics: clipping rescales or clamps
the ``.grad`` arrays in place before an optimizer's ``step()`` and needs no optimizer. Its
arguments are checked as the optimizers' are (``optim``). Engine level: works on arrays and
never looks up an op.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from .optim import _as_list, _in_range
from .tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "grad_norm"]


def grad_norm(params: Iterable[Tensor] | Tensor, norm_type: float = 2.0) -> float:
    """The joint ``norm_type``-norm of all existing gradients, without changing them.

    ``||(||g_1||_p, ..., ||g_k||_p)||_p`` (``p = inf``: the largest ``|g|``); 0.0 with no
    grads. Computed in float64, so float32 gradients up to float32's largest value give a
    finite norm (their squares would overflow float32 past ~1e19).
    """
    norm_type = _norm_type("grad_norm", norm_type)
    grads = [p.grad for p in _as_list(params) if p.grad is not None]
    if not grads:
        return 0.0
    if norm_type == math.inf:
        return float(max(np.max(np.abs(g)) if g.size else 0.0 for g in grads))
    norms = np.asarray(
        [np.sum(np.abs(g.astype(np.float64)) ** norm_type) ** (1.0 / norm_type) for g in grads]
    )
    return float(np.sum(norms**norm_type) ** (1.0 / norm_type))


def _norm_type(where: str, norm_type: Any) -> float:
    """``norm_type`` as a float: a positive number or inf, else a ValueError."""
    if (
        isinstance(norm_type, numbers.Real)
        and not isinstance(norm_type, bool)
        and float(norm_type) == math.inf
    ):
        return math.inf
    value = _in_range(f"{where}: norm_type", norm_type, 0.0)
    if value == 0.0:
        raise ValueError(f"{where}: norm_type must be > 0 (or inf), got {norm_type!r}")
    return value


def clip_grad_norm_(
    params: Iterable[Tensor] | Tensor,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients together so their joint ``norm_type``-norm is at most ``max_norm``.

    ``total = grad_norm(params, norm_type)``; ``coef = min(max_norm / (total + 1e-6), 1)``;
    every ``g *= coef`` in place (always, even when ``coef == 1``). Returns ``total``, the
    norm *before* clipping (0.0 with no grads). A non-finite total raises ``RuntimeError``
    only when ``error_if_nonfinite``; otherwise the grads are scaled anyway (torch's
    semantics: an ``inf`` total gives coef 0).
    """
    max_norm = _in_range("clip_grad_norm_: max_norm", max_norm, 0.0)
    norm_type = _norm_type("clip_grad_norm_", norm_type)
    params = _as_list(params)
    total = grad_norm(params, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total {norm_type}-norm of the gradients is "
            f"{total}; pass error_if_nonfinite=False to scale them anyway"
        )
    coef = min(max_norm / (total + 1e-6), 1.0)
    with np.errstate(invalid="ignore"):  # inf * 0 -> nan is the documented outcome
        for p in params:
            if p.grad is not None:
                p.grad *= p.grad.dtype.type(coef)
    return total


def clip_grad_value_(params: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every element of every existing ``.grad`` to ``[-clip_value, clip_value]``,
    in place."""
    clip_value = _in_range("clip_grad_value_: clip_value", clip_value, 0.0)
    for p in _as_list(params):
        if p.grad is not None:
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)
