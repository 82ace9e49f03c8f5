"""The kernels of a schedule as typed data: what each stage's loops compute, read and write.

A stage's kernel loops over the batch rows b and, inside, over the columns j of its
targets (one ``Loop`` per distinct target width). Each value a target needs becomes one
scalar ``Local`` of the loop body: a load (from a state, hoisted-row, matmul or earlier
stage buffer at step t or tp, or a vector at column j) or an op on earlier locals and
literals. A slice costs nothing (its consumer reads the input at a shifted column:
``split(a + b, 4)[1]`` at column j is ``a[b, j + H] + b[b, j + H]``), and a value read
twice at one column is computed once. A width-1 operand of a wider op is read at a fixed
column (``fixed``), the same for every j.

The backward of a loop needs, per local, its *adjoint* (d loss / d local).
``Loop.adjoint_owners`` says which locals share one: a local whose only consumer passes its
gradient on unchanged (an add's ``g``) has its consumer's adjoint. Two loads with one
adjoint owner receive the same gradient, which lets two gradient arrays be one
(memory.py).
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass, field

from .errors import NotFusible
from .program import LEAF_KINDS, PNode, StepProgram
from .schedule import Schedule

__all__ = ["Local", "Loop", "Number", "StageKernel", "Target", "lower_stages", "names_in"]


@dataclass(frozen=True)
class Number:
    """A number among an op's operands (a Python number of the step, a scalar constant)."""

    value: float


@dataclass
class Local:
    """One scalar of a loop body: ``var`` holds node ``node`` at column ``j + offset`` (at
    column ``offset`` when ``fixed``), loaded (``load``) or computed from ``operands``."""

    var: str
    node: int
    offset: int
    fixed: bool = False
    operands: tuple[str | Number, ...] = ()
    load: bool = False
    at: str | None = None  # a load from a per-step buffer: "t" or "tp"; a vector: None
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

    def contributions(self, program: StepProgram) -> dict[str, list[tuple[Local, str]]]:
        """Per var, the (consumer, derivative rule) pairs that add to its adjoint."""
        out: dict[str, list[tuple[Local, str]]] = {loc.var: [] for loc in self.locals}
        for loc in self.locals:
            if loc.load:
                continue
            rule = program.nodes[loc.node].rule
            for operand, grad, wanted in zip(loc.operands, rule.grads, loc.grad_operands):
                if isinstance(operand, str) and grad is not None and wanted:
                    out[operand].append((loc, grad))
        return out

    def adjoint_owners(self, program: StepProgram) -> dict[str, str]:
        """Per var, the var whose adjoint it has: its own, or (when its one consumer passes
        the gradient on as ``g`` and it is no target) that consumer's owner."""
        targets = {t.var for t in self.targets}
        contributions = self.contributions(program)
        owners: dict[str, str] = {}
        for loc in reversed(self.locals):
            terms = contributions[loc.var]
            if len(terms) == 1 and terms[0][1].strip() == "g" and loc.var not in targets:
                owners[loc.var] = owners[terms[0][0].var]
            else:
                owners[loc.var] = loc.var
        return owners


@dataclass
class StageKernel:
    """The loops of one stage, and the locals whose values its backward reads
    (``needed``: those its derivative rules name)."""

    stage: int
    loops: list[Loop]
    needed: set[str]

    def locals(self) -> dict[str, Local]:
        """Every local of the stage by var (vars are unique in a stage)."""
        return {loc.var: loc for loop in self.loops for loc in loop.locals}


class _LoopBuilder:
    """Builds the locals of one loop from the targets it must write."""

    def __init__(self, stage: _Stage, width: int):
        self.stage, self.loop = stage, Loop(width)
        self.memo: dict[tuple, str | Number] = {}

    def emit(self, node: int, fixed: bool, offset: int) -> str | Number:
        key = (node, fixed, offset)
        if key not in self.memo:
            self.memo[key] = self._make(node, fixed, offset)
        return self.memo[key]

    def _make(self, i: int, fixed: bool, offset: int) -> str | Number:
        stage, n = self.stage, self.stage.nodes[i]
        if n.kind == "number":
            return Number(n.value)
        if n.kind == "slice":
            return self.emit(n.inputs[0], fixed, offset + n.offset)
        if n.kind in LEAF_KINDS or n.kind == "matmul" or stage.is_input(i):
            at = None if n.kind in ("vector", "const") else ("tp" if n.kind == "state" else "t")
            return self._add(Local("", i, offset, fixed, load=True, at=at))
        if n.kind == "concat":
            raise NotFusible(
                f"concat %{i} is read by an op of the stage that makes it; "
                "only a concat feeding a matmul or ending the step is fused"
            )
        operands = []
        for j in n.inputs:
            wide = stage.nodes[j].width != 1 or n.width == 1
            operands.append(self.emit(j, fixed if wide else True, offset if wide else 0))
        return self._add(Local("", i, offset, fixed, tuple(operands)))

    def _add(self, local: Local) -> str:
        local.var = f"x{next(self.stage.numbers)}"  # unique in the stage: loops share saves
        self.loop.locals.append(local)
        return local.var


class _Stage:
    def __init__(self, schedule: Schedule, stage: int):
        self.schedule, self.stage = schedule, stage
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
                var = builder.emit(part, False, 0)
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
        return self.schedule.level[i] < self.stage and i not in self.schedule.free

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
        return StageKernel(self.stage, self.loops, needed)

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


def lower_stages(schedule: Schedule) -> list[StageKernel | None]:
    """Per stage its ``StageKernel`` (None for a stage with nothing to compute)."""
    return [
        _Stage(schedule, stage).kernel() if targets else None
        for stage, targets in enumerate(schedule.kernels)
    ]
