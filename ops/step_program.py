"""A recurrent cell's step as the cell compiler sees it: a small graph of row-wise ops.

``layers/compile_cell.py`` captures a cell's step and keeps only the part that depends on
the state (the recurrence). This module holds that part as plain data (``StepProgram``) and
partitions it (``Schedule``): matmuls with a state operand run per step on NumPy's BLAS, and
the elementwise, split, slice and concat ops between them fall into *stages*, one generated
Numba kernel each (ops/step_codegen.py).

Every value of the recurrence is a (B, width) row block. Its leaves are

- ``state``: a part of the state the step starts from (B, W);
- ``row``: a value that depends on x_t and the parameters only, computed for all steps
  before the loop (hoisted) and read at step t (B, W);
- ``weight``: a (K, N) matrix made of parameters only, the right operand of a matmul;
- ``vector``: an elementwise operand made of parameters only, broadcast over the rows
  (shape (), (n,) or (1, n)); it gets a gradient;
- ``const``: a constant scalar (inlined as a literal) or array (like a vector, no gradient).

The stage of a value is the number of state matmuls on its longest path from a leaf: stage
k's kernel computes every elementwise value of stage k, then the matmuls whose left operand
is of stage k run, and their outputs are of stage k + 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinygrad_lstm.registry import ScalarRule

__all__ = ["LEAF_KINDS", "NotFusible", "PNode", "Schedule", "StepProgram"]

LEAF_KINDS = ("state", "row", "weight", "vector", "const")


class NotFusible(ValueError):
    """A cell's step cannot be compiled; the message names the op or value that blocked it."""


@dataclass(frozen=True)
class PNode:
    """One value of the recurrence.

    ``kind``: a leaf kind, or ``elementwise`` (op ``op`` with ``rule`` and ``attrs``),
    ``slice`` (columns ``offset .. offset + width`` of its input), ``concat`` (inputs side
    by side) or ``matmul`` (inputs: left row block, right weight). ``slot`` numbers a leaf
    among those of its kind; ``value`` is a scalar constant's value.
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
        if self.kind in LEAF_KINDS:
            extra = f" = {self.value!r}" if self.value is not None else ""
            return f"{self.kind}[{self.slot}]{extra}"
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

    def count(self, kind: str) -> int:
        """How many leaves of ``kind`` the step reads."""
        return sum(1 for n in self.nodes if n.kind == kind)

    def text(self) -> str:
        """The program as numbered lines (``%3 = sigmoid(%2)   (B, 16)``)."""
        shapes = {"vector": "({},)", "weight": "(K, {})", "const": "()"}
        lines = [
            f"%{i} = {n.describe():<40} " + shapes.get(n.kind, "(B, {})").format(n.width)
            for i, n in enumerate(self.nodes)
        ]
        lines.append(
            f"output: %{self.output};  new state: " + ", ".join(f"%{s}" for s in self.states)
        )
        return "\n".join(lines)

    def key(self) -> str:
        """The program's structure as text, with every width and offset given as its rank
        among the distinct sizes of the program: programs that differ only in the sizes
        (same ops, same equalities between sizes) share their kernels."""
        sizes = sorted({n.width for n in self.nodes} | {n.offset for n in self.nodes})
        rank = {s: f"s{i}" for i, s in enumerate(sizes)}
        parts = []
        for n in self.nodes:
            rule = None if n.rule is None else (n.rule.inputs, n.rule.forward, n.rule.grads)
            parts.append(
                (
                    n.kind,
                    rank[n.width],
                    n.inputs,
                    n.op,
                    rule,
                    n.attrs,
                    rank[n.offset],
                    n.slot,
                    n.value,
                    n.width == 1,
                )
            )
        return repr((parts, self.output, self.states))


@dataclass
class Schedule:
    """The partition of a ``StepProgram`` into stages.

    ``level[i]``: the stage of node i. ``kernels[k]``: the elementwise/slice/concat nodes
    stage k's kernel must write to memory (its *targets*: the step's output and new state,
    the left operands of matmuls, values a later stage reads). ``matmuls[k]``: the matmul
    nodes run after stage k's kernel.
    """

    program: StepProgram
    level: list[int] = field(default_factory=list)
    kernels: list[list[int]] = field(default_factory=list)
    matmuls: list[list[int]] = field(default_factory=list)

    @classmethod
    def of(cls, program: StepProgram) -> Schedule:
        """Levels, per-stage targets and matmuls of ``program``."""
        nodes = program.nodes
        level = []
        for n in nodes:
            below = max((level[i] for i in n.inputs), default=0)
            level.append(below + 1 if n.kind == "matmul" else below)
        stages = max(level) + 1
        stored = set(program.states) | {program.output}
        for i, n in enumerate(nodes):
            if n.kind == "matmul":
                stored.add(n.inputs[0])
            for j in n.inputs:
                if level[i] > level[j]:
                    stored.add(j)
        kernels: list[list[int]] = [[] for _ in range(stages)]
        matmuls: list[list[int]] = [[] for _ in range(stages)]
        for i in sorted(stored):
            if nodes[i].kind in ("elementwise", "slice", "concat"):
                kernels[level[i]].append(i)
        for i, n in enumerate(nodes):
            if n.kind == "matmul":
                matmuls[level[i] - 1].append(i)
        return cls(program, level, kernels, matmuls)

    def stored(self) -> list[int]:
        """Nodes that live in per-step buffers of their own: kernel targets and matmuls."""
        nodes = self.program.nodes
        return sorted(
            {i for k in self.kernels for i in k}
            | {i for i, n in enumerate(nodes) if n.kind == "matmul"}
        )

    def text(self) -> str:
        """The partition as ``fuse`` prints it: per stage, its kernel's targets and matmuls."""
        lines = []
        for k, (targets, mms) in enumerate(zip(self.kernels, self.matmuls)):
            if targets:
                lines.append(
                    f"stage {k}: fused kernel writes " + ", ".join(f"%{i}" for i in targets)
                )
            for m in mms:
                a, w = self.program.nodes[m].inputs
                lines.append(f"stage {k}: BLAS per step  %{m} = %{a} @ %{w}")
        return "\n".join(lines)
