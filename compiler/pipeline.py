"""The cell compiler's pipeline, ``lower()``, and the compiled cell a layer runs.

``lower(cell, input_size, dtype)`` reads as the stages it runs, each with its own data:

    trace    = capture(cell, input_size, dtype)     every op of one step (capture.py)
    trace    = sink(trace)                          bias adds, splits: into the kernels
    program  = build_program(trace)                 the recurrence, row-wise ops (program.py)
    replay   = replay_plan(trace, leaves)           what runs before the time loop (replay.py)
    schedule = Schedule.of(program)                 stages cut at the matmuls (schedule.py)
    kernels  = lower_stages(schedule)               typed loops per stage (kernel_ir.py)
    layout   = plan_memory(schedule, kernels)       where each value and gradient lives
    source   = render(schedule, layout, dtype, blas) Numba source; blas: a gemm found (blas.py)
    module   = load_module(source)                  on first use (runtime.py)

A step the compiler cannot prove equal to composed raises ``NotFusible`` naming why; a
failure of a stage itself is a ``CompilerError`` naming the stage.

``CompiledCell.run`` is one (layer, direction) pass as one ``CompiledSequence`` op, which
replays the ``once`` calls (parameters only) and the ``hoisted`` calls (x_t and
parameters, on all T*B rows at once) inside itself, then runs the recurrence.
``compiled_cell(cell, ...)`` keeps one per cell and re-lowers it when a guard (guards.py)
says an attribute the step read has changed.
"""

from __future__ import annotations

import functools
import operator
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import DTypeLike
from tinygrad_lstm.ops.kernel_cache import load_module as _load

from tinygrad_lstm import Module, Tensor, no_grad

from .blas import gemm
from .build import Leaves, build_program
from .capture import Call, StepTrace, capture
from .errors import CompilerError, NotFusible
from .guards import Guard
from .kernel_ir import lower_stages
from .memory import plan_memory
from .program import StepProgram
from .render import render
from .replay import Replay
from .rows import check_row_wise
from .runtime import CompiledSequence, CompiledStep, OpInputs, common_dtype, smoke_test
from .schedule import Schedule
from .sinking import sink

__all__ = ["CompiledCell", "compiled_cell", "lower"]

_R = TypeVar("_R")
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# The compiler's own files: a change to any of them gives generated modules new names, so
# no kernel a former version generated is loaded from the cache.
_GENERATOR_FILES = tuple(sorted(Path(__file__).parent.glob("*.py")))
_STEPS: dict[tuple[StepProgram, np.dtype, bool], CompiledStep] = {}


def _stage(name: str, run: Callable[..., _R], *args: Any) -> _R:
    """``run(*args)``, a failure of the compiler itself reported as one of stage ``name``."""
    try:
        return run(*args)
    except NotFusible:
        raise
    except Exception as exc:  # noqa: BLE001 - any other error here is the compiler's own
        raise CompilerError(name, exc) from exc


def replay_plan(trace: StepTrace, leaves: Leaves) -> list[Call]:
    """The once/hoisted calls the program's leaves depend on, in trace order; each hoisted
    one proven row-wise."""
    values, wanted = trace.values, set(leaves.row + leaves.weight + leaves.vector)
    needed = []
    for call in reversed(trace.calls):
        if values[call.outputs[0]].role != "recurrent" and wanted & set(call.outputs):
            needed.append(call)
            wanted |= set(call.inputs)
    for call in needed:
        if values[call.outputs[0]].role == "hoisted":
            check_row_wise(trace, call)
    return needed[::-1]


def _kernels(program: StepProgram, dtype: np.dtype) -> CompiledStep:
    """The compiled step of ``program`` for ``dtype``, one per process (the generated text
    reads sizes from ``dims``, so programs that differ only in sizes share one module; its
    drivers differ by whether a BLAS was found, see blas.py)."""
    blas = gemm(dtype) is not None
    key = (program, np.dtype(dtype), blas)
    step = _STEPS.get(key)
    if step is None:
        schedule = _stage("schedule", Schedule.of, program)
        kernels = _stage("kernel lowering", lower_stages, schedule)
        layout = _stage("memory plan", plan_memory, schedule, kernels)
        source = _stage("code generation", render, schedule, layout, dtype, blas)
        load = functools.partial(
            _load, f"step_{np.dtype(dtype).name}", dependencies=_GENERATOR_FILES
        )
        step = _STEPS[key] = CompiledStep(schedule, layout, source, dtype, load)
    return step


def lower(cell: Module, input_size: int, dtype: DTypeLike) -> CompiledCell:
    """The compiled step of ``cell`` for inputs of ``input_size`` features in ``dtype``:
    trace, program, replay plan, schedule, kernels and source (the module loads on first
    use). Raises ``NotFusible`` or ``CompilerError``."""
    dtype = np.dtype(dtype)
    guard = Guard(cell)
    trace = _stage("capture", capture, cell, input_size, dtype)
    trace = _stage("sinking", sink, trace)
    program, leaves = _stage("program", build_program, trace)
    replay = _stage("replay plan", replay_plan, trace, leaves)
    compiled = CompiledCell(type(cell).__name__, trace, program, leaves, replay, guard, dtype)
    compiled.step(dtype)
    return compiled


