"""Property checks for cell authors: one call checks a cell's sequence layer on drawn cases.

``assert_cell_gradients("lstm")`` lets hypothesis draw configurations of a sequence layer
built from a registered cell (``LayerCase``: sizes, steps, batch, one or two layers, either
direction setting, ``batch_first``, an initial state or not, ``lengths`` or not) and checks
each one twice:

- gradients: (output, final state) under random upstream gradients, with respect to every
  parameter, the input and the initial state, against float64 central differences;
- compiled against composed: ``Recurrent(cell, fused="compiled")`` gives the composed
  layer's outputs, final states and gradients to 1e-12, also after an in-place training
  step (``compare_fused``); a cell the compiler does not take says so with a
  FusionWarning, runs composed, and is checked composed only.

Split out of ``testing.py`` (the op checks), which re-exports ``check_cell`` and
``assert_cell_gradients``; both checks report a ``CheckReport`` (``testing_report``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_lstm.gradcheck import gradcheck
from tinygrad_lstm.module import Module
from tinygrad_lstm.tensor import Tensor

from .testing_fusion import LayerCase, build_layer, compare_fused, layer_cases
from .testing_report import (
    OP_ATOL,
    OP_RTOL,
    CheckReport,
    discard_unless,
    measured_error,
    search,
)

__all__ = ["CELL_EXAMPLES", "assert_cell_gradients", "check_cell"]

# Cases per cell: each gradchecks a whole layer (two evaluations per parameter element).
CELL_EXAMPLES = 5


def _layer_function(
    cell: str | type[Module], case: LayerCase, options: dict
) -> tuple[Callable[..., Any], list[Tensor], list[str]]:
    """The composed layer of ``case`` as a function of (x, initial state parts, parameters),
    with those inputs (drawn from the case's seed) and their names."""
    layer = build_layer(cell, case, False, **options)
    rng = np.random.default_rng(case.seed)
    zeros = layer.init_state(case.batch)
    is_tuple = isinstance(zeros, tuple)
    state = [
        Tensor(rng.standard_normal(s.shape), requires_grad=True) if case.with_state else s
        for s in (zeros if is_tuple else (zeros,))
    ]
    shape = (case.batch, case.steps) if case.batch_first else (case.steps, case.batch)
    x = Tensor(rng.standard_normal((*shape, case.input_size)), requires_grad=True)
    lengths = rng.integers(1, case.steps + 1, case.batch) if case.with_lengths else None
    params = list(layer.named_parameters())

    def unroll(x: Tensor, *rest: Tensor) -> tuple[Tensor, Any]:
        initial = tuple(rest[: len(state)]) if is_tuple else rest[0]
        return layer.forward(x, initial, lengths=lengths)

    names = (
        ["input x"]
        + [f"initial state {i}" for i in range(len(state))]
        + [f"parameter {n}" for n, _ in params]
    )
    return unroll, [x, *state, *(p for _, p in params)], names


def check_cell(
    cell: str | type[Module],
    input_size: int | None = None,
    hidden_size: int | None = None,
    seq_len: int | None = None,
    batch: int | None = None,
    num_layers: int | None = None,
    bidirectional: bool | None = None,
    seed: int = 0,
    rtol: float = OP_RTOL,
    atol: float = OP_ATOL,
    max_examples: int = CELL_EXAMPLES,
    **cell_options: Any,
) -> CheckReport:
    """Check the sequence layer of ``cell`` (a registered name or class) on
    ``max_examples`` cases drawn by hypothesis from ``seed`` (see the module docstring).

    ``input_size`` .. ``bidirectional`` pin that part of every case (None: drawn, sizes
    1..3, 1..4 steps, batch 1..3); ``cell_options`` go to the cell. The search shrinks a
    failure to a small case; the report's ``failure`` names it (and the parameter or input
    whose gradient is wrong, or the array where compiled and composed differ), and
    ``worst_rel_error`` is the largest gradient error (that of the failing case, ``nan``
    when the failure is not about a gradient).
    """
    name = cell if isinstance(cell, str) else getattr(cell, "cell_name", cell.__name__)
    pinned = {
        "input_size": input_size,
        "hidden": hidden_size,
        "steps": seq_len,
        "batch": batch,
        "num_layers": num_layers,
        "bidirectional": bidirectional,
    }
    strategy = layer_cases(
        max_steps=4, max_size=3, **{k: v for k, v in pinned.items() if v is not None}
    )
    state: dict[str, Any] = {"cases": 0, "worst": 0.0, "failure": None, "failed": None}

    def check(case: LayerCase) -> None:
        where = f"cell {name!r} on {case}, options {cell_options}, seed {seed}"
        state["failed"] = None
        try:
            fn, inputs, names = _layer_function(cell, case, cell_options)
        except (TypeError, ValueError) as exc:  # sizes the cell refuses (proj_size < hidden)
            state["unbuildable"] = f"{type(exc).__name__}: {exc}"
            discard_unless(False, f"{where}: the layer cannot be built")
        state["cases"] += 1
        try:
            state["failed"] = (fn, inputs, names, case.seed)
            worst = gradcheck(fn, *inputs, rtol=rtol, atol=atol, seed=case.seed, names=names)
            state["failed"] = None
            compare_fused(cell, case, fused="compiled", **cell_options)
        except Exception as exc:
            state["failure"] = f"{where} failed: {type(exc).__name__}: {exc}"
            raise
        state["worst"] = max(state["worst"], worst.worst_rel_error)

    try:
        search(strategy, check, max_examples, seed)
    except Exception as exc:  # noqa: BLE001 - any error of the cell is a failed check
        if state["failure"] is None:
            state["failure"] = f"cell {name!r}: {type(exc).__name__}: {exc}"
    if state["cases"] == 0:
        state["failure"] = (
            f"cell {name!r} (options {cell_options}) could not be built for any drawn case: "
            f"{state.get('unbuildable')}"
        )
    if state["failure"] is None:
        return CheckReport(name, "cell", state["cases"], state["worst"], True, None)
    # The gradient error of the (shrunk) failing case; nan when it is not about a gradient.
    error = math.nan
    if state["failed"] is not None:
        fn, inputs, names, case_seed = state["failed"]
        error = measured_error(fn, inputs, case_seed, rtol, atol, names)
    return CheckReport(name, "cell", state["cases"], error, False, state["failure"])


def assert_cell_gradients(
    cell: str | type[Module],
    input_size: int | None = None,
    hidden_size: int | None = None,
    seq_len: int | None = None,
    batch: int | None = None,
    num_layers: int | None = None,
    bidirectional: bool | None = None,
    seed: int = 0,
    rtol: float = OP_RTOL,
    atol: float = OP_ATOL,
    max_examples: int = CELL_EXAMPLES,
    **cell_options: Any,
) -> CheckReport:
    """``check_cell`` that raises ``AssertionError`` naming the failing case."""
    report = check_cell(
        cell,
        input_size,
        hidden_size,
        seq_len,
        batch,
        num_layers,
        bidirectional,
        seed,
        rtol,
        atol,
        max_examples,
        **cell_options,
    )
    if not report.ok:
        raise AssertionError(report.failure)
    return report
