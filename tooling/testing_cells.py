"""Property checks for cell authors: one call gradchecks a registered cell's sequence layer.

``assert_cell_gradients("lstm")`` gradchecks a whole unrolled multi-layer, bidirectional
sequence layer built from a registered cell, with respect to every parameter, the input
and the initial state. Split out of ``testing.py`` (the op checks), which re-exports
``check_cell`` and ``assert_cell_gradients``; both checks report a ``CheckReport``
(``testing_report``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_lstm.gradcheck import GradcheckError, gradcheck
from tinygrad_lstm.module import Module
from tinygrad_lstm.tensor import Tensor

from .testing_report import OP_ATOL, OP_RTOL, CheckReport, measured_error

__all__ = ["assert_cell_gradients", "check_cell"]


def check_cell(
    cell: str | type[Module],
    input_size: int = 3,
    hidden_size: int = 4,
    seq_len: int = 5,
    batch: int = 2,
    num_layers: int = 2,
    bidirectional: bool = True,
    seed: int = 0,
    rtol: float = OP_RTOL,
    atol: float = OP_ATOL,
    **cell_options: Any,
) -> CheckReport:
    """Gradcheck a whole sequence layer built from ``cell`` (a registered name or class).

    Builds ``Recurrent(cell, input_size, hidden_size, num_layers, bidirectional,
    dtype=float64, rng=, **cell_options)`` with weights, ``x`` (seq_len, batch, input_size)
    and an initial state shaped like ``init_state(batch)`` all drawn from ``seed`` (so a
    failure reproduces), and checks the gradients of (output, final state), under random
    upstream gradients, with respect to every parameter, ``x`` and the initial state. A
    failure names the parameter (or input) that is wrong.
    """
    from tinygrad_lstm.layers import Recurrent

    name = cell if isinstance(cell, str) else getattr(cell, "cell_name", cell.__name__)
    where = (
        f"cell {name!r} (input_size={input_size}, hidden_size={hidden_size}, "
        f"seq_len={seq_len}, batch={batch}, num_layers={num_layers}, "
        f"bidirectional={bidirectional}, options={cell_options}, seed={seed})"
    )
    try:
        rng = np.random.default_rng(seed)
        layer = Recurrent(
            cell,
            input_size,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dtype=np.float64,
            rng=rng,
            **cell_options,
        )
        zeros = layer.init_state(batch)
        is_tuple = isinstance(zeros, tuple)
        state = [
            Tensor(rng.standard_normal(s.shape), requires_grad=True)
            for s in (zeros if is_tuple else (zeros,))
        ]
        x = Tensor(rng.standard_normal((seq_len, batch, input_size)), requires_grad=True)
        params = list(layer.named_parameters())

        def unroll(x: Tensor, *rest: Tensor) -> tuple[Tensor, Any]:
            initial = tuple(rest[: len(state)]) if is_tuple else rest[0]
            return layer.forward(x, initial)

        names = (
            ["input x"]
            + [f"initial state {i}" for i in range(len(state))]
            + [f"parameter {n}" for n, _ in params]
        )
        inputs = [x, *state, *(p for _, p in params)]
        result = gradcheck(unroll, *inputs, rtol=rtol, atol=atol, seed=seed, names=names)
    except GradcheckError as exc:
        return CheckReport(
            name,
            "cell",
            1,
            measured_error(unroll, inputs, seed, rtol, atol),
            False,
            f"{where} failed: {type(exc).__name__}: {exc}",
        )
    except Exception as exc:  # noqa: BLE001 - any error of the cell is a failed check
        return CheckReport(
            name, "cell", 1, math.nan, False, f"{where} failed: {type(exc).__name__}: {exc}"
        )
    return CheckReport(name, "cell", 1, result.worst_rel_error, True, None)


def assert_cell_gradients(
    cell: str | type[Module],
    input_size: int = 3,
    hidden_size: int = 4,
    seq_len: int = 5,
    batch: int = 2,
    num_layers: int = 2,
    bidirectional: bool = True,
    seed: int = 0,
    rtol: float = OP_RTOL,
    atol: float = OP_ATOL,
    **cell_options: Any,
) -> CheckReport:
    """``check_cell`` that raises ``AssertionError`` naming the failing parameter."""
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
        **cell_options,
    )
    if not report.ok:
        raise AssertionError(report.failure)
    return report
