"""programs(): random differentiable programs over the registered ops, and their check.

The property itself runs here on the CI budget (12 times the profile's example count), and
the strategy is held to what it promises: every registered op drawn, values reused up to
four times (twice by one op too), 0-d to N-d leaves, Python numbers on either side,
reductions with and without keepdims; a failure printed as code that reproduces it; the
torch twins agreeing with the ops they stand for.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tinygrad_lstm.tooling.testing import (
    TORCH_OPS,
    NotComparableError,
    Program,
    check_program,
    compare_with_torch,
    drawn_examples,
    kinks,
    op_cases,
    program_ops,
    programs,
    ties,
)
from tinygrad_lstm.tooling.testing_program import Leaf, Number, Step, python_literal
from tinygrad_lstm.tooling.testing_programs import BOUND, MAX_USES

import tinygrad_lstm as tg
from tinygrad_lstm import Function, register_op

BUDGET = settings.default.max_examples * 12


@settings(max_examples=BUDGET)
@given(programs())
def test_random_programs_have_the_gradients_of_central_differences_and_torch(program):
    check_program(program)


# ---- the strategy ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def survey() -> list[Program]:
    return drawn_examples(programs(), 300)


def test_every_registered_op_is_drawn(survey):
    drawn = {op for p in survey for op in p.ops}
    assert {i.name for i in program_ops()} <= drawn


def test_values_are_reused_and_leaves_take_every_rank(survey):
    most_uses, ranks, twice, numbers_left, numbers_right, keepdims = 0, set(), 0, 0, 0, set()
    for p in survey:
        ranks |= {leaf.array.ndim for leaf in p.leaves}
        uses = Counter(a for step in p.steps for a in step.args if isinstance(a, str))
        most_uses = max(most_uses, *uses.values())
        for step in p.steps:
            names = [a for a in step.args if isinstance(a, str)]
            twice += len(names) != len(set(names))
            numbers_left += isinstance(step.args[0], Number)
            numbers_right += len(step.args) > 1 and isinstance(step.args[-1], Number)
            if "keepdims" in step.attrs:
                keepdims.add(step.attrs["keepdims"])
    assert most_uses == MAX_USES
    assert {0, 1, 2, 3} <= ranks
    assert twice and numbers_left and numbers_right
    assert keepdims == {False, True}


def test_values_stay_in_bounds_and_in_the_ops_domains(survey):
    for p in survey[:60]:
        values = dict(zip((leaf.name for leaf in p.leaves), p.inputs()))
        with tg.no_grad():
            for step in p.steps:
                args = [values[a] if isinstance(a, str) else a.value for a in step.args]
                info = tg.op_info(step.op)
                for i, a in enumerate(args):
                    data = np.asarray(getattr(a, "data", a))
                    low, high = info.input_domain(i)
                    assert np.all(data > low) and np.all(data < high), (step, data)
                out = tg.op(step.op).apply(*args, **step.attrs)
                for name, o in zip(step.outputs, out if step.multi else (out,)):
                    assert np.all(np.abs(o.data) <= BOUND)
                    values[name] = o


def test_a_plugin_op_is_drawn_and_a_wrong_backward_shrinks_to_pasteable_code(scratch_registry):
    @register_op("_test_cube", arity=1)
    class Cube(Function):
        """y = x^3;  dx = 3 x^2 g, here wrongly 2 x^2 g."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved
            return 2 * x * x * g

    @settings(max_examples=100, derandomize=True, database=None)
    @given(programs(ops=["_test_cube", "add", "sum"]))
    def prop(program):
        check_program(program)

    with pytest.raises(AssertionError) as failure:
        prop()
    message = str(failure.value)
    assert "tg.op('_test_cube').apply(" in message and "gradient mismatch" in message
    code = message[message.index("import math") :]
    with pytest.raises(AssertionError, match="gradient mismatch"):
        exec(code, {})  # the printed program reproduces the failure


def test_bad_arguments_are_refused_with_one_line():
    with pytest.raises(ValueError, match="non-empty list of op names"):
        programs(ops="add")
    with pytest.raises(tg.RegistryError, match="unknown op 'nope'"):
        programs(ops=["nope"])
    with pytest.raises(ValueError, match="max_steps and max_leaves must be >= 1"):
        programs(max_steps=0)


# ---- printing ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -0.1,
        math.inf,
        -math.inf,
        (slice(1, None), Ellipsis, 0),
        (np.array([0, 2, 2]),),
        np.array([[0.1, -2.5e-300]]),
        np.array(1.5),
        np.array([1.0], dtype=np.float32),
        [1, (2,)],
        np.float64,
        "axis",
    ],
)
def test_python_literal_round_trips(value):
    text = python_literal(value)
    again = eval(text, {"np": np, "math": math})
    if isinstance(value, np.ndarray):
        assert again.dtype == value.dtype and np.array_equal(again, value)
    elif isinstance(value, tuple) and any(isinstance(v, np.ndarray) for v in value):
        assert all(np.array_equal(a, b) for a, b in zip(again, value))
    else:
        assert again == value