class CompiledCell:
    """A cell's compiled step: ``run`` is one pass as one ``CompiledSequence`` op."""

    def __init__(
        self,
        cell_type: str,
        trace: StepTrace,
        program: StepProgram,
        leaves: Leaves,
        replay: list[Call],
        guard: Guard,
        dtype: np.dtype,
    ) -> None:
        self.cell_type, self.trace, self.program, self.leaves = cell_type, trace, program, leaves
        self.replay, self.guard, self.dtype = replay, guard, dtype
        self._steps: dict[np.dtype, CompiledStep] = {}
        self._first_steps: dict[tuple, list] = {}  # see _check_first_step
        kinds = {"row": leaves.row, "weight": leaves.weight, "vector": leaves.vector}
        kinds["const"] = leaves.const
        read = {i for k in kinds.values() for i in k}
        params = [
            v
            for v in trace.values
            if v.source == "param" and v.id in read | {i for c in replay for i in c.inputs}
        ]
        self._params = [v.id for v in params]
        # The parameters as they are now (one may have been replaced since the capture).
        self._read_params = operator.attrgetter(*(v.name for v in params)) if params else None
        self.inputs = OpInputs(
            trace.x, tuple(self._params), Replay(trace, replay, read), kinds, self.step
        )

    def step(self, dtype: DTypeLike | None = None) -> CompiledStep:
        """The ``CompiledStep`` (schedule, source, kernels) for ``dtype`` (the trace's)."""
        dtype = self.dtype if dtype is None else dtype
        step = self._steps.get(dtype)
        if step is None:  # hashing the program is slow: once per dtype, not per pass
            step = self._steps[dtype] = _kernels(self.program, dtype)
        return step

    def run(
        self, cell: Module, x: Tensor, state: Any, reverse: bool, keep: np.ndarray | None
    ) -> tuple[Tensor, Any]:
        """One pass over x (T, N, I) from ``state``: (outputs (T, N, O), final state)."""
        parts = state if self.trace.tupled else (state,)
        params = self._read_params(cell) if self._params else ()
        if not isinstance(params, tuple):
            params = (params,)
        dtype = common_dtype([t._data for t in (*parts, x, *params)])
        if any(p._data.dtype != dtype for p in parts):
            self._check_first_step(cell, tuple(p._data.dtype for p in parts), dtype)
        step = self.step(dtype)
        small = keep is None and step.small(x.shape[1])
        if small not in step.tested:
            _stage("kernel compilation", smoke_test, step, small)
        out = CompiledSequence.apply(
            *parts, x, *params, inputs=self.inputs, steps=x.shape[0], reverse=reverse, keep=keep
        )
        return out[0], (tuple(out[1:]) if self.trace.tupled else out[1])

    def _check_first_step(self, cell: Module, parts: tuple[np.dtype, ...], dtype: np.dtype) -> None:
        """NotFusible unless every value of the first step, from an initial state of dtypes
        ``parts``, has ``dtype`` in composed too. (A float32 state in a float64 layer: composed
        computes in float32 what reads only the state, until a float64 operand joins it; the
        compiled op computes all in one dtype.) The step is replayed on one row to find out."""
        key = (parts, dtype)
        if key not in self._first_steps:
            values, env = self.trace.values, {}
            x = values[self.trace.x]
            env[x.id] = Tensor(np.zeros((1, *x.shape[1:]), x.tensor.dtype))
            for k, s in enumerate(self.trace.states):
                env[s] = Tensor(np.zeros((1, *values[s].shape[1:]), parts[k]))
            for v in values:
                if v.source == "param":
                    env[v.id] = functools.reduce(getattr, v.name.split("."), cell)
                elif v.source == "const":  # a number takes the dtype of its op's other input
                    data = v.tensor._data
                    env[v.id] = (
                        float(data) if data.ndim == 0 else Tensor(v.row() if v.batched else data)
                    )
            with no_grad():
                for call in self.trace.calls:
                    out = call.fn.apply(*(env[i] for i in call.inputs), **call.attrs)
                    for vid, t in zip(call.outputs, out if isinstance(out, tuple) else (out,)):
                        env[vid] = t
            self._first_steps[key] = [
                (v.id, env[v.id].dtype)
                for v in values
                if v.role == "recurrent" and v.source is None and env[v.id].dtype != dtype
            ]
        differ = self._first_steps[key]
        if differ:
            vid, got = differ[0]
            raise NotFusible(
                f"the initial state is {', '.join(map(str, parts))} where the step computes in "
                f"{dtype}: composed computes v{vid} of the first step in {got} (does "
                "init_state ignore its dtype?), which one compiled dtype cannot match"
            )


def compiled_cell(cell: Module, input_size: int, dtype: DTypeLike) -> CompiledCell:
    """The ``CompiledCell`` of ``cell`` (kept per cell, input size and dtype, lowered again
    when a guard fails); raises ``NotFusible`` or ``CompilerError``."""
    key = (input_size, np.dtype(dtype).name)
    per_cell = _CACHE.setdefault(cell, {})
    compiled = per_cell.get(key)
    if compiled is None or not compiled.guard.holds(cell):
        per_cell.pop(key, None)
        compiled = per_cell[key] = lower(cell, input_size, dtype)
    return compiled
