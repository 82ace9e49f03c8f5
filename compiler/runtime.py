"""The fused sequence op of a compiled cell: a whole pass over T steps as one recorded op.

Forward, per step t: each stage's generated kernel, then that stage's matmuls
(``np.dot(a, W, out=...)`` on BLAS, or, for small steps, the whole pass in one generated
driver). Every value a later stage, the backward or the caller reads lives in a (T, B, W)
buffer, so nothing is copied between steps.

Backward is BPTT, per step from the last one run back to the first: the step's incoming
gradients (of its output and of its new state, carried from the step after), then for each
stage from the last down: the backward of its matmuls, ``da += dm @ W^T``, and its
generated backward kernel. The weight gradients are one GEMM per matmul over all steps,
``dW = sum_t a_t^T dm_t``, after the loop; a parameter vector's gradient is summed over
rows and steps inside the kernels.

With ``keep`` (T, B) given (variable lengths), a sequence past its end keeps its state and
writes zeros, as the composed runner does: the state's gradient passes such a step by.
Selections, never products with a mask, so a NaN in the padding stays there.

The op saves the arrays it was given that its backward reads (``ctx.save_for_backward``):
an in-place change of one of them between forward and backward is refused, as composed
refuses it; an array the backward does not read (a bias that is only added) may change.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
from numpy.typing import DTypeLike

from tinygrad_lstm import Context, Function

from .kernel_ir import Arg, Role
from .render import Source
from .schedule import Schedule

__all__ = ["SMALL_STEP", "CompiledSequence", "CompiledStep", "PassArrays", "smoke_test"]

# Up to this many multiply-adds in a step's matmuls, the whole pass runs in one Numba call
# (the drivers); past it, a Python loop calls BLAS and the stage kernels per step.
SMALL_STEP = 2**18
# With variable lengths, (T, B) bools: is sequence b still running at step t.
Keep = np.ndarray | None
_LEAVES = ("state", "row", "weight", "vector", "const")


class CompiledStep:
    """A program's schedule, its generated source and (loaded on first use) its kernels."""

    def __init__(
        self,
        schedule: Schedule,
        source: Source,
        dtype: DTypeLike,
        load: Callable[[str], ModuleType],
    ) -> None:
        self.schedule, self.program, self.source = schedule, schedule.program, source
        self.dtype = np.dtype(dtype)
        self.dims = np.array(self.program.sizes(), np.int64)
        self.leaves = {k: self.program.leaves(k) for k in (*_LEAVES, "matmul")}
        self.backward_reads = self._backward_reads()
        self._load, self._module = load, None
        self.tested: set[bool] = set()  # the paths smoke_test has run: driver or loop

    def _backward_reads(self) -> list[bool]:
        """Per input of ``CompiledSequence`` (states in slot order, then the leaves by kind):
        whether the backward reads its values. Those it reads are saved for backward, and an
        in-place change of one before backward is refused, as composed refuses it."""
        program, nodes = self.program, self.program.nodes
        read = {i for k in self.source.stages if k is not None for i in k.reads}
        read |= {nodes[m].inputs[0] for m in self.leaves["matmul"]}
        read |= set(self.leaves["weight"])
        states = {nodes[i].slot for i in self.leaves["state"] if i in read}
        flags = [k in states for k in range(len(program.states))]
        for kind in _LEAVES[1:]:
            flags += [i in read for i in self.leaves[kind]]
        return flags

    def module(self) -> ModuleType:
        """The generated module (from the kernel cache on first use)."""
        if self._module is None:
            self._module = self._load(self.source.text)
        return self._module

    def functions(self) -> list:
        """Per stage, (forward, backward) Numba functions, or None."""
        module = self.module()
        return [
            None
            if k is None
            else (getattr(module, f"stage{s}_forward"), getattr(module, f"stage{s}_backward"))
            for s, k in enumerate(self.source.stages)
        ]

    def small(self, batch: int) -> bool:
        """True when a step's matmuls are small enough for the whole-pass drivers."""
        nodes = self.program.nodes
        work = sum(nodes[m].width * nodes[nodes[m].inputs[0]].width for m in self.leaves["matmul"])
        return batch * work <= SMALL_STEP