def test_the_source_is_the_program_that_runs():
    x = np.array([[0.5, -1.25]])
    program = Program(
        (Leaf("x0", x, True), Leaf("c1", np.array([1.0, 0.0]), False)),
        (
            Step("mul", ("x0", "x0"), {}, ("v2",), ((1, 2),)),
            Step("sub", (Number(2.0), "v2"), {}, ("v3",), ((1, 2),)),
            Step("where", ("c1", "v3", "x0"), {}, ("v4",), ((1, 2),)),
            Step("split", ("v4",), {"sections": 2, "axis": 1}, ("v5", "v6"), ((1, 1),) * 2, True),
        ),
        ("v5", "v2"),
    )
    assert "v3 = tg.op('sub').apply(2.0, v2)" in program.source()
    assert "v5, v6 = tg.op('split').apply(v4, sections=2, axis=1)" in program.source()
    assert repr(program).startswith("Program, as code:")
    v5, v2 = program.function()(*program.inputs())
    np.testing.assert_array_equal(v5.data, [[2.0 - 0.25]])
    np.testing.assert_array_equal(v2.data, x * x)
    scope: dict = {}
    exec(program.source(), scope)  # ends with a gradcheck that passes
    assert check_program(program) < 1e-6


# ---- the check -----------------------------------------------------------------------------
def _one_op(name: str, x: np.ndarray, **attrs) -> Program:
    out = tg.op(name).apply(tg.Tensor(x), **attrs)
    return Program(
        (Leaf("x0", x, True),), (Step(name, ("x0",), attrs, ("v1",), (out.shape,)),), ("v1",)
    )


def test_a_program_on_a_kink_is_set_aside_not_failed():
    at_zero = _one_op("abs", np.array([0.0, 1.0]))
    assert kinks(at_zero) == ["x0[0]"]
    with pytest.raises(NotComparableError, match=r"not differentiable near x0\[0\]"):
        check_program(at_zero, torch=False)
    assert kinks(_one_op("abs", np.array([0.5, -1.0]))) == []


def test_a_program_whose_op_sits_on_a_tie_is_set_aside_not_failed():
    """Found by the long profile: maximum(x, minimum(c, x)) is x on both sides of x = c, a
    smooth program, but at x == c both ops meet a tie, where autograd follows the ops'
    convention (as torch does) and central differences the smooth composite."""
    c = 0.005870841487279677
    x = np.array([c, -0.3, 0.4])
    shapes = ((3,),)
    program = Program(
        (Leaf("x0", x, True),),
        (
            Step("minimum", (Number(c), "x0"), {}, ("v1",), shapes),
            Step("maximum", ("x0", "v1"), {}, ("v2",), shapes),
        ),
        ("v2",),
    )
    assert kinks(program) == []  # the composite is smooth
    assert ties(program) == ["minimum (op 0)", "maximum (op 1)"]
    with pytest.raises(NotComparableError, match=r"not differentiable near minimum \(op 0\)"):
        check_program(program, torch=False)
    program.leaves[0].array[0] = 0.25
    assert ties(program) == ["maximum (op 1)"]  # where x < c, minimum gives x: a tie too


def test_a_disagreement_with_torch_is_reported_with_both_programs(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setitem(TORCH_OPS, "tanh", TORCH_OPS["sigmoid"])
    with pytest.raises(AssertionError, match="output v1 differs from torch's") as failure:
        check_program(_one_op("tanh", np.array([0.5, -1.0])))
    assert "def program_torch(x0):\n    v1 = torch.sigmoid(x0)" in str(failure.value)


def test_every_builtin_op_has_a_torch_twin():
    builtin = [i.name for i in program_ops() if i.fn.__module__.startswith("tinygrad_lstm.ops")]
    assert set(builtin) <= set(TORCH_OPS)


@pytest.mark.parametrize("name", sorted(TORCH_OPS))
@settings(max_examples=10)
@given(data=st.data())
def test_each_torch_twin_computes_its_op(name, data):
    """The table is checked, not trusted: each entry against the op on its own drawn cases
    (outputs and the gradient of every input, torch as the reference)."""
    pytest.importorskip("torch")
    info = tg.op_info(name)
    attrs, arrays = data.draw(op_cases(info))
    leaves = tuple(
        Leaf(f"x{i}", a, info.scalar is None or info.scalar.grads[i] is not None)
        for i, a in enumerate(arrays)
    )
    out = tg.op(name).apply(*(tg.Tensor(a) for a in arrays), **attrs)
    multi = isinstance(out, tuple)
    shapes = tuple(o.shape for o in (out if multi else (out,)))
    names = tuple(f"v{len(arrays) + k}" for k in range(len(shapes)))
    step = Step(name, tuple(leaf.name for leaf in leaves), attrs, names, shapes, multi)
    compare_with_torch(Program(leaves, (step,), names))
