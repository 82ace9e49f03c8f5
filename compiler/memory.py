"""Where every value and gradient of a compiled pass lives, and how the backward writes it.

Each array a generated function takes is an ``Arg``: a ``Role`` and the node (or stage) it
is for. Its ``Space`` says its shape and how a kernel indexes it:

- ``STATES`` (T + 1, B, W): a new state part, one row block per step; [T] holds the initial
  state, so the step run first reads its state at ``tp = T``;
- ``STEPS`` (T, B, W): a value kept for the whole pass: the output, a matmul's left operand
  (the weight gradients read it), a target the backward reads, a stage's saved values;
- ``ROWS`` (B, W): one step's value, overwritten by the next step (a matmul's product, a
  value passed between two stages of a step); and the gradient *carried* from a step to the
  one before it: the gradient of a new state part (``GRAD``, added to by the step after),
  and of the state the step read (``GRAD_PREV``), swapped after each step;
- ``FIXED``: parameters (a vector, a constant, a weight), the same at every step.

Values the backward reads are saved side by side in one array per stage, unless they are
kept anyway or cheap to recompute from what is. How the backward writes the gradients
(stored or added, zeroed or not, shared) is planned by gradient_writes.py.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from tinygrad_lstm.ops.rule_source import FAST_FLOAT32

from tinygrad_lstm.registry import ScalarRule

from .kernel_ir import Local, Number, StageKernel
from .program import StepProgram
from .schedule import Schedule

__all__ = ["Arg", "Layout", "Role", "SaveSlot", "Space", "plan_memory"]


class Space(Enum):
    """The shape of an array and how a kernel indexes it (see the module docstring)."""

    STATES = "states"
    STEPS = "steps"
    ROWS = "rows"
    FIXED = "fixed"

    __hash__ = object.__hash__  # members are singletons: hashed by identity, in C


class Role(Enum):
    """What an argument array holds for its node."""

    VALUE = "v"  # the node's values
    SAVES = "s"  # stage ``node``'s values saved for its backward, side by side
    GRAD = "d"  # the node's gradient (of the new state, for a state part)
    GRAD_PREV = "e"  # the gradient of the state the step read (node: the state part)
    DY = "g"  # the incoming gradient of the output, read only
    WEIGHT = "w"  # a matmul's weight as (N, K) rows, for the in-kernel forward product
    WEIGHT_T = "u"  # the same weight as (K, N) rows, for the backward product

    __hash__ = object.__hash__  # members are singletons: hashed by identity, in C


class Arg(NamedTuple):
    """One array argument: ``role`` of node ``node`` (of stage ``node`` for SAVES; of the
    matmul node for WEIGHT and WEIGHT_T). A tuple: the runtime looks arguments up at every
    pass, and a tuple hashes in C."""

    role: Role
    node: int

    @property
    def name(self) -> str:
        return f"{self.role.value}{self.node}"


@dataclass(frozen=True)
class SaveSlot:
    """Columns ``offset .. offset + width`` of a stage's SAVES array."""

    offset: int
    width: int


# A write of the backward: ("kernel", stage, var of the load) or ("matmul", node).
WriteKey = tuple
# The calls a forward rule may make and still be recomputed in the backward (memory.py).
_CHEAP = ("abs", "min", "max")


@dataclass
class Layout:
    """The memory plan of a schedule (see the module docstring)."""

    program: StepProgram
    kernels: list[StageKernel | None]
    spaces: dict[int, Space]  # nodes with a value array of their own
    saves: list[dict[str, SaveSlot]]  # per stage: the saved locals by var
    save_widths: list[int]
    alias: dict[Arg, Arg] = field(default_factory=dict)
    sums: dict[Arg, Arg] = field(default_factory=dict)
    adds: dict[WriteKey, bool] = field(default_factory=dict)  # True: "+=", False: "="
    zero_each_step: list[Arg] = field(default_factory=list)
    zero_once: set[Arg] = field(default_factory=set)
    written: set[Arg] = field(default_factory=set)  # gradient arrays the backward writes
    # Per stage: the vars its backward has (the needed ones, what recomputing reads), and
    # those it recomputes.
    reads: list[set[str]] = field(default_factory=list)
    recomputed: list[set[str]] = field(default_factory=list)

    def value(self, node: int) -> Arg:
        """The VALUE argument holding node ``node`` (a state part: its new state's)."""
        return Arg(Role.VALUE, self.program.home(node))

    def grad(self, node: int, at: str | None) -> Arg:
        """Where the gradient of ``node`` read at ``at`` goes (aliases resolved)."""
        n = self.program.nodes[node]
        if n.kind == "state":
            return Arg(Role.GRAD_PREV, self.program.home(node))
        arg = Arg(Role.GRAD, node)
        return self.alias.get(arg, arg)

    def carried(self) -> list[tuple[Arg, Arg]]:
        """Per state part, its two carried gradients: of the new state, of the state read."""
        return [(Arg(Role.GRAD, s), Arg(Role.GRAD_PREV, s)) for s in self.program.states]

    def space(self, arg: Arg) -> Space:
        """The space of ``arg``'s array."""
        role, node = arg.role, arg.node
        kind = self.program.nodes[node].kind if role is not Role.SAVES else ""
        if role is Role.VALUE:
            return self.spaces[node]
        if role in (Role.SAVES, Role.DY):
            return Space.STEPS
        if role in (Role.WEIGHT, Role.WEIGHT_T) or kind in ("vector", "const", "weight"):
            return Space.FIXED
        if role is Role.GRAD and kind in ("matmul", "row"):
            return Space.STEPS
        return Space.ROWS

    def width(self, arg: Arg) -> int:
        """The number of columns of ``arg``'s array."""
        if arg.role is Role.SAVES:
            return self.save_widths[arg.node]
        return self.program.nodes[arg.node].width

    def stored(self, stage: int, loc: Local) -> tuple[Arg, int] | None:
        """Where the backward of ``stage`` reads needed local ``loc`` that is not a load:
        (VALUE of a target kept for the pass, its column), or None (in the saves)."""
        for loop in self.kernels[stage].loops:
            for t in loop.targets:
                if t.var == loc.var and self.spaces[t.node] in (Space.STATES, Space.STEPS):
                    return Arg(Role.VALUE, t.node), t.column
        return None


