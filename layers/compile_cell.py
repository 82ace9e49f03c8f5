"""The cell compiler: a registered cell's step, written in ops, run as one fused op per pass.

``compile_cell(cell, input_size, dtype)`` captures the step (layers/capture.py) and splits
it three ways:

- the ``once`` calls (parameters only) and the ``hoisted`` calls (x_t and parameters only)
  are replayed through autograd at every forward, the hoisted ones on all T steps at once
  (x reshaped to (T*B, I)): one batched matmul for the input projection, whose gradient
  autograd sums over all steps in one GEMM;
- the ``recurrent`` calls become a ``StepProgram`` (ops/step_program.py) whose leaves are
  the state, the hoisted rows, the weights of the state matmuls and the parameter vectors;
  it runs as ``CompiledSequence`` (ops/compiled_sequence.py) with generated kernels.

A step that cannot be compiled raises ``NotFusible`` naming what blocked it: an op without
a scalar rule (and how to declare one), a reduction or reshape inside the recurrence, a
matmul with the state on its right.
"""

from __future__ import annotations

import functools
import weakref

import numpy as np
from numpy.typing import DTypeLike
from tinygrad_lstm.ops.compiled_sequence import CompiledSequence, CompiledStep, compiled_step
from tinygrad_lstm.ops.step_program import NotFusible, PNode, StepProgram

from tinygrad_lstm import Module, OpInfo, Parameter, Tensor, op_info
from tinygrad_lstm.registry import OPS

from .capture import Call, StepTrace, capture
from .packing import State

__all__ = ["CompiledCell", "NotFusible", "compile_cell"]

# Ops a hoisted (x-only) value may pass through: they act on each row alone, so running
# them on all T*B rows at once equals running them step by step.
_ROW_WISE = ("matmul", "split", "getitem", "concat")
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _blocked(trace: StepTrace, call: Call, why: str) -> NotFusible:
    args = ", ".join(f"v{i} {trace.values[i].shape}" for i in call.inputs)
    return NotFusible(f"op {call.op!r} ({args}) {why}")


def _no_rule(call: Call) -> str:
    return (
        f"has no scalar rule, so it cannot be fused; declare one at registration, "
        f"e.g. @register_op({call.op!r}, arity=1, scalar={{'y': 'x / (1 + abs(x))', "
        f"'dx': 'g / (1 + abs(x)) ** 2'}}) (see docs/plugins.md, 'Ops that fuse')"
    )