class PassArrays:
    """The arrays of one pass. Every stored node has a (T, B, W) buffer indexed by time;
    a new-state node's has one more slot, ``[T]``, holding the initial state, so the step
    run first reads its state at ``tp = T``."""

    def __init__(
        self, step: CompiledStep, leaves: dict, steps: int, reverse: bool, dtype: DTypeLike
    ):
        program = step.program
        states = leaves["state"]
        self.batch, self.dtype, self.steps = states[0].shape[0], np.dtype(dtype), steps
        times = np.arange(steps - 1, -1, -1) if reverse else np.arange(steps)
        self.times, self.time_array = [int(t) for t in times], times
        self.previous = np.concatenate([[steps], times[:-1]]).astype(np.int64)
        self.fixed, self.shapes = {}, {}
        for kind in ("row", "weight", "vector", "const"):
            for node, array in zip(step.leaves[kind], leaves[kind]):
                self.shapes[node] = np.shape(array)
                if kind in ("vector", "const"):
                    array = np.reshape(array, -1)
                self.fixed[node] = np.ascontiguousarray(array, dtype=self.dtype)
        self.buffers = {
            i: np.empty(
                (steps + (i in program.states), self.batch, program.nodes[i].width), self.dtype
            )
            for i in step.schedule.stored()
        }
        for node, state in zip(program.states, states):
            self.buffers[node][steps] = state

    def array(self, node: int) -> np.ndarray:
        array = self.fixed.get(node)
        return self.buffers[node] if array is None else array

    def bind(self, arg: Arg, step: CompiledStep, saves: dict, grads: dict | None) -> np.ndarray:
        """The array argument ``arg`` stands for in this pass."""
        nodes = step.program.nodes
        if arg.role is Role.VALUE:
            return self.array(arg.node)
        if arg.role is Role.SAVED:
            return saves[arg.node]
        if arg.role is Role.GRAD:
            return grads[arg.node]
        if arg.role is Role.SCRATCH:
            width = nodes[nodes[arg.node].inputs[0]].width
            return np.empty((self.batch, width), self.dtype)
        weight = self.fixed[nodes[arg.node].inputs[1]]
        return np.ascontiguousarray(weight.T) if arg.role is Role.WEIGHT else weight


def forward_loop(step: CompiledStep, run: PassArrays, saves: dict, keep: Keep) -> None:
    """The forward time loop in Python: per step each stage's kernel, then its matmuls on
    BLAS; with ``keep``, a finished sequence's state rows are held."""
    program, functions = step.program, step.functions()
    plan = []  # per stage: its kernel, then its matmuls, with per-step views made once
    for s, kernel in enumerate(step.source.stages):
        if kernel is not None:
            args = [run.bind(a, step, saves, None) for a in kernel.forward_args]
            plan.append((functions[s][0], args, None, None, False))
        for m in step.schedule.matmuls[s]:
            a, w = program.nodes[m].inputs
            home = program.home(a)
            plan.append(
                (None, list(run.buffers[home]), run.fixed[w], list(run.buffers[m]), home != a)
            )
    batch, dims, dot = run.batch, step.dims, np.dot
    for t, tp in zip(run.times, run.previous):
        for kernel, rows, weight, out, at_tp in plan:
            if kernel is not None:
                kernel(t, tp, batch, dims, *rows)
            else:
                dot(rows[tp if at_tp else t], weight, out[t])
        if keep is not None and not keep[t].all():
            gone = ~keep[t]
            for node in program.states:
                run.buffers[node][t][gone] = run.buffers[node][tp][gone]


