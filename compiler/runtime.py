"""The fused sequence op of a compiled cell: a whole pass over T steps as one recorded op.

``CompiledSequence`` takes the initial state parts, x (T, B, I) and the cell's parameters.
Its forward replays the calls that do not read the state (replay.py: the input projection
on all T*B rows, the weights transposed...), then runs the recurrence (passes.py): per
step, each stage's generated kernel and that stage's matmuls, the whole pass in one
generated driver (or, with variable lengths, or without BLAS for large steps, in Python
over BLAS). Its backward is BPTT, per step from the last one
run back to the first; then the weight gradients as one GEMM per matmul over all steps,
and the replay's backward (the input projection's gradients: one GEMM each).

The op saves the arrays its backward reads (``ctx.save_for_backward``): an in-place change
of one of them between forward and backward is refused, as composed refuses it; an array
the backward does not read (a bias that is only added) may change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import NamedTuple

import numpy as np
from numpy.typing import DTypeLike

from tinygrad_lstm import Context, Function

from .blas import gemm
from .memory import Arg, Layout, Role
from .passes import (
    Keep,
    PassArrays,
    Spec,
    backward_loop,
    final_carries,
    forward_loop,
    spec,
    vector_grads,
    weight_grads,
    weight_terms,
)
from .render import Source
from .replay import Replay
from .schedule import Schedule
from .step_plan import backward_actions, forward_actions

__all__ = [
    "SMALL_STEP",
    "CompiledSequence",
    "CompiledStep",
    "LeafPlan",
    "OpInputs",
    "common_dtype",
    "smoke_test",
]

# Where the drivers have no BLAS (blas.py), up to this many multiply-adds in a step's
# matmuls the whole pass runs in one Numba call (the drivers, with matmul_rows); past it, a
# Python loop calls NumPy's BLAS and the stage kernels per step. With BLAS, drivers always.
SMALL_STEP = 2**18
_KINDS = ("row", "weight", "vector", "const")


class CompiledStep:
    """A program's schedule, memory plan, generated source and (loaded on first use) its
    kernels, for one dtype."""

    def __init__(
        self,
        schedule: Schedule,
        layout: Layout,
        source: Source,
        dtype: DTypeLike,
        load: Callable[[str], ModuleType],
    ) -> None:
        self.schedule, self.layout, self.source = schedule, layout, source
        self.program = schedule.program
        self.dtype = np.dtype(dtype)
        self.dims = np.array(source.dims, np.int64)
        self.forward_actions = forward_actions(schedule, layout)
        self.backward_actions = backward_actions(schedule, layout)
        self.leaves = {k: self.program.leaves(k) for k in ("state", "matmul", *_KINDS)}
        self.reads = sorted(self._backward_reads())
        self.backward_arrays = self._backward_arrays()
        self._plan_pass()
        self._specs: dict[Arg, Spec] = {}
        self._orders: dict[tuple[int, bool], tuple] = {}
        self._reach: dict[tuple, tuple[set[int], set[int]]] = {}
        self._load, self._module = load, None
        # The BLAS gemm the drivers take after dims, if they were generated to take one.
        self.blas = (gemm(self.dtype),) if source.blas else ()
        self._functions: dict | None = None
        self.tested: set[bool] = set()  # the paths smoke_test has run: driver or loop

    def gradient_reach(
        self, output: bool, finals: tuple[bool, ...], held: tuple[bool, ...]
    ) -> tuple[set[int], set[int]]:
        """``StepProgram.gradient_reach``, kept per question (it runs before every backward,
        and a pass asks the same one each time)."""
        key = (output, finals, held)
        found = self._reach.get(key)
        if found is None:
            found = self._reach[key] = self.program.gradient_reach(output, finals, list(held))
        return found

    def _plan_pass(self) -> None:
        """What every pass looks up in the plan, worked out once (at small sizes a pass
        costs tens of microseconds, and finding these anew each time was a good part)."""
        program, layout, leaves = self.program, self.layout, self.leaves
        nodes = program.nodes
        self.state_values = [Arg(Role.VALUE, s) for s in program.states]
        self.output_value = Arg(Role.VALUE, program.output)
        self.dy = Arg(Role.DY, program.output)
        # The state part each state leaf reads: (leaf node, slot).
        self.state_reads = [(i, nodes[i].slot) for i in leaves["state"]]
        # The leaves a pass takes (node, its VALUE, the shape it is given as: None as it is,
        # or flattened, a vector given as (1, n); whether it is kept as given: a weight).
        self.fixed: list[tuple[int, Arg, tuple[int] | None, bool]] = []
        for kind in _KINDS:
            flat = kind in ("vector", "const")
            for i in leaves[kind]:
                weight = not flat and nodes[i].kind == "weight"
                self.fixed.append((i, Arg(Role.VALUE, i), (-1,) if flat else None, weight))
        # The initial state's gradients after an even and an odd number of steps.
        self.initial_grads = (
            [Arg(Role.GRAD, s) for s in program.states],
            [Arg(Role.GRAD_PREV, s) for s in program.states],
        )
        self.row_grads = [layout.grad(i, "t") for i in leaves["row"]]
        self.weight_terms = weight_terms(layout, leaves["weight"])
        grads = [Arg(Role.GRAD, v) for v in leaves["vector"]]
        self.vector_sums = [(arg, layout.sums.get(arg)) for arg in grads]
        # Multiply-adds per row of a step's matmuls (``small``).
        self.work = sum(nodes[m].width * nodes[nodes[m].inputs[0]].width for m in leaves["matmul"])

    def _backward_reads(self) -> set[int]:
        """The leaf nodes whose values the backward reads (states: the part's leaf)."""
        program, layout = self.program, self.layout
        reads = {program.nodes[m].inputs[0] for m in program.leaves("matmul")}
        reads |= set(program.leaves("weight"))
        for kernel in layout.kernels:
            if kernel is not None:
                found = kernel.locals()
                reads |= {found[v].node for v in layout.reads[kernel.stage] if found[v].load}
        return {i for i in reads if program.nodes[i].kind in ("state", *_KINDS)}

    def _backward_arrays(self) -> set[Arg]:
        """The arrays of the forward that the backward reads: what its functions take, and
        the matmuls' weights and left operands (the weight gradients)."""
        kept = {
            a for name, args in self.source.args.items() if name.endswith("_backward") for a in args
        }
        for m in self.leaves["matmul"]:
            a, w = self.program.nodes[m].inputs
            kept |= {self.layout.value(a), Arg(Role.VALUE, w)}
        return {a for a in kept if a.role in (Role.VALUE, Role.SAVES, Role.WEIGHT_T)}

    def order(self, steps: int, reverse: bool) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The time indices of a pass in the order it runs (as a list and an array), and
        the step each one reads its state from (``steps``, where the initial state is
        kept, for the first). Made once per length and direction; never written."""
        key = (steps, reverse)
        found = self._orders.get(key)
        if found is None:
            times = np.arange(steps - 1, -1, -1) if reverse else np.arange(steps)
            previous = np.empty(steps, np.int64)
            previous[0], previous[1:] = steps, times[:-1]
            found = self._orders[key] = (times.tolist(), times, previous)
        return found

    def spec(self, arg: Arg) -> Spec:
        """How a pass makes ``arg``'s array (passes.py), worked out once."""
        made = self._specs.get(arg)
        if made is None:
            made = self._specs[arg] = spec(self.layout, arg)
        return made

    def module(self) -> ModuleType:
        """The generated module (from the kernel cache on first use)."""
        if self._module is None:
            self._module = self._load(self.source.text)
        return self._module

    def functions(self) -> dict:
        """The generated functions by name (stage kernels and drivers)."""
        if self._functions is None:
            module = self.module()
            self._functions = {name: getattr(module, name) for name in self.source.args}
        return self._functions

    def driver(self, name: str, run: PassArrays) -> None:
        """Run the whole-pass driver ``name`` on the arrays of ``run``."""
        fixed = (run.time_array, run.previous, run.batch, self.dims, *self.blas)
        self.functions()[name](*fixed, *run.function_args(name))

    def small(self, batch: int) -> bool:
        """True when the whole pass runs in the drivers: always where they call BLAS, else
        when a step's matmuls are small enough for ``matmul_rows``."""
        return bool(self.blas) or batch * self.work <= SMALL_STEP


def run_forward(
    step: CompiledStep, leaves: dict[int, np.ndarray], steps: int, reverse: bool, keep: Keep
) -> PassArrays:
    """The recurrence over ``steps`` steps from the program's ``leaves`` (by node)."""
    run = PassArrays(step, leaves, steps, reverse)
    if keep is None and step.small(run.batch):
        step.driver("pass_forward", run)
    else:
        forward_loop(run, keep)
    return run


def run_backward(
    run: PassArrays, dy: np.ndarray | None, dfinal: tuple, keep: Keep
) -> dict[str, list[np.ndarray]]:
    """BPTT of a forward ``run``, given the gradients of its outputs: the gradients of the
    program's leaves by kind ("state", "row", "weight", "vector"), in slot order."""
    step, program, arrays = run.step, run.step.program, run.arrays
    for s, carry, g in zip(program.states, step.initial_grads[0], dfinal):
        shape = (run.batch, program.nodes[s].width)
        # A copy either way: the drivers write the carried gradient in place.
        arrays[carry] = (
            np.zeros(shape, run.dtype) if g is None else np.array(g, run.dtype, order="C")
        )
    output = program.output
    if dy is None:
        dy = np.zeros((run.steps, run.batch, program.nodes[output].width), run.dtype)
    elif keep is not None:
        dy = np.where(keep[:, :, None], dy, 0)
    arrays[step.dy] = np.ascontiguousarray(dy, dtype=run.dtype)
    if keep is None and step.small(run.batch):
        step.driver("pass_backward", run)
    else:
        backward_loop(run, keep)
    return {
        "state": final_carries(run),
        "row": run.bind_all(step.row_grads),
        "weight": weight_grads(run),
        "vector": vector_grads(run),
    }


class LeafPlan(NamedTuple):
    """How the values an op computes before its time loop (by trace value id) become the
    leaves of one compiled step (by node): ``leaves``, (node, value id, whether it is a
    row (T*B, W) given as (T, B, W)) in kind order; ``grads``, per kind whose gradient
    the op passes back ("row", "weight", "vector"), (value id, node) in slot order."""

    leaves: list[tuple[int, int, bool]]
    grads: dict[str, list[tuple[int, int]]]


@dataclass(frozen=True)
class OpInputs:
    """What a compiled cell's op takes and computes before its time loop: the trace value
    ids of x and of the parameters (in input order), the replay, the trace values each
    program leaf reads (by kind, in slot order), and the compiled step of a dtype."""

    x: int
    params: tuple[int, ...]
    replay: Replay
    leaves: dict[str, list[int]]
    step: Callable[[np.dtype], CompiledStep]
    plans: dict[CompiledStep, LeafPlan] = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def ids(self) -> tuple[int, ...]:
        """The value ids of x and the parameters, in input order (the replay's inputs)."""
        return (self.x, *self.params)

    @functools.cached_property
    def read(self) -> list[int]:
        """The value ids of every leaf the recurrence reads, kind after kind."""
        return [v for kind in _KINDS for v in self.leaves[kind]]

    def plan(self, step: CompiledStep) -> LeafPlan:
        """The ``LeafPlan`` of ``step``, worked out on its first pass."""
        found = self.plans.get(step)
        if found is None:
            pairs = {kind: list(zip(self.leaves[kind], step.leaves[kind])) for kind in _KINDS}
            found = self.plans[step] = LeafPlan(
                [(node, v, kind == "row") for kind in _KINDS for v, node in pairs[kind]],
                {kind: pairs[kind] for kind in ("row", "weight", "vector")},
            )
        return found


def common_dtype(arrays: list[np.ndarray]) -> np.dtype:
    """``np.result_type(*arrays)``, without the call when all have one native dtype (the
    usual case: it runs at every pass)."""
    dtype = arrays[0].dtype
    for a in arrays:
        if a.dtype != dtype:
            return np.result_type(*arrays)
    return dtype if dtype.isnative else np.result_type(*arrays)


class CompiledSequence(Function):
    """(y, *final_state) = one pass of a compiled cell over all steps.

    Inputs: the initial state parts (B, W) in slot order, x (T, B, I), then the cell's
    parameters as ``inputs.params`` lists them. Attributes: ``inputs`` (an ``OpInputs``),
    ``steps`` (T), ``reverse`` and ``keep`` ((T, B) bool or None). The recurrence computes
    in the dtype NumPy promotes the state and the values it reads to; each gradient is
    returned in the dtype of its input.
    """

    op_name = "compiled_sequence"

    @staticmethod
    def forward(
        ctx: Context,
        *arrays: np.ndarray,
        inputs: OpInputs,
        steps: int,
        reverse: bool = False,
        keep: Keep = None,
    ) -> tuple[np.ndarray, ...]:
        count = len(arrays) - len(inputs.params) - 1
        states, x, params = arrays[:count], arrays[count], arrays[count + 1 :]
        rows = steps * x.shape[1]
        given = (x.reshape(rows, x.shape[2]), *params)
        replay = inputs.replay.run(inputs.ids, given, ctx.needs_input_grad[count:], rows)
        values = replay.values
        step = inputs.step(common_dtype([*states, *[values[v] for v in inputs.read]]))
        # An initial state part by the node of the new state it becomes (read or not), and by
        # the node of the step that reads it.
        leaves = dict(zip(step.program.states, states))
        for node, slot in step.state_reads:
            leaves[node] = states[slot]
        for node, v, row in inputs.plan(step).leaves:
            array = values[v]
            leaves[node] = array.reshape(steps, -1, array.shape[-1]) if row else array
        run = run_forward(step, leaves, steps, reverse, keep)
        replay.forget_values()
        saved = [leaves[i] for i in step.reads] + replay.saved()
        ctx.save_for_backward(*saved)
        ctx.run, ctx.replay, ctx.keep, ctx.op_inputs = run, replay, keep, inputs
        ctx.dtypes = [a.dtype for a in arrays]
        ys = run.bind(step.output_value)[:steps]
        if keep is not None:
            ys = np.where(keep[:, :, None], ys, 0)
        last = run.times[-1]
        finals = [run.arrays[s][last].copy() for s in step.state_values]
        run.keep_only(step.backward_arrays)
        return (ys, *finals)

    @staticmethod
    def backward(
        ctx: Context, dy: np.ndarray | None, *dfinal: np.ndarray | None
    ) -> tuple[np.ndarray | None, ...]:
        run, inputs, keep = ctx.run, ctx.op_inputs, ctx.keep
        found = run_backward(run, dy, dfinal, keep)
        # What composed would give a gradient (maybe zero) and what None: the same here.
        held = (False,) * run.steps if keep is None else tuple(not keep[t].all() for t in run.times)
        reached, initial = run.step.gradient_reach(
            dy is not None, tuple([g is not None for g in dfinal]), held
        )
        states = [g if k in initial else None for k, g in enumerate(found["state"])]
        grads: dict[int, np.ndarray] = {}
        shapes, plan = ctx.replay.shapes, inputs.plan(run.step)
        for kind, pairs in plan.grads.items():
            for (v, node), g in zip(pairs, found[kind]):
                if node not in reached:
                    continue
                g = g.reshape(shapes[v])
                grads[v] = g if v not in grads else grads[v] + g
        grads = ctx.replay.backward(grads)
        x = grads.get(inputs.x)
        shape = (run.steps, -1, x.shape[-1]) if x is not None else None
        out = [
            *states,
            None if x is None else x.reshape(shape),
            *[grads.get(p) for p in inputs.params],
        ]
        return tuple(
            [
                g if g is None or g.dtype == dtype else g.astype(dtype)
                for g, dtype in zip(out, ctx.dtypes)
            ]
        )


def smoke_test(step: CompiledStep, driver: bool) -> None:
    """Run one tiny pass, forward and backward, on the whole-pass drivers (``driver``) or
    on the per-step loop, once per process: Numba compiles the kernels here, so a kernel
    that fails to compile fails before any real pass, not in the middle of a backward."""
    if driver in step.tested:
        return
    program, dtype = step.program, step.dtype
    nodes = program.nodes
    rng = np.random.default_rng(0)

    def block(*shape: int) -> np.ndarray:
        return rng.uniform(-0.5, 0.5, shape).astype(dtype)

    leaves = {i: block(1, nodes[i].width) for i in program.states}
    leaves.update({i: block(2, 1, nodes[i].width) for i in program.leaves("row")})
    for m in program.leaves("matmul"):
        a, w = nodes[m].inputs
        leaves[w] = block(nodes[a].width, nodes[w].width)
    leaves.update(
        {i: block(nodes[i].width) for k in ("vector", "const") for i in program.leaves(k)}
    )
    keep = None if driver else np.ones((2, 1), bool)
    run = run_forward(step, leaves, 2, False, keep)
    outs = [run.bind(Arg(Role.VALUE, program.output))[:2]]
    outs += [run.bind(Arg(Role.VALUE, s))[1] for s in program.states]
    run_backward(run, np.ones_like(outs[0]), tuple(np.ones_like(o) for o in outs[1:]), keep)
    step.tested.add(driver)
