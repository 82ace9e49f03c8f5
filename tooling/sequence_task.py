"""What a sequence task is: the ``Task`` base class that every task in ``datasets`` derives
from, the types of its batches, and the argument checks the tasks share (NumPy only).

A task draws ``(x, y)`` batches from a seeded ``np.random.Generator``, scores predictions
(``metrics``) and knows its baseline and the readout a model needs. Split out of
``datasets.py``, which holds the tasks themselves and re-exports every public name here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["Batch", "Targets", "Task", "check_count", "check_rng"]

# A task's targets: class indices or values, or (targets, mask) where only some steps count.
Targets = np.ndarray | tuple[np.ndarray, np.ndarray]
# What Task.batch returns: (x, y).
Batch = tuple[np.ndarray, Targets]


def check_rng(where: str, rng: Any) -> None:
    """``TypeError`` naming ``where`` unless ``rng`` is a ``np.random.Generator``."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{where}: rng must be a numpy.random.Generator, e.g. "
            f"np.random.default_rng(0); got {type(rng).__name__}"
        )


def check_count(where: str, name: str, value: Any, low: int = 1) -> None:
    """``ValueError`` (``TypeError`` for a non-integer) naming ``where`` and ``name`` unless
    ``value`` is an integer >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{where}: {name} must be an integer >= {low}, got {type(value).__name__} {value!r}"
        )
    if value < low:
        raise ValueError(f"{where}: {name} must be an integer >= {low}, got {value}")


class Task:
    """A batch generator with its metrics and the readout a model needs.

    ``regression`` tasks are scored by MSE; the others by cross-entropy on integer class
    targets, which may come with a mask of the steps that count: ``y = (targets, mask)``.

    ``readout``: ``"last"`` (one prediction per sequence), ``"all"`` (one per step) or
    ``"tail"`` (one per step for the last ``tail`` steps). ``causal`` tasks predict the
    future from the past, so a bidirectional model would cheat on them.
    """

    name = "task"
    readout = "all"
    tail = 1
    causal = True
    regression = False
    input_size = 1
    output_size = 1
    vocab_size: int | None = None
    # The index that pads variable-length sequences (a SequenceModel then passes lengths=).
    pad_index: int | None = None
    baseline_label = ""
    held_out_label = "a fresh batch"

    def __init__(self, seq_len: int):
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"{self.name}: seq_len must be a positive integer, got {seq_len!r}")
        self.seq_len = seq_len

    @property
    def per_step_targets(self) -> bool:
        """True when the targets are time-major, one per input step (``Trainer`` option)."""
        return self.readout == "all"

    def config(self) -> dict:
        """A JSON-able dict that ``make_task`` turns back into this task."""
        return {"name": self.name, "seq_len": self.seq_len}

    def batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """``(x, y)`` for ``batch_size`` sequences drawn from ``rng``."""
        check_rng(f"{self.name}.batch", rng)
        check_count(f"{self.name}.batch", "batch_size", batch_size)
        return self._batch(rng, int(batch_size))

    def _batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """``batch`` after its arguments are checked; each task defines it."""
        raise NotImplementedError

    def held_out(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """The batch ``evaluate`` scores (described by ``held_out_label``): a fresh draw
        like ``batch`` for generated tasks; a task cut from fixed data returns its
        validation split instead."""
        return self.batch(rng, batch_size)

    def metrics(self, prediction: np.ndarray, y: Targets) -> dict[str, float]:
        """Readable scores (NumPy, no graph): accuracy for classification, MSE for regression."""
        if self.regression:
            return {"mse": float(np.mean((prediction - y) ** 2))}
        return {"accuracy": float(np.mean(prediction.argmax(-1) == y))}

    def baseline(self) -> float:
        """The score of a model that learned nothing about memory (see ``baseline_label``)."""
        return math.nan
