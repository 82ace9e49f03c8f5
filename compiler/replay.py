"""The calls of a step that do not read the state, run inside the compiled op.

What the recurrence reads that does not depend on the state (weights transposed, biases
summed: ``once``; the input projection ``x W^T`` on all T*B rows: ``hoisted``) is computed
before the time loop by the very ops the step called, on arrays: each call's forward with a
``Context`` of its own, and in the backward each call's backward in reverse, every gradient
fitted to its input's shape (``unbroadcast``) and summed over the calls that read the input.
So a pass is one recorded op, not one per call: at small sizes the engine's cost per
recorded op is most of a pass. The values are the ones composed computes, op for op.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lstm import Context, unbroadcast

from .capture import Call, StepTrace

__all__ = ["Replay", "ReplayRun"]


class ReplayRun:
    """One pass's replayed values (``values``, by trace value id) and, for its backward,
    each call's context."""

    def __init__(self, replay: Replay, values: dict[int, np.ndarray]):
        self.replay, self.values = replay, values
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.contexts: list[Context | None] = []

    def forget_values(self) -> None:
        """Keep only the values' shapes: the backward reads what the calls saved, and the
        rest is freed as soon as the forward is done with it (as the engine frees it)."""
        self.shapes = {vid: v.shape for vid, v in self.values.items()}
        self.values = {}

    def saved(self) -> list[np.ndarray]:
        """Every array a replayed op saved for its backward (an in-place change of one
        before the backward is refused, as composed refuses it)."""
        return [a for ctx in self.contexts if ctx is not None for a in ctx.saved]

    def backward(self, grads: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """The gradients of the replay's inputs (x, parameters) given those of the values
        the recurrence read, ``grads`` (by value id; summed into, not modified)."""
        grads = dict(grads)
        shapes = self.shapes
        for (fn, ins, outs, _), ctx in zip(reversed(self.replay.calls), reversed(self.contexts)):
            if ctx is None:
                continue
            arriving = [grads.get(o) for o in outs]
            if all(g is None for g in arriving):
                continue
            back = fn.backward(ctx, *arriving)
            if type(back) is not tuple:
                back = (back,)
            for vid, g, need in zip(ins, back, ctx.needs_input_grad):
                if g is None or not need:
                    continue
                shape = shapes[vid]
                if type(g) is not np.ndarray or g.shape != shape:
                    g = unbroadcast(np.asarray(g), shape)
                grads[vid] = g if vid not in grads else grads[vid] + g
        return grads


class Replay:
    """The ``calls`` (trace order) that make the values a step's recurrence reads
    (``leaves``: their value ids)."""

    def __init__(self, trace: StepTrace, calls: list[Call], leaves: set[int]):
        self.trace = trace
        self.calls = [(c.fn, c.inputs, c.outputs, c.attrs) for c in calls]
        read = {i for c in calls for i in c.inputs} | leaves
        self.consts = [v for v in trace.values if v.source == "const" and v.id in read]

    def run(self, inputs: dict[int, np.ndarray], needs: dict[int, bool], rows: int) -> ReplayRun:
        """Every call's forward on ``inputs`` (x as (T*B, I) and the parameters, by value
        id); ``needs``: which of them want a gradient. ``rows``: T*B. Call
        ``forget_values`` once the recurrence has read the values it needs."""
        values: dict[int, Any] = dict(inputs)
        needs = dict(needs)
        for v in self.consts:
            data = v.tensor._data
            values[v.id] = np.broadcast_to(v.row(), (rows, *data.shape[1:])) if v.batched else data
        run = ReplayRun(self, values)
        contexts = run.contexts
        for fn, ins, outs, attrs in self.calls:
            wanted = tuple([needs.get(i, False) for i in ins])
            ctx = Context(fn, wanted)
            out = fn.forward(ctx, *[values[i] for i in ins], **attrs)
            for vid, array in zip(outs, out if type(out) is tuple else (out,)):
                values[vid] = array if type(array) is np.ndarray else np.asarray(array)
                needs[vid] = True in wanted
            contexts.append(ctx if True in wanted else None)
        return run
