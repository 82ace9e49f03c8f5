"""Capture one step of a recurrent cell: every op it runs, by name, with attributes and inputs.

``capture(cell, input_size, dtype)`` runs ``cell(x_t, state)`` under the engine's recording
hook (``tinygrad_lstm.recording``) and keeps each op call (its registered name, input
tensors, attributes and outputs) as a ``StepTrace``. It runs the step twice, on random
inputs of two batch sizes, and refuses (``NotFusible``) what the two runs disagree on:

- a different graph (a branch on a value, a loop over the batch);
- a constant made in the step whose values differ (random numbers, a tensor computed from
  values outside registered ops). A constant whose first axis follows the batch (``ones(N,
  1)``) is kept only when all its rows are one and the same row;
- a dimension other than the first that follows the batch.

It refuses at once, naming the file and line, a step that reads a tensor's values from
Python (``.data``, ``.item()``, ``bool()``, a comparison...), and a step that draws random
numbers (from ``tg.default_rng()``, a generator held by the cell, or NumPy's global one:
the generators are restored, so capturing changes nothing).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tinygrad_lstm.ops as builtin_ops
from numpy.typing import DTypeLike

import tinygrad_lstm as tg
from tinygrad_lstm import Function, Module, Tensor, module
from tinygrad_lstm.recording import recording

from .errors import NotFusible

__all__ = ["TRACE_BATCHES", "Call", "StepTrace", "Value", "capture"]

# The two batch sizes of the sample runs: a dimension equal in both is fixed, one that is
# 3 in the first run and 5 in the second follows the batch.
TRACE_BATCHES = (3, 5)
# Frames in these folders are the library's: a value read is reported at the first frame
# outside them (the cell's own line).
_LIBRARY = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (tg.__file__, builtin_ops.__file__, __file__)
)


@dataclass
class Value:
    """One tensor of the step: a ``source`` (``x``, ``state``, ``param``, ``const``) or the
    output ``index`` of call ``call``. ``deps``: which of x/state/param it depends on.
    ``batched``: its first axis follows the batch."""

    id: int
    tensor: Tensor
    source: str | None = None
    call: int | None = None
    index: int = 0
    deps: frozenset = frozenset()
    name: str = ""  # a parameter's name in the cell, a state part's slot
    batched: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return self.tensor.shape

    @property
    def role(self) -> str:
        """``once`` (parameters and constants only), ``hoisted`` (x and parameters) or
        ``recurrent`` (the state)."""
        if "state" in self.deps:
            return "recurrent"
        return "hoisted" if "x" in self.deps else "once"

    def row(self) -> np.ndarray:
        """A batched constant's one row, as (1, width)."""
        return self.tensor._data[:1]


@dataclass
class Call:
    """One recorded op call: ``fn`` (its Function class) on ``inputs`` (value ids)."""

    fn: type[Function]
    inputs: tuple[int, ...]
    attrs: dict
    outputs: tuple[int, ...]

    @property
    def op(self) -> str:
        return getattr(self.fn, "op_name", self.fn.__name__)


@dataclass
class StepTrace:
    """A captured step: its values, calls, and which values are x, state, output."""

    values: list[Value] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    x: int = -1
    states: tuple[int, ...] = ()
    output: int = -1
    new_states: tuple[int, ...] = ()
    tupled: bool = False
    batch: int = 0

    def text(self) -> str:
        """The captured step, one call a line, each value with its role and shape."""
        lines = []
        for v in self.values:
            if v.source is not None:
                label = v.source + (f" {v.name}" if v.name else "")
                if v.source == "const" and v.tensor.ndim == 0:
                    label += f" = {v.tensor._data.item()!r}"
                lines.append(f"v{v.id:<3} {label:<36} {v.role:<9} {v.shape}")
        for c in self.calls:
            args = ", ".join(f"v{i}" for i in c.inputs)
            attrs = "".join(f", {k}={a!r}" for k, a in c.attrs.items())
            outs = ", ".join(f"v{o}" for o in c.outputs)
            v = self.values[c.outputs[0]]
            lines.append(
                f"{outs:<8} = {c.op}({args}{attrs})"[:80].ljust(42) + f" {v.role:<9} {v.shape}"
            )
        lines.append(
            f"output: v{self.output};  new state: " + ", ".join(f"v{s}" for s in self.new_states)
        )
        return "\n".join(lines)


