"""The program of a captured step: its recurrence as a ``StepProgram``, the rest proven
safe to compute outside the time loop.

``build_program(trace)`` keeps the calls that depend on the state, as row-wise nodes (dead
code dropped, ops on a concat split by its pieces, results that are leaves copied), and the
values they read as leaves. Values of parameters only (``once``) are computed once per
sequence, values of x_t and parameters only (``hoisted``) for all T steps in one batched op
each, which is sound only for ops that act on each row alone (rows.py proves it).
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass

import numpy as np

from tinygrad_lstm import OpInfo
from tinygrad_lstm.registry import ScalarRule

from .capture import Call, StepTrace, Value
from .errors import NotFusible
from .program import LEAF_KINDS, PNode, StepProgram
from .rows import (
    blocked,
    broadcasts_over_rows,
    feature_axis,
    is_row_block,
    last_axis_slices,
    op_registration,
)

__all__ = ["Leaves", "build_program"]


def _no_rule(call: Call) -> str:
    return (
        f"has no scalar rule, so it cannot be fused; declare one at registration, "
        f"e.g. @register_op({call.op!r}, arity=1, scalar={{'y': 'x / (1 + abs(x))', "
        f"'dx': 'g / (1 + abs(x)) ** 2'}}) (see docs/plugins.md, 'Ops that fuse')"
    )


def _names(rule: ScalarRule) -> set[str]:
    """Every name the rule's expressions read."""
    exprs = [e for e in (rule.forward, *rule.grads) if e is not None]
    return {
        n.id for e in exprs for n in ast.walk(ast.parse(e, mode="eval")) if isinstance(n, ast.Name)
    }


