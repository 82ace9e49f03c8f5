"""The BPTT ledger: a small recurrent model's backward pass, step by step, checked three ways.

``explain("lstm")`` builds a one-layer model (T=10, hidden 3, one sequence, float64), puts the
loss ``L = 1/2 sum_{t in S} ||h_t - y_t||^2`` on the last output (``loss="last"``) or on all
of them, and walks the backward pass from t = T-1 down to 0. Every step records what arrives
at the state (from the loss at t, from step t+1; for an LSTM also at c_t, through the forget
gate and from h_t), the gates' local gradients, the factor along the path back to the last
step (the vanishing or exploding factor), and what the step adds to each weight's gradient,
with the running sum. At the end the summed gradients come from three sources side by side:

- ``ledger``: the sum of the per-step contributions. For the built-in cells it is the
  hand-written derivation of ``tinygrad_lstm.tooling.bptt_derivations`` (docs/bptt_equations.md);
  for any other cell, or with ``from_graph=True``, it is read off the recorded graph
  (``viz.unrolled_gradients``: hooks on each state, a fresh leaf per weight per step);
- ``autograd``: ``.grad`` after ``loss.backward()`` through the model itself;
- ``central differences``: the fourth-order central difference of L per weight element.

``Ledger.worst`` is their largest relative disagreement, ``max|a - b| / max(|a|, |b|)`` over
a parameter's elements, worst over parameters and pairs of sources (``inf`` when a source is
not finite). When autograd and central differences disagree, every op of the recorded step
goes through its own gradient check (``testing.check_op``), and those that fail are named.
The record itself is ``ledger_record.Ledger``. Tooling layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike
from tinygrad_lstm.layers import Recurrent
from tinygrad_lstm.layers.checks import check_step_result

from tinygrad_lstm.autograd import no_grad
from tinygrad_lstm.module import Module, Parameter
from tinygrad_lstm.registry import cell as registered_cell
from tinygrad_lstm.registry import list_ops
from tinygrad_lstm.tensor import Tensor

from .bptt_derivations import DERIVATIONS, HandStep
from .ledger_record import SOURCES, TOLERANCE, Ledger
from .step_gradients import unrolled_gradients
from .testing import check_op
from .viz import graph_ops

__all__ = [
    "DEFAULT_SEQ_LEN",
    "LOSS_MODES",
    "SOURCES",
    "TOLERANCE",
    "Ledger",
    "explain",
    "ledger",
    "set_forget_bias",
]

LossMode = Literal["last", "all"]
LOSS_MODES: tuple[str, ...] = get_args(LossMode)
# Long enough that the path factor of a default LSTM falls by two orders of magnitude
# (about 0.55 per step): vanishing is visible, and central differences stay quick.
DEFAULT_SEQ_LEN = 10


def _as_cell(model: Module) -> Module:
    if isinstance(model, Recurrent):
        if model.num_layers != 1 or model.bidirectional or model.fused:
            raise ValueError(
                "ledger: needs a one-layer, unidirectional, composed (fused=False) "
                f"layer, got {model!r}"
            )
        return model.cell_l0
    return model


def _outputs(model: Module, x: np.ndarray) -> list[Tensor]:
    """The model's output at every step: the layer itself, or a cell stepped by hand."""
    if isinstance(model, Recurrent):
        out, _ = model(Tensor(x))
        return [out[t] for t in range(x.shape[0])]
    state, outs = model.init_state(x.shape[1], x.dtype), []
    for x_t in x:
        out, state = check_step_result(model, state, model(Tensor(x_t), state))
        outs.append(out)
    return outs


def _half_squared_error(outputs: list[Tensor], targets: list[np.ndarray]) -> Tensor:
    loss = None
    for out, y in zip(outputs, targets):
        diff = out - Tensor(y)
        term = (diff * diff).sum() * 0.5
        loss = term if loss is None else loss + term
    return loss


