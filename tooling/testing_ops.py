"""The op check: ``check_op(name)`` tests a registered op on hypothesis-drawn cases.

Inputs are drawn from the op's registration metadata (shapes, domain, points to avoid,
attribute choices), at magnitudes from the core grid up to ~300 and at the ends of a
bounded domain (``testing_strategies``), and each case checks:

- gradients against central differences in float64, with a random upstream gradient for
  every output (``tinygrad_lstm.gradcheck`` with tight tolerances);
- float32 inputs give float32 outputs and float32 input gradients;
- a backward with only some inputs requiring grad gives those inputs the same gradients;
- forward and backward leave the inputs (and the upstream gradients) unmutated: the op only
  ever gets copies, each compared afterwards with the case as drawn, and a failure shows
  the input as it was drawn;
- an elementwise op's scalar rule (``OpInfo.scalar``), the value and every derivative,
  equals its forward and backward (``testing_rules``): code generators trust the rule;
- after backward the node has released its saved arrays and keeps no input or output array.

``tinygrad_lstm.testing`` (tooling/testing.py) re-exports ``check_op`` and
``assert_op_gradients``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_lstm.autograd import Context
from tinygrad_lstm.gradcheck import gradcheck
from tinygrad_lstm.registry import OpInfo, op_info
from tinygrad_lstm.tensor import Tensor

from .testing_report import OP_ATOL, OP_RTOL, CheckReport, measured_error, search
from .testing_rules import check_rule
from .testing_strategies import op_cases

__all__ = ["CaseFailure", "assert_op_gradients", "check_op"]

# One drawn case of an op: (attributes, float64 input arrays), as ``op_cases`` draws it.
OpCase = tuple[dict, list[np.ndarray]]


class CaseFailure(AssertionError):
    """One drawn case broke a property other than the gradient values."""


def _as_tuple(out: Any) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def _kept_arrays(node: Context, arrays: list[np.ndarray]) -> list[str]:
    """Attributes of ``node`` still holding an input or output array (or one shaped like it)."""
    kept = []
    for key, value in getattr(node, "__dict__", {}).items():
        if (
            isinstance(value, np.ndarray)
            and value.ndim > 0
            and any(value.shape == a.shape or np.shares_memory(value, a) for a in arrays)
        ):
            kept.append(f"ctx.{key} (shape {value.shape})")
    return kept


def _check_float32(info: OpInfo, attrs: dict, arrays: list[np.ndarray], seed: int) -> None:
    """Every property but the gradient values, on float32 copies of the inputs."""
    name = info.name
    x32 = [a.astype(np.float32) for a in arrays]
    before = [a.copy() for a in x32]
    ins = [Tensor(a, requires_grad=True) for a in x32]
    outs = _as_tuple(info.fn.apply(*ins, **attrs))
    for k, o in enumerate(outs):
        if o.dtype != np.float32:
            raise CaseFailure(f"{name}: output {k} is {o.dtype} for float32 inputs")
    if not info.differentiable:
        return
    node = outs[0]._node
    if node is None:
        raise CaseFailure(f"{name}: recorded no graph node although its inputs require grad")
    rng = np.random.default_rng(seed)
    upstream = [rng.standard_normal(o.shape).astype(np.float32) for o in outs]
    upstream_before = [g.copy() for g in upstream]
    grads = _as_tuple(node.fn.backward(node, *upstream))
    for i, g in enumerate(grads):
        if g is not None and np.asarray(g).dtype != np.float32:
            raise CaseFailure(
                f"{name}: backward gives a {np.asarray(g).dtype} gradient for float32 input {i}"
            )
    if not all(np.array_equal(g, b) for g, b in zip(upstream, upstream_before)):
        raise CaseFailure(f"{name}: backward modified the upstream gradient in place")
    # Only outs[0] is used: the other outputs of a multi-output op get no gradient.
    outs[0].backward(upstream[0])
    if node.saved != () or node.inputs is not None:
        raise CaseFailure(
            f"{name}: the node still holds its saved arrays or inputs after "
            "backward() without retain_graph"
        )
    kept = _kept_arrays(node, x32 + [o.data for o in outs])
    if kept:
        raise CaseFailure(
            f"{name}: after backward the node still keeps {', '.join(kept)}; "
            "store arrays with ctx.save_for_backward so they can be released"
        )
    if len(ins) > 1:
        for i in range(len(ins)):
            alone = [Tensor(a, requires_grad=(j == i)) for j, a in enumerate(x32)]
            _as_tuple(info.fn.apply(*alone, **attrs))[0].backward(upstream[0])
            if alone[i].grad is None or not np.allclose(
                alone[i].grad, ins[i].grad, rtol=1e-6, atol=1e-7
            ):
                raise CaseFailure(
                    f"{name}: with only input {i} requiring grad its gradient "
                    "differs from the one computed with all inputs"
                )
    _unchanged(name, x32, before)


def _unchanged(name: str, arrays: list[np.ndarray], pristine: list[np.ndarray]) -> None:
    """CaseFailure when an array handed to the op no longer equals its untouched copy."""
    for i, (a, b) in enumerate(zip(arrays, pristine)):
        if not np.array_equal(a, b, equal_nan=True):
            raise CaseFailure(
                f"{name}: forward/backward modified input {i} in place: it was "
                f"{_array_text(b)}; it became {_array_text(a)}"
            )


def _check_case(
    info: OpInfo, attrs: dict, arrays: list[np.ndarray], seed: int, rtol: float, atol: float
) -> float:
    """Check one drawn case; returns the worst relative gradient error. ``arrays`` is
    never handed to the op: every call gets copies, compared with ``arrays`` after."""
    worst = 0.0
    if info.differentiable:
        given = [a.copy() for a in arrays]
        ins = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        result = gradcheck(
            _op_call(info, attrs, given),
            *ins,
            rtol=rtol,
            atol=atol,
            seed=seed,
            names=[f"input {i} of {info.name}" for i in range(len(ins))],
        )
        worst = result.worst_rel_error
        _unchanged(info.name, given, arrays)
        _unchanged(info.name, [t.data for t in ins], arrays)
        if info.scalar is not None:
            check_rule(info, attrs, arrays, seed)
    _check_float32(info, attrs, arrays, seed)
    return worst


def _op_call(
    info: OpInfo, attrs: dict, arrays: list[np.ndarray]
) -> Callable[..., tuple[Tensor, ...]]:
    """The op minus its (constant) outputs at ``arrays``: the same gradients, but in
    gradcheck's sum ``L = sum(v * outputs)`` every output a perturbed element does not
    reach is exactly 0, so large outputs elsewhere add no rounding noise to a small
    derivative (what lets inputs reach large magnitudes at tight tolerances)."""
    at = [
        Tensor(c.data.copy())
        for c in _as_tuple(info.fn.apply(*[Tensor(a) for a in arrays], **attrs))
    ]

    def centred(*ts: Tensor) -> tuple[Tensor, ...]:
        return tuple(o - c for o, c in zip(_as_tuple(info.fn.apply(*ts, **attrs)), at))

    return centred


def _failed_case_error(
    info: OpInfo, case: OpCase | None, seed: int, rtol: float, atol: float
) -> float:
    """The error of the (shrunk) failing case, for the report: nan if it is not a gradient."""
    if case is None or not info.differentiable:
        return math.nan
    attrs, arrays = case
    try:
        centred = _op_call(info, attrs, arrays)
    except Exception:  # noqa: BLE001 - the forward itself fails: reported by the message
        return math.nan
    return measured_error(
        centred, [Tensor(a.copy(), requires_grad=True) for a in arrays], seed, rtol, atol
    )


def _array_text(a: np.ndarray) -> str:
    # floatmode "unique": the shortest digits that give the same float back.
    text = np.array2string(a, separator=", ", threshold=30, floatmode="unique")
    return text.replace("\n", "")


def _describe(arrays: list[np.ndarray], attrs: dict, seed: int) -> str:
    values = "; ".join(_array_text(a) for a in arrays)
    return f"input shapes {[a.shape for a in arrays]}, attrs {attrs}, seed {seed}; inputs: {values}"


def check_op(
    name: str, max_examples: int = 25, seed: int = 0, rtol: float = OP_RTOL, atol: float = OP_ATOL
) -> CheckReport:
    """Check the registered op ``name`` on ``max_examples`` hypothesis-drawn cases.

    Each case checks the properties listed in this module's docstring. The search is seeded
    by ``seed`` (the same seed gives the same cases), shrinks a failure to a small case and
    reports it in ``CheckReport.failure``; a failed report's ``worst_rel_error`` is that
    case's gradient error (``inf`` for a non-finite gradient, ``nan`` when the failure is
    not about gradient values).
    """
    info = op_info(name)
    state = {"cases": 0, "worst": 0.0, "failure": None, "case": None}

    def check(case: OpCase) -> None:
        attrs, drawn = case
        arrays = [a.copy() for a in drawn]  # the case as drawn, whatever the op does
        state["cases"] += 1
        try:
            state["worst"] = max(state["worst"], _check_case(info, attrs, arrays, seed, rtol, atol))
        except Exception as exc:
            state["failure"] = (
                f"op {name!r} failed: {type(exc).__name__}: {exc} "
                f"[{_describe(arrays, attrs, seed)}]"
            )
            state["case"] = (attrs, arrays)
            raise

    try:
        search(op_cases(info), check, max_examples, seed)
    except Exception as exc:  # noqa: BLE001 - any error raised by the op is a failed check
        if state["failure"] is None:
            state["failure"] = f"op {name!r}: {type(exc).__name__}: {exc}"
    if state["failure"] is not None:
        state["worst"] = _failed_case_error(info, state["case"], seed, rtol, atol)
    return CheckReport(
        name, "op", state["cases"], state["worst"], state["failure"] is None, state["failure"]
    )


def assert_op_gradients(name: str, max_examples: int = 25, seed: int = 0) -> CheckReport:
    """``check_op`` that raises ``AssertionError`` with the failing case when one fails."""
    report = check_op(name, max_examples=max_examples, seed=seed)
    if not report.ok:
        raise AssertionError(report.failure)
    return report