def _spaces(schedule: Schedule, kernels: list[StageKernel | None]) -> dict[int, Space]:
    program = schedule.program
    nodes = program.nodes
    spaces: dict[int, Space] = {}
    for i, n in enumerate(nodes):
        if n.kind == "row":
            spaces[i] = Space.STEPS
        elif n.kind in ("vector", "const", "weight"):
            spaces[i] = Space.FIXED
        elif n.kind == "matmul" or any(i in k for k in schedule.kernels):
            spaces[i] = Space.ROWS
    kept = {program.output} | {nodes[m].inputs[0] for m in program.leaves("matmul")}
    for kernel in kernels:
        if kernel is None:
            continue
        for var in kernel.needed:
            loc = kernel.locals()[var]
            if loc.load and nodes[loc.node].kind not in ("matmul", "state"):
                kept.add(loc.node)
            for loop in kernel.loops:
                kept |= {t.node for t in loop.targets if t.var == var}
    for i in kept:
        if spaces.get(i) is Space.ROWS:
            spaces[i] = Space.STEPS
    for s in program.states:
        spaces[s] = Space.STATES
    return spaces


def _cheap(rule: ScalarRule) -> bool:
    """True for a forward rule of arithmetic only (and abs, min, max): recomputing it in the
    backward costs less than saving it, and gives the same number."""
    return all(
        not isinstance(n, ast.Call) or (isinstance(n.func, ast.Name) and n.func.id in _CHEAP)
        for n in ast.walk(ast.parse(rule.forward, mode="eval"))
    )


def _saves(layout: Layout, stage: int, kernel: StageKernel) -> None:
    """Which needed locals stage ``stage`` saves, and which its backward recomputes: a
    cheap op of values the backward has anyway (a state the step read, a saved value, a
    kept target, a constant) is recomputed, not saved. Parameters are not recomputed from:
    one changed in place before the backward would change the gradient silently."""
    program, slots, width = layout.program, {}, 0
    at_hand: set[str] = set()  # vars the backward gets without a save of their own
    recomputable: set[str] = set()
    for loop in kernel.loops:
        for loc in loop.locals:
            var, node = loc.var, program.nodes[loc.node]
            if loc.load:
                home = program.home(loc.node)
                kept = layout.spaces[home] is not Space.ROWS
                if kept and node.kind not in ("row", "vector", "weight"):
                    at_hand.add(var)
                if not kept and var in kernel.needed:
                    slots[var] = SaveSlot(width, 1 if loc.fixed else loop.width)
                    width += slots[var].width
            elif var in kernel.needed and layout.stored(stage, loc) is not None:
                at_hand.add(var)
            elif (
                node.op not in FAST_FLOAT32
                and _cheap(node.rule)
                and all(isinstance(o, Number) or o in at_hand for o in loc.operands)
            ):
                recomputable.add(var)
                at_hand.add(var)
            elif var in kernel.needed:
                slots[var] = SaveSlot(width, 1 if loc.fixed else loop.width)
                width += slots[var].width
                at_hand.add(var)
    by_var = kernel.locals()
    reads, todo = set(), list(kernel.needed)
    while todo:  # the needed vars and what recomputing them reads
        var = todo.pop()
        if var not in reads:
            reads.add(var)
            if var in recomputable:
                todo += [o for o in by_var[var].operands if isinstance(o, str)]
    layout.saves[stage], layout.save_widths[stage] = slots, width
    layout.recomputed[stage] = recomputable & reads
    layout.reads[stage] = reads


def plan_memory(schedule: Schedule, kernels: list[StageKernel | None]) -> Layout:
    """The memory plan of ``schedule`` with its stage ``kernels``."""
    stages = len(kernels)
    layout = Layout(
        schedule.program,
        kernels,
        _spaces(schedule, kernels),
        [{} for _ in range(stages)],
        [0] * stages,
        reads=[set() for _ in range(stages)],
        recomputed=[set() for _ in range(stages)],
    )
    for stage, kernel in enumerate(kernels):
        if kernel is not None:
            _saves(layout, stage, kernel)
    from .gradient_writes import plan_gradient_writes  # it builds on this module's types

    plan_gradient_writes(layout, schedule)
    return layout
