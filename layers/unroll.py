"""The time loop of one (layer, direction) pass: the part of ``Recurrent`` that steps a cell.

Kept apart from the layer so that a different way of running a pass (a fused op, a
checkpointed loop) can sit beside it and be chosen by the layer.
"""

from __future__ import annotations

import tinygrad_lstm as tg
from tinygrad_lstm import Tensor

from .packing import StepMask, hold_finished

__all__ = ["run_direction"]


def run_direction(cell, x: Tensor, state, reverse: bool, masks: list[StepMask | None] | None,
                  label: str):
    """Run ``cell`` over the time-major sequence ``x`` (T, N, F) from ``state``.

    Returns (outputs stacked to (T, N, output_size), final state). Each step is recorded
    inside ``tg.scope(f"{label}/t{t}")``. A cell with the split-step protocol (see
    ``layers/cells.py``) gets its input projection for all T steps in one matmul and its
    transposed weights once; any other cell is called as ``cell(x_t, state)``.
    """
    steps, batch = x.shape[0], x.shape[1]
    unstack = tg.op("unstack")
    if callable(getattr(cell, "project_inputs", None)):
        with tg.scope(f"{label}/inputs"):
            xw = cell.project_inputs(x.reshape(steps * batch, x.shape[2]))
            inputs = unstack.apply(xw.reshape(steps, batch, xw.shape[1]), axis=0)
            prepared = cell.prepare_step()
        step = cell.step
    else:
        inputs = unstack.apply(x, axis=0)
        prepared = None

        def step(x_t, s, _):
            return cell(x_t, s)

    outputs: list = [None] * steps
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        with tg.scope(f"{label}/t{t}"):
            out, new = step(inputs[t], state, prepared)
            mask = None if masks is None else masks[t]
            if mask is not None:
                new = hold_finished(new, state, mask)
                out = out * mask.keep
        outputs[t], state = out, new
    return tg.stack(outputs, axis=0), state