def _central_differences(
    params: dict[str, Parameter], loss_of: Callable[[], float], eps: float
) -> dict[str, np.ndarray]:
    """dL/dw per element by the fourth-order central difference
    (8 (L(w+e) - L(w-e)) - (L(w+2e) - L(w-2e))) / (12 e): error O(e^4), so a larger e keeps
    rounding small too."""
    grads = {}
    with no_grad():
        for name, p in params.items():
            grad = np.zeros_like(p.data)
            for j in np.ndindex(p.shape):
                kept = p.data[j]
                at = {}
                for k in (-2, -1, 1, 2):
                    p.data[j] = kept + k * eps
                    at[k] = loss_of()
                p.data[j] = kept
                grad[j] = (8 * (at[1] - at[-1]) - (at[2] - at[-2])) / (12 * eps)
            grads[name] = grad
    return grads


def _graph_steps(
    cell: Module, x: np.ndarray, targets: list[np.ndarray], loss_steps: list[int], names: list[str]
) -> list[HandStep]:
    """The ledger read off the recorded graph: for any cell, no derivation needed."""
    result = unrolled_gradients(
        cell, x, lambda outs: _half_squared_error(outs, targets), loss_steps, params=names
    )
    steps = []
    for t in range(x.shape[0] - 1, -1, -1):
        arriving = {}
        for s, total in result.states.items():
            nxt = result.from_next[s][t]
            # What does not come from step t+1 comes from step t itself: from the loss for the
            # state that is the output, through the output for any other state.
            here = f"d{s}←loss" if s in result.outputs else f"d{s}←step t"
            arriving.update({here: total[t] - nxt, f"d{s}←t+1": nxt, f"d{s}": total[t]})
        steps.append(HandStep(t, arriving, {}, None, {n: result.params[n][t] for n in names}))
    return steps


def _checked(
    x: ArrayLike, targets: ArrayLike, loss_steps: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    x, targets = np.asarray(x, np.float64), np.asarray(targets, np.float64)
    if x.ndim != 3 or targets.ndim != 3 or targets.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"ledger: expected x (T, N, I) and targets (T, N, H) with the same T "
            f"and N, got x {x.shape} and targets {targets.shape}"
        )
    steps = list(loss_steps)
    if not steps or any(not -x.shape[0] <= t < x.shape[0] for t in steps):
        raise ValueError(f"ledger: loss_steps {steps} out of range for {x.shape[0]} steps")
    return x, targets, sorted({t % x.shape[0] for t in steps})


def ledger(
    model: Module,
    x: ArrayLike,
    targets: ArrayLike,
    loss_steps: Sequence[int],
    from_graph: bool = False,
    eps: float = 5e-4,
    title: str = "",
) -> Ledger:
    """The ledger of ``model`` (a cell, or a one-layer unidirectional composed ``Recurrent``,
    float64) on ``x`` (T, N, I) with ``L = 1/2 sum_{t in loss_steps} ||out_t - targets[t]||^2``
    (``targets`` (T, N, H)). Uses the hand derivation for the built-in cells unless
    ``from_graph``; the model's ``.grad`` is overwritten by the autograd source."""
    cell = _as_cell(model)
    params = dict(cell.named_parameters())
    if any(p.dtype != np.float64 for p in params.values()):
        raise ValueError(
            "ledger: needs a float64 model (central differences in float32 are "
            "good to about 1e-2); call model.to(np.float64)"
        )
    x, targets, loss_steps = _checked(x, targets, loss_steps)
    chosen = [targets[t] for t in loss_steps]

    def loss_tensor() -> Tensor:
        outs = _outputs(model, x)
        return _half_squared_error([outs[t] for t in loss_steps], chosen)

    hand = DERIVATIONS.get(type(cell).__name__)
    if getattr(cell, "proj_size", 0) or getattr(cell, "bias_ih", True) is None:
        hand = None
    read_off = hand is None or from_graph
    if read_off:
        steps, how, path = (
            _graph_steps(cell, x, chosen, loss_steps, list(params)),
            "read off the recorded graph (viz.unrolled_gradients)",
            None,
        )
    else:
        forward, backward, header, meaning = hand
        path = (header, meaning)
        options = {"nonlinearity": cell.nonlinearity} if hasattr(cell, "nonlinearity") else {}
        weights = {k: v.data for k, v in params.items()}
        fwd = forward(weights, x, **options)
        dloss = np.zeros((x.shape[0], *fwd[0]["h"].shape))
        for t, y in zip(loss_steps, chosen):
            dloss[t] = fwd[t]["h"] - y
        steps = backward(weights, x, fwd, dloss)
        how = f"hand-written BPTT (bptt_derivations.{backward.__name__})"
    running, total = [], {n: np.zeros(p.shape) for n, p in params.items()}
    for step in steps:
        total = {n: total[n] + step.contributions[n] for n in params}
        running.append(total)
    for p in params.values():
        p.grad = None
    loss = loss_tensor()
    ops = graph_ops(loss)
    loss.backward()
    grads = {
        "ledger": total,
        "autograd": {n: p.grad.copy() for n, p in params.items()},
        "central differences": _central_differences(params, lambda: float(loss_tensor().data), eps),
    }
    result = Ledger(title, how, path, steps, running, grads, float(loss.data), read_off)
    if max(result.disagreements["autograd vs central differences"].values()) > TOLERANCE:
        registered = {info.name for info in list_ops()}
        result.wrong_ops = [n for n in ops if n in registered and not check_op(n).ok]
    return result


