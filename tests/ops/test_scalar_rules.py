"""Scalar rules: what an elementwise op declares about one element must be what it computes.

Code generators trust ``OpInfo.scalar`` (the fused-cell compiler emits kernels from it), so
every registered rule, a plugin's included, is checked here against the op's own forward and
backward on inputs drawn from the op's metadata (``check_rule``, which ``check_op`` runs too).
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tinygrad_lstm.tooling.testing import op_cases
from tinygrad_lstm.tooling.testing_rules import check_rule

import tinygrad_lstm as tg
from tinygrad_lstm.registry import RegistryError, ScalarRule

RULED = [info.name for info in tg.list_ops() if info.scalar is not None]


def test_the_builtin_elementwise_ops_declare_rules():
    assert {
        "add",
        "sub",
        "mul",
        "div",
        "neg",
        "pow",
        "exp",
        "log",
        "sigmoid",
        "tanh",
        "relu",
    } <= set(RULED)


@pytest.mark.parametrize("name", RULED)
def test_rule_matches_the_ops_forward_and_backward(name):
    info = tg.op_info(name)

    @settings(max_examples=20)
    @given(op_cases(info), st.integers(0, 2**31 - 1))
    def check(case, seed):
        attrs, arrays = case
        check_rule(info, attrs, arrays, seed)

    check()


class Ident(tg.Function):
    """y = x: an op to register rules with."""

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g


@pytest.mark.parametrize(
    "rule, match",
    [
        ({"dx": "g"}, '"y" forward'),
        ({"y": "x", "dx": "g", "dz": "g"}, "2 derivatives for an op of arity 1"),
        ({"y": "x +", "dx": "g"}, "not an expression"),
        ({"y": "erf(x)", "dx": "g"}, r"calls erf, not one of \['exp'"),
        ({"y": "x", "x": "g"}, '"d<input>"'),
        ({"y": "x.real", "dx": "g"}, r"uses Attribute \('x.real'\)"),
        ({"y": "x", "dx": "g[0]"}, r"uses Subscript \('g\[0\]'\)"),
        ({"y": "(lambda v: v)(x)", "dx": "g"}, "calls lambda v: v, not one of"),
        ({"y": "x if (lambda: 1) else x", "dx": "g"}, r"uses Lambda"),
        ({"y": "x if [v for v in (x,)] else x", "dx": "g"}, r"uses ListComp"),
        ({"y": "x", "dx": "sum([g for _ in (1,)])"}, "calls sum"),
        ({"y": "x", "dx": "(z := g)"}, r"uses NamedExpr"),
        ({"y": "y * 2", "dx": "g"}, r"reads 'y', not one of \['x'\]"),
        ({"y": "x", "dx": "g * w"}, r"reads 'w', not one of \['g', 'x', 'y'\]"),
        ({"y": "x + exp", "dx": "g"}, "reads the function exp as a value"),
        ({"y": "exp(x, 2)", "dx": "g"}, r"calls exp with other than 1 plain argument"),
        ({"y": "max(x, *[1])", "dx": "g"}, "unpacks arguments into max"),
        ({"y": "x if True else x", "dx": "g"}, r"constant True \(bool\), not a number"),
        ({"y": "x * 1e999", "dx": "g"}, "constant inf, not a finite number"),
        ({"y": "x % 2", "dx": "g"}, r"uses Mod"),
        ({"y": 1.0, "dx": "g"}, '"y" forward expression'),
        ({"y": "x", "dx": 2}, "dx: 2 is not a string"),
        ({"y": "x", "dy": "g"}, r"names \['y'\] are taken"),
    ],
)
def test_bad_rules_are_refused(scratch_registry, rule, match):
    with pytest.raises(RegistryError, match=match) as refused:
        tg.register_op("ident", arity=1, scalar=rule)(Ident)
    assert "\n" not in str(refused.value) and "'ident'" in str(refused.value)


def test_a_function_shadowed_by_an_attribute_is_a_variable_there():
    """clip's attributes are named min and max: in its rule they are numbers, not calls."""
    rule = {"y": "min if x < min else x", "dx": "g"}
    ok = ScalarRule.parse("clip_like", rule, 1, ["min"])
    assert ok.forward == "min if x < min else x"
    with pytest.raises(RegistryError, match="calls min, not one of"):
        ScalarRule.parse("clip_like", {"y": "min(x, min)", "dx": "g"}, 1, ["min"])


def test_rules_are_for_elementwise_ops_only(scratch_registry):
    with pytest.raises(RegistryError, match="scalar= is for elementwise ops"):
        tg.register_op(
            "red",
            arity=1,
            kind="reduction",
            shapes=lambda d, a: [(2,)],
            scalar={"y": "x", "dx": "g"},
        )


# A string holding three quotes ends the generated module's docstring: what follows it in the
# rule would run as module code when the rule's ufunc is built.
_BREAKOUT = """x if '''\"\"\"
raise RuntimeError("injected")
\"\"\"''' else x"""


def test_a_rule_breaking_out_of_the_generated_docstring_is_refused(scratch_registry):
    with pytest.raises(RegistryError, match=r"register_op\('breakout'\): scalar= y: .*\(str\)"):
        tg.register_op("breakout", arity=1, scalar={"y": _BREAKOUT, "dx": "g"})(Ident)
    assert "breakout" not in {info.name for info in tg.list_ops()}
