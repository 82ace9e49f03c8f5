"""Argument and input checks of the layers.

Each raises at the layer boundary, before any state changes, with a message naming the
layer and what was expected versus what arrived. The sequence layers' input and initial-state
checks (``check_sequence_input``, ``check_initial_state``) are ``Recurrent``'s
(layers/recurrent.py), ``check_cell_state`` is the built-in cells' (layers/cells.py), and
``check_step_result`` is the cell protocol checked where a runner calls a cell, kept here
beside the checks they build on.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

import tinygrad_lstm as tg
from tinygrad_lstm import Module, ShapeError, Tensor, TensorLike

from .packing import State

__all__ = [
    "InitialState",
    "as_float_input",
    "check_cell_arguments",
    "check_cell_state",
    "check_dropout",
    "check_float_dtype",
    "check_initial_state",
    "check_sequence_input",
    "check_size",
    "check_step_result",
]

# What a sequence layer's forward takes as the initial state: None (zeros), one tensor, or a
# tuple such as LSTM's (h0, c0), each (D*num_layers, N, .) as a Tensor or an array.
InitialState = TensorLike | tuple[TensorLike, ...] | None


def check_size(layer: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, or a ``ValueError`` naming the layer and argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{layer}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_dropout(layer: str, dropout: Any, num_layers: int) -> None:
    """A ``ValueError`` unless ``dropout`` is a number in [0, 1]; a ``UserWarning`` (pointing
    at the layer's caller) when it is positive with one layer, where it has no effect."""
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout <= 1:
        raise ValueError(f"{layer}: dropout must be a number in [0, 1], got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            f"{layer}: dropout={dropout} has no effect with num_layers=1 (it acts between layers)",
            UserWarning,
            stacklevel=3,
        )


def check_cell_arguments(
    layer: str,
    cls: type[Module],
    input_size: int,
    hidden_size: int,
    bias: bool,
    dtype: DTypeLike,
    rng: np.random.Generator | None,
    options: dict[str, Any],
) -> None:
    """A ``ValueError`` naming the layer when cell class ``cls`` cannot be built with these
    arguments (checked against its signature before any cell is made)."""
    try:
        inspect.signature(cls).bind(input_size, hidden_size, bias, dtype=dtype, rng=rng, **options)
    except TypeError as exc:
        raise ValueError(
            f"{layer}: cell {cls.__name__} does not take these arguments: "
            f"{exc} (options given: {sorted(options)})"
        ) from None


def check_float_dtype(layer: str, dtype: DTypeLike) -> np.dtype:
    """``dtype`` as a NumPy dtype, or a ``TypeError`` unless it is float32 or float64."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype}")
    return dtype


def as_float_input(layer: str, x: TensorLike, dtype: np.dtype) -> Tensor:
    """``x`` as a Tensor, or a ``ValueError`` when its dtype differs from the weights'; the
    message suggests conversions that work (a layer converts only to float32 or float64)."""
    how = "x.to" if isinstance(x, Tensor) else "x.astype"
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.dtype != dtype:
        fix = f"convert the input with {how}(np.{dtype})"
        if x.dtype in (np.float32, np.float64):
            fix += f", or the layer with layer.to(np.{x.dtype})"
        raise ValueError(
            f"{layer}: input dtype {x.dtype} does not match the weights' dtype {dtype}; {fix}"
        )
    return x


def check_sequence_input(
    layer: str, x: TensorLike, dtype: np.dtype, input_size: int, batch_first: bool
) -> tuple[Tensor, bool]:
    """``x`` as a time-major (T, N, I) Tensor, and whether it came unbatched.

    Takes (T, N, I), (N, T, I) with ``batch_first`` (transposed), or an unbatched (T, I)
    (made (T, 1, I)). Raises ``ShapeError`` naming ``layer`` for any other shape or an empty
    sequence, ``ValueError`` when the dtype is not the weights' ``dtype``.
    """
    x = as_float_input(layer, x, dtype)
    layout = "(N, T, {})" if batch_first else "(T, N, {})"
    if x.ndim not in (2, 3) or x.shape[-1] != input_size:
        wanted = (
            layout
            if x.ndim == 3
            else "(T, {})"
            if x.ndim == 2
            else layout + " or unbatched (T, {})"
        )
        raise ShapeError(
            f"{layer} expected input of shape "
            f"{wanted.format(input_size, input_size)}, got {x.shape}"
        )
    unbatched = x.ndim == 2
    if unbatched:
        x = x.reshape(x.shape[0], 1, input_size)
    elif batch_first:
        x = x.transpose(1, 0, 2)
    if x.shape[0] == 0:
        raise ShapeError(
            f"{layer}: got an empty sequence (T=0, input shape "
            f"{x.shape}); a sequence needs at least one step"
        )
    return x, unbatched


def check_initial_state(
    layer: str,
    cells: Sequence[Module],
    state: InitialState,
    batch: int,
    unbatched: bool,
    dtype: np.dtype,
) -> list[State]:
    """``state`` split into one initial state per cell (zeros from ``init_state`` when None).

    ``state`` holds, per state tensor (``cells[0].state_names``, e.g. LSTM's (h0, c0)), a
    (len(cells), batch, .) stack, or (len(cells), .) when the input is unbatched: PyTorch's
    layout, cell k*D + d for layer k and direction d. Raises ``ShapeError`` naming ``layer``
    for a wrong count or shape of tensors, ``ValueError`` for a dtype other than ``dtype``.
    """
    zeros = [c.init_state(batch, dtype) for c in cells]
    if state is None:
        return zeros
    tupled = isinstance(zeros[0], tuple)
    names = getattr(cells[0], "state_names", None) or [
        f"state{j}" for j in range(len(zeros[0]) if tupled else 1)
    ]
    expected = zeros[0] if tupled else (zeros[0],)
    parts = state if isinstance(state, (tuple, list)) else (state,)
    if tupled != isinstance(state, (tuple, list)) or len(parts) != len(expected):
        raise ShapeError(
            f"{layer} expected the initial state as "
            f"{'a tuple ' if tupled else 'one tensor '}"
            f"({', '.join(n + '0' for n in names)}), got "
            f"{type(state).__name__} of {len(parts)}"
        )
    per_cell = []
    for name, part, zero in zip(names, parts, expected):
        part = as_float_input(layer, part, dtype)
        shape = (len(cells),) + ((() if unbatched else (batch,)) + zero.shape[1:])
        if part.shape != shape:
            raise ShapeError(
                f"{layer} expected initial state {name}0 of shape {shape}, got {part.shape}"
            )
        if unbatched:
            part = part.reshape(len(cells), 1, *zero.shape[1:])
        per_cell.append(tg.op("unstack").apply(part, axis=0))
    return [tuple(p[i] for p in per_cell) if tupled else per_cell[0][i] for i in range(len(cells))]


def check_cell_state(
    layer: str, cell: Module, state: State | None, batch: int, unbatched: bool, dtype: np.dtype
) -> State:
    """``state`` for one step of ``cell``, shaped as ``cell.init_state(batch)`` (its zeros
    when None): each of ``cell.state_names`` (N, .), or (.) when the input is unbatched.

    Raises ``ShapeError`` naming ``layer`` for a wrong count or shape of tensors,
    ``ValueError`` for a dtype other than ``dtype``.
    """
    zeros = cell.init_state(batch, dtype)
    if state is None:
        return zeros
    parts = state if isinstance(state, tuple) else (state,)
    expected = zeros if isinstance(zeros, tuple) else (zeros,)
    if len(parts) != len(expected):
        raise ShapeError(
            f"{layer} expected a state of {len(expected)} "
            f"tensor(s) {cell.state_names}, got {len(parts)}"
        )
    checked = []
    for name, part, zero in zip(cell.state_names, parts, expected):
        part = as_float_input(layer, part, dtype)
        shape = zero.shape[1:] if unbatched else zero.shape
        if part.shape != shape:
            raise ShapeError(f"{layer} expected state {name} of shape {shape}, got {part.shape}")
        checked.append(part.reshape(zero.shape) if unbatched else part)
    return tuple(checked) if isinstance(zeros, tuple) else checked[0]


def _described(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a Tensor of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_described(v) for v in value)
        return f"a {type(value).__name__} of {len(value)} ({inner})"
    return f"a {type(value).__name__}"


def check_step_result(cell: Module, state: State, result: Any) -> tuple[Tensor, State]:
    """``result`` of ``cell(x_t, state)`` as ``(output_t, new_state)``, checked against the
    cell protocol: a pair, the output a Tensor of ``state``'s batch rows, the new state shaped
    like ``state`` (one Tensor, or a tuple of as many). Raises ``TypeError`` naming the cell
    otherwise: a cell returning only ``h`` would otherwise be unpacked along the batch axis,
    silently wrong at batch 2."""
    old = state if isinstance(state, tuple) else (state,)
    batch = old[0].shape[0]
    problem = None
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        problem = "it is not a pair"
    else:
        out, new = result
        parts = new if isinstance(new, tuple) else (new,)
        if not isinstance(out, Tensor) or out.ndim < 1 or out.shape[0] != batch:
            problem = f"output_t must be a Tensor of {batch} row(s)"
        elif isinstance(new, tuple) != isinstance(state, tuple) or len(parts) != len(old):
            problem = f"new_state must be {_described(state)}, as the state it was given"
        elif any(not isinstance(p, Tensor) or p.shape != o.shape for p, o in zip(parts, old)):
            problem = f"new_state must be {_described(state)}, as the state it was given"
    if problem is not None:
        raise TypeError(
            f"{type(cell).__name__}.forward(x_t, state) must return (output_t, new_state); "
            f"it returned {_described(result)}: {problem}"
        )
    return result[0], result[1]
