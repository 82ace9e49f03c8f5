"""Hoisted elementwise work the kernels do instead: ``x W^T + b`` is one GEMM, and ``+ b``.

A value of x and the parameters is computed before the time loop for all T*B rows at once
(hoisted). For a matmul that is one GEMM instead of T small ones. For an elementwise op, a
split or a column slice, hoisting saves nothing: the kernel that reads the value can compute
it as it reads, for the cost of the load it replaces, and hoisting it costs a (T*B, W) array
written and read back, and the gradient arrays of its backward (a split's parts even had to
be copied to contiguous rows). So ``sink`` moves such calls into the recurrence when all
their consumers are there: the bias add of an input projection becomes a vector read by the
kernel, a split of the projection becomes column offsets into one row array. What the
kernels compute is the same arithmetic on the same values, so results do not change.
"""

from __future__ import annotations

import dataclasses

from .capture import Call, StepTrace, Value
from .rows import last_axis_slices, op_registration

__all__ = ["sink"]


def _row_block(v: Value) -> bool:
    return v.batched and len(v.shape) == 2


def _sinkable(trace: StepTrace, call: Call) -> bool:
    """True for a hoisted call the kernels can compute: an elementwise op with a scalar
    rule, or a split/slice of columns, of row blocks (and vectors) into row blocks."""
    values = trace.values
    if not all(_row_block(values[o]) for o in call.outputs):
        return False
    if call.op in ("split", "getitem"):
        source = values[call.inputs[0]]
        return _row_block(source) and last_axis_slices(call, source.shape[-1]) is not None
    info = op_registration(call.op)
    return info is not None and info.kind == "elementwise" and info.scalar is not None


def sink(trace: StepTrace) -> StepTrace:
    """``trace`` with the hoisted calls the kernels can compute, whose values only the
    recurrence (or another such call) reads, marked as part of the recurrence."""
    values = trace.values
    readers: dict[int, list[Call]] = {v.id: [] for v in values}
    for call in trace.calls:
        for i in call.inputs:
            readers[i].append(call)
    sunk: set[int] = set()
    for call in reversed(trace.calls):  # readers before what they read
        if values[call.outputs[0]].role != "hoisted" or not _sinkable(trace, call):
            continue
        inside = all(
            values[r.outputs[0]].role == "recurrent" or r.outputs[0] in sunk
            for o in call.outputs
            for r in readers[o]
        )
        if inside and any(readers[o] for o in call.outputs):
            sunk.update(call.outputs)
    marked = [
        dataclasses.replace(v, deps=v.deps | {"state"}) if v.id in sunk else v for v in values
    ]
    return dataclasses.replace(trace, values=marked)
