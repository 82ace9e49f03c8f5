"""A recurrent cell's step as the compiler sees it: a small graph of row-wise ops.

``build_program(trace)`` keeps the part of a captured step that depends on the state (the
recurrence) as plain data, a ``StepProgram``, and proves the rest may be computed outside
the time loop: values of parameters only (``once``) are computed once per sequence, values
of x_t and parameters only (``hoisted``) for all T steps in one batched op each, which is
sound only for ops that act on each row alone (``check_row_wise``).

Every value of the recurrence is a (B, width) row block. Its leaves are

- ``state``: a part of the state the step starts from (B, W);
- ``row``: a hoisted value, read at step t (B, W);
- ``weight``: a (K, N) matrix of parameters, the right operand of a matmul;
- ``vector``: an elementwise operand of parameters, broadcast over the rows (shape (),
  (n,) or (1, n)); it gets a gradient;
- ``const``: a constant array, read like a vector (no gradient);

and a ``number`` (a Python number of the step, a 0-d constant) is inlined as a literal.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass

import numpy as np

from tinygrad_lstm import OpInfo, op_info
from tinygrad_lstm.registry import OPS, ScalarRule

from .capture import Call, StepTrace, Value
from .errors import NotFusible

__all__ = ["LEAF_KINDS", "PNode", "StepProgram", "build_program", "check_row_wise"]

LEAF_KINDS = ("state", "row", "weight", "vector", "const")
# Reductions a hoisted value may go through: along the feature axis they act on each row.
_ROW_REDUCTIONS = ("sum", "mean", "max", "logsumexp", "softmax", "log_softmax")


@dataclass(frozen=True)
class PNode:
    """One value of the recurrence.

    ``kind``: a leaf kind, ``number`` (``value``), ``elementwise`` (op ``op`` with ``rule``
    and ``attrs``), ``slice`` (columns ``offset .. offset + width`` of its input),
    ``concat`` (inputs side by side) or ``matmul`` (inputs: left row block, right weight).
    ``slot`` numbers a leaf among those of its kind.
    """

    kind: str
    width: int
    inputs: tuple[int, ...] = ()
    op: str = ""
    rule: ScalarRule | None = None
    attrs: tuple = ()
    offset: int = 0
    slot: int = 0
    value: float | None = None

    def describe(self) -> str:
        """One line of text: what this node is (the captured step as ``fuse`` prints it)."""
        args = ", ".join(f"%{i}" for i in self.inputs)
        if self.kind == "number":
            return repr(self.value)
        if self.kind in LEAF_KINDS:
            return f"{self.kind}[{self.slot}]"
        if self.kind == "elementwise":
            attrs = "".join(f", {k}={v!r}" for k, v in self.attrs)
            return f"{self.op}({args}{attrs})"
        if self.kind == "slice":
            return f"{args}[:, {self.offset}:{self.offset + self.width}]"
        return f"{self.kind}({args})"


@dataclass(frozen=True)
class StepProgram:
    """The recurrence of one step: ``nodes`` in topological order, the step's ``output``
    node and one node per part of the new state (``states``)."""

    nodes: tuple[PNode, ...]
    output: int
    states: tuple[int, ...]
    # Per result (the output, then each new state part): the leaves and the state parts the
    # captured step computes it from, as composed's graph links them (columns a slice cuts
    # away included: composed still gives such a leaf a gradient, of zeros).
    result_leaves: tuple[frozenset[int], ...] = ()
    result_states: tuple[frozenset[int], ...] = ()

    def leaves(self, kind: str) -> list[int]:
        """The nodes of leaf ``kind``, in slot order."""
        return [i for i, n in enumerate(self.nodes) if n.kind == kind]

    def home(self, i: int) -> int:
        """The node whose buffer holds node i: a state part lives in the buffer of the new
        state it becomes (read at the previous step), any other node in its own."""
        n = self.nodes[i]
        return self.states[n.slot] if n.kind == "state" else i

    def sizes(self) -> list[int]:
        """Every width and column offset of the program (slices', and where each part of a
        concat starts), sorted: the kernels' ``dims``."""
        sizes = {n.width for n in self.nodes} | {n.offset for n in self.nodes}
        for n in self.nodes:
            if n.kind == "concat":  # where each part starts
                widths = [self.nodes[i].width for i in n.inputs]
                sizes.update(int(c) for c in np.cumsum(widths))
        return sorted(sizes)

    def gradient_reach(
        self, output: bool, finals: tuple[bool, ...], held: list[bool]
    ) -> tuple[set[int], set[int]]:
        """Which leaves, and which parts of the initial state, a backward pass reaches: those
        composed gives a gradient (maybe zero) and not None.

        ``output``: the outputs get a gradient; ``finals[k]``: final state part k does;
        ``held[p]``: at the p-th step run, some sequence is past its end and keeps its state
        (that state's gradient then also passes the step by). Walks the steps from the last
        run back to the first, as BPTT does."""
        parts = {k for k, wanted in enumerate(finals) if wanted}
        reached: set[int] = set()
        for p in reversed(range(len(held))):
            results = ([0] if output else []) + [1 + k for k in parts]
            reached.update(*(self.result_leaves[r] for r in results))
            read = set().union(*(self.result_states[r] for r in results))
            parts = read | (parts if held[p] else set())
        return reached, parts

    def text(self) -> str:
        """The program as numbered lines (``%3 = sigmoid(%2)   (B, 16)``)."""
        shapes = {"vector": "({},)", "weight": "(K, {})", "const": "({},)", "number": "()"}
        lines = [
            f"%{i} = {n.describe():<40} " + shapes.get(n.kind, "(B, {})").format(n.width)
            for i, n in enumerate(self.nodes)
        ]
        lines.append(
            f"output: %{self.output};  new state: " + ", ".join(f"%{s}" for s in self.states)
        )
        return "\n".join(lines)