def backward_loop(
    step: CompiledStep, run: PassArrays, saves: dict, grads: dict, keep: Keep
) -> None:
    """BPTT in Python: per step from the last, each stage from the last: its matmuls'
    backward on BLAS, then its backward kernel. With ``keep``, a finished sequence's state
    gradient passes the step by."""
    program, functions = step.program, step.functions()
    plan = []  # per stage from the last: its matmuls' backward, then its kernel's
    for s in range(len(step.source.stages) - 1, -1, -1):
        for m in step.schedule.matmuls[s]:
            a, w = program.nodes[m].inputs
            home = program.home(a)
            weight_t = np.ascontiguousarray(run.fixed[w].T)
            product = np.empty((run.batch, weight_t.shape[1]), run.dtype)
            plan.append((None, list(grads[m]), weight_t, list(grads[home]), home != a, product))
        kernel = step.source.stages[s]
        if kernel is not None:
            args = [run.bind(a, step, saves, grads) for a in kernel.backward_args]
            plan.append((functions[s][1], args, None, None, False, None))
    batch, dims, dot = run.batch, step.dims, np.dot
    for t, tp in zip(run.times[::-1], run.previous[::-1]):
        held = None
        if keep is not None and not keep[t].all():
            gone = ~keep[t]
            held = [(grads[node], grads[node][t][gone].copy()) for node in program.states]
            for g, _ in held:
                g[t][gone] = 0
        for kernel, rows, weight_t, into, at_tp, product in plan:
            if kernel is not None:
                kernel(t, tp, batch, dims, *rows)
            else:
                dot(rows[t], weight_t, product)
                target = into[tp if at_tp else t]
                target += product
        if held is not None:
            gone = ~keep[t]
            for g, incoming in held:
                g[tp][gone] += incoming


def _weight_grads(run: PassArrays, step: CompiledStep, grads: dict) -> list:
    """dW = sum over matmuls using W of sum_t a_t^T dm_t, one GEMM each over all steps.

    A state operand is the state each step started from: for the forward direction
    a_t = s_{t-1} (s_{-1} the initial state, kept at [T]), so the sum is one GEMM over the
    steps 1..T-1 plus one for step 0, with no shifted copy (reverse: a_t = s_{t+1})."""
    program, steps = step.program, run.steps
    out = []
    for w in step.leaves["weight"]:
        total = np.zeros_like(run.fixed[w])
        for m, n in enumerate(program.nodes):
            if n.kind != "matmul" or n.inputs[1] != w:
                continue
            a, dm = n.inputs[0], grads[m][:steps]
            home = program.home(a)
            lhs = run.buffers[home]
            if home != a:
                first = run.times[0]
                rest, prev = (
                    (dm[:-1], lhs[1:steps]) if first == steps - 1 else (dm[1:], lhs[: steps - 1])
                )
                total += lhs[steps].T @ dm[first]
            else:
                rest, prev = dm, lhs[:steps]
            total += prev.reshape(-1, prev.shape[-1]).T @ rest.reshape(-1, rest.shape[-1])
        out.append(total)
    return out


