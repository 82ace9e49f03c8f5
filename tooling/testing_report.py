"""What a property check returns, and the tolerances it holds gradients to.

``CheckReport`` is the outcome of ``check_op`` (``testing``) and of ``check_cell``
(``testing_cells``); ``OP_RTOL`` / ``OP_ATOL`` are their default tolerances, and
``measured_error`` the figure a failed report gives; ``search`` runs a check over drawn
cases, inside pytest or not. ``discard_unless`` is how a property
sets aside a drawn case it says nothing about (``NotComparableError``). Split out of
``testing.py``, which re-exports every name here, so the checks share it without importing
each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, assume, currently_in_test_context, given
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings
from hypothesis.strategies import SearchStrategy

from tinygrad_lstm.gradcheck import GradcheckError, gradcheck
from tinygrad_lstm.tensor import Tensor

__all__ = [
    "OP_ATOL",
    "OP_RTOL",
    "CheckReport",
    "NotComparableError",
    "discard_unless",
    "measured_error",
    "search",
]

# Measured on the built-in ops at every scale (check_op, 100 cases each, seed 0): the worst
# relative error is 2.6e-7 (logsumexp), most stay below 1e-7. A wrong backward is off
# by O(1).
OP_RTOL = 1e-6
OP_ATOL = 1e-8


@dataclass
class CheckReport:
    """Outcome of ``check_op`` or ``check_cell``.

    ``failure`` names the failing case (op or cell, shapes, attributes, seed) and what went
    wrong, so ``check_op(name, seed=...)`` reproduces it; None when ``ok``.
    """

    name: str
    kind: str  # "op" or "cell"
    cases: int
    worst_rel_error: float  # a failed report: the failing case's error (nan: not a gradient)
    ok: bool
    failure: str | None = None


def measured_error(
    fn: Callable[..., Any],
    inputs: list[Tensor],
    seed: int,
    rtol: float,
    atol: float,
    names: list[str] | None = None,
) -> float:
    """The worst relative gradient error of ``fn`` at ``inputs``, pass or fail.

    ``gradcheck`` raises on a mismatch without a figure; this reruns it with both tolerances
    scaled by the same huge factor, so nothing finite fails but the relative error keeps its
    ``atol / rtol`` floor and reads as in a passing report. ``inf`` when a gradient is not
    finite (or the error is beyond any float), ``nan`` when the function itself raises.
    """
    scale = 1e280
    try:
        return gradcheck(
            fn, *inputs, rtol=rtol * scale, atol=atol * scale, seed=seed, names=names
        ).worst_rel_error
    except GradcheckError:
        return math.inf
    except Exception:  # noqa: BLE001 - the op's own error is reported by the failed check
        return math.nan


class NotComparableError(ValueError):
    """A case a property says nothing about: a program on a kink, a layer whose reference
    results are not finite."""


def discard_unless(comparable: bool, why: str) -> None:
    """Nothing when ``comparable``; else inside a hypothesis test the example is discarded
    (``hypothesis.assume``), and outside one ``NotComparableError(why)`` is raised."""
    if comparable:
        return
    if currently_in_test_context():
        assume(False)
    raise NotComparableError(why)


def search(
    strategy: SearchStrategy, check: Callable[[Any], None], max_examples: int, seed: int
) -> None:
    """Run ``check`` on ``max_examples`` examples of ``strategy`` drawn from ``seed`` (inside
    pytest or not, whatever the active hypothesis profile); a failure is shrunk, then raised."""
    # No explain phase: it reruns a failure ~100 times for notes the reports do not show.
    run = hypothesis_settings(
        max_examples=max_examples,
        derandomize=False,
        database=None,
        deadline=None,
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )(given(strategy)(check))
    hypothesis_seed(seed)(run)()
