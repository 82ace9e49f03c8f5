"""Loss functions, composed from registered ops: mse_loss, nll_loss, cross_entropy.

Each takes ``reduction='mean' | 'sum' | 'none'`` as in ``torch.nn.functional``. Inputs are
checked before anything is computed; a mismatch names the loss and the shapes or dtypes.

The class axis is the LAST axis: ``logits`` of shape ``(..., C)`` with integer targets of
shape ``(...)``, so a sequence model's ``(T, B, C)`` output takes ``(T, B)`` targets as is.
For 2-D ``(N, C)`` input this is PyTorch's layout; for more dimensions PyTorch puts C second.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

import tinygrad_lstm as tg
from tinygrad_lstm import ShapeError, Tensor, TensorLike

__all__ = ["cross_entropy", "mse_loss", "nll_loss"]

Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS: tuple[str, ...] = get_args(Reduction)


def _reduce(loss: Tensor, reduction: Reduction) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def mse_loss(input: TensorLike, target: TensorLike, reduction: Reduction = "mean") -> Tensor:
    """Squared error ``(input - target)²``, averaged (``mean``), summed, or elementwise.

    ``input`` and ``target`` must have the same shape and floating dtype (no silent
    broadcasting: a ``(B, 1)`` prediction against a ``(B,)`` target is an error, not a
    ``(B, B)`` loss). ``target`` may be a Tensor or an array; it gets no gradient unless it
    is a Tensor that requires one.
    """
    _check_reduction("mse_loss", reduction)
    input = input if isinstance(input, Tensor) else Tensor(input)
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target))
    if input.shape != target.shape:
        raise ShapeError(
            f"mse_loss: input has shape {input.shape} but target has shape "
            f"{target.shape}; they must match"
        )
    if input.dtype != target.dtype or input.dtype.kind != "f":
        raise TypeError(
            f"mse_loss: input and target must share a floating dtype, got "
            f"{input.dtype} and {target.dtype}"
        )
    diff = input - target
    return _reduce(diff * diff, reduction)


def _check_targets(name: str, scores: Tensor, targets: TensorLike) -> np.ndarray:
    targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if scores.ndim < 1:
        raise ShapeError(f"{name}: input must have a class axis (last), got a scalar")
    if targets.dtype.kind not in "iu":
        raise TypeError(f"{name}: targets must be integer class indices, got dtype {targets.dtype}")
    if targets.shape != scores.shape[:-1]:
        raise ShapeError(
            f"{name}: input of shape {scores.shape} (classes last) needs targets "
            f"of shape {scores.shape[:-1]}, got {targets.shape}"
        )
    n_classes = scores.shape[-1]
    if targets.size and (targets.min() < 0 or targets.max() >= n_classes):
        raise ValueError(
            f"{name}: targets must lie in [0, {n_classes}), got values from "
            f"{targets.min()} to {targets.max()}"
        )
    return targets


def nll_loss(log_probs: Tensor, targets: TensorLike, reduction: Reduction = "mean") -> Tensor:
    """Negative log-likelihood ``-log_probs[..., targets]`` of integer class targets.

    ``log_probs``: ``(..., C)`` floating; ``targets``: ``(...)`` integers in ``[0, C)``.
    The pick is ``where`` with a constant one-hot mask, summed over the class axis, so its
    backward is ``-g`` at the target entry and 0 elsewhere. A product with the mask would
    not do: a log-probability of -inf for another class (a masked-out logit) times 0 is NaN.
    """
    _check_reduction("nll_loss", reduction)
    if log_probs.dtype.kind != "f":
        raise TypeError(f"nll_loss: input must be floating, got dtype {log_probs.dtype}")
    targets = _check_targets("nll_loss", log_probs, targets)
    one_hot = np.zeros(log_probs.shape, dtype=bool)
    np.put_along_axis(one_hot, targets[..., None], True, axis=-1)
    zero = Tensor(np.zeros((), log_probs.dtype))
    picked = tg.sum(tg.op("where").apply(Tensor(one_hot), log_probs, zero), axis=-1)
    return _reduce(-picked, reduction)


def cross_entropy(logits: Tensor, targets: TensorLike, reduction: Reduction = "mean") -> Tensor:
    """Softmax cross-entropy: ``logsumexp(logits) - logits[target]`` per example.

    Computed as ``nll_loss(log_softmax(logits))``; ``log_softmax`` subtracts the max first,
    so logits of any size (1e4 or -1e4) give finite losses, and a -inf logit (a class ruled
    out) gives a finite loss and gradient unless it is the target's (then the loss is inf),
    as in PyTorch.
    """
    _check_reduction("cross_entropy", reduction)
    if logits.dtype.kind != "f":
        raise TypeError(f"cross_entropy: logits must be floating, got dtype {logits.dtype}")
    _check_targets("cross_entropy", logits, targets)
    return nll_loss(tg.log_softmax(logits, axis=-1), targets, reduction)
