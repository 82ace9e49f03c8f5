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

The pass's buffers and the per-step Python loops (for steps too large for one Numba driver)
are in ops/step_loops.py.
"""

from __future__ import annotations

import numpy as np

from tinygrad_lstm import Function

from .kernel_cache import load_module
from .step_codegen import generate
from .step_loops import PassArrays, backward_loop, buffer_homes, driver_arrays, forward_loop
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
        run = PassArrays(step, *parts, consts, steps, reverse)
        nodes = step.program.nodes
        saves = {
            i: np.empty((steps, run.batch, nodes[i].width), run.dtype)
            for k in step.kernels
            if k is not None
            for i in k.saved
        }
        if keep is None and step.small(run.batch):
            arrays = driver_arrays(step, run, saves, None, step.driver_args[0])
            step.module().pass_forward(run.time_array, run.previous, run.batch, step.dims, *arrays)
        else:
            forward_loop(step, run, saves, keep)
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
            arrays = driver_arrays(step, run, saves, grads, step.driver_args[1])
            step.module().pass_backward(run.time_array, run.previous, run.batch, step.dims, *arrays)
        else:
            backward_loop(step, run, saves, grads, keep)
        return (
            *(grads[node][steps] for node in program.states),
            *(grads[i] for i in step.leaves["row"]),
            *_weight_grads(run, step, grads, buffer_homes(step)),
            *(grads[i].reshape(run.shapes[i]) for i in step.leaves["vector"]),
        )


def _weight_grads(run: PassArrays, step: CompiledStep, grads: dict, homes: dict) -> list:
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
