"""A recurrent cell's step as the compiler sees it: a small graph of row-wise ops.

``StepProgram`` holds the part of a captured step that depends on the state (the
recurrence) as plain data; build.py makes it from a trace. Every value of the recurrence is
a (B, width) row block. Its leaves are

- ``state``: a part of the state the step starts from (B, W);
- ``row``: a hoisted value, read at step t (B, W);
- ``weight``: a (K, N) matrix of parameters, the right operand of a matmul;
- ``vector``: an elementwise operand of parameters, broadcast over the rows (shape (),
  (n,) or (1, n)); it gets a gradient;
- ``const``: a constant array, read like a vector (no gradient);

and a ``number`` (a Python number of the step, a 0-d constant) is inlined as a literal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinygrad_lstm.registry import ScalarRule

__all__ = ["LEAF_KINDS", "PNode", "StepProgram"]

LEAF_KINDS = ("state", "row", "weight", "vector", "const")


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
