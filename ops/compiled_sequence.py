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
from .step_program import Schedule, StepProgram

__all__ = ["CompiledSequence", "CompiledStep", "compiled_step"]

_STEPS: dict = {}


class CompiledStep:
    """A ``StepProgram``'s schedule and its loaded kernels for one dtype."""

    def __init__(self, program: StepProgram, dtype):
        self.program, self.dtype = program, np.dtype(dtype)
        self.schedule = Schedule.of(program)
        self.source, self.kernels = generate(self.schedule, self.dtype)
        nodes = program.nodes
        self.dims = np.array(sorted({n.width for n in nodes} | {n.offset for n in nodes}),
                             np.int64)
        self._module = None
        self.leaves = {kind: [i for i, n in enumerate(nodes) if n.kind == kind]
                       for kind in ("state", "row", "weight", "vector", "const")}

    def functions(self) -> list:
        """Per stage, (forward, backward) Numba functions, or None (loaded on first use)."""
        if self._module is None:
            self._module = load_module(f"step_{self.dtype.name}", self.source)
        return [None if k is None else (getattr(self._module, f"stage{s}_forward"),
                                        getattr(self._module, f"stage{s}_backward"))
                for s, k in enumerate(self.kernels)]


def compiled_step(program: StepProgram, dtype) -> CompiledStep:
    """The ``CompiledStep`` of ``program`` for ``dtype`` (one per process)."""
    key = (program, np.dtype(dtype))
    step = _STEPS.get(key)
    if step is None:
        step = _STEPS[key] = CompiledStep(program, dtype)
    return step


class _Pass:
    """The arrays of one pass: leaf values by node, per-step buffers, the step order."""

    def __init__(self, step: CompiledStep, states, rows, weights, vectors, consts, steps,
                 reverse):
        program, nodes = step.program, step.program.nodes
        first = states[0]
        self.batch, self.dtype = first.shape[0], first.dtype
        self.times = list(range(steps - 1, -1, -1) if reverse else range(steps))
        self.fixed, self.shapes = {}, {}
        for kind, arrays in (("row", rows), ("weight", weights), ("vector", vectors),
                             ("const", consts)):
            for node, array in zip(step.leaves[kind], arrays):
                self.shapes[node] = np.shape(array)
                if kind in ("vector", "const"):
                    array = np.reshape(array, -1)
                self.fixed[node] = np.ascontiguousarray(array, dtype=self.dtype)
        self.state0 = [np.ascontiguousarray(s) for s in states]
        self.buffers = {i: np.empty((steps, self.batch, nodes[i].width), self.dtype)
                        for i in step.schedule.stored()}
        self.state_leaf = {node: slot for slot, node in enumerate(step.leaves["state"])}
        self.new_state = program.states

    def previous(self, slot: int, position: int) -> np.ndarray:
        """The state part ``slot`` the step at ``position`` (in run order) starts from."""
        if position == 0:
            return self.state0[slot]
        return self.buffers[self.new_state[slot]][self.times[position - 1]]

    def value(self, node: int, t: int, position: int) -> np.ndarray:
        if node in self.state_leaf:
            return self.previous(self.state_leaf[node], position)
        array = self.fixed.get(node)
        if array is None:
            return self.buffers[node][t]
        return array[t] if array.ndim == 3 else array


