"""The partition of a step's recurrence into stages, cut at its matmuls.

Matmuls with a state operand run per step (BLAS, or the in-kernel matmul of a whole-pass
driver), and the elementwise, slice and concat ops between them fall into *stages*, one
generated Numba kernel each. The stage of a value is the number of state matmuls on its
longest path from a leaf: stage k's kernel computes every elementwise value of stage k,
then the matmuls whose left operand is of stage k run, and their outputs are of stage k + 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .program import StepProgram

__all__ = ["Schedule"]


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
