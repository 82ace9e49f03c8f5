"""gradcheck: compare backward() with central differences, in float64.

For a function ``fn(*inputs) -> Tensor | tuple[Tensor, ...]`` we draw a random upstream
gradient ``v`` for every output and check the vector-Jacobian product: the analytic
``d(sum(v * fn))/dx`` from one backward() against the numerical

    (L(x + eps e_j) - L(x - eps e_j)) / (2 eps),   L = sum(v * fn(x)),

for every element j of every input that requires grad (a random ``v`` catches a wrong
backward with probability one, where ``v = ones`` would miss errors that cancel in a sum).
Inputs with more than ``max_elements`` elements are checked along random unit directions
instead of every element. A mismatch raises ``GradcheckError`` naming the input, the worst
element, and both values.

float32 is refused: its central differences are only good to about 1e-7/eps ~ 0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .autograd import no_grad
from .tensor import Tensor

__all__ = ["GradcheckError", "GradcheckResult", "InputReport", "gradcheck"]


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree (or cannot be compared)."""


@dataclass
class InputReport:
    """How one input fared: its worst element and both gradient values there.

    ``rel_error`` is the largest ``|analytic - numeric| / max(|numeric|, atol / rtol)``: the
    relative error, with |numeric| floored where the absolute tolerance governs, so an input
    passes when it is at most about ``rtol``.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    worst_element: tuple[int, ...] | int
    analytic: float
    numeric: float
    abs_error: float
    rel_error: float
    checked: str  # "every element" or "N random directions"


@dataclass
class GradcheckResult:
    """Per-input reports; ``worst_rel_error`` is the largest over all inputs."""

    inputs: list[InputReport]

    @property
    def worst_rel_error(self) -> float:
        return max((r.rel_error for r in self.inputs), default=0.0)


def _outputs(result: Any) -> tuple[Tensor, ...]:
    outs = result if isinstance(result, (tuple, list)) else (result,)
    flat: list[Tensor] = []
    for o in outs:
        if isinstance(o, (tuple, list)):
            flat.extend(_outputs(o))
        elif isinstance(o, Tensor):
            flat.append(o)
    return tuple(flat)


def gradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    max_elements: int = 4096,
    n_directions: int = 16,
    seed: int = 0,
    names: list[str] | None = None,
) -> GradcheckResult:
    """Check ``fn``'s gradients with respect to every input Tensor that requires grad.

    Passes when ``|analytic - numeric| <= atol + rtol * |numeric|`` everywhere. The defaults
    are PyTorch's; the project's own tests pass tighter ones. Returns a ``GradcheckResult``;
    raises ``GradcheckError`` on a mismatch, ``TypeError`` on non-float64 inputs.
    """
    checked = _checked_inputs(inputs, eps)
    rng = np.random.default_rng(seed)
    names = names or [f"input {i}" for i in range(len(inputs))]
    upstream, analytic = _analytic_gradients(fn, inputs, checked, rng)

    def loss() -> float:
        return _loss_value(fn, inputs, upstream)

    reports = []
    for i in checked:
        x = inputs[i].data
        if x.size <= max_elements:
            how, a_cmp = "every element", analytic[i].reshape(-1)
            n_cmp = _numeric_per_element(x, loss, eps)
        else:
            how = f"{n_directions} random directions"
            directions = _unit_directions(rng, n_directions, x.shape)
            a_cmp = directions.reshape(n_directions, -1) @ analytic[i].reshape(-1)
            n_cmp = _numeric_along(x, loss, eps, directions)
        reports.append(_compare(i, names[i], x.shape, a_cmp, n_cmp, how, atol, rtol, eps))
    return GradcheckResult(reports)


def _checked_inputs(inputs: tuple, eps: float) -> list[int]:
    """Indices of the inputs to check: Tensors that require grad, all float64."""
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input is a Tensor with requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} is {inputs[i].dtype}; central differences need float64 "
                f"(in float32 the rounding error is ~1e-7/eps = 0.1 with eps={eps:g}, so a "
                "correct gradient would fail). Convert with Tensor(x.data.astype(np.float64))"
            )
    return checked


def _analytic_gradients(
    fn: Callable[..., Any], inputs: tuple, checked: list[int], rng: np.random.Generator
) -> tuple[list, dict]:
    """(upstream v per output, d(sum(v * fn))/dx per checked input) from one backward();
    the inputs' ``.grad`` are left as they were."""
    saved_grads = [inputs[i].grad for i in checked]
    for i in checked:
        inputs[i].grad = None
    try:
        outs = _outputs(fn(*inputs))
        upstream = [rng.standard_normal(o.shape) for o in outs]
        loss = None
        for o, v in zip(outs, upstream):
            if o.requires_grad:
                term = (o * Tensor(v.astype(o.dtype))).sum()
                loss = term if loss is None else loss + term
        if loss is None:
            raise GradcheckError("gradcheck: no output of fn requires grad")
        loss.backward()
        analytic = {
            i: np.zeros(inputs[i].shape) if inputs[i].grad is None else inputs[i].grad
            for i in checked
        }
    finally:
        for i, g in zip(checked, saved_grads):
            inputs[i].grad = g
    return upstream, analytic


