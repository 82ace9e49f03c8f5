"""A generic training step with gradient clipping and truncated BPTT.

``Trainer`` knows nothing about tasks or layers. It calls

- ``model(x_chunk, state) -> (prediction, new_state)`` on a time-major chunk (time is axis 0
  of ``x``; ``state`` is None on the first chunk),
- ``loss_fn(prediction, target) -> scalar Tensor``,

and then ``backward()``, optional clipping and ``optimizer.step()``.

Truncated BPTT (``bptt=K``), as in docs/recurrent_equations.md §8: the sequence is cut into
chunks of K steps; the state's *values* go on from chunk to chunk but its graph is cut
(``detach_state``), so no gradient crosses a chunk boundary and memory stays bounded by K.

- ``per_step_targets=True`` (language models, forecasting): ``target`` is time-major like
  ``x``; each chunk has its own loss and its own optimizer update, chunks from the start.
- ``per_step_targets=False`` (one answer per sequence): only the prediction after the last
  chunk is scored. Chunks are cut from the END so the last one has exactly K steps; the
  earlier chunks only advance the state (under ``no_grad``), so gradients reach back at most
  K steps.

With ``bptt`` None or ``>= T`` both reduce to full backpropagation through time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .autograd import no_grad
from .grad_clipping import clip_grad_norm_, grad_norm
from .optim import Optimizer
from .tensor import Tensor

__all__ = ["StepResult", "Trainer", "chunk_bounds", "detach_state"]

State = Any  # None, a Tensor, or a (nested) tuple of Tensors
# A batch sliced in time by Trainer.step: an array or Tensor (T, B, ...), or a tuple of them.
TimeMajor = Tensor | np.ndarray | tuple[Any, ...]


def detach_state(state: State) -> State:
    """The same state values cut from the graph: a Tensor, a tuple (LSTM's ``(h, c)``) or a
    nested tuple of Tensors, or None."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(
        f"detach_state: expected a Tensor, a tuple of Tensors or None, got {type(state).__name__}"
    )


def chunk_bounds(length: int, bptt: int | None, from_end: bool = False) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(length)`` in chunks of ``bptt`` steps.

    ``from_end=True`` aligns the chunks to the end (the first chunk is the short one).
    ``bptt`` None (or ``>= length``) gives a single chunk.
    """
    if length <= 0:
        raise ValueError(f"chunk_bounds: length must be positive, got {length}")
    if bptt is None or bptt >= length:
        return [(0, length)]
    if bptt <= 0:
        raise ValueError(f"chunk_bounds: bptt must be positive, got {bptt}")
    if from_end:
        stops = list(range(length, 0, -bptt))[::-1]
        return [(max(0, s - bptt), s) for s in stops]
    return [(s, min(s + bptt, length)) for s in range(0, length, bptt)]


def _time_slice(x: TimeMajor, start: int, stop: int) -> TimeMajor:
    if isinstance(x, tuple):
        return tuple(_time_slice(part, start, stop) for part in x)
    return x[start:stop]


def _time_length(x: TimeMajor) -> int:
    return _time_length(x[0]) if isinstance(x, tuple) else len(x)


@dataclass
class StepResult:
    """One ``Trainer.step``: the loss (averaged over chunks, weighted by their length), the
    gradient norm before clipping (averaged over chunks), the number of optimizer updates,
    the wall time in seconds, and the final state, detached (pass it to the next ``step`` to
    carry memory across batches of one long stream)."""

    loss: float
    grad_norm: float
    updates: int
    seconds: float
    state: State = None


class Trainer:
    """Run forward, backward, clipping and the optimizer update on one batch.

    ``clip``: max 2-norm of all gradients together (``clip_grad_norm_``), or None.
    ``bptt``: truncation length in time steps, or None for full BPTT.
    ``step_count`` counts ``step()`` calls (batches), for logging and checkpoints.
    """

    def __init__(
        self,
        model: Callable,
        optimizer: Optimizer,
        loss_fn: Callable,
        clip: float | None = None,
        bptt: int | None = None,
        per_step_targets: bool = True,
    ) -> None:
        if clip is not None and not (
            isinstance(clip, (int, float, np.floating)) and math.isfinite(clip) and clip > 0
        ):
            raise ValueError(f"Trainer: clip must be a finite number > 0 or None, got {clip!r}")
        if bptt is not None and (
            isinstance(bptt, bool) or not isinstance(bptt, (int, np.integer)) or bptt <= 0
        ):
            raise ValueError(
                f"Trainer: bptt must be a positive number of steps or None, got {bptt!r}"
            )
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.clip = clip
        self.bptt = bptt
        self.per_step_targets = per_step_targets
        self.step_count = 0

    def _update(self, loss: Tensor) -> float:
        self.optimizer.zero_grad()
        loss.backward()
        params = self.optimizer.params
        norm = clip_grad_norm_(params, self.clip) if self.clip is not None else grad_norm(params)
        self.optimizer.step()
        return norm

    def step(self, x: TimeMajor, target: TimeMajor, state: State = None) -> StepResult:
        """Train on one batch: ``x`` time-major (T, B, ...), an array or a Tensor; ``target``
        time-major like ``x`` when ``per_step_targets``, else one target per sequence
        (arrays, or tuples of arrays such as ``(targets, mask)``, are sliced in time).
        ``state`` is the initial state (None: the model's zeros)."""
        start_time = time.perf_counter()
        length = _time_length(x)
        if self.per_step_targets and _time_length(target) != length:
            raise ValueError(
                f"Trainer.step: per-step targets need {length} time steps like "
                f"the input, got {_time_length(target)}"
            )
        bounds = chunk_bounds(length, self.bptt, from_end=not self.per_step_targets)
        losses, norms, weights = [], [], []
        for i, (a, b) in enumerate(bounds):
            state = detach_state(state)
            last = i == len(bounds) - 1
            if not self.per_step_targets and not last:
                with no_grad():
                    _, state = self.model(_time_slice(x, a, b), state)
                continue
            prediction, state = self.model(_time_slice(x, a, b), state)
            chunk_target = _time_slice(target, a, b) if self.per_step_targets else target
            loss = self.loss_fn(prediction, chunk_target)
            losses.append(float(loss.item()))
            norms.append(self._update(loss))
            weights.append(b - a)
        self.step_count += 1
        return StepResult(
            loss=float(np.average(losses, weights=weights)),
            grad_norm=float(np.mean(norms)),
            updates=len(norms),
            seconds=time.perf_counter() - start_time,
            state=detach_state(state),
        )
