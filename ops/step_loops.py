"""The arrays and the Python time loops of one compiled pass (ops/compiled_sequence.py's op).

``PassArrays`` holds a pass's buffers: every stored node has a (T, B, W) buffer indexed by
time. A step whose matmuls are small runs the whole pass in one generated Numba driver
(``driver_arrays`` hands it its arrays by name); a larger one runs here, ``forward_loop`` and
``backward_loop`` calling BLAS and the stage kernels once per step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .step_driver import DRIVER_ARG

if TYPE_CHECKING:
    from .compiled_sequence import CompiledStep

__all__ = ["PassArrays", "backward_loop", "buffer_homes", "driver_arrays", "forward_loop"]


def buffer_homes(step: CompiledStep) -> dict[int, int]:
    """Node -> the node whose buffer holds it (a state part: its new-state node)."""
    nodes, states = step.program.nodes, step.program.states
    return {i: states[n.slot] if n.kind == "state" else i for i, n in enumerate(nodes)}


class PassArrays:
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


def forward_loop(step: CompiledStep, run: PassArrays, saves: dict, keep) -> None:
    """The forward time loop in Python: per step each stage's kernel, then its matmuls on
    BLAS; with ``keep``, a finished sequence's state rows are held."""
    nodes, homes, functions = step.program.nodes, buffer_homes(step), step.functions()
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


def backward_loop(step: CompiledStep, run: PassArrays, saves: dict, grads: dict, keep) -> None:
    """BPTT in Python: per step from the last, each stage from the last: its matmuls'
    backward on BLAS, then its backward kernel. With ``keep``, a finished sequence's state
    gradient passes the step by."""
    nodes, homes, functions = step.program.nodes, buffer_homes(step), step.functions()
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


def driver_arrays(
    step: CompiledStep, run: PassArrays, saves: dict, grads: dict | None, names: list[str]
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