class _Recorder:
    """The recording hook's listener: op calls in order; a value read stops the step."""

    def __init__(self) -> None:
        self.log: list[tuple[type[Function], tuple, dict, Any]] = []

    def op(self, fn: type[Function], inputs: tuple, attrs: dict, out: Any) -> None:
        self.log.append((fn, inputs, attrs, out))

    def value_read(self, tensor: Tensor, how: str) -> None:
        raise NotFusible(
            f"the step reads a tensor's values with {how} at {_user_line()}; "
            "what it computes from them is fixed when the step is compiled. Write it with "
            "registered ops (where(), maximum(), ...) to compile it"
        )


def _user_line() -> str:
    """``file:line`` of the innermost frame outside the library (the cell's own code)."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_LIBRARY):
            return f"{frame.filename}:{frame.lineno}"
    return "an unknown line"


def _generators(cell: Module) -> Iterator[tuple[str, np.random.Generator]]:
    """(name, generator) of every NumPy generator the step might draw from."""
    yield "tg.default_rng()", module.default_rng()
    for path, sub in cell.named_modules():
        for name, value in vars(sub).items():
            if isinstance(value, np.random.Generator):
                yield f"{path + '.' if path else ''}{name}", value


class _Draws:
    """The states of the generators a step may draw from, to restore and compare."""

    def __init__(self, cell: Module) -> None:
        self.generators = list(_generators(cell))
        self.states = [g.bit_generator.state for _, g in self.generators]
        self.legacy = np.random.get_state()

    def restore(self) -> list[str]:
        """Put every generator back; the names of those the step drew from."""
        drawn = []
        for (name, g), state in zip(self.generators, self.states):
            if g.bit_generator.state != state:
                drawn.append(name)
                g.bit_generator.state = state
        now, before = np.random.get_state(), self.legacy
        if now[0] != before[0] or not np.array_equal(now[1], before[1]) or now[2:] != before[2:]:
            drawn.append("np.random (the global generator)")
            np.random.set_state(self.legacy)
        return drawn


def _run_step(cell: Module, x: Tensor, state: Any) -> tuple[Any, list]:
    """``cell(x, state)`` under the recording hook: (its result, the op log)."""
    recorder, draws = _Recorder(), _Draws(cell)
    try:
        with recording(recorder), tg.enable_grad():
            result = cell(x, state)
    except NotFusible:
        raise
    except Exception as exc:  # the user's step (or an op it calls) failed on sample inputs
        raise NotFusible(
            f"running its step on sample inputs (x {x.shape}) raised {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        drawn = draws.restore()
    if drawn:
        raise NotFusible(
            f"the step draws random numbers (from {', '.join(drawn)}), which a "
            "compiled step would freeze; run the cell composed (fused=False), or draw the "
            "noise outside the step"
        )
    if not (isinstance(result, tuple) and len(result) == 2):
        raise NotFusible(
            f"forward(x, state) must return (output, new_state), got {type(result).__name__}"
        )
    return result, recorder.log


def _sample_state(cell: Module, batch: int, dtype: np.dtype, rng: np.random.Generator) -> tuple:
    """(parts, tupled): random state parts shaped as ``init_state(batch)``'s, in ``dtype``."""
    zeros = cell.init_state(batch, dtype)
    tupled = isinstance(zeros, tuple)
    parts = zeros if tupled else (zeros,)
    for k, p in enumerate(parts):
        if not isinstance(p, Tensor) or p.ndim != 2 or p.shape[0] != batch:
            got = getattr(p, "shape", type(p).__name__)
            raise NotFusible(
                f"init_state({batch}) part {k} is {got}; the compiler "
                f"takes state parts of shape ({batch}, width)"
            )
    states = tuple(
        Tensor(rng.uniform(-1, 1, p.shape).astype(dtype), requires_grad=True) for p in parts
    )
    return states, tupled


