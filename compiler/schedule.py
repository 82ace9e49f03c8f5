"""The partition of a step's recurrence into stages, cut at its matmuls.

Matmuls with a state operand run per step (BLAS, or the in-kernel matmul of a whole-pass
driver), and the elementwise, slice and concat ops between them fall into *stages*, one
generated Numba kernel each. The stage of a value is the number of state matmuls on its
longest path from a leaf: stage k's kernel computes every elementwise value of stage k,
then the matmuls whose left operand is of stage k run, and their outputs are of stage k + 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from tinygrad_lstm.registry import ScalarRule

from .program import PNode, StepProgram

__all__ = ["Schedule", "with_kernel_ends"]

# y = x: the copy that makes a matmul's output, when it ends the step, a kernel's target.
_COPY = ScalarRule(("x",), "x", ("g",))


def with_kernel_ends(program: StepProgram) -> StepProgram:
    """``program`` with each step end (output, new state part) that a matmul makes copied
    by an elementwise node, so every step end is written by a stage kernel (which also
    adds the incoming gradients in the backward)."""
    nodes, copies = list(program.nodes), {}

    def end(i: int) -> int:
        if nodes[i].kind != "matmul":
            return i
        if i not in copies:
            nodes.append(PNode("elementwise", nodes[i].width, (i,), op="copy", rule=_COPY))
            copies[i] = len(nodes) - 1
        return copies[i]

    output, states = end(program.output), tuple(end(s) for s in program.states)
    return replace(program, nodes=tuple(nodes), output=output, states=states)


@dataclass
class Schedule:
    """The partition of a ``StepProgram`` into stages.

    ``level[i]``: the stage of node i. ``kernels[k]``: the elementwise/slice/concat nodes
    stage k's kernel must write to memory (its *targets*: the step's output and new state,
    the left operands of matmuls, values a later stage reads). ``matmuls[k]``: the matmul
    nodes run after stage k's kernel. ``free``: the elementwise and slice nodes of leaves
    only (no state): never stored, each stage that reads one computes it as it reads.
    """

    program: StepProgram
    level: list[int] = field(default_factory=list)
    kernels: list[list[int]] = field(default_factory=list)
    matmuls: list[list[int]] = field(default_factory=list)
    free: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, program: StepProgram) -> Schedule:
        """Levels, per-stage targets and matmuls of ``program``."""
        program = with_kernel_ends(program)
        nodes = program.nodes
        level, free = [], set()
        for i, n in enumerate(nodes):
            below = max((level[j] for j in n.inputs), default=0)
            level.append(below + 1 if n.kind == "matmul" else below)
            if n.kind in ("elementwise", "slice") and all(
                nodes[j].kind in ("row", "vector", "const", "number") or j in free for j in n.inputs
            ):
                free.add(i)
        stages = max(level) + 1
        stored = set(program.states) | {program.output}
        for i, n in enumerate(nodes):
            if n.kind == "matmul":
                stored.add(n.inputs[0])
            for j in n.inputs:
                if level[i] > level[j] and j not in free:
                    stored.add(j)
        kernels: list[list[int]] = [[] for _ in range(stages)]
        matmuls: list[list[int]] = [[] for _ in range(stages)]
        for i in sorted(stored):
            if nodes[i].kind in ("elementwise", "slice", "concat"):
                kernels[level[i]].append(i)
        for i, n in enumerate(nodes):
            if n.kind == "matmul":
                matmuls[level[i] - 1].append(i)
        return cls(program, level, kernels, matmuls, free)

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
