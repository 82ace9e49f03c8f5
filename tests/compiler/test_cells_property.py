"""cells(): random recurrent cells, compiled (``fused=True``) against composed.

The property (``compare_fused``): over layers, directions, lengths, h0 and batch_first,
the fused layer of a random cell equals the composed one to 1e-12 in float64 (outputs,
final states, the gradients of x, h0 and every parameter), also after an in-place training
step and a change of the attributes its step reads, and it refuses a backward through a
parameter written in place when composed does; or it does not compile, says why in a
FusionWarning, and runs composed. It never raises where composed does not.

What it found in the compiler, each kind with a minimal cell, became the regression tests
of tests/compiler/test_soundness.py. In the ``ci`` profile a failure is reported unshrunk:
each shrinking step would compile new kernels (seconds each); ``HYPOTHESIS_PROFILE=dev``
shrinks.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from hypothesis import Phase, given, settings
from tinygrad_lstm.layers import Recurrent
from tinygrad_lstm.tooling.testing import (
    FEATURES,
    DrawnCell,
    FusionWarning,
    cells,
    compare_fused,
    drawn_examples,
    layer_cases,
)

CI = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci"
PHASES = [Phase.explicit, Phase.reuse, Phase.generate] if CI else list(Phase)


@settings(max_examples=settings.default.max_examples, phases=PHASES)
@given(cell=cells(), case=layer_cases())
def test_the_fused_layer_of_a_random_cell_equals_composed_or_says_why_not(cell, case):
    compare_fused(cell.cell_class(), case)


def _drawn(n: int) -> list[DrawnCell]:
    return drawn_examples(cells(), n)


def test_compile_rate_of_random_cells(summary_line):
    """Building a fused layer of a drawn cell never raises: it compiles, or warns with a
    reason. The share that compiles is printed in the run's summary."""
    drawn = _drawn(4 * settings.default.max_examples)
    compiled = {"all": 0, "plain": 0}
    plain = [c for c in drawn if c.feature is None]
    for cell in drawn:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FusionWarning)
            Recurrent(cell.cell_class(), 3, 4, dtype=np.float64, fused=True)
        reasons = [str(w.message) for w in caught if issubclass(w.category, FusionWarning)]
        assert all(r.strip() for r in reasons), reasons
        if not reasons:
            compiled["all"] += 1
            compiled["plain"] += cell.feature is None
    summary_line(
        f"cells(): {compiled['all']} of {len(drawn)} drawn cells compile "
        f"({compiled['all'] / len(drawn):.0%}); of the {len(plain)} made of registered ops "
        f"only, {compiled['plain']} ({compiled['plain'] / max(len(plain), 1):.0%})"
    )


def test_the_strategy_draws_every_feature_and_every_ruled_op():
    drawn = _drawn(200)
    assert {c.feature for c in drawn} == {None, *FEATURES}
    import tinygrad_lstm as tg

    ruled = {i.name for i in tg.list_ops() if i.scalar is not None}
    assert ruled <= {op for c in drawn for op in c.ops}


def test_a_drawn_cell_is_its_source_and_runs_composed():
    for cell in _drawn(30):
        assert repr(cell).endswith(cell.source)
        scope: dict = {}
        exec(cell.source, scope)
        layer = Recurrent(scope["DrawnCell"], 2, 3, num_layers=2, dtype=np.float64)
        y, _ = layer(np.ones((4, 2, 2)))
        assert y.shape == (4, 2, 3)
