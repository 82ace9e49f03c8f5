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

from typing import Any, NamedTuple

import numpy as np

from tinygrad_lstm import Context, Function, unbroadcast

from .capture import Call, StepTrace

__all__ = ["Replay", "ReplayCall", "ReplayRun"]


class ReplayCall(NamedTuple):
    """One call as a pass replays it: the op, its input and output value ids, its
    attributes, which inputs want a gradient (``wanted``) and whether any does
    (``tracked``: only then is its context kept for the backward)."""

    fn: type[Function]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    attrs: dict[str, Any]
    wanted: tuple[bool, ...]
    tracked: bool


class ReplayRun:
    """One pass's replayed values (``values``, by trace value id) and, for its backward,
    each tracked call with its context (in call order)."""

    def __init__(self, replay: Replay, values: dict[int, np.ndarray]):
        self.replay, self.values = replay, values
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.tracked: list[tuple[ReplayCall, Context]] = []

    def forget_values(self) -> None:
        """Keep only the values' shapes: the backward reads what the calls saved, and the
        rest is freed as soon as the forward is done with it (as the engine frees it)."""
        self.shapes = {vid: v.shape for vid, v in self.values.items()}
        self.values = {}

    def saved(self) -> list[np.ndarray]:
        """Every array a replayed op saved for its backward (an in-place change of one
        before the backward is refused, as composed refuses it)."""
        return [a for _, ctx in self.tracked for a in ctx.saved]

    def backward(self, grads: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """The gradients of the replay's inputs (x, parameters) given those of the values
        the recurrence read, ``grads`` (by value id; summed into, not modified)."""
        grads = dict(grads)
        shapes = self.shapes
        for call, ctx in reversed(self.tracked):
            arriving = [grads.get(o) for o in call.outputs]
            if all(g is None for g in arriving):
                continue
            back = call.fn.backward(ctx, *arriving)
            if type(back) is not tuple:
                back = (back,)
            for vid, g, need in zip(call.inputs, back, ctx.needs_input_grad):
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
        self._plans: dict[tuple, list[ReplayCall]] = {}

    def plan(self, ids: tuple[int, ...], needs: tuple[bool, ...]) -> list[ReplayCall]:
        """The calls as a pass replays them when the replay's inputs ``ids`` want a
        gradient or not as ``needs`` says. Worked out once per question: a layer asks
        the same at every pass."""
        key = (ids, needs)
        found = self._plans.get(key)
        if found is None:
            wants = dict(zip(ids, needs))
            found = []
            for fn, ins, outs, attrs in self.calls:
                wanted = tuple([wants.get(i, False) for i in ins])
                wants.update(dict.fromkeys(outs, True in wanted))
                found.append(ReplayCall(fn, ins, outs, attrs, wanted, True in wanted))
            self._plans[key] = found
        return found

    def run(
        self, ids: tuple[int, ...], arrays: tuple, needs: tuple[bool, ...], rows: int
    ) -> ReplayRun:
        """Every call's forward on ``arrays`` (x as (T*B, I) and the parameters, value ids
        ``ids``); ``needs``: which of them want a gradient. ``rows``: T*B. Call
        ``forget_values`` once the recurrence has read the values it needs."""
        values: dict[int, Any] = dict(zip(ids, arrays))
        for v in self.consts:
            data = v.tensor._data
            values[v.id] = np.broadcast_to(v.row(), (rows, *data.shape[1:])) if v.batched else data
        run = ReplayRun(self, values)
        tracked = run.tracked
        for call in self.plan(ids, needs):
            fn, ins, outs, attrs, wanted, track = call
            ctx = Context(fn, wanted)
            out = fn.forward(ctx, *[values[i] for i in ins], **attrs)
            for vid, array in zip(outs, out if type(out) is tuple else (out,)):
                values[vid] = array if type(array) is np.ndarray else np.asarray(array)
            if track:
                tracked.append((call, ctx))
        return run
