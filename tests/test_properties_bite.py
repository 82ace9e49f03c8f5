"""The random-program property bites: each fault below, injected into the backward walk
(tinygrad_lstm/backward.py), makes it fail within its CI budget.

A fault is a small edit of one function's source (tests/fault_injection.py), of the kind a
refactor slips in. Some of them the rest of the suite misses: "needs_input_grad ignored"
passes every other test (docs/testing.md lists what was measured), and "0-d sum rebinds"
is the bug of issue 16, which every test passed until a regression test for it was added.
Faults in the cell compiler's code generator plug into the same helper.
"""

from __future__ import annotations

import pytest
from fault_injection import Fault, falsified
from hypothesis import HealthCheck, Phase, given, settings
from tinygrad_lstm.tooling.testing import check_program, program_ops, programs

WALK = "tinygrad_lstm.backward"
# The built-in ops, by name: the draws (and so which example meets a fault within the
# budget) must not depend on what else the suite has registered, or in which order.
BUILTIN_OPS = sorted(
    i.name for i in program_ops() if i.fn.__module__.startswith("tinygrad_lstm.ops")
)

FAULTS = [
    Fault(
        "0-d sum rebinds",
        WALK,
        "_accumulate",
        (("grads[i] = np.asarray(current + g)", "grads[i] = current + g"),),
        "the sum of two 0-d arrays is a NumPy scalar: a third contribution is lost",
    ),
    Fault(
        "later contribution dropped",
        WALK,
        "_accumulate",
        (("        current += g\n", "        current = current + g\n"),),
        "the third and later gradients of a value rebind a local instead of adding",
    ),
    Fault(
        "needs_input_grad ignored",
        WALK,
        "_backward",
        (("if g is None or not need:", "if g is None:"),),
        "an input that asked for no gradient (a constant, a mask) gets a .grad",
    ),
    Fault(
        "discovery order",
        WALK,
        "_topological_order",
        (
            ("reached = {root}", "reached = {root: None}"),
            ("reached.add(parent)", "reached[parent] = None"),
            ("return sorted(reached, key=_creation_key, reverse=True)", "return list(reached)"),
        ),
        "nodes visited in the order the walk found them, not after all their consumers",
    ),
    Fault(
        "output slot 0",
        WALK,
        "_backward",
        (("_accumulate(t._node, t._idx, g)", "_accumulate(t._node, 0, g)"),),
        "every output of a multi-output op (split, unstack) feeds its first output's slot",
    ),
    Fault(
        "second output overwritten",
        WALK,
        "_accumulate",
        (("    if current is None:\n", "    if current is None or i > 0:\n"),),
        "a later gradient of a multi-output op's second output replaces the earlier one",
    ),
    Fault(
        "added axes averaged",
        WALK,
        "unbroadcast",
        (
            (
                "grad = grad.sum(axis=tuple(range(extra)))",
                "grad = grad.mean(axis=tuple(range(extra)))",
            ),
        ),
        "the axes broadcasting added are averaged, not summed",
    ),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_the_program_property_catches_the_fault(fault, monkeypatch):
    """(Without a fault the same property passes: tests/tooling/test_testing_programs.py.)"""

    @settings(
        max_examples=settings.default.max_examples * 12,
        derandomize=True,
        database=None,
        phases=[Phase.generate],  # caught is enough: no shrinking
        suppress_health_check=list(HealthCheck),
    )
    @given(programs(BUILTIN_OPS))
    def prop(program):
        check_program(program, torch=False)

    fault.inject(monkeypatch)
    assert falsified(prop) is not None, f"{fault.name}: {fault.why}; the property missed it"


def test_a_fault_that_no_longer_matches_the_code_is_an_error():
    stale = Fault("stale", WALK, "_accumulate", (("no such line", "x"),))
    with pytest.raises(AssertionError, match="occurs 0 times"):
        stale.source()