class CompiledSequence(Function):
    """(y, *final_state) = one pass of a compiled cell over all steps.

    Inputs: the initial state parts (B, W) in slot order, then the hoisted rows (T, B, W),
    the matmul weights (K, N), the parameter vectors and the constant arrays, in the order
    of the program's leaves. Attributes: ``step`` (a ``CompiledStep``), ``steps`` (T),
    ``reverse`` and ``keep`` ((T, B) bool or None). It computes in ``step.dtype``; each
    gradient is returned in the dtype of its input.
    """

    op_name = "compiled_sequence"

    @staticmethod
    def forward(
        ctx: Context,
        *arrays: np.ndarray,
        step: CompiledStep,
        steps: int,
        reverse: bool = False,
        keep: Keep = None,
    ) -> tuple[np.ndarray, ...]:
        counts = [len(step.program.states)] + [len(step.leaves[k]) for k in _LEAVES[1:]]
        bounds = np.cumsum([0, *counts])
        leaves = {k: arrays[bounds[i] : bounds[i + 1]] for i, k in enumerate(_LEAVES)}
        run = PassArrays(step, leaves, steps, reverse, step.dtype)
        nodes = step.program.nodes
        saves = {
            i: np.empty((steps, run.batch, nodes[i].width), run.dtype)
            for k in step.source.stages
            if k is not None
            for i in k.saved
        }
        if keep is None and step.small(run.batch):
            args = [run.bind(a, step, saves, None) for a in step.source.driver_args[0]]
            step.module().pass_forward(run.time_array, run.previous, run.batch, step.dims, *args)
        else:
            forward_loop(step, run, saves, keep)
        ys = run.buffers[step.program.output][:steps]
        if keep is not None:
            ys = np.where(keep[:, :, None], ys, 0)
        ctx.save_for_backward(*(a for a, r in zip(arrays, step.backward_reads) if r))
        ctx.run, ctx.step, ctx.saves, ctx.keep = run, step, saves, keep
        ctx.dtypes = [a.dtype for a in arrays]
        last = run.times[-1]
        return (ys, *(run.buffers[node][last].copy() for node in step.program.states))

    @staticmethod
    def backward(
        ctx: Context, dy: np.ndarray | None, *dfinal: np.ndarray | None
    ) -> tuple[np.ndarray | None, ...]:
        run, step, saves, keep = ctx.run, ctx.step, ctx.saves, ctx.keep
        program, steps = step.program, run.steps
        grads = {i: np.zeros_like(run.buffers[i]) for i in run.buffers}
        grads.update(
            {
                i: np.zeros(run.fixed[i].shape, run.dtype)
                for i in step.leaves["row"] + step.leaves["vector"]
            }
        )
        last = run.times[-1]
        for node, g in zip(program.states, dfinal):
            if g is not None:
                grads[node][last] += g
        if dy is not None:
            incoming = dy if keep is None else np.where(keep[:, :, None], dy, 0)
            grads[program.output][:steps] += incoming
        if keep is None and step.small(run.batch):
            args = [run.bind(a, step, saves, grads) for a in step.source.driver_args[1]]
            step.module().pass_backward(run.time_array, run.previous, run.batch, step.dims, *args)
        else:
            backward_loop(step, run, saves, grads, keep)
        held = [keep is not None and not keep[t].all() for t in run.times]
        finals = tuple(g is not None for g in dfinal)
        reached, initial = program.gradient_reach(dy is not None, finals, held)
        out = (
            *(grads[n][steps] if k in initial else None for k, n in enumerate(program.states)),
            *(grads[i] if i in reached else None for i in step.leaves["row"]),
            *(
                g if w in reached else None
                for w, g in zip(step.leaves["weight"], _weight_grads(run, step, grads))
            ),
            *(
                grads[i].reshape(run.shapes[i]) if i in reached else None
                for i in step.leaves["vector"]
            ),
            *(None for _ in step.leaves["const"]),
        )
        return tuple(
            g if g is None or g.dtype == dtype else g.astype(dtype)
            for g, dtype in zip(out, ctx.dtypes)
        )


class _Context:
    """What ``CompiledSequence`` needs of a graph node, for a run outside the graph."""

    def save_for_backward(self, *arrays: np.ndarray) -> None:
        self.saved = arrays


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

    def weight(i: int) -> np.ndarray:
        user = next(m for m in step.leaves["matmul"] if nodes[m].inputs[1] == i)
        return block(nodes[nodes[user].inputs[0]].width, nodes[i].width)

    arrays = [block(1, nodes[i].width) for i in program.states]
    arrays += [block(2, 1, nodes[i].width) for i in step.leaves["row"]]
    arrays += [weight(i) for i in step.leaves["weight"]]
    arrays += [block(nodes[i].width) for i in step.leaves["vector"]]
    arrays += [block(nodes[i].width) for i in step.leaves["const"]]
    keep = None if driver else np.ones((2, 1), bool)
    ctx = _Context()
    outs = CompiledSequence.forward(ctx, *arrays, step=step, steps=2, keep=keep)
    CompiledSequence.backward(ctx, *(np.ones_like(o) for o in outs))
    step.tested.add(driver)
