"""What acts on each row of the batch alone: the proofs that let the compiler compute a
value for all T steps at once (on T*B rows) and treat a value as one row per sequence.

A row block is a value whose first axis follows the batch and that has one more axis, the
features. An op is row-wise when each output row depends on the same input row only:
elementwise ops on row blocks and on values the same for every row, a matmul by a matrix
of parameters, slices, splits and concats of the feature axis, reductions along it.
"""

from __future__ import annotations

import numpy as np

from tinygrad_lstm import OpInfo, op_info
from tinygrad_lstm.registry import OPS

from .capture import Call, StepTrace, Value
from .errors import NotFusible

__all__ = [
    "blocked",
    "broadcasts_over_rows",
    "check_row_wise",
    "column_index",
    "feature_axis",
    "is_row_block",
    "last_axis_slices",
    "op_registration",
]

# Reductions a hoisted value may go through: along the feature axis they act on each row.
_ROW_REDUCTIONS = ("sum", "mean", "max", "logsumexp", "softmax", "log_softmax")


def op_registration(name: str) -> OpInfo | None:
    """The registration of op ``name``, or None for a Function no one registered."""
    return op_info(name) if name in OPS else None


def blocked(trace: StepTrace, call: Call, why: str) -> NotFusible:
    args = ", ".join(f"v{i} {trace.values[i].shape}" for i in call.inputs)
    return NotFusible(f"op {call.op!r} ({args}) {why}")


def is_row_block(v: Value) -> bool:
    return v.batched and len(v.shape) == 2


def broadcasts_over_rows(v: Value) -> bool:
    """True for a value that is the same for every row: (), (n,) or (1, n)."""
    return not v.batched and (len(v.shape) <= 1 or (len(v.shape) == 2 and v.shape[0] == 1))


def feature_axis(axis: object) -> bool:
    return axis in (1, -1)


def column_index(index: object) -> bool:
    """True for ``[:, cols]`` / ``[..., cols]`` with cols a slice or a 1-D int list/array."""
    if not (isinstance(index, tuple) and len(index) == 2):
        return False
    rows, cols = index
    if not (rows is Ellipsis or rows == slice(None)):
        return False
    if isinstance(cols, slice):
        return True
    array = np.asarray(cols)
    return array.ndim == 1 and array.dtype.kind in "iu"


def check_row_wise(trace: StepTrace, call: Call) -> None:
    """NotFusible unless hoisted ``call`` acts on each row alone, so that running it on all
    T*B rows at once equals running it step by step."""
    values = trace.values
    ins = [values[i] for i in call.inputs]
    if not all(is_row_block(values[o]) for o in call.outputs):
        raise blocked(
            trace,
            call,
            "acts on x_t in a way that mixes the rows of the batch (its result is not one "
            "row per sequence); only what acts on each row alone is computed for all steps",
        )
    info, op, attrs = op_registration(call.op), call.op, call.attrs
    if info is not None and info.kind == "elementwise" or op == "cast":
        proven = all(is_row_block(v) or broadcasts_over_rows(v) for v in ins)
    elif op == "matmul":
        proven = is_row_block(ins[0]) and not ins[1].batched and len(ins[1].shape) == 2
    elif op in ("split", "concat"):
        proven = feature_axis(attrs.get("axis", 0)) and all(is_row_block(v) for v in ins)
    elif op == "getitem":
        proven = column_index(attrs.get("index"))
    elif op in _ROW_REDUCTIONS:
        proven = feature_axis(attrs.get("axis")) and (
            attrs.get("keepdims", False) or op in ("softmax", "log_softmax")
        )
    else:
        proven = False
    if not proven:
        raise blocked(
            trace,
            call,
            "acts on x_t in a way that may mix the rows of the batch; only elementwise ops, "
            "a matmul by a parameter matrix, slices, splits and concats of the feature axis "
            "and reductions along it are computed for all steps at once",
        )


def last_axis_slices(call: Call, width: int) -> list[tuple[int, int]] | None:
    """(offset, width) of each output of a split/getitem taking columns, else None."""
    if call.op == "split" and feature_axis(call.attrs.get("axis", 0)):
        sections = call.attrs.get("sections", 2)
        sizes = [width // sections] * sections if isinstance(sections, int) else sections
        offsets = np.cumsum([0, *sizes[:-1]])
        return [(int(o), int(s)) for o, s in zip(offsets, sizes)]
    index = call.attrs.get("index")
    if call.op == "getitem" and column_index(index) and isinstance(index[1], slice):
        start, stop, stride = index[1].indices(width)
        if stride == 1 and stop > start:
            return [(start, stop - start)]
    return None
