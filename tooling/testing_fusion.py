"""Compiled against composed: the oracle check of a cell's ``fused=True`` sequence layer.

``compare_fused(cell, case)`` builds ``Recurrent(cell, ..., fused=True)`` and the composed
layer with the same weights, in float64, for one ``LayerCase`` (sizes, layers, directions,
``batch_first``, an initial state or not, ``lengths`` or not), and checks three rounds:

1. outputs, final states and the gradients of x, the initial state and every parameter
   (under random upstream gradients) agree to ``FUSED_TOL`` relative to each array's scale;
2. again after what training does between two forwards: every parameter updated in place,
   and a cell's ``change_attributes()`` (if it has one: the attributes its step reads);
3. a parameter written in place between forward and backward: where composed refuses the
   backward, the fused layer refuses it too; where composed does not, the fused layer
   refuses or gives composed's gradients.

A cell the compiler does not take runs composed with a ``FusionWarning``, whose reason is
reported (``FusionOutcome.reason``); its results must still equal composed, and the reason
must be the compiler's own, not a Python exception from inside it passed off as the step's
failure (the step runs composed, so it did not fail). The fused layer
raising where composed does not, or differing from it, is a failure (``AssertionError``
naming the case and the array). A cell that draws random numbers gets ``reseed(seed)``
called before each forward, on both layers, if it defines it: compiled must then draw what
composed draws, or not compile. Composed results beyond 1e100 or not finite are not
comparable: such a case is discarded (``discard_unless``).
"""

from __future__ import annotations

import re
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

# The compiler's warning is imported here and nowhere else in the tooling: it may move.
from tinygrad_lstm.layers.unroll import FusionWarning

from tinygrad_lstm.module import Module
from tinygrad_lstm.tensor import Tensor

from .testing_report import discard_unless

__all__ = [
    "FUSED_TOL",
    "FusionOutcome",
    "FusionWarning",
    "LayerCase",
    "build_layer",
    "compare_fused",
    "layer_cases",
]

# float64: the compiled and composed layers differ only in rounding (summation order).
FUSED_TOL = 1e-12


@dataclass(frozen=True)
class LayerCase:
    """One configuration of a sequence layer and its data (drawn from ``seed``)."""

    steps: int = 5
    batch: int = 2
    input_size: int = 3
    hidden: int = 4
    num_layers: int = 2
    bidirectional: bool = True
    batch_first: bool = False
    with_state: bool = True
    with_lengths: bool = False
    inplace_param: int = 0  # which parameter round 3 writes (modulo their number)
    seed: int = 0


def layer_cases(
    max_steps: int = 5, max_batch: int = 3, max_size: int = 4, **fixed: Any
) -> st.SearchStrategy[LayerCase]:
    """``LayerCase``s: 1..``max_steps`` steps, batch 1..``max_batch``, sizes 1..``max_size``,
    1-2 layers, either direction setting, with or without h0, lengths and batch_first;
    ``fixed`` pins fields (``num_layers=2``)."""
    unknown = set(fixed) - set(LayerCase.__dataclass_fields__)
    if unknown:
        raise TypeError(f"layer_cases: LayerCase has no field {', '.join(sorted(unknown))}")
    drawn = {
        "steps": st.integers(1, max_steps),
        "batch": st.integers(1, max_batch),
        "input_size": st.integers(1, max_size),
        "hidden": st.integers(1, max_size),
        "num_layers": st.integers(1, 2),
        "bidirectional": st.booleans(),
        "batch_first": st.booleans(),
        "with_state": st.booleans(),
        "with_lengths": st.booleans(),
        "inplace_param": st.integers(0, 63),
        "seed": st.integers(0, 2**16),
    }
    drawn.update({k: st.just(v) for k, v in fixed.items()})
    return st.builds(LayerCase, **drawn)


@dataclass
class FusionOutcome:
    """What ``compare_fused`` found: whether the cell compiled (else the FusionWarning's
    reason) and the largest relative disagreement with composed."""

    compiled: bool
    reason: str | None
    worst: float


