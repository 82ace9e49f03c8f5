"""Capture one step of a recurrent cell: every op it calls, by name, with attributes and inputs.

``capture(cell, input_size, dtype)`` runs ``cell(x_t, state)`` once on random inputs while
recording each ``Function.apply`` (the op's registered name, its input tensors, attributes
and outputs), then classifies every value by what it depends on:

- ``once``: parameters and constants only (``W_hh.T``, a split of a weight): computed once
  per sequence;
- ``hoisted``: x_t and parameters only (``x_t W_ih^T + b``): computed for all T steps in one
  batched op before the time loop;
- ``recurrent``: the state (and maybe the rest): the recurrence proper.

The step is captured twice, from different random values; a graph or a constant that
differs between the two (a mask computed from the state outside registered ops, a branch
on a value) cannot be compiled, and says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import DTypeLike
from tinygrad_lstm.ops.step_program import NotFusible

import tinygrad_lstm as tg
from tinygrad_lstm import Function, Module, Tensor, TensorLike

__all__ = ["Call", "StepTrace", "Value", "capture"]

TRACE_BATCH = 3


@dataclass
class Value:
    """One tensor of the step: a ``source`` (``x``, ``state``, ``param``, ``const``) or the
    output ``index`` of call ``call``; ``deps`` is which of x/state/param it depends on."""

    id: int
    tensor: Tensor
    source: str | None = None
    call: int | None = None
    index: int = 0
    deps: frozenset = frozenset()
    name: str = ""  # a parameter's name in the cell, a state part's slot

    @property
    def shape(self) -> tuple[int, ...]:
        return self.tensor.shape

    @property
    def role(self) -> str:
        """``once``, ``hoisted`` or ``recurrent``."""
        if "state" in self.deps:
            return "recurrent"
        return "hoisted" if "x" in self.deps else "once"


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

    def signature(self) -> list:
        """What must not change between two captures: the graph and the constants."""
        calls = [
            (c.op, repr(c.attrs), c.inputs, tuple(self.values[o].shape for o in c.outputs))
            for c in self.calls
        ]
        consts = [(v.id, v.tensor.data.tobytes()) for v in self.values if v.source == "const"]
        return [calls, consts, self.output, self.new_states]

    def text(self) -> str:
        """The captured step, one call a line, each value with its role and shape."""
        lines = []
        for v in self.values:
            if v.source is not None:
                label = v.source + (f" {v.name}" if v.name else "")
                if v.source == "const" and v.tensor.data.ndim == 0:
                    label += f" = {v.tensor.data.item()!r}"
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


@contextlib.contextmanager
def _recording(log: list) -> Iterator[None]:
    """Record every ``Function.apply`` made inside (ops' own calls included)."""
    original = Function.__dict__["apply"]

    def apply(
        cls: type[Function], *inputs: TensorLike, **attrs: Any
    ) -> Tensor | tuple[Tensor, ...]:
        out = original.__func__(cls, *inputs, **attrs)
        if all(isinstance(t, Tensor) for t in inputs):  # else apply recurses with Tensors
            log.append((cls, inputs, attrs, out))
        return out

    Function.apply = classmethod(apply)
    try:
        yield
    finally:
        Function.apply = original


def _trace_once(cell: Module, input_size: int, dtype: DTypeLike, seed: int) -> StepTrace:
    rng = np.random.default_rng(seed)
    x = Tensor(rng.uniform(-1, 1, (TRACE_BATCH, input_size)).astype(dtype), requires_grad=True)
    zeros = cell.init_state(TRACE_BATCH, dtype)
    tupled = isinstance(zeros, tuple)
    parts = zeros if tupled else (zeros,)
    states = [Tensor(rng.uniform(-1, 1, p.shape).astype(dtype), requires_grad=True) for p in parts]
    log: list = []
    with _recording(log), tg.enable_grad():
        out, new = cell(x, tuple(states) if tupled else states[0])
    trace = StepTrace(tupled=tupled)
    ids: dict[int, int] = {}
    params = {id(p): name for name, p in cell.named_parameters()}

    def value(t: Tensor, **kw: Any) -> int:
        if id(t) not in ids:
            ids[id(t)] = len(trace.values)
            trace.values.append(Value(len(trace.values), t, **kw))
        return ids[id(t)]

    trace.x = value(x, source="x", deps=frozenset({"x"}))
    trace.states = tuple(
        value(s, source="state", deps=frozenset({"state"}), name=str(k))
        for k, s in enumerate(states)
    )
    for fn, inputs, attrs, result in log:
        args = []
        for t in inputs:
            if id(t) not in ids:
                if id(t) in params:
                    value(t, source="param", deps=frozenset({"param"}), name=params[id(t)])
                else:
                    value(t, source="const")
            args.append(ids[id(t)])
        deps = frozenset().union(*(trace.values[i].deps for i in args))
        outs = result if isinstance(result, tuple) else (result,)
        call = len(trace.calls)
        out_ids = tuple(value(o, call=call, index=k, deps=deps) for k, o in enumerate(outs))
        trace.calls.append(Call(fn, tuple(args), dict(attrs), out_ids))
    new_parts = new if isinstance(new, tuple) else (new,)
    for t in (out, *new_parts):
        if not isinstance(t, Tensor) or id(t) not in ids:
            raise NotFusible(
                f"{type(cell).__name__}: the step returns a value no recorded "
                "op made (a new tensor, or the input itself)"
            )
    trace.output = ids[id(out)]
    trace.new_states = tuple(ids[id(t)] for t in new_parts)
    if len(new_parts) != len(states) or isinstance(new, tuple) != tupled:
        raise NotFusible(
            f"{type(cell).__name__}: the new state has another structure than init_state()"
        )
    return trace


def capture(cell: Module, input_size: int, dtype: DTypeLike) -> StepTrace:
    """The step of ``cell`` for inputs of ``input_size`` features, captured and checked to
    be the same graph (with the same constants) for two different random inputs."""
    first = _trace_once(cell, input_size, dtype, seed=1)
    second = _trace_once(cell, input_size, dtype, seed=2)
    if first.signature() != second.signature():
        raise NotFusible(
            f"{type(cell).__name__}: the step's graph or a constant in it "
            "changes with the input values (a branch on a value, or a tensor "
            "computed outside registered ops, e.g. a mask from h > 0); write it "
            "with registered ops to compile it"
        )
    return first
