"""The gradient at every time step of an unrolled cell: into each state, and into each weight.

Backpropagation through time sums, for a weight W used at every step, one contribution per
step: ``dL/dW = sum_t C_t``. ``unrolled_gradients`` runs a cell step by step and returns the
gradient reaching each state tensor after every step (``dL/dh_t``, and ``dL/dc_t`` for an
LSTM; the part arriving from step t+1 apart) and each step's ``C_t`` for chosen parameters;
``step_param_grads`` and ``step_gradient_norms`` are its two everyday views. Re-exported by
``tinygrad_lstm.tooling.viz``. Tooling: it runs cells of any plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tinygrad_lstm.layers.checks import check_step_result

from tinygrad_lstm.module import Module
from tinygrad_lstm.registry import op
from tinygrad_lstm.tensor import Tensor, TensorLike

__all__ = [
    "StepGradients",
    "UnrolledGradients",
    "step_gradient_norms",
    "step_param_grads",
    "unrolled_gradients",
]

# The loss on the outputs at the loss steps, in order: a scalar Tensor.
LossFn = Callable[[list[Tensor]], Tensor]


@dataclass
class StepGradients:
    """Per-step gradient norms of one backward pass through an unrolled cell.

    ``norms[name][t] = ||dL/d{name}_t||`` (Frobenius norm over the batch) for each state
    tensor the cell carries (``"h"``; ``"h"`` and ``"c"`` for an LSTM), where ``{name}_t`` is
    the state *after* step t; steps after the last loss step get 0. ``loss_steps`` are the
    steps the loss read, ``loss`` its value.
    """

    norms: dict[str, np.ndarray]
    loss_steps: tuple[int, ...]
    loss: float

    def ratio(self, name: str = "h") -> float:
        """``||dL/d{name}_0|| / ||dL/d{name}_T'||``, T' the last loss step: the fraction of
        the gradient that survives the trip back to the first step (nan when the loss step
        itself got no gradient)."""
        norms = self.norms[name]
        last = norms[self.loss_steps[-1]]
        return float(norms[0] / last) if last > 0 else float("nan")


def _state_parts(
    cell: Module, state: Tensor | tuple[Tensor, ...]
) -> tuple[tuple[str, Tensor], ...]:
    parts = state if isinstance(state, tuple) else (state,)
    names = getattr(cell, "state_names", None) or ("h", "c", *(f"s{i}" for i in range(2, 9)))
    return tuple(zip(names, parts))


def _as_cell(model: Module, caller: str) -> Module:
    """A cell, or the only cell of a one-layer unidirectional ``Recurrent``."""
    if callable(getattr(model, "init_state", None)) and not hasattr(model, "cell_l0"):
        return model
    if getattr(model, "num_layers", 1) != 1 or getattr(model, "bidirectional", False):
        raise ValueError(
            f"{caller}: give a cell, or a Recurrent with num_layers=1 "
            "and bidirectional=False (pass model.cell_l{k} for another layer)"
        )
    return model.cell_l0


def _mean_square(outputs: list[Tensor]) -> Tensor:
    loss = None
    for out in outputs:
        term = (out * out).mean()
        loss = term if loss is None else loss + term
    return loss


@dataclass
class UnrolledGradients:
    """The gradients of one backward pass through a cell unrolled over T steps.

    - ``states[name]`` (T, N, ...): ``dL/ds_t``, all the gradient reaching state ``s`` after
      step t (from the loss, when t is a loss step, and from step t+1);
    - ``from_next[name]`` (T, N, ...): the part of it that arrives from step t+1;
    - ``params[name]`` (T, *shape): ``C_t``, what step t adds to ``dL/dW``; their sum over t
      is the ``.grad`` a backward through the same unrolled graph gives.

    Steps after the last loss step get zeros; ``loss_steps`` are the steps the loss read;
    ``outputs`` names the states that are the step's output itself (``h`` for the built-in
    cells), the only ones the loss reaches other than through step t+1.
    """

    states: dict[str, np.ndarray]
    from_next: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    loss_steps: tuple[int, ...]
    loss: float
    outputs: tuple[str, ...] = ()


def _loss_steps(caller: str, loss_steps: Sequence[int] | None, steps: int) -> list[int]:
    given = list(loss_steps) if loss_steps is not None else [-1]
    if not given or any(not -steps <= t < steps for t in given):
        raise ValueError(f"{caller}: loss_steps {loss_steps} out of range for {steps} steps")
    return sorted({t % steps for t in given})


def _copy(grad: np.ndarray | None) -> np.ndarray | None:
    return None if grad is None else grad.copy()


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def _owner(cell: Module, name: str) -> tuple[Module, str]:
    """The module holding parameter ``name`` (dotted for a sub-module's) and its attribute."""
    *path, attr = name.split(".")
    owner = cell
    for part in path:
        owner = getattr(owner, part)
    return owner, attr


class _StepParameters:
    """Fresh leaves sharing the data of the cell's parameters, swapped into the cell for the
    duration of one step: the gradient each leaf collects is that step's contribution, and
    the cell's own parameters stay out of the graph (their ``.grad`` is left as it was)."""

    def __init__(self, cell: Module) -> None:
        self.cell = cell
        self.originals = dict(cell.named_parameters())
        self.names = list(self.originals)
        self.steps: list[dict[str, Tensor]] = []

    def __enter__(self) -> None:
        fresh = {}
        for name in self.names:
            original = self.originals[name]
            fresh[name] = type(original)(original.data, requires_grad=original.requires_grad)
            setattr(*_owner(self.cell, name), fresh[name])
        self.steps.append(fresh)

    def __exit__(self, *exc: object) -> None:
        for name in self.names:
            setattr(*_owner(self.cell, name), self.originals[name])

    def contributions(self, names: Sequence[str], steps: int) -> dict[str, np.ndarray]:
        out = {name: np.zeros((steps, *self.originals[name].shape)) for name in names}
        for t, fresh in enumerate(self.steps):
            for name in names:
                if fresh[name].grad is not None:
                    out[name][t] = fresh[name].grad
        return out


def unrolled_gradients(
    model: Module,
    x: TensorLike,
    loss_fn: LossFn | None = None,
    loss_steps: Sequence[int] | None = None,
    params: Sequence[str] = (),
) -> UnrolledGradients:
    """Run ``model`` over ``x`` (T, N, I) step by step, backpropagate a loss on the outputs
    at ``loss_steps`` (default: the last step), and return every step's gradients: into each
    state tensor, and each step's contribution to the parameters named in ``params``. For a
    ``batch_first`` layer ``x`` is (N, T, I), as the layer takes it; the results are still
    indexed by time first.

    ``model`` is a cell (``init_state(batch, dtype)``, ``forward(x_t, state) -> (output_t,
    new_state)``) or a one-layer unidirectional composed ``Recurrent``. ``loss_fn(outputs) ->
    scalar Tensor`` receives the outputs (N, H) at ``loss_steps``, in order; by default it is
    ``sum_t mean(output_t ** 2)``. State gradients are recorded by ``register_hook``; a
    parameter's per-step contribution by giving step t its own leaves that share the
    parameters' data, so the cell's own ``.grad`` is left as it was (parameters that only
    ``loss_fn`` uses do accumulate).
    """
    return _unrolled("unrolled_gradients", model, x, loss_fn, loss_steps, params)


def _unrolled(
    caller: str,
    model: Module,
    x: TensorLike,
    loss_fn: LossFn | None,
    loss_steps: Sequence[int] | None,
    params: Sequence[str],
) -> UnrolledGradients:
    cell = _as_cell(model, caller)
    if params and getattr(model, "fused", False):
        raise ValueError(
            f"{caller}: this layer is fused=True: each pass is one recorded op with "
            "a hand-written backward, so no step has nodes of its own to take a "
            "contribution from; build it with fused=False (load_state_dict carries "
            "the weights over)"
        )
    unknown = [n for n in params if n not in dict(cell.named_parameters())]
    if unknown:
        raise ValueError(
            f"{caller}: no parameter {', '.join(map(repr, unknown))} in "
            f"{type(cell).__name__}; it has {[n for n, _ in cell.named_parameters()]}"
        )
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    batch_first = cell is not model and getattr(model, "batch_first", False)
    if x.ndim != 3:
        layout = "(N, T, I) (the layer is batch_first)" if batch_first else "(T, N, I)"
        raise ValueError(f"{caller}: expected x of shape {layout}, got {x.shape}")
    if batch_first:
        x = x.transpose(1, 0, 2)  # stepped along time; the results are time-major
    steps = x.shape[0]
    chosen = _loss_steps(caller, loss_steps, steps)
    state = cell.init_state(x.shape[1], x.dtype)
    states, from_next, outputs, output_states = {}, {}, [], set()
    swapped = _StepParameters(cell)

    def recorder(table: dict, name: str, t: int) -> Callable[[np.ndarray], None]:
        def hook(grad: np.ndarray) -> None:
            table[name][t] = grad

        return hook

    # unstack, not x[t]: each getitem's backward would allocate a whole (T, N, I) array.
    for t, x_t in enumerate(op("unstack").apply(x, axis=0)):
        with swapped:
            out, state = check_step_result(cell, state, cell(x_t, state))
        fed = []
        for name, part in _state_parts(cell, state):
            if part is out:
                output_states.add(name)
            states.setdefault(name, np.zeros((steps, *part.shape)))
            from_next.setdefault(name, np.zeros((steps, *part.shape)))
            if part.requires_grad:
                part.register_hook(recorder(states, name, t))
                # A node of its own for what step t+1 reads, so its gradient is told apart.
                part = part.reshape(part.shape)
                part.register_hook(recorder(from_next, name, t))
            fed.append(part)
        state = tuple(fed) if isinstance(state, tuple) else fed[0]
        if t in chosen:
            outputs.append(out)
        if t == chosen[-1]:
            break
    loss = (loss_fn or _mean_square)(outputs)
    before = {n: _copy(swapped.originals[n].grad) for n in params}
    loss.backward()
    for name in params:
        if not _same(before[name], swapped.originals[name].grad):
            raise RuntimeError(
                f"{caller}: {name!r} reached the graph other than as the cell's "
                "attribute at each step (a copy kept from an earlier step?), so "
                "its per-step split would be incomplete"
            )
    return UnrolledGradients(
        states,
        from_next,
        swapped.contributions(params, steps),
        tuple(chosen),
        float(loss.data),
        tuple(n for n in states if n in output_states),
    )


def step_param_grads(
    model: Module,
    x: TensorLike,
    name: str,
    loss_fn: LossFn | None = None,
    loss_steps: Sequence[int] | None = None,
) -> np.ndarray:
    """Each step's contribution ``C_t`` (T, *shape) to ``dL/d{name}``: ``sum(C) == .grad``.

    In BPTT a weight used at every step gets ``dL/dW = sum_t C_t``, C_t being the gradient
    through step t's use of W alone (for ``weight_hh``: ``C_t = dz_t^T h_{t-1}``, dz_t the
    gradient of step t's pre-activations). ``name`` is a parameter of the cell
    (``"weight_hh"``) or, for a ``Recurrent``, its layer name (``"weight_hh_l0"``); model, x,
    loss_fn and loss_steps are as in ``unrolled_gradients``. A ``fused=True`` layer is
    refused: it records the whole pass as one op, with no per-step nodes.
    """
    if hasattr(model, "cell_l0") and name.endswith("_l0"):
        name = name[: -len("_l0")]
    return _unrolled("step_param_grads", model, x, loss_fn, loss_steps, [name]).params[name]


def step_gradient_norms(
    model: Module,
    x: TensorLike,
    loss_fn: LossFn | None = None,
    loss_steps: Sequence[int] | None = None,
) -> StepGradients:
    """Run ``model`` over ``x`` (T, N, I) step by step ((N, T, I) for a ``batch_first``
    layer), backpropagate a loss on the outputs at ``loss_steps`` (default: the last step),
    and return ``||dL/ds_t||`` for every step t and every state tensor s.

    ``model`` is a cell (``init_state(batch, dtype)``, ``forward(x_t, state) -> (output_t,
    new_state)``) or a one-layer unidirectional ``Recurrent``. ``loss_fn(outputs) -> scalar
    Tensor`` receives the outputs (N, H) at ``loss_steps``, in order; by default it is
    ``sum_t mean(output_t ** 2)``. The norms are recorded by ``register_hook`` on each step's
    new state, so they are the full gradients flowing into ``s_t``: from the loss directly
    (when t is a loss step) plus everything arriving from later steps. The cell's parameter
    gradients are left as they were (parameters used only by ``loss_fn`` do accumulate).
    """
    result = _unrolled("step_gradient_norms", model, x, loss_fn, loss_steps, ())
    norms = {
        name: np.sqrt(np.sum(np.square(g.reshape(len(g), -1), dtype=np.float64), axis=1))
        for name, g in result.states.items()
    }
    return StepGradients(norms, result.loss_steps, result.loss)
