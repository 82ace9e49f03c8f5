"""The kernels of a schedule as typed data: what each stage's loops compute, read and write.

A stage's kernel loops over the batch rows b and, inside, over the columns j of its
targets (one ``Loop`` per distinct target width). Each value a target needs becomes one
scalar ``Local`` of the loop body: a load (from a state, hoisted-row, matmul or earlier
stage buffer at step t or tp, or a vector at column j) or an op on earlier locals and
literals. A slice costs nothing (its consumer reads the input at a shifted column:
``split(a + b, 4)[1]`` at column j is ``a[b, j + H] + b[b, j + H]``), and a value read
twice at one column is computed once.

Every array a kernel or a driver takes is an ``Arg``: a ``Role`` and the node whose array
it is. The renderer (render.py) names them; the runtime (runtime.py) binds them to arrays;
neither parses the other's text.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass, field
from enum import Enum

from .errors import NotFusible
from .program import LEAF_KINDS, PNode, StepProgram
from .schedule import Schedule

__all__ = [
    "Arg",
    "Number",
    "Local",
    "Loop",
    "Role",
    "StageKernel",
    "Target",
    "lower_stages",
]


class Role(Enum):
    """What an argument array holds for its node."""

    VALUE = "v"  # the node's values: (T[+1], B, W), or (W,) for a vector or const
    SAVED = "s"  # values the forward saved for the backward: (T, B, W)
    GRAD = "d"  # the node's gradient, added to: shaped as its VALUE
    WEIGHT = "w"  # a matmul's weight as (N, K) rows, for the in-kernel forward product
    WEIGHT_T = "u"  # the same weight as (K, N) rows, for the backward product
    SCRATCH = "p"  # a (B, K) product, the backward product's scratch


@dataclass(frozen=True)
class Arg:
    """One array argument: ``role`` of node ``node`` (for WEIGHT/WEIGHT_T/SCRATCH the
    matmul node)."""

    role: Role
    node: int

    @property
    def name(self) -> str:
        return f"{self.role.value}{self.node}"


@dataclass(frozen=True)
class Number:
    """A number among an op's operands (a Python number of the step, a scalar constant)."""

    value: float


@dataclass
class Local:
    """One scalar of a loop body: ``var`` holds node ``node`` at column ``column`` (an index
    expression over j and the size names), loaded (``op`` empty) or computed."""

    var: str
    node: int
    column: str
    operands: tuple[str | Number, ...] = ()
    load: bool = False
    at: str | None = None  # a load from a (T, B, W) buffer: "t" or "tp"; a vector: None
    # Set once the stage is built: for an op, which operands take a gradient; for a load,
    # whether its node does.
    grad_operands: tuple[bool, ...] = ()
    takes_grad: bool = False


@dataclass
class Target:
    """A value the loop writes: local ``var`` into node ``node``'s buffer, ``column``
    columns to the right (a concat's part)."""

    var: str
    node: int
    column: int


@dataclass
class Loop:
    """One column loop of a stage: ``width`` columns, its locals in topological order."""

    width: int
    locals: list[Local] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def local(self, var: str) -> Local | None:
        return next((loc for loc in self.locals if loc.var == var), None)


@dataclass
class StageKernel:
    """The two functions of one stage: their loops, the op nodes the forward saves for the
    backward (``saved``), the locals the backward reads (``needed``; ``reads``: the nodes
    of those that are loads) and the arguments of each function after ``(t, tp, B, dims)``."""

    stage: int
    loops: list[Loop]
    saved: list[int]
    needed: set[str]
    forward_args: list[Arg]
    backward_args: list[Arg]
    reads: set[int] = field(default_factory=set)  # nodes whose loads the backward needs


class _LoopBuilder:
    """Builds the locals of one loop from the targets it must write."""

    def __init__(self, stage: _Stage, width: int):
        self.stage, self.loop = stage, Loop(width)
        self.memo: dict[tuple, str] = {}

    def column(self, base: str, offsets: tuple[int, ...]) -> str:
        terms = ([base] if base == "j" else []) + [self.stage.size_names[o] for o in offsets]
        return " + ".join(terms) or "0"

    def emit(self, node: int, base: str, offsets: tuple[int, ...]) -> str | Number:
        offsets = tuple(sorted(o for o in offsets if o))
        key = (node, base, offsets)
        if key not in self.memo:
            self.memo[key] = self._make(node, base, offsets)
        return self.memo[key]

    def _make(self, i: int, base: str, offsets: tuple[int, ...]) -> str | Number:
        stage, n = self.stage, self.stage.nodes[i]
        if n.kind == "number":
            return Number(n.value)
        if n.kind == "slice":
            return self.emit(n.inputs[0], base, offsets + (n.offset,))
        column = self.column(base, offsets)
        if n.kind in LEAF_KINDS or n.kind == "matmul" or stage.is_input(i):
            at = None if n.kind in ("vector", "const") else ("tp" if n.kind == "state" else "t")
            return self._add(Local("", i, column, load=True, at=at))
        if n.kind == "concat":
            raise NotFusible(
                f"concat %{i} is read by an op of the stage that makes it; "
                "only a concat feeding a matmul or ending the step is fused"
            )
        operands = []
        for j in n.inputs:
            wide = stage.nodes[j].width != 1 or n.width == 1
            operands.append(self.emit(j, base if wide else "0", offsets if wide else ()))
        return self._add(Local("", i, column, tuple(operands)))

    def _add(self, local: Local) -> str:
        local.var = f"x{next(self.stage.numbers)}"  # unique in the stage: loops share saves
        self.loop.locals.append(local)
        return local.var