def _rule_attrs(call: Call, info: OpInfo) -> tuple:
    """The attributes the op's rule reads, as numbers (infinite ones included): those the
    call does not give take the forward's defaults."""
    defaults = {
        k: p.default
        for k, p in inspect.signature(call.fn.forward).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    read = _names(info.scalar)
    attrs = {}
    for k in info.attrs:
        if k not in read:
            continue
        v = call.attrs.get(k, defaults.get(k))
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise NotFusible(
                f"op {call.op!r}: attribute {k}={v!r} is not a number, so its scalar rule "
                "cannot be compiled"
            )
        attrs[k] = float(v)
    return tuple(sorted(attrs.items()))


class _Builder:
    """Turns the recurrent calls of a trace into a ``StepProgram``."""

    def __init__(self, trace: StepTrace):
        self.trace = trace
        self.nodes: list[PNode] = []
        self.node_of: dict[tuple[int, str], int] = {}
        self.leaf_values: dict[str, list[int]] = {k: [] for k in ("row", "weight", "vector")}
        self.consts: list[int] = []

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
            node = self.add(PNode("number", 1, value=float(v.tensor._data)))
        elif v.role == "hoisted":
            if not is_row_block(v):
                raise NotFusible(
                    f"value v{vid} {v.shape} depends on x_t but is not one row per sequence"
                )
            node = self.add(PNode("row", v.shape[1], slot=len(self.leaf_values["row"])))
            self.leaf_values["row"].append(vid)
        elif use == "weight":
            node = self.add(PNode("weight", v.shape[1], slot=len(self.leaf_values["weight"])))
            self.leaf_values["weight"].append(vid)
        elif not broadcasts_over_rows(v):
            raise NotFusible(
                f"value v{vid} {v.shape} (of parameters and constants) is used elementwise "
                "with the state but is not the same for every row: (), (n,) or (1, n)"
            )
        elif v.source == "const":
            node = self.add(PNode("const", v.shape[-1] if v.shape else 1, slot=len(self.consts)))
            self.consts.append(vid)
        else:
            width = v.shape[-1] if v.shape else 1
            node = self.add(PNode("vector", width, slot=len(self.leaf_values["vector"])))
            self.leaf_values["vector"].append(vid)
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
        out = trace.values[outs[0]]
        if not is_row_block(out):
            raise blocked(trace, call, f"makes shape {out.shape}, not one row per sequence")
        if call.op == "matmul":
            self.matmul(call)
            return
        slices = None
        if call.op in ("split", "getitem"):
            slices = last_axis_slices(call, trace.values[call.inputs[0]].shape[-1])
        if slices is not None:
            source = self.operand(call.inputs[0])
            for o, (offset, size) in zip(outs, slices):
                self.node_of[(o, "value")] = self.columns(source, offset, size)
            return
        if call.op == "concat" and feature_axis(call.attrs.get("axis", 0)):
            if not all(is_row_block(trace.values[i]) for i in call.inputs):
                raise blocked(trace, call, "joins values that are not one row per sequence")
            parts = [self.operand(i) for i in call.inputs]
            self.node_of[(outs[0], "value")] = self.concat(parts, out.shape[1])
            return
        self.elementwise(call, out)

    def columns(self, node: int, offset: int, width: int) -> int:
        """The node of columns ``offset .. offset + width`` of ``node``: a slice, a piece of
        a concat, or the node itself when it has that width or broadcasts (width 1)."""
        n = self.nodes[node]
        if (offset == 0 and n.width == width) or n.kind == "number" or n.width == 1:
            return node
        if n.kind == "slice":
            return self.columns(n.inputs[0], n.offset + offset, width)
        if n.kind != "concat":
            return self.add(PNode("slice", width, (node,), offset=offset))
        pieces, start = [], 0
        for part in n.inputs:
            size = self.nodes[part].width
            low, high = max(offset, start), min(offset + width, start + size)
            if low < high:
                pieces.append(self.columns(part, low - start, high - low))
            start += size
        return pieces[0] if len(pieces) == 1 else self.concat(pieces, width)

    def concat(self, parts: list[int], width: int) -> int:
        """A concat node of ``parts``, a part that is itself a concat spliced in."""
        flat: list[int] = []
        for part in parts:
            n = self.nodes[part]
            flat += list(n.inputs) if n.kind == "concat" else [part]
        return self.add(PNode("concat", width, tuple(flat)))

    def matmul(self, call: Call) -> None:
        trace = self.trace
        a, w = (trace.values[i] for i in call.inputs)
        if a.role != "recurrent" or w.role != "once" or not is_row_block(a) or w.batched:
            raise blocked(
                trace,
                call,
                "multiplies by a state-dependent right operand; only (state rows) @ "
                "(parameter matrix) is fused",
            )
        node = self.add(
            PNode(
                "matmul",
                trace.values[call.outputs[0]].shape[1],
                (self.operand(a.id), self.operand(w.id, "weight")),
            )
        )
        self.node_of[(call.outputs[0], "value")] = node

    def elementwise(self, call: Call, out: Value) -> None:
        trace, info = self.trace, op_registration(call.op)
        if info is None or info.kind != "elementwise":
            kind = "unregistered" if info is None else info.kind
            raise blocked(
                trace,
                call,
                f"is a {kind} op inside the recurrence; the compiler fuses elementwise ops "
                "with scalar rules, split/getitem/concat on the last axis and (state) @ "
                "(parameter matrix)",
            )
        if info.scalar is None:
            raise blocked(trace, call, _no_rule(call))
        for i in call.inputs:
            v = trace.values[i]
            fits = is_row_block(v) and v.shape[1] in (1, out.shape[1])
            if not (fits or broadcasts_over_rows(v)):
                raise blocked(trace, call, f"broadcasts v{i} {v.shape} against the rows")
        operands = tuple(self.operand(i) for i in call.inputs)
        node = self.apply(call, info, operands, out.shape[1])
        self.node_of[(call.outputs[0], "value")] = node

    def apply(self, call: Call, info: OpInfo, operands: tuple[int, ...], width: int) -> int:
        """The node of op ``call`` on ``operands``, ``width`` columns wide. An op reads no
        concat: it acts column by column, so on a concat it is the concat of the op on each
        piece (the generated loops then never pick a piece by column)."""
        cuts = {0, width}
        for o in operands:
            if self.nodes[o].kind == "concat" and self.nodes[o].width == width:
                sizes = [self.nodes[part].width for part in self.nodes[o].inputs]
                cuts |= {int(c) for c in np.cumsum(sizes)}
        if len(cuts) == 2:
            return self.add(
                PNode(
                    "elementwise",
                    width,
                    operands,
                    op=call.op,
                    rule=info.scalar,
                    attrs=_rule_attrs(call, info),
                )
            )
        bounds = sorted(cuts)
        pieces = tuple(
            self.apply(call, info, tuple(self.columns(o, a, b - a) for o in operands), b - a)
            for a, b in zip(bounds, bounds[1:])
        )
        return self.concat(list(pieces), width)


@dataclass
class Leaves:
    """The values of the trace that the program's leaves read, by kind, in slot order."""

    row: list[int]
    weight: list[int]
    vector: list[int]
    const: list[int]


def _live_calls(trace: StepTrace, ends: tuple[int, ...]) -> set[int]:
    """The ids of the calls the step's results depend on: the rest is dead code, which
    composed runs but nothing reads (and whose parameters get no gradient)."""
    wanted, live = set(ends), set()
    for call in reversed(trace.calls):
        if wanted & set(call.outputs):
            live.add(id(call))
            wanted |= set(call.inputs)
    return live


def _reads(builder: _Builder, vid: int) -> tuple[frozenset[int], frozenset[int]]:
    """(leaf nodes, state parts) that value ``vid`` is computed from in the captured step."""
    values, found, stack = builder.trace.values, {vid}, [vid]
    makers = {o: c for c in builder.trace.calls for o in c.outputs}
    while stack:
        call = makers.get(stack.pop())
        for i in call.inputs if call is not None else ():
            if i not in found:
                found.add(i)
                stack.append(i)
    leaves = {
        node
        for (value, use), node in builder.node_of.items()
        if value in found and use in ("operand", "weight")
    }
    parts = {int(values[v].name) for v in found if values[v].source == "state"}
    return frozenset(leaves), frozenset(parts)


def _end(builder: _Builder, vid: int, taken: list[int]) -> int:
    """The node holding result ``vid`` of the step (its output or a new state part): the node
    that computes it, or a copy of it where that node is a leaf (the state passed on as it
    was, a hoisted value) or already holds another new state part."""
    v = builder.trace.values[vid]
    if v.role == "once":
        raise NotFusible(
            f"the step returns v{vid} {v.shape}, made of parameters and constants only; "
            "return a value computed from the state or the input"
        )
    if not is_row_block(v):
        raise NotFusible(f"the step returns v{vid} of shape {v.shape}, not one row per sequence")
    node = builder.operand(vid)
    if builder.nodes[node].kind in LEAF_KINDS or node in taken:
        node = builder.add(PNode("slice", v.shape[1], (node,)))
    return node


def build_program(trace: StepTrace) -> tuple[StepProgram, Leaves]:
    """The recurrence of ``trace`` as a ``StepProgram``, and the trace values its leaves
    read; NotFusible naming what blocked it."""
    builder = _Builder(trace)
    ends = (trace.output, *trace.new_states)
    live = _live_calls(trace, ends)
    for call in trace.calls:
        if trace.values[call.outputs[0]].role == "recurrent" and id(call) in live:
            builder.call(call)
    for k, v in enumerate(trace.new_states):
        old, new = trace.values[trace.states[k]], trace.values[v]
        if new.shape[1:] != old.shape[1:]:
            raise NotFusible(
                f"new state part {k} has shape {new.shape}, the state it replaces {old.shape}"
            )
    output = _end(builder, trace.output, ())
    states: list[int] = []
    for v in trace.new_states:
        states.append(_end(builder, v, states))
    leaves, parts = zip(*(_reads(builder, v) for v in (trace.output, *trace.new_states)))
    program = StepProgram(tuple(builder.nodes), output, tuple(states), leaves, parts)
    found = builder.leaf_values
    return program, Leaves(found["row"], found["weight"], found["vector"], builder.consts)
