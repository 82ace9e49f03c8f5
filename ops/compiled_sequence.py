"""The fused sequence op of a compiled cell: a whole pass over T steps as one recorded op.

Forward, per step t: each stage's generated kernel, then that stage's matmuls on BLAS
(``np.dot(a, W, out=...)``). Every value a later stage, the backward or the caller reads
lives in a (T, B, width) buffer, so nothing is copied between steps.

Backward is BPTT, per step from the last one run back to the first: the step's incoming
gradients (of its output and of its new state, carried from the step after), then for each
stage from the last down: the backward of its matmuls, ``da += dm @ W^T``, and its
generated backward kernel. The weight gradients are one GEMM per matmul over all steps,
``dW = sum_t a_t^T dm_t``, after the loop; a parameter vector's gradient is summed over
rows and steps inside the kernels.

With ``keep`` (T, B) given (variable lengths), a sequence past its end keeps its state and
writes zeros, as the composed runner does: the state's gradient passes such a step by.
"""

from __future__ import annotations

import numpy as np

from tinygrad_lstm import Function

from .kernel_cache import load_module
from .step_codegen import generate
from .step_driver import DRIVER_ARG
from .step_program import Schedule, StepProgram

__all__ = ["CompiledSequence", "CompiledStep", "compiled_step"]

_STEPS: dict = {}
# Up to this many multiply-adds in a step's matmuls, the whole pass runs in one Numba call
# (ops/step_driver.py); past it, a Python loop calls BLAS and the stage kernels per step
# (the threshold of the hand-written kernels, ops/fused.py).
SMALL_STEP = 2**18


class CompiledStep:
    """A ``StepProgram``'s schedule and its loaded kernels for one dtype."""

    def __init__(self, program: StepProgram, dtype):
        self.program, self.dtype = program, np.dtype(dtype)
        self.schedule = Schedule.of(program)
        self.source, self.kernels, self.driver_args = generate(self.schedule, self.dtype)
        nodes = program.nodes
        self.dims = np.array(sorted({n.width for n in nodes} | {n.offset for n in nodes}), np.int64)
        self._module = None
        self.leaves = {
            kind: [i for i, n in enumerate(nodes) if n.kind == kind]
            for kind in ("state", "row", "weight", "vector", "const", "matmul")
        }

    def functions(self) -> list:
        """Per stage, (forward, backward) Numba functions, or None (loaded on first use)."""
        module = self.module()
        return [
            None
            if k is None
            else (getattr(module, f"stage{s}_forward"), getattr(module, f"stage{s}_backward"))
            for s, k in enumerate(self.kernels)
        ]

    def module(self):
        """The generated module (loaded from the kernel cache on first use)."""
        if self._module is None:
            self._module = load_module(f"step_{self.dtype.name}", self.source)
        return self._module

    def small(self, batch: int) -> bool:
        """True when a step's matmuls are small enough for the whole-pass drivers."""
        nodes = self.program.nodes
        return (
            batch
            * sum(nodes[m].width * nodes[nodes[m].inputs[0]].width for m in self.leaves["matmul"])
            <= SMALL_STEP
        )


def compiled_step(program: StepProgram, dtype) -> CompiledStep:
    """The ``CompiledStep`` of ``program`` for ``dtype`` (one per process)."""
    key = (program, np.dtype(dtype))
    step = _STEPS.get(key)
    if step is None:
        step = _STEPS[key] = CompiledStep(program, dtype)
    return step