def _last_axis_slices(call: Call, width: int) -> list[tuple[int, int]] | None:
    """(offset, width) of each output of a split/getitem taking columns, else None."""
    if call.op == "split" and call.attrs.get("axis", 0) in (1, -1):
        sections = call.attrs.get("sections", 2)
        sizes = [width // sections] * sections if isinstance(sections, int) else sections
        offsets = np.cumsum([0, *sizes[:-1]])
        return [(int(o), int(s)) for o, s in zip(offsets, sizes)]
    index = call.attrs.get("index")
    if (
        call.op == "getitem"
        and isinstance(index, tuple)
        and len(index) == 2
        and (index[0] is Ellipsis or index[0] == slice(None))
        and isinstance(index[1], slice)
    ):
        start, stop, stride = index[1].indices(width)
        if stride == 1 and stop > start:
            return [(start, stop - start)]
    return None


class _Builder:
    """Turns the recurrent calls of a trace into a ``StepProgram``."""

    def __init__(self, trace: StepTrace):
        self.trace = trace
        self.nodes: list[PNode] = []
        self.node_of: dict[tuple[int, str], int] = {}
        self.rows: list[int] = []
        self.weights: list[int] = []
        self.vectors: list[int] = []

    def add(self, node: PNode) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def leaf(self, vid: int, use: str) -> int:
        """The node reading value ``vid`` (not recurrent) as ``use``: weight or operand."""
        key = (vid, use)
        if key in self.node_of:
            return self.node_of[key]
        v = self.trace.values[vid]
        if v.source == "const" and v.tensor.ndim == 0 and use == "operand":
            node = self.add(PNode("const", 1, value=float(v.tensor.data)))
        elif v.source == "const":
            raise NotFusible(
                f"a constant array v{vid} {v.shape} is used inside the "
                "recurrence; make it a Parameter (or compute it from one)"
            )
        elif v.role == "hoisted":
            if len(v.shape) != 2 or v.shape[0] != self.trace.values[self.trace.x].shape[0]:
                raise NotFusible(
                    f"value v{vid} {v.shape} depends on x_t but is not one row per sequence"
                )
            node = self.add(PNode("row", v.shape[1], slot=len(self.rows)))
            self.rows.append(vid)
        elif use == "weight":
            node = self.add(PNode("weight", v.shape[1], slot=len(self.weights)))
            self.weights.append(vid)
        else:
            shape = v.shape
            if len(shape) > 2 or (len(shape) == 2 and shape[0] != 1):
                raise NotFusible(f"parameter value v{vid} {shape} is not a row vector")
            node = self.add(PNode("vector", shape[-1] if shape else 1, slot=len(self.vectors)))
            self.vectors.append(vid)
        self.node_of[key] = node
        return node

    def operand(self, vid: int, use: str = "operand") -> int:
        v = self.trace.values[vid]
        if v.source == "state":
            key = (vid, "state")
            if key not in self.node_of:
                self.node_of[key] = self.add(PNode("state", v.shape[1], slot=int(v.name)))
            return self.node_of[key]
        if v.role == "recurrent":
            return self.node_of[(vid, "value")]
        return self.leaf(vid, use)

    def call(self, call: Call) -> None:
        trace, outs = self.trace, call.outputs
        info = _info(call.op)
        out_shape = trace.values[outs[0]].shape
        if len(out_shape) != 2 or out_shape[0] != trace.values[trace.x].shape[0]:
            raise _blocked(trace, call, f"makes shape {out_shape}, not one row per sequence")
        if call.op == "matmul":
            a, w = call.inputs
            if trace.values[a].role != "recurrent" or trace.values[w].role != "once":
                raise _blocked(
                    trace,
                    call,
                    "multiplies by a state-dependent right operand; "
                    "only (state rows) @ (parameter matrix) is fused",
                )
            node = self.add(
                PNode("matmul", out_shape[1], (self.operand(a), self.operand(w, "weight")))
            )
            self.node_of[(outs[0], "value")] = node
            return
        width = trace.values[call.inputs[0]].shape[-1] if call.inputs else 0
        slices = _last_axis_slices(call, width) if call.op in ("split", "getitem") else None
        if slices is not None:
            source = self.operand(call.inputs[0])
            for out, (offset, size) in zip(outs, slices):
                self.node_of[(out, "value")] = self.add(
                    PNode("slice", size, (source,), offset=offset)
                )
            return
        if call.op == "concat" and call.attrs.get("axis", 0) in (1, -1):
            node = self.add(
                PNode("concat", out_shape[1], tuple(self.operand(i) for i in call.inputs))
            )
            self.node_of[(outs[0], "value")] = node
            return
        if info is None or info.kind != "elementwise":
            kind = "unregistered" if info is None else info.kind
            raise _blocked(
                trace,
                call,
                f"is a {kind} op inside the recurrence; the compiler "
                "fuses elementwise ops with scalar rules, split/getitem/concat on "
                "the last axis and (state) @ (parameter matrix)",
            )
        if info.scalar is None:
            raise _blocked(trace, call, _no_rule(call))
        attrs = tuple(sorted(call.attrs.items()))
        node = self.add(
            PNode(
                "elementwise",
                out_shape[1],
                tuple(self.operand(i) for i in call.inputs),
                op=call.op,
                rule=info.scalar,
                attrs=attrs,
            )
        )
        self.node_of[(outs[0], "value")] = node


def _info(name: str) -> OpInfo | None:
    """The registration of op ``name``, or None for a Function no one registered."""
    return op_info(name) if name in OPS else None


def _program(trace: StepTrace) -> tuple[StepProgram, _Builder]:
    builder = _Builder(trace)
    for call in trace.calls:
        if trace.values[call.outputs[0]].role == "recurrent":
            builder.call(call)
        elif trace.values[call.outputs[0]].role == "hoisted" and call.op not in _ROW_WISE:
            info = _info(call.op)
            if info is None or info.kind != "elementwise":
                raise _blocked(
                    trace,
                    call,
                    "acts on x_t in a way that may mix rows; only "
                    "elementwise ops, matmul, split, getitem, concat are hoisted",
                )
    ends = (trace.output, *trace.new_states)
    if len(set(trace.new_states)) != len(trace.new_states) or any(
        trace.values[v].role != "recurrent" or trace.values[v].source for v in ends
    ):
        raise NotFusible(
            "the step's output and each new state part must be distinct values "
            "computed from the state"
        )
    program = StepProgram(
        tuple(builder.nodes),
        builder.node_of[(trace.output, "value")],
        tuple(builder.node_of[(v, "value")] for v in trace.new_states),
    )
    return program, builder


class CompiledCell:
    """A cell's compiled step: ``run`` is one pass as one ``CompiledSequence`` op."""

    def __init__(self, cell: Module, input_size: int, dtype: DTypeLike) -> None:
        self.cell_type = type(cell).__name__
        self.trace = capture(cell, input_size, dtype)
        self.program, builder = _program(self.trace)
        self.rows, self.weights, self.vectors = builder.rows, builder.weights, builder.vectors
        self.dtype = np.dtype(dtype)
        self._needed = self._calls_needed()
        self._params = [(v.id, v.name, v.shape) for v in self.trace.values if v.source == "param"]
        self._step: CompiledStep | None = None

    def matches(self, cell: Module) -> bool:
        """True while the cell's parameters have the shapes this step was compiled for."""
        return all(_parameter(cell, name).shape == shape for _, name, shape in self._params)

    def _calls_needed(self) -> list[Call]:
        """The once/hoisted calls the program's leaves depend on, in trace order."""
        values, wanted = self.trace.values, set(self.rows + self.weights + self.vectors)
        needed = []
        for call in reversed(self.trace.calls):
            if values[call.outputs[0]].role != "recurrent" and wanted & set(call.outputs):
                needed.append(call)
                wanted |= set(call.inputs)
        return needed[::-1]

    def step(self) -> CompiledStep:
        """The ``CompiledStep`` (schedule, generated source, kernels) of this dtype."""
        if self._step is None:
            self._step = compiled_step(self.program, self.dtype)
        return self._step

    def run(
        self, cell: Module, x: Tensor, state: State, reverse: bool, keep: np.ndarray | None
    ) -> tuple[Tensor, State]:
        """One pass over x (T, N, I) from ``state``: (outputs (T, N, O), final state)."""
        steps, batch = x.shape[0], x.shape[1]
        env = {self.trace.x: x.reshape(steps * batch, x.shape[2])}
        env.update({vid: _parameter(cell, name) for vid, name, _ in self._params})
        env.update({v.id: v.tensor for v in self.trace.values if v.source == "const"})
        for call in self._needed:
            out = call.fn.apply(*(env[i] for i in call.inputs), **call.attrs)
            for vid, t in zip(call.outputs, out if isinstance(out, tuple) else (out,)):
                env[vid] = t
        rows = [env[v].reshape(steps, batch, env[v].shape[-1]) for v in self.rows]
        parts = state if self.trace.tupled else (state,)
        out = CompiledSequence.apply(
            *parts,
            *rows,
            *(env[v] for v in self.weights),
            *(env[v] for v in self.vectors),
            step=self.step(),
            steps=steps,
            reverse=reverse,
            keep=keep,
        )
        return out[0], (tuple(out[1:]) if self.trace.tupled else out[1])


def compile_cell(cell: Module, input_size: int, dtype: DTypeLike) -> CompiledCell:
    """The ``CompiledCell`` of ``cell`` (cached per cell, input size and dtype); raises
    ``NotFusible`` naming what blocked compilation."""
    key = (input_size, np.dtype(dtype).name)
    per_cell = _CACHE.setdefault(cell, {})
    compiled = per_cell.get(key)
    if compiled is None or not compiled.matches(cell):
        compiled = per_cell[key] = CompiledCell(cell, input_size, dtype)
    return compiled


def _parameter(cell: Module, name: str) -> Parameter:
    """The cell's parameter ``name`` ("weight_ih", "sub.weight") as it is now."""
    return functools.reduce(getattr, name.split("."), cell)
