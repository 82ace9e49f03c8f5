"""The random-cell property bites: each fault below, injected into the cell compiler's code
generator (compiler/render.py), makes it fail within its CI budget.

A fault is a small edit of one function's source (tests/fault_injection.py), of the kind a
refactor of the generator slips in: an operand read wrong in a derivative, a gradient read
at the wrong column. Each one passes the compiled-cell tests of
tests/compiler/test_compiled_cells.py, which run every registered cell (the built-ins, the
example cells, the plugin's): none of those cells scales a value by a Python number or
writes a concat, so the generated code those faults touch never runs there. The property
draws such cells.
"""

from __future__ import annotations

import pytest
from fault_injection import Fault, falsified
from hypothesis import HealthCheck, Phase, given, settings
from tinygrad_lstm.compiler import pipeline
from tinygrad_lstm.tooling.testing import cells, compare_fused, layer_cases

RENDER = "tinygrad_lstm.compiler.render"

FAULTS = [
    Fault(
        "a number operand read as 1 in a derivative",
        RENDER,
        "_StageText._backward_body",
        (
            (
                "names = dict(zip(n.rule.inputs, consumer.operands))",
                "names = {k: Number(1.0) if isinstance(v, Number) else v"
                " for k, v in zip(n.rule.inputs, consumer.operands)}",
            ),
        ),
        "2.0 * h differentiated with the number's place taken by 1: dh = g, not 2 g",
    ),
    Fault(
        "a concat part's gradient read at column 0",
        RENDER,
        "_StageText._seeds",
        (
            (
                'seeds.append(fn.ref(Arg(Role.GRAD, t.node), "t", t.column, loop.width, False))',
                'seeds.append(fn.ref(Arg(Role.GRAD, t.node), "t", 0, loop.width, False))',
            ),
        ),
        "every part of a concat the step writes (a matmul's left operand) gets the first "
        "part's gradient",
    ),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_the_cells_property_catches_the_fault(fault, monkeypatch):
    """(Without a fault the same property passes: tests/compiler/test_cells_property.py.)"""

    @settings(
        max_examples=settings.default.max_examples,
        derandomize=True,
        database=None,
        phases=[Phase.generate],  # caught is enough: no shrinking
        suppress_health_check=list(HealthCheck),
    )
    @given(cell=cells(), case=layer_cases())
    def prop(cell, case):
        compare_fused(cell.cell_class(), case)

    fault.inject(monkeypatch)
    monkeypatch.setattr(pipeline, "_STEPS", {})  # no kernel the right generator made
    assert falsified(prop) is not None, f"{fault.name}: {fault.why}; the property missed it"