def _info(name: str) -> OpInfo | None:
    """The registration of op ``name``, or None for a Function no one registered."""
    return op_info(name) if name in OPS else None


def _blocked(trace: StepTrace, call: Call, why: str) -> NotFusible:
    args = ", ".join(f"v{i} {trace.values[i].shape}" for i in call.inputs)
    return NotFusible(f"op {call.op!r} ({args}) {why}")


def _no_rule(call: Call) -> str:
    return (
        f"has no scalar rule, so it cannot be fused; declare one at registration, "
        f"e.g. @register_op({call.op!r}, arity=1, scalar={{'y': 'x / (1 + abs(x))', "
        f"'dx': 'g / (1 + abs(x)) ** 2'}}) (see docs/plugins.md, 'Ops that fuse')"
    )


def _is_row_block(v: Value) -> bool:
    return v.batched and len(v.shape) == 2


def _broadcasts_over_rows(v: Value) -> bool:
    """True for a value that is the same for every row: (), (n,) or (1, n)."""
    return not v.batched and (len(v.shape) <= 1 or (len(v.shape) == 2 and v.shape[0] == 1))


def _feature_axis(axis: object) -> bool:
    return axis in (1, -1)


def _column_index(index: object) -> bool:
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
    if not all(_is_row_block(values[o]) for o in call.outputs):
        raise _blocked(
            trace,
            call,
            "acts on x_t in a way that mixes the rows of the batch (its result is not one "
            "row per sequence); only what acts on each row alone is computed for all steps",
        )
    info, op, attrs = _info(call.op), call.op, call.attrs
    if info is not None and info.kind == "elementwise" or op == "cast":
        proven = all(_is_row_block(v) or _broadcasts_over_rows(v) for v in ins)
    elif op == "matmul":
        proven = _is_row_block(ins[0]) and not ins[1].batched and len(ins[1].shape) == 2
    elif op in ("split", "concat"):
        proven = _feature_axis(attrs.get("axis", 0)) and all(_is_row_block(v) for v in ins)
    elif op == "getitem":
        proven = _column_index(attrs.get("index"))
    elif op in _ROW_REDUCTIONS:
        proven = _feature_axis(attrs.get("axis")) and (
            attrs.get("keepdims", False) or op in ("softmax", "log_softmax")
        )
    else:
        proven = False
    if not proven:
        raise _blocked(
            trace,
            call,
            "acts on x_t in a way that may mix the rows of the batch; only elementwise ops, "
            "a matmul by a parameter matrix, slices, splits and concats of the feature axis "
            "and reductions along it are computed for all steps at once",
        )


def _last_axis_slices(call: Call, width: int) -> list[tuple[int, int]] | None:
    """(offset, width) of each output of a split/getitem taking columns, else None."""
    if call.op == "split" and _feature_axis(call.attrs.get("axis", 0)):
        sections = call.attrs.get("sections", 2)
        sizes = [width // sections] * sections if isinstance(sections, int) else sections
        offsets = np.cumsum([0, *sizes[:-1]])
        return [(int(o), int(s)) for o, s in zip(offsets, sizes)]
    index = call.attrs.get("index")
    if call.op == "getitem" and _column_index(index) and isinstance(index[1], slice):
        start, stop, stride = index[1].indices(width)
        if stride == 1 and stop > start:
            return [(start, stop - start)]
    return None


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
            if not _is_row_block(v):
                raise NotFusible(
                    f"value v{vid} {v.shape} depends on x_t but is not one row per sequence"
                )
            node = self.add(PNode("row", v.shape[1], slot=len(self.leaf_values["row"])))
            self.leaf_values["row"].append(vid)
        elif use == "weight":
            node = self.add(PNode("weight", v.shape[1], slot=len(self.leaf_values["weight"])))
            self.leaf_values["weight"].append(vid)
        elif not _broadcasts_over_rows(v):
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
        if not _is_row_block(out):
            raise _blocked(trace, call, f"makes shape {out.shape}, not one row per sequence")
        if call.op == "matmul":
            self.matmul(call)
            return
        slices = None
        if call.op in ("split", "getitem"):
            slices = _last_axis_slices(call, trace.values[call.inputs[0]].shape[-1])
        if slices is not None:
            source = self.operand(call.inputs[0])
            for o, (offset, size) in zip(outs, slices):
                self.node_of[(o, "value")] = self.columns(source, offset, size)
            return
        if call.op == "concat" and _feature_axis(call.attrs.get("axis", 0)):
            if not all(_is_row_block(trace.values[i]) for i in call.inputs):
                raise _blocked(trace, call, "joins values that are not one row per sequence")
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
        if a.role != "recurrent" or w.role != "once" or not _is_row_block(a) or w.batched:
            raise _blocked(
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
        trace, info = self.trace, _info(call.op)
        if info is None or info.kind != "elementwise":
            kind = "unregistered" if info is None else info.kind
            raise _blocked(
                trace,
                call,
                f"is a {kind} op inside the recurrence; the compiler fuses elementwise ops "
                "with scalar rules, split/getitem/concat on the last axis and (state) @ "
                "(parameter matrix)",
            )
        if info.scalar is None:
            raise _blocked(trace, call, _no_rule(call))
        for i in call.inputs:
            v = trace.values[i]
            fits = _is_row_block(v) and v.shape[1] in (1, out.shape[1])
            if not (fits or _broadcasts_over_rows(v)):
                raise _blocked(trace, call, f"broadcasts v{i} {v.shape} against the rows")
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
    if not _is_row_block(v):
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