class _Run:
    """One layer's forward and backward on the case's data; ``arrays`` by name."""

    def __init__(self, layer: Module, case: LayerCase, round_: int) -> None:
        rng = np.random.default_rng([case.seed, round_])
        self.layer, self.case = layer, case
        shape = (case.batch, case.steps) if case.batch_first else (case.steps, case.batch)
        self.x = Tensor(rng.uniform(-1, 1, (*shape, case.input_size)), requires_grad=True)
        zeros = layer.init_state(case.batch)
        self.tuple_state = isinstance(zeros, tuple)
        parts = zeros if self.tuple_state else (zeros,)
        self.state = None
        if case.with_state:
            self.state = [Tensor(rng.uniform(-1, 1, p.shape), requires_grad=True) for p in parts]
        self.lengths = rng.integers(1, case.steps + 1, case.batch) if case.with_lengths else None
        self.rng = rng

    def forward_backward(self) -> None:
        loss = self.forward()
        if loss.requires_grad:  # else the step reads nothing that takes a gradient
            loss.backward()

    def forward(self) -> Tensor:
        for module in self.layer.modules():
            if callable(getattr(module, "reseed", None)):
                module.reseed(self.case.seed)
        given = None
        if self.state is not None:
            given = tuple(self.state) if self.tuple_state else self.state[0]
        y, final = self.layer(self.x, given, lengths=self.lengths)
        self.finals = final if isinstance(final, tuple) else (final,)
        self.y = y
        loss = (y * Tensor(self.rng.standard_normal(y.shape))).sum()
        for f in self.finals:
            loss = loss + (f * Tensor(self.rng.standard_normal(f.shape))).sum()
        return loss

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {"output": self.y.data, "grad x": self.x.grad}
        arrays.update({f"final state {k}": f.data for k, f in enumerate(self.finals)})
        arrays.update({f"grad {n}": p.grad for n, p in self.layer.named_parameters()})
        arrays.update({f"grad initial state {k}": s.grad for k, s in enumerate(self.state or ())})
        return arrays


def build_layer(cell: Any, case: LayerCase, fused: bool | str, **cell_options: Any) -> Module:
    """``Recurrent(cell, ...)`` in float64 as ``case`` describes it, weights drawn from its
    seed."""
    from tinygrad_lstm.layers import Recurrent

    return Recurrent(
        cell,
        case.input_size,
        case.hidden,
        num_layers=case.num_layers,
        bidirectional=case.bidirectional,
        batch_first=case.batch_first,
        dtype=np.float64,
        rng=np.random.default_rng(case.seed),
        fused=fused,
        **cell_options,
    )


def _fused_attempt(what: str, case: LayerCase, action: Callable[[], Any]) -> Any:
    """``action()``; an exception the composed layer did not raise is a failure."""
    try:
        return action()
    except Exception:  # noqa: BLE001 - reported, with its traceback, as the failure
        raise AssertionError(
            f"fused=True {what} raised where composed did not ({case}):\n{traceback.format_exc()}"
        ) from None


def _compare(want: dict, got: dict, case: LayerCase, what: str, tol: float) -> float:
    worst = 0.0
    for key, expected in want.items():
        actual = got.get(key)
        if (expected is None) != (actual is None) or (
            expected is not None and expected.shape != actual.shape
        ):
            raise AssertionError(f"{what}, {key}: fused gives {actual!r}, composed {expected!r}")
        if expected is None:
            continue
        scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
        error = float(np.max(np.abs(actual - expected), initial=0.0)) / scale
        if not error <= tol:
            raise AssertionError(
                f"{what}, {key}: fused differs from composed by {error:.3g} (relative to the "
                f"array's scale {scale:.3g}; tolerance {tol:g}); {case}"
            )
        worst = max(worst, error)
    return worst


