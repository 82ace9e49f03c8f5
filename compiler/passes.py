"""One compiled pass over T steps: its arrays, and its forward and backward time loops.

``PassArrays`` makes each array of the memory plan (memory.py) when a function first needs
it, and binds every ``Arg`` to its array. The time loops run the actions of step_plan.py,
either inside the generated drivers (one Numba call per pass) or in Python, with BLAS
products (variable lengths, and large steps where the drivers have no BLAS).

With ``keep`` (T, B) given (variable lengths), a sequence past its end keeps its state, as
the composed runner does, and the state's gradient passes such a step by. Selections,
never products with a mask, so a NaN in the padding stays there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .buffers import POOL
from .memory import Arg, Layout, Role, Space
from .step_plan import Action, KernelCall, Product, Zero

if TYPE_CHECKING:  # runtime.py imports this module
    from .runtime import CompiledStep

__all__ = [
    "PassArrays",
    "Spec",
    "WeightTerm",
    "backward_loop",
    "final_carries",
    "forward_loop",
    "spec",
    "vector_grads",
    "weight_grads",
    "weight_terms",
]

# With variable lengths, (T, B) bools: is sequence b still running at step t.
Keep = np.ndarray | None


class Spec(NamedTuple):
    """How a pass makes the array of an argument: its space and width, whether it starts
    zeroed, the argument whose array it shares (an alias), or the weight (K, N) it is a
    contiguous copy of (``transposed``: as (N, K))."""

    space: Space
    width: int
    zeroed: bool
    alias: Arg | None
    weight: Arg | None
    transposed: bool


def spec(layout: Layout, arg: Arg) -> Spec:
    """The ``Spec`` of ``arg`` in ``layout``."""
    weight = None
    if arg.role in (Role.WEIGHT, Role.WEIGHT_T):
        weight = Arg(Role.VALUE, layout.program.nodes[arg.node].inputs[1])
    space = layout.space(arg)
    zeroed = arg in layout.zero_once or space is Space.FIXED
    # A gradient no kernel writes (a row read only where its adjoint is zero) is zeros.
    zeroed = zeroed or (arg.role is Role.GRAD and arg not in layout.written)
    transposed = arg.role is Role.WEIGHT
    return Spec(space, layout.width(arg), zeroed, layout.alias.get(arg), weight, transposed)


class WeightTerm(NamedTuple):
    """One matmul's share of a weight's gradient: the values of its left operand, its
    gradient, and whether the left operand is a state part (read one step back)."""

    left: Arg
    grad: Arg
    state: bool


def weight_terms(layout: Layout, weights: list[int]) -> list[list[WeightTerm]]:
    """Per weight leaf (in slot order), the matmuls that use it, in node order: what
    ``weight_grads`` sums, worked out once per compiled step rather than per pass."""
    program = layout.program
    terms: list[list[WeightTerm]] = []
    for w in weights:
        terms.append(
            [
                WeightTerm(
                    layout.value(n.inputs[0]),
                    Arg(Role.GRAD, m),
                    program.nodes[n.inputs[0]].kind == "state",
                )
                for m, n in enumerate(program.nodes)
                if n.kind == "matmul" and n.inputs[1] == w
            ]
        )
    return terms


class PassArrays:
    """The arrays of one pass: the leaves given (rows (T, B, W), weights, vectors and
    constants, by node; the initial state parts (B, W) by the node of the new state each
    becomes, read or not), the rest made on first use."""

    def __init__(
        self, step: CompiledStep, leaves: dict[int, np.ndarray], steps: int, reverse: bool
    ):
        self.step, self.layout = step, step.layout
        self.dtype = dtype = step.dtype
        self.steps = steps
        self.batch = leaves[step.program.states[0]].shape[0]
        self.times, self.time_array, self.previous = step.order(steps, reverse)
        self.arrays: dict[Arg, np.ndarray] = {}
        arrays = self.arrays
        for home, arg in zip(step.program.states, step.state_values):
            states = arrays[arg] = self._make(step.spec(arg))
            states[steps] = leaves[home]
        for node, arg, shape, as_given in step.fixed:
            array = leaves[node] if shape is None else leaves[node].reshape(shape)
            # A weight stays as given (often a transposed view): the products read
            # contiguous copies made from it (WEIGHT, WEIGHT_T).
            arrays[arg] = (
                np.asarray(array, dtype=dtype)
                if as_given
                else np.ascontiguousarray(array, dtype=dtype)
            )

    def bind(self, arg: Arg) -> np.ndarray:
        """The array ``arg`` stands for in this pass (made now if it is new)."""
        array = self.arrays.get(arg)
        if array is None:
            array = self.arrays[arg] = self._make(self.step.spec(arg))
        return array

    def _make(self, made: Spec) -> np.ndarray:
        if made.alias is not None:
            return self.bind(made.alias)
        if made.weight is not None:
            weight = self.arrays[made.weight]
            return np.ascontiguousarray(weight.T if made.transposed else weight)
        space = made.space
        if space is Space.STATES:
            shape: tuple = (self.steps + 1, self.batch, made.width)
        elif space is Space.STEPS:
            shape = (self.steps, self.batch, made.width)
        elif space is Space.ROWS:
            shape = (self.batch, made.width)
        else:
            shape = (made.width,)
        return POOL.take(shape, self.dtype, made.zeroed)

    def keep_only(self, kept: set[Arg]) -> None:
        """Free the arrays not in ``kept`` (the forward's, once it is done with them)."""
        self.arrays = {a: array for a, array in self.arrays.items() if a in kept}

    def bind_all(self, args: list[Arg]) -> list[np.ndarray]:
        """The arrays of ``args``, in order (those that are new made now, in order)."""
        bind = self.bind
        return [bind(a) for a in args]

    def function_args(self, name: str) -> list[np.ndarray]:
        """The arrays generated function ``name`` takes, in order."""
        return self.bind_all(self.step.source.args[name])


Binder = Callable[[Arg], np.ndarray]
StepCall = Callable[[int, int], None]


def _product(run: PassArrays, action: Product, bind: Binder) -> StepCall:
    """``out (=|+=) left @ W`` on BLAS, for one step."""

    def per_step(arg: Arg) -> list | np.ndarray:
        array = bind(arg)
        return array if run.layout.space(arg) is Space.ROWS else list(array)

    left, out, matrix = per_step(action.left), per_step(action.out), bind(action.matrix)
    left_tp, out_tp, add = action.left_at == "tp", action.out_at == "tp", action.add

    def product(t: int, tp: int) -> None:
        a = left[tp if left_tp else t] if isinstance(left, list) else left
        into = out[tp if out_tp else t] if isinstance(out, list) else out
        if add:
            into += np.dot(a, matrix)
        else:
            np.dot(a, matrix, out=into)

    return product


def _step_calls(run: PassArrays, actions: list[Action], bind: Binder) -> list[StepCall]:
    """Per action, what the Python loop calls at each step: f(t, tp)."""
    functions, batch, dims = run.step.functions(), run.batch, run.step.dims
    calls: list[StepCall] = []
    for action in actions:
        if isinstance(action, KernelCall):
            kernel = functions[action.function]
            args = [bind(a) for a in run.step.source.args[action.function]]
            calls.append(lambda t, tp, f=kernel, a=args: f(t, tp, batch, dims, *a))
        elif isinstance(action, Product):
            calls.append(_product(run, action, bind))
        elif isinstance(action, Zero):
            zeroed = bind(action.arg)
            calls.append(lambda t, tp, a=zeroed: a.fill(0))
    return calls


def forward_loop(run: PassArrays, keep: Keep) -> None:
    """The forward time loop in Python (BLAS products); with ``keep``, a finished
    sequence's state rows are held."""
    calls = _step_calls(run, run.step.forward_actions, run.bind)
    states = [run.bind(Arg(Role.VALUE, s)) for s in run.step.program.states]
    for t, tp in zip(run.times, run.previous):
        for call in calls:
            call(t, tp)
        if keep is not None and not keep[t].all():
            gone = ~keep[t]
            for values in states:
                values[t][gone] = values[tp][gone]


def backward_loop(run: PassArrays, keep: Keep) -> None:
    """BPTT in Python (BLAS products), the carried gradients swapped after each step by
    alternating two bindings; with ``keep``, a finished sequence's state gradient passes
    the step by."""
    pairs = run.layout.carried()
    swap = {**dict(pairs), **{old: new for new, old in pairs}}
    binders = [run.bind, lambda arg: run.bind(swap.get(arg, arg))]  # even, odd steps
    calls = [_step_calls(run, run.step.backward_actions, bind) for bind in binders]
    carries = [[(bind(new), bind(old)) for new, old in pairs] for bind in binders]
    for k, (t, tp) in enumerate(zip(run.times[::-1], run.previous[::-1])):
        held = None
        if keep is not None and not keep[t].all():
            gone = ~keep[t]
            held = [(new[gone].copy(), old) for new, old in carries[k % 2]]
            for new, _ in carries[k % 2]:
                new[gone] = 0
        for call in calls[k % 2]:
            call(t, tp)
        if held is not None:
            for incoming, old in held:
                old[gone] += incoming


def final_carries(run: PassArrays) -> list[np.ndarray]:
    """The gradients of the initial state parts, after the backward loop (which of them
    composed gives at all is ``StepProgram.gradient_reach``'s to say: a part the step never
    reads still gets one when a finished sequence holds it)."""
    return run.bind_all(run.step.initial_grads[run.steps % 2])


def weight_grads(run: PassArrays) -> list[np.ndarray]:
    """dW = sum over matmuls using W of sum_t a_t^T dm_t, one GEMM each over all steps.

    A state operand is the state each step started from: for the forward direction
    a_t = s_{t-1} (s_{-1} the initial state, kept at [T]), so the sum is one GEMM over the
    steps 1..T-1 plus one for step 0, with no shifted copy (reverse: a_t = s_{t+1})."""
    steps, bind, first = run.steps, run.bind, run.times[0]
    out = []
    for terms in run.step.weight_terms:
        total = None
        for left, grad, state in terms:
            lhs, dm = bind(left), bind(grad)
            if state:
                rest, prev = (
                    (dm[:-1], lhs[1:steps]) if first == steps - 1 else (dm[1:], lhs[: steps - 1])
                )
                part = lhs[steps].T @ dm[first]
            else:
                rest, prev, part = dm, lhs[:steps], None
            gemm = prev.reshape(-1, prev.shape[-1]).T @ rest.reshape(-1, rest.shape[-1])
            part = gemm if part is None else part + gemm
            total = part if total is None else total + part
        out.append(total)
    return out


def vector_grads(run: PassArrays) -> list[np.ndarray]:
    """Each parameter vector's gradient: summed in the kernels, or the sum over steps and
    rows of the matmul gradient it equals (memory.py's ``sums``), as ``ones @ dm``: BLAS's
    matrix-vector product, 2-3x faster than NumPy's column sum at these shapes."""
    out = []
    for arg, shared in run.step.vector_sums:
        if shared is None:
            out.append(run.bind(arg))
        else:
            dm = run.bind(shared)
            dm = dm.reshape(-1, dm.shape[-1])
            out.append(np.ones(dm.shape[0], dm.dtype) @ dm)
    return out