class CompiledSequence(Function):
    """(y, *final_state) = one pass of a compiled cell over all steps.

    Inputs: the initial state parts (B, W), the hoisted rows (T, B, W), the matmul weights
    (K, N) and the parameter vectors, in the order of the program's leaves. Attributes:
    ``step`` (a ``CompiledStep``), ``steps`` (T), ``reverse``, ``keep`` ((T, B) bool or
    None) and ``consts`` (the constant arrays).
    """

    op_name = "compiled_sequence"

    def forward(ctx, *arrays, step, steps, reverse=False, keep=None, consts=()):
        counts = [len(step.leaves[k]) for k in ("state", "row", "weight", "vector")]
        bounds = np.cumsum([0] + counts)
        parts = [arrays[bounds[k]:bounds[k + 1]] for k in range(4)]
        run = _Pass(step, *parts, consts, steps, reverse)
        functions, schedule = step.functions(), step.schedule
        saves = {i: np.empty((steps, run.batch, step.program.nodes[i].width), run.dtype)
                 for k in step.kernels if k is not None for i in k.saved}
        nodes = step.program.nodes
        for position, t in enumerate(run.times):
            for stage, kernel in enumerate(step.kernels):
                if kernel is not None:
                    args = [run.value(i, t, position) if role == "val" else saves[i][t]
                            for role, i in kernel.forward_args]
                    functions[stage][0](run.batch, step.dims, *args)
                for m in schedule.matmuls[stage]:
                    a, w = nodes[m].inputs
                    np.dot(run.value(a, t, position), run.fixed[w],
                           out=run.buffers[m][t])
            if keep is not None and not keep[t].all():
                gone = ~keep[t]
                for slot, node in enumerate(step.program.states):
                    run.buffers[node][t][gone] = run.previous(slot, position)[gone]
        ys = run.buffers[step.program.output]
        if keep is not None:
            ys = ys * keep[:, :, None]
        ctx.run, ctx.step, ctx.saves, ctx.keep = run, step, saves, keep
        last = run.times[-1]
        return (ys, *(run.buffers[node][last].copy() for node in step.program.states))

    def backward(ctx, dy, *dfinal):
        run, step, saves, keep = ctx.run, ctx.step, ctx.saves, ctx.keep
        program, schedule = step.program, step.schedule
        nodes, functions = program.nodes, step.functions()
        steps = len(run.times)
        grads = {i: np.zeros((steps, run.batch, nodes[i].width), run.dtype)
                 for i in step.leaves["row"] + [i for i, n in enumerate(nodes)
                                                if n.kind == "matmul"]}
        grads.update({i: np.zeros(nodes[i].width, run.dtype) for i in step.leaves["vector"]})
        temps = {i: np.empty((run.batch, nodes[i].width), run.dtype)
                 for i in schedule.stored() + step.leaves["state"] if i not in grads}
        carry = [np.zeros_like(s) if g is None else np.asarray(g, run.dtype)
                 for s, g in zip(run.state0, dfinal)]

        def adjoint(i, t):
            g = grads.get(i)
            return temps[i] if g is None else (g if g.ndim == 1 else g[t])

        for position in range(steps - 1, -1, -1):
            t = run.times[position]
            for i in temps:
                temps[i].fill(0)
            mask = None if keep is None or keep[t].all() else keep[t][:, None]
            for slot, node in enumerate(program.states):
                adjoint(node, t)[...] += carry[slot] if mask is None else carry[slot] * mask
            if dy is not None:
                adjoint(program.output, t)[...] += dy[t] if mask is None else dy[t] * mask
            for stage in range(len(step.kernels) - 1, -1, -1):
                for m in schedule.matmuls[stage]:
                    a, w = nodes[m].inputs
                    adjoint(a, t)[...] += grads[m][t] @ run.fixed[w].T
                kernel = step.kernels[stage]
                if kernel is not None:
                    args = [run.value(i, t, position) if role == "val" else
                            saves[i][t] if role == "save" else adjoint(i, t)
                            for role, i in kernel.backward_args]
                    functions[stage][1](run.batch, step.dims, *args)
            new_carry = [adjoint(i, t).copy() for i in step.leaves["state"]]
            if mask is not None:
                for slot in range(len(carry)):
                    new_carry[slot] += carry[slot] * (1 - mask)
            carry = new_carry
        return (*carry, *(grads[i] for i in step.leaves["row"]),
                *_weight_grads(run, step, grads),
                *(grads[i].reshape(run.shapes[i]) for i in step.leaves["vector"]))


def _weight_grads(run: _Pass, step: CompiledStep, grads: dict) -> list:
    """dW = sum over matmuls using W of sum_t a_t^T dm_t, one GEMM each over all steps."""
    nodes = step.program.nodes
    out = []
    for w in step.leaves["weight"]:
        total = np.zeros_like(run.fixed[w])
        for m, n in enumerate(nodes):
            if n.kind != "matmul" or n.inputs[1] != w:
                continue
            a = n.inputs[0]
            if a in run.state_leaf:
                lhs = np.stack([run.previous(run.state_leaf[a], p)
                                for p in range(len(run.times))])
                dm = grads[m][run.times]
            else:
                lhs, dm = run.buffers[a], grads[m]
            total += lhs.reshape(-1, lhs.shape[-1]).T @ dm.reshape(-1, dm.shape[-1])
        out.append(total)
    return out