def _loss_value(fn: Callable[..., Any], inputs: tuple, upstream: list) -> float:
    """``sum(v * fn(*inputs))`` without recording a graph."""
    with no_grad():
        return float(sum(np.sum(o.data * v) for o, v in zip(_outputs(fn(*inputs)), upstream)))


def _numeric_per_element(x: np.ndarray, loss: Callable[[], float], eps: float) -> np.ndarray:
    """Central differences of ``loss`` for every element of ``x`` (flat), x restored."""
    numeric = np.empty(x.size)
    # Index x itself: reshape(-1) of a non-contiguous x is a copy, not a view.
    for j, at in enumerate(np.ndindex(x.shape)):
        old = x[at]
        x[at] = old + eps
        plus = loss()
        x[at] = old - eps
        minus = loss()
        x[at] = old
        numeric[j] = (plus - minus) / (2 * eps)
    return numeric


def _unit_directions(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """``n`` random unit vectors of ``shape``, stacked."""
    directions = rng.standard_normal((n,) + shape)
    norms = np.sqrt((directions.reshape(n, -1) ** 2).sum(1))
    return directions / norms.reshape((-1,) + (1,) * len(shape))


def _numeric_along(
    x: np.ndarray, loss: Callable[[], float], eps: float, directions: np.ndarray
) -> np.ndarray:
    """Central differences of ``loss`` along each direction, x restored."""
    numeric, original = np.empty(len(directions)), x.copy()
    for k, u in enumerate(directions):
        x[...] = original + eps * u
        plus = loss()
        x[...] = original - eps * u
        minus = loss()
        numeric[k] = (plus - minus) / (2 * eps)
    x[...] = original
    return numeric


def _compare(
    i: int,
    name: str,
    shape: tuple[int, ...],
    a_cmp: np.ndarray,
    n_cmp: np.ndarray,
    how: str,
    atol: float,
    rtol: float,
    eps: float,
) -> InputReport:
    """The report of one input, or a ``GradcheckError`` naming its worst element."""
    err = np.abs(a_cmp - n_cmp)
    allowed = atol + rtol * np.abs(n_cmp)
    # Relative to |numeric|, floored where atol governs the verdict: rounding noise on a
    # near-zero gradient then reads as what it is, and a pass means rel <~ rtol.
    rel = err / np.maximum(np.abs(n_cmp), atol / rtol)
    j = int(np.argmax(err - allowed))
    per_element = how == "every element"
    where = tuple(int(k) for k in np.unravel_index(j, shape)) if per_element else j
    report = InputReport(
        i,
        name,
        shape,
        where,
        float(a_cmp[j]),
        float(n_cmp[j]),
        float(err[j]),
        float(rel.max()),
        how,
    )
    if not np.all(np.isfinite(a_cmp)) or not np.all(np.isfinite(n_cmp)):
        raise GradcheckError(
            f"gradcheck: {name} (shape {shape}) has a non-finite "
            "gradient (analytic or numeric); NaN/inf cannot be checked"
        )
    if np.any(err > allowed):
        raise GradcheckError(
            f"gradcheck: gradient mismatch for {name} (shape {shape}) at "
            f"{'element' if per_element else 'direction'} {report.worst_element}: analytic "
            f"{report.analytic:.10g}, numeric {report.numeric:.10g}, |diff| "
            f"{report.abs_error:.3g} > atol {atol:g} + rtol {rtol:g} * |numeric| "
            f"(checked {how}, eps={eps:g})"
        )
    return report