def _round(composed: Module, fused: Module, case: LayerCase, round_: int, tol: float) -> float:
    want_run = _Run(composed, case, round_)
    want_run.forward_backward()
    want = want_run.arrays()
    finite = all(a is None or np.all(np.abs(a) < 1e100) for a in want.values())
    discard_unless(finite, f"composed gives values beyond 1e100 or not finite ({case})")
    got_run = _Run(fused, case, round_)
    _fused_attempt(f"forward/backward (round {round_})", case, got_run.forward_backward)
    return _compare(want, got_run.arrays(), case, f"round {round_}", tol)


def _train_between(layers: list[Module], case: LayerCase) -> None:
    """An optimizer-like in-place step on every parameter, and the cells' attribute changes."""
    for layer in layers:
        for p in layer.parameters():
            if p.grad is not None:
                p.data -= 0.05 * p.grad
            p.grad = None
        for module in layer.modules():
            if callable(getattr(module, "change_attributes", None)):
                module.change_attributes()


def _inplace_round(composed: Module, fused: Module, case: LayerCase, tol: float) -> None:
    """Round 3: write one parameter in place between forward and backward."""
    names = [n for n, _ in composed.named_parameters()]
    name = names[case.inplace_param % len(names)]
    outcomes = []
    for layer in (composed, fused):
        run = _Run(layer, case, 3)
        loss = run.forward() if layer is composed else _fused_attempt("forward", case, run.forward)
        param = dict(layer.named_parameters())[name]
        param.data *= 0.5
        if not loss.requires_grad:
            return
        try:
            loss.backward()
            outcomes.append(run.arrays())
        except RuntimeError as exc:
            outcomes.append(str(exc))
        except Exception:  # noqa: BLE001 - anything else from the fused op is its failure
            if layer is composed:
                raise
            raise AssertionError(
                f"fused=True backward after {name} was written in place raised "
                f"({case}):\n{traceback.format_exc()}"
            ) from None
    want, got = outcomes
    if isinstance(want, str) and not isinstance(got, str):
        raise AssertionError(
            f"{name} written in place between forward and backward: composed refuses "
            f"({want}), fused=True returns gradients; {case}"
        )
    if isinstance(want, dict) and isinstance(got, dict):
        _compare(want, got, case, f"round 3 ({name} written in place)", tol)


def compare_fused(
    cell: Any,
    case: LayerCase,
    tol: float = FUSED_TOL,
    fused: bool | str = True,
    inplace: bool = True,
    check_reason: bool = True,
    **cell_options: Any,
) -> FusionOutcome:
    """Check ``Recurrent(cell, fused=fused)`` against composed on ``case`` (see the module
    docstring); ``cell`` is a registered name or a cell class, ``cell_options`` go to it.
    ``inplace=False`` leaves out round 3; ``check_reason=False`` takes any FusionWarning
    as a reason (composed is then all there is to check)."""
    try:
        composed = build_layer(cell, case, False, **cell_options)
    except Exception as exc:
        raise AssertionError(f"the cell cannot be built ({case}): {exc!r}") from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = _fused_attempt(
            "construction", case, lambda: build_layer(cell, case, fused, **cell_options)
        )
    reasons = [str(w.message) for w in caught if issubclass(w.category, FusionWarning)]
    for w in caught:
        if not issubclass(w.category, FusionWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    reason = reasons[0] if reasons else None
    if reason is not None and not reason.strip():
        raise AssertionError(f"fused={fused!r}: a FusionWarning that says nothing ({case})")
    layer.load_state_dict(composed.state_dict())
    worst = _round(composed, layer, case, 1, tol)
    leaked = None if reason is None else re.search(r"\b[A-Z]\w*(Error|Exception)\b:?[^.;]*", reason)
    if leaked and check_reason:
        raise AssertionError(
            f"the FusionWarning reports an exception from inside the compiler ({leaked[0]!r}) "
            f"as the step's failure, but the step runs composed: {reason}"
        )
    _train_between([composed, layer], case)
    worst = max(worst, _round(composed, layer, case, 2, tol))
    if inplace:
        _inplace_round(composed, layer, case, tol)
    return FusionOutcome(reason is None, reason, worst)
