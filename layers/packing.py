"""Variable-length batches with the semantics of PyTorch's packed sequences, by selection.

With ``lengths`` given, sequence b only has steps 0 .. l_b - 1. The runner still steps the
whole batch, but at a step t >= l_b it keeps b's state as it was and writes a zero output:

    state' = new if keep_t else old,   output_t = out if keep_t else 0,   keep_t[b] = [t < l_b]

and the input there, padding that may hold anything (NaN, inf), is replaced by zeros before
the cell sees it, so what the cell computes for a finished sequence is finite and then
dropped. Selecting, not multiplying by a 0/1 mask: NaN * 0 is NaN, and a padded NaN would
reach that sequence's outputs and, through the backward, every weight's gradient. The
gradient of a padded input is 0, as it is for a packed sequence, which never reads it.

So the forward direction's final state is the one after step l_b - 1, and the reverse
direction, walking t = T-1 .. 0, holds its initial state until t = l_b - 1 and starts there,
exactly as ``pack_padded_sequence``: the values equal running each sequence alone. Steps
where every sequence is active need no mask.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

import tinygrad_lstm as tg
from tinygrad_lstm import Tensor

# A cell's recurrent state: h, or a tuple such as LSTM's (h, c).
State = Tensor | tuple[Tensor, ...]

__all__ = [
    "State",
    "StepMask",
    "check_lengths",
    "hold_finished",
    "padding_zeroed",
    "step_masks",
]


class StepMask:
    """The (N, 1) constant of one time step: ``keep`` = [t < l_b], 1 or 0 in the layer's
    dtype (a mask for ``where``, read as nonzero; the compiled runner reads its array)."""

    __slots__ = ("keep",)

    def __init__(self, keep: np.ndarray) -> None:
        self.keep = Tensor(keep)


def check_lengths(layer: str, lengths: ArrayLike | Tensor, steps: int, batch: int) -> np.ndarray:
    """``lengths`` as an int array of one entry per sequence, each in [1, steps].

    Raises ``ValueError`` naming the layer otherwise (PyTorch also refuses zero lengths).
    """
    array = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise ValueError(
            f"{layer}: lengths must be a 1-D list or array of integers, got "
            f"{array.dtype} array of shape {array.shape}"
        )
    if array.size != batch:
        raise ValueError(
            f"{layer}: lengths has {array.size} entries but the batch has {batch} sequence(s)"
        )
    bad = (array < 1) | (array > steps)
    if bad.any():
        raise ValueError(f"{layer}: every length must lie in [1, T={steps}], got {array.tolist()}")
    return array.astype(np.int64)


def step_masks(lengths: np.ndarray, steps: int, dtype: DTypeLike) -> list[StepMask | None]:
    """One entry per time step: None where every sequence is still running, else its mask."""
    masks: list[StepMask | None] = []
    for t in range(steps):
        active = lengths > t
        masks.append(None if active.all() else StepMask(active.astype(dtype)[:, None]))
    return masks


def hold_finished(new: State, old: State, mask: StepMask) -> State:
    """``new`` where the sequence is running at this step, ``old`` where it is not
    (a Tensor state or a tuple of them), selected: nothing of the other side leaks in."""
    if isinstance(new, tuple):
        return tuple(tg.where(mask.keep, n, o) for n, o in zip(new, old))
    return tg.where(mask.keep, new, old)


def padding_zeroed(x: Tensor, masks: list[StepMask | None]) -> Tensor:
    """``x`` (T, N, F) with every step past a sequence's length set to 0 (selected, so a
    NaN there is gone; its gradient is 0)."""
    valid = np.stack([np.ones((x.shape[1], 1)) if m is None else m.keep.data for m in masks])
    return tg.where(valid != 0, x, 0.0)