def set_forget_bias(cell: Module, value: float) -> None:
    """Set an LSTM cell's forget-gate bias: ``b_ih[H:2H] = value``, ``b_hh[H:2H] = 0`` (gate
    order i, f, g, o, PyTorch's), so the forget gate starts near ``sigmoid(value)``."""
    hidden = cell.weight_hh.shape[1]
    cell.bias_ih.data[hidden : 2 * hidden] = value
    cell.bias_hh.data[hidden : 2 * hidden] = 0.0


def explain(
    cell: str = "lstm",
    seq_len: int = DEFAULT_SEQ_LEN,
    hidden: int = 3,
    input_size: int = 2,
    loss: LossMode = "last",
    seed: int = 0,
    from_graph: bool = False,
    forget_bias: float | None = None,
) -> Ledger:
    """The ledger of ``Recurrent(cell, input_size, hidden)`` (float64, weights from
    ``seed``) on one sequence x ~ N(0, 1) of ``seq_len`` steps, targets y ~ U(-0.5, 0.5),
    the loss on the last output or on ``"all"``; ``forget_bias`` (LSTM only) sets the
    forget gate's bias first (``set_forget_bias``)."""
    registered_cell(cell)  # a clear error for an unknown name, before anything is built
    for what, value in (("seq_len", seq_len), ("hidden", hidden), ("input_size", input_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"explain: {what} must be a positive integer, got {value!r}")
    if loss not in LOSS_MODES:
        raise ValueError(f"explain: loss must be one of {LOSS_MODES}, got {loss!r}")
    if forget_bias is not None and cell != "lstm":
        raise ValueError(
            f"explain: forget_bias sets the LSTM's forget-gate bias; {cell!r} is not the lstm"
        )
    rng = np.random.default_rng(seed)
    model = Recurrent(cell, input_size, hidden, dtype=np.float64, rng=rng)
    if forget_bias is not None:
        set_forget_bias(model.cell_l0, forget_bias)
    x = rng.standard_normal((seq_len, 1, input_size))
    width = model.output_size
    targets = rng.uniform(-0.5, 0.5, (seq_len, 1, width))
    steps = [seq_len - 1] if loss == "last" else list(range(seq_len))
    where = "the last output" if loss == "last" else "every output"
    bias = "" if forget_bias is None else f", forget-gate bias {forget_bias:g}"
    title = (
        f"{cell}, T={seq_len}, hidden {hidden}, input {input_size}, one sequence, seed "
        f"{seed}{bias}; L = 1/2 ||h_t - y_t||^2 on {where}"
    )
    return ledger(model, x, targets, steps, from_graph=from_graph, title=title)
