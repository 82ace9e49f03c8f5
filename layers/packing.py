"""Variable-length batches with the semantics of PyTorch's packed sequences, by masking.

With ``lengths`` given, sequence b only has steps 0 .. l_b - 1. The runner still steps the
whole batch, but at a step t >= l_b it keeps b's state as it was and writes a zero output:

    state' = new * keep_t + old * (1 - keep_t),   output_t = out * keep_t,   keep_t[b] = [t < l_b]

So the forward direction's final state is the one after step l_b - 1, and the reverse
direction, walking t = T-1 .. 0, holds its initial state until t = l_b - 1 and starts there,
exactly as ``pack_padded_sequence``. With keep in {0, 1} both products are exact, so the
values equal running each sequence alone. Steps where every sequence is active need no mask.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from tinygrad_lstm import Tensor

# A cell's recurrent state: h, or a tuple such as LSTM's (h, c).
State = Tensor | tuple[Tensor, ...]

__all__ = ["State", "StepMask", "check_lengths", "hold_finished", "step_masks"]


class StepMask:
    """(N, 1) constants for one time step: ``keep`` = [t < l_b] and ``drop`` = 1 - keep."""

    __slots__ = ("drop", "keep")

    def __init__(self, keep: np.ndarray) -> None:
        self.keep = Tensor(keep)
        self.drop = Tensor(1 - keep)


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
    (a Tensor state or a tuple of them)."""
    if isinstance(new, tuple):
        return tuple(n * mask.keep + o * mask.drop for n, o in zip(new, old))
    return new * mask.keep + old * mask.drop