def _trace_once(cell: Module, input_size: int, dtype: np.dtype, batch: int, seed: int) -> StepTrace:
    rng = np.random.default_rng(seed)
    x = Tensor(rng.uniform(-1, 1, (batch, input_size)).astype(dtype), requires_grad=True)
    states, tupled = _sample_state(cell, batch, dtype, rng)
    (out, new), log = _run_step(cell, x, states if tupled else states[0])
    trace = StepTrace(tupled=tupled, batch=batch)
    ids: dict[int, int] = {}
    params = {id(p): name for name, p in cell.named_parameters()}

    def value(t: Tensor, **kw: Any) -> int:
        if id(t) not in ids:
            ids[id(t)] = len(trace.values)
            trace.values.append(Value(len(trace.values), t, **kw))
        return ids[id(t)]

    trace.x = value(x, source="x")
    trace.states = tuple(value(s, source="state", name=str(k)) for k, s in enumerate(states))
    for fn, inputs, attrs, result in log:
        args = []
        for t in inputs:
            if id(t) not in ids:
                if id(t) in params:
                    value(t, source="param", name=params[id(t)])
                else:
                    value(t, source="const")
            args.append(ids[id(t)])
        outs = result if isinstance(result, tuple) else (result,)
        call = len(trace.calls)
        out_ids = tuple(value(o, call=call, index=k) for k, o in enumerate(outs))
        trace.calls.append(Call(fn, tuple(args), dict(attrs), out_ids))
    new_parts = new if isinstance(new, tuple) else (new,)
    if len(new_parts) != len(states) or isinstance(new, tuple) != tupled:
        raise NotFusible("the new state has another structure than init_state()")
    for t in (out, *new_parts):
        if not isinstance(t, Tensor) or id(t) not in ids:
            raise NotFusible(
                "the step returns a value no recorded op made (a new tensor, or the input itself)"
            )
    trace.output = ids[id(out)]
    trace.new_states = tuple(ids[id(t)] for t in new_parts)
    return trace


def _structure(trace: StepTrace) -> list:
    """What must be the same in two runs: the calls and what they read and make."""
    calls = [(c.op, repr(c.attrs), c.inputs, c.outputs) for c in trace.calls]
    sources = [(v.source, v.name, v.call, v.index, v.tensor.dtype) for v in trace.values]
    return [calls, sources, trace.x, trace.states, trace.output, trace.new_states]


def _compare(first: StepTrace, second: StepTrace) -> None:
    """Mark the batched values of ``first``; NotFusible where the two runs differ."""
    if _structure(first) != _structure(second):
        raise NotFusible(
            "the step runs other ops for other inputs (a branch on a value, a "
            "loop over the batch, or an attribute that depends on the batch size); write it "
            "with registered ops to compile it"
        )
    for a, b in zip(first.values, second.values):
        sa, sb = a.shape, b.shape
        a.batched = len(sa) > 0 and sa[0] == first.batch and sb[0] == second.batch
        fixed = sa[1:] if a.batched else sa
        if fixed != (sb[1:] if a.batched else sb):
            raise NotFusible(
                f"value v{a.id} has shape {sa} for a batch of {first.batch} and "
                f"{sb} for {second.batch}; only the first axis may follow the batch"
            )
        if a.source == "const":
            _compare_constant(a, b)


def _compare_constant(a: Value, b: Value) -> None:
    da, db = a.tensor._data, b.tensor._data
    same = (
        np.array_equal(da[:1], db[:1], equal_nan=True)
        and np.array_equal(da, np.broadcast_to(da[:1], da.shape), equal_nan=True)
        and np.array_equal(db, np.broadcast_to(db[:1], db.shape), equal_nan=True)
        if a.batched
        else np.array_equal(da, db, equal_nan=True)
    )
    if not same:
        raise NotFusible(
            f"a constant made in the step (v{a.id}, shape {a.shape}) has other "
            "values in another run: random numbers, or a tensor computed from the inputs "
            "outside registered ops (a mask from h > 0?); write it with registered ops"
        )


def _dependencies(trace: StepTrace) -> None:
    """Each value's ``deps``: x, state, param. A batched constant counts as x (it is data
    per row, like x: hoisted over all steps, broadcast to their rows)."""
    leaf = {"x": {"x"}, "state": {"state"}, "param": {"param"}}
    for v in trace.values:
        if v.source is not None:
            v.deps = frozenset(leaf.get(v.source, {"x"} if v.batched else ()))
    for c in trace.calls:
        deps = frozenset().union(*(trace.values[i].deps for i in c.inputs))
        for o in c.outputs:
            trace.values[o].deps = deps


def capture(cell: Module, input_size: int, dtype: DTypeLike) -> StepTrace:
    """The step of ``cell`` for inputs of ``input_size`` features, captured at two batch
    sizes and checked to be one graph with the same constants (``NotFusible`` otherwise)."""
    dtype = np.dtype(dtype)
    first = _trace_once(cell, input_size, dtype, TRACE_BATCHES[0], seed=1)
    second = _trace_once(cell, input_size, dtype, TRACE_BATCHES[1], seed=2)
    _compare(first, second)
    _dependencies(first)
    return first