class _Stage:
    def __init__(self, schedule: Schedule, stage: int, size_names: dict[int, str]):
        self.schedule, self.stage, self.size_names = schedule, stage, size_names
        self.program: StepProgram = schedule.program
        self.nodes: tuple[PNode, ...] = self.program.nodes
        self.numbers = itertools.count()
        builders: dict[int, _LoopBuilder] = {}
        for t in schedule.kernels[stage]:
            n = self.nodes[t]
            parts = (
                [(j, self.nodes[j].width) for j in n.inputs]
                if n.kind == "concat"
                else [(t, n.width)]
            )
            column = 0
            for part, width in parts:
                builder = builders.setdefault(width, _LoopBuilder(self, width))
                var = builder.emit(part, "j", ())
                if isinstance(var, Number):
                    raise NotFusible(
                        f"node %{part} (a constant {var.value!r}) is a value the step writes; "
                        "return a value computed from the state"
                    )
                builder.loop.targets.append(Target(var, t, column))
                column += width
        self.loops = [b.loop for b in builders.values()]

    def is_input(self, i: int) -> bool:
        """True when node i reaches this stage from memory (made by an earlier stage)."""
        return self.schedule.level[i] < self.stage

    def kernel(self) -> StageKernel:
        by_var = {loc.var: loc for loop in self.loops for loc in loop.locals}
        for loc in by_var.values():
            if loc.load:
                loc.takes_grad = self.nodes[loc.node].kind != "const"
            else:
                loc.grad_operands = tuple(
                    isinstance(v, str) and self.nodes[by_var[v].node].kind != "const"
                    for v in loc.operands
                )
        needed: set[str] = set()
        for loc in by_var.values():
            if not loc.load:
                needed |= self._rule_reads(loc)
        targets = set(self.schedule.kernels[self.stage])
        saved = sorted({by_var[v].node for v in needed if not by_var[v].load} - targets)
        loads = [loc for loc in by_var.values() if loc.load]
        reads = sorted({self.program.home(loc.node) for loc in loads})
        values = sorted(set(reads) | targets)
        forward = [Arg(Role.VALUE, i) for i in values] + [Arg(Role.SAVED, s) for s in saved]
        wanted = {self.program.home(loc.node) for loc in loads if loc.takes_grad} | targets
        backward = forward + [Arg(Role.GRAD, i) for i in sorted(wanted)]
        reads = {loc.node for loc in loads if loc.var in needed}
        return StageKernel(self.stage, self.loops, saved, needed, forward, backward, reads)

    def _rule_reads(self, loc: Local) -> set[str]:
        """The locals (operands, output) that ``loc``'s derivative rules read."""
        rule = self.nodes[loc.node].rule
        names, reads = dict(zip(rule.inputs, loc.operands)), set()
        for grad, wanted in zip(rule.grads, loc.grad_operands):
            if grad is None or not wanted:
                continue
            for name in names_in(grad):
                value = names.get(name)
                if isinstance(value, str):
                    reads.add(value)
                elif name == "y":
                    reads.add(loc.var)
        return reads


def names_in(expr: str) -> set[str]:
    """The names an expression reads."""
    return {n.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Name)}


def lower_stages(schedule: Schedule) -> tuple[list[StageKernel | None], dict[int, str]]:
    """Per stage its ``StageKernel`` (None for a stage with nothing to compute), and the
    names of the program's sizes (``n0``, ``n1``, ... read from ``dims`` in the kernels)."""
    size_names = {s: f"n{i}" for i, s in enumerate(schedule.program.sizes())}
    kernels: list[StageKernel | None] = []
    for stage, targets in enumerate(schedule.kernels):
        kernels.append(_Stage(schedule, stage, size_names).kernel() if targets else None)
    return kernels, size_names
