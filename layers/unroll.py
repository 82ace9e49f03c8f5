"""The ways to run one (layer, direction) pass, side by side; ``Recurrent`` picks one.

- ``run_direction``: the composed time loop, one recorded op per primitive per step (the
  oracle the other two are tested against);
- ``run_handwritten``: a built-in cell's hand-written fused op (ops/fused.py), named by the
  cell's ``fused_op``;
- ``run_compiled``: the cell compiler (``tinygrad_lstm.compiler``), for any cell whose
  step it can prove equal to composed.

``pick_runner`` decides, per cell, which one ``fused=`` asks for, and ``run_pass`` runs the
one it picked (the dispatch that was ``Recurrent``'s, layers/recurrent.py).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from numpy.typing import DTypeLike
from tinygrad_lstm.compiler import CompilerError, NotFusible, compiled_cell

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Tensor

from .cells import AffineCell
from .checks import check_step_result
from .packing import State, StepMask, hold_finished, padding_zeroed

__all__ = [
    "FUSED_MODES",
    "FusedMode",
    "FusionWarning",
    "pick_runner",
    "run_compiled",
    "run_direction",
    "run_handwritten",
    "run_pass",
]

# How a sequence layer runs its cells (``fused=``); see ``pick_runner``.
FusedMode = bool | Literal["compiled"]
FUSED_MODES: tuple[FusedMode, ...] = (False, True, "compiled")


class FusionWarning(UserWarning):
    """``fused=`` was asked for a cell whose step does not compile: it runs composed."""


def run_direction(
    cell: Module,
    x: Tensor,
    state: State,
    reverse: bool,
    masks: list[StepMask | None] | None,
    label: str,
) -> tuple[Tensor, State]:
    """Run ``cell`` over the time-major sequence ``x`` (T, N, F) from ``state``.

    Returns (outputs stacked to (T, N, output_size), final state). Each step is recorded
    inside ``tg.scope(f"{label}/t{t}")``. A cell with the split-step protocol (see
    ``layers/cells.py``) gets its input projection for all T steps in one matmul and its
    transposed weights once; any other cell is called as ``cell(x_t, state)``.
    """
    steps, batch = x.shape[0], x.shape[1]
    if masks is not None and any(m is not None for m in masks):
        x = padding_zeroed(x, masks)  # the cell never reads padding (NaN in it stays out)
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

        def step(x_t: Tensor, s: State, _: None) -> tuple[Tensor, State]:
            return check_step_result(cell, s, cell(x_t, s))

    outputs: list = [None] * steps
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        with tg.scope(f"{label}/t{t}"):
            out, new = step(inputs[t], state, prepared)
            mask = None if masks is None else masks[t]
            if mask is not None:
                new = hold_finished(new, state, mask)
                out = tg.where(mask.keep, out, 0.0)
        outputs[t], state = out, new
    return tg.stack(outputs, axis=0), state


def run_handwritten(
    cell: AffineCell, x: Tensor, state: State, reverse: bool, label: str
) -> tuple[Tensor, State]:
    """All steps as ONE recorded op, the cell's hand-written ``fused_op`` (ops/fused.py)
    with the cell's ``fused_attrs()``: (outputs (T, N, H), final state)."""
    if cell.bias_ih is None:
        zeros = np.zeros(cell.gates * cell.hidden_size, cell.weight_ih.dtype)
        biases = (zeros, zeros)
    else:
        biases = (cell.bias_ih, cell.bias_hh)
    parts = state if isinstance(state, tuple) else (state,)
    attrs = cell.fused_attrs() if callable(getattr(cell, "fused_attrs", None)) else {}
    with tg.scope(label):
        out = tg.op(cell.fused_op).apply(
            x, *parts, cell.weight_ih, cell.weight_hh, *biases, reverse=reverse, **attrs
        )
    return out[0], (tuple(out[1:]) if isinstance(state, tuple) else out[1])


def run_compiled(
    cell: Module,
    x: Tensor,
    state: State,
    reverse: bool,
    masks: list[StepMask | None] | None,
    label: str,
    layer: str = "Recurrent",
) -> tuple[Tensor, State]:
    """All steps as ONE recorded op made by the cell compiler: (outputs, final state).

    The compiled step is checked against its guards first (an attribute the step read that
    changed compiles it again); a step that no longer compiles runs composed, with a
    ``FusionWarning``. With ``masks``, x is zero past each sequence's end (selected, so a
    NaN in the padding reaches nothing)."""
    keep = None
    if masks is not None and any(m is not None for m in masks):
        keep = np.stack(
            [np.ones(x.shape[1], bool) if m is None else m.keep._data[:, 0] > 0 for m in masks]
        )
        x = padding_zeroed(x, masks)
    try:
        compiled = compiled_cell(cell, x.shape[2], x.dtype)
        with tg.scope(label):
            return compiled.run(cell, x, state, reverse, keep)
    except (NotFusible, CompilerError) as exc:
        _warn_composed(layer, cell, True, exc, stacklevel=5)
    return run_direction(cell, x, state, reverse, masks, label)


def _warn_composed(
    layer: str, cell: Module, fused: FusedMode, why: Exception, stacklevel: int
) -> None:
    warnings.warn(
        f"{layer}: fused={fused!r} cannot compile {type(cell).__name__}: {why}. "
        "It runs composed (same results, slower).",
        FusionWarning,
        stacklevel=stacklevel,
    )


def pick_runner(
    cell: Module, fused: FusedMode, input_size: int, dtype: DTypeLike, layer: str
) -> Literal["composed", "handwritten", "compiled"]:
    """ "composed", "handwritten" or "compiled": how ``fused`` runs ``cell``.

    ``True`` takes the cell's hand-written op when it declares one (``fused_op``), else
    the compiler; ``"compiled"`` always the compiler. A step the compiler cannot take runs
    composed, with a ``FusionWarning`` naming what blocked it and what to do.
    """
    if fused not in FUSED_MODES:
        raise ValueError(f"{layer}: fused must be one of {FUSED_MODES}, got {fused!r}")
    if not fused:
        return "composed"
    if fused is True and getattr(cell, "fused_op", None):
        return "handwritten"
    try:
        compiled_cell(cell, input_size, dtype)  # capture and generate; Numba on first use
    except (NotFusible, CompilerError) as exc:
        _warn_composed(layer, cell, fused, exc, stacklevel=4)
        return "composed"
    return "compiled"


def run_pass(
    runner: str,
    cell: Module,
    x: Tensor,
    state: State,
    reverse: bool,
    masks: list[StepMask | None] | None,
    label: str,
    layer: str = "Recurrent",
) -> tuple[Tensor, State]:
    """One (layer, direction) pass over x (T, N, F) by the ``runner`` that ``pick_runner``
    chose: (outputs (T, N, output_size), final state). The hand-written ops take no
    ``masks`` (no ``lengths``), so with masks a "handwritten" cell runs compiled."""
    if runner == "handwritten" and masks is None:
        return run_handwritten(cell, x, state, reverse, label)
    if runner != "composed":
        return run_compiled(cell, x, state, reverse, masks, label, layer)
    return run_direction(cell, x, state, reverse, masks, label)