class _Pass:
    """The arrays of one pass. Every stored node has a (T, B, W) buffer indexed by time;
    a new-state node's has one more slot, ``[T]``, holding the initial state, so the step
    run first reads its state at ``tp = T``."""

    def __init__(self, step: CompiledStep, states, rows, weights, vectors, consts, steps, reverse):
        program, nodes = step.program, step.program.nodes
        self.batch, self.dtype, self.steps = states[0].shape[0], states[0].dtype, steps
        times = np.arange(steps - 1, -1, -1) if reverse else np.arange(steps)
        self.times, self.time_array = [int(t) for t in times], times
        self.previous = np.concatenate([[steps], times[:-1]])  # tp of each step, run order
        self.fixed, self.shapes = {}, {}
        for kind, arrays in (
            ("row", rows),
            ("weight", weights),
            ("vector", vectors),
            ("const", consts),
        ):
            for node, array in zip(step.leaves[kind], arrays):
                self.shapes[node] = np.shape(array)
                if kind in ("vector", "const"):
                    array = np.reshape(array, -1)
                self.fixed[node] = np.ascontiguousarray(array, dtype=self.dtype)
        self.buffers = {
            i: np.empty((steps + (i in program.states), self.batch, nodes[i].width), self.dtype)
            for i in step.schedule.stored()
        }
        for node, state in zip(program.states, states):
            self.buffers[node][steps] = state

    def array(self, node: int) -> np.ndarray:
        array = self.fixed.get(node)
        return self.buffers[node] if array is None else array


