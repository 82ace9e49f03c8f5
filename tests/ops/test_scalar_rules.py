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
from tinygrad_lstm.registry import RegistryError

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


@pytest.mark.parametrize(
    "rule, match",
    [
        ({"dx": "g"}, '"y" forward'),
        ({"y": "x", "dx": "g", "dz": "g"}, "2 derivatives for an op of arity 1"),
        ({"y": "x +", "dx": "g"}, "not an expression"),
        ({"y": "erf(x)", "dx": "g"}, r"unknown names \['erf'\]"),
        ({"y": "x", "x": "g"}, '"d<input>"'),
    ],
)
def test_bad_rules_are_refused(scratch_registry, rule, match):
    class Ident(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RegistryError, match=match):
        tg.register_op("ident", arity=1, scalar=rule)(Ident)


def test_rules_are_for_elementwise_ops_only(scratch_registry):
    with pytest.raises(RegistryError, match="scalar= is for elementwise ops"):
        tg.register_op(
            "red",
            arity=1,
            kind="reduction",
            shapes=lambda d, a: [(2,)],
            scalar={"y": "x", "dx": "g"},
        )