def _forward_loop(step: CompiledStep, run: _Pass, saves: dict, keep) -> None:
    """The forward time loop in Python: per step each stage's kernel, then its matmuls on
    BLAS; with ``keep``, a finished sequence's state rows are held."""
    nodes, homes, functions = step.program.nodes, _homes(step), step.functions()
    plan = []  # per stage: its kernel, then its matmuls, with per-step views made once
    for s, kernel in enumerate(step.kernels):
        if kernel is not None:
            plan.append(
                (
                    functions[s][0],
                    [
                        run.array(i) if role == "val" else saves[i]
                        for role, i in kernel.forward_args
                    ],
                    0,
                    0,
                    0,
                )
            )
        for m in step.schedule.matmuls[s]:
            a, w = nodes[m].inputs
            plan.append(
                (
                    None,
                    list(run.buffers[homes[a]]),
                    run.fixed[w],
                    list(run.buffers[m]),
                    homes[a] != a,
                )
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
            for node in step.program.states:
                run.buffers[node][t][gone] = run.buffers[node][tp][gone]


def _backward_loop(step: CompiledStep, run: _Pass, saves: dict, grads: dict, keep) -> None:
    """BPTT in Python: per step from the last, each stage from the last: its matmuls'
    backward on BLAS, then its backward kernel. With ``keep``, a finished sequence's state
    gradient passes the step by."""
    nodes, homes, functions = step.program.nodes, _homes(step), step.functions()
    plan = []  # per stage from the last: its matmuls' backward, then its kernel's
    for s in range(len(step.kernels) - 1, -1, -1):
        for m in step.schedule.matmuls[s]:
            a, w = nodes[m].inputs
            weight_t = np.ascontiguousarray(run.fixed[w].T)
            plan.append(
                (
                    None,
                    list(grads[m]),
                    weight_t,
                    list(grads[homes[a]]),
                    homes[a] != a,
                    np.empty((run.batch, weight_t.shape[1]), run.dtype),
                )
            )
        kernel = step.kernels[s]
        if kernel is not None:
            plan.append(
                (
                    functions[s][1],
                    [
                        run.array(i) if role == "val" else saves[i] if role == "save" else grads[i]
                        for role, i in kernel.backward_args
                    ],
                    0,
                    0,
                    0,
                    0,
                )
            )
    batch, dims, dot = run.batch, step.dims, np.dot
    for t, tp in zip(run.times[::-1], run.previous[::-1]):
        held = None
        if keep is not None and not keep[t].all():
            gone = ~keep[t]
            held = [
                (grads[node], gone, grads[node][t][gone].copy()) for node in step.program.states
            ]
            for g, _, _ in held:
                g[t][gone] = 0
        for kernel, rows, weight_t, into, at_tp, product in plan:
            if kernel is not None:
                kernel(t, tp, batch, dims, *rows)
            else:
                dot(rows[t], weight_t, product)
                target = into[tp if at_tp else t]
                target += product
        for g, gone, incoming in held or ():
            g[tp][gone] += incoming


def _driver_arrays(
    step: CompiledStep, run: _Pass, saves: dict, grads: dict | None, names: list[str]
) -> list[np.ndarray]:
    """The arrays the whole-pass driver takes, by their names (ops/step_driver.py)."""
    nodes, arrays = step.program.nodes, []
    for name in names:
        role, node = DRIVER_ARG.match(name).groups()
        node = int(node)
        if role == "v":
            arrays.append(run.array(node))
        elif role == "s":
            arrays.append(saves[node])
        elif role == "d":
            arrays.append(grads[node])
        elif role == "p":
            arrays.append(np.empty((run.batch, nodes[nodes[node].inputs[0]].width), run.dtype))
        else:
            weight = run.fixed[nodes[node].inputs[1]]
            arrays.append(np.ascontiguousarray(weight.T) if role == "w" else weight)
    return arrays


def _homes(step: CompiledStep) -> dict[int, int]:
    """Node -> the node whose buffer holds it (a state part: its new-state node)."""
    nodes, states = step.program.nodes, step.program.states
    return {i: states[n.slot] if n.kind == "state" else i for i, n in enumerate(nodes)}


class CompiledSequence(Function):
    """(y, *final_state) = one pass of a compiled cell over all steps.

    Inputs: the initial state parts (B, W), the hoisted rows (T, B, W), the matmul weights
    (K, N) and the parameter vectors, in the order of the program's leaves. Attributes:
    ``step`` (a ``CompiledStep``), ``steps`` (T), ``reverse``, ``keep`` ((T, B) bool or
    None) and ``consts`` (the constant arrays).
    """

    op_name = "compiled_sequence"

    @staticmethod
    def forward(ctx, *arrays, step, steps, reverse=False, keep=None, consts=()):
        counts = [len(step.leaves[k]) for k in ("state", "row", "weight", "vector")]
        bounds = np.cumsum([0] + counts)
        parts = [arrays[bounds[k] : bounds[k + 1]] for k in range(4)]
        run = _Pass(step, *parts, consts, steps, reverse)
        nodes = step.program.nodes
        saves = {
            i: np.empty((steps, run.batch, nodes[i].width), run.dtype)
            for k in step.kernels
            if k is not None
            for i in k.saved
        }
        if keep is None and step.small(run.batch):
            arrays = _driver_arrays(step, run, saves, None, step.driver_args[0])
            step.module().pass_forward(run.time_array, run.previous, run.batch, step.dims, *arrays)
        else:
            _forward_loop(step, run, saves, keep)
        ys = run.buffers[step.program.output][:steps]
        if keep is not None:
            ys = ys * keep[:, :, None]
        ctx.run, ctx.step, ctx.saves, ctx.keep = run, step, saves, keep
        last = run.times[-1]
        return (ys, *(run.buffers[node][last].copy() for node in step.program.states))

    @staticmethod
    def backward(ctx, dy, *dfinal):
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
            grads[program.output][:steps] += dy if keep is None else dy * keep[:, :, None]
        if keep is None and step.small(run.batch):
            arrays = _driver_arrays(step, run, saves, grads, step.driver_args[1])
            step.module().pass_backward(run.time_array, run.previous, run.batch, step.dims, *arrays)
        else:
            _backward_loop(step, run, saves, grads, keep)
        return (
            *(grads[node][steps] for node in program.states),
            *(grads[i] for i in step.leaves["row"]),
            *_weight_grads(run, step, grads, _homes(step)),
            *(grads[i].reshape(run.shapes[i]) for i in step.leaves["vector"]),
        )


def _weight_grads(run: _Pass, step: CompiledStep, grads: dict, homes: dict) -> list:
    """dW = sum over matmuls using W of sum_t a_t^T dm_t, one GEMM each over all steps.

    A state operand is the state each step started from: for the forward direction
    a_t = s_{t-1} (s_{-1} the initial state, kept at [T]), so the sum is one GEMM over the
    steps 1..T-1 plus one for step 0, with no shifted copy (reverse: a_t = s_{t+1})."""
    nodes, steps = step.program.nodes, run.steps
    out = []
    for w in step.leaves["weight"]:
        total = np.zeros_like(run.fixed[w])
        for m, n in enumerate(nodes):
            if n.kind != "matmul" or n.inputs[1] != w:
                continue
            a, dm = n.inputs[0], grads[m][:steps]
            lhs = run.buffers[homes[a]]
            if homes[a] != a:
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
