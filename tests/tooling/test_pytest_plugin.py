"""The pytest plugin's fixtures (installed through the ``pytest11`` entry point, so this
suite gets them exactly as a plugin package's suite does)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tinygrad_lstm import Function, register_op, registry


def test_assert_op_gradients_fixture_passes_a_correct_op(assert_op_gradients):
    report = assert_op_gradients("tanh", max_examples=4)
    assert (report.name, report.kind, report.cases, report.ok) == ("tanh", "op", 4, True)


def test_assert_op_gradients_fixture_names_a_wrong_backward(assert_op_gradients, monkeypatch):
    monkeypatch.setattr(registry, "OPS", dict(registry.OPS))
    monkeypatch.setattr(registry, "_OP_INFO", dict(registry._OP_INFO))

    @register_op("cube_missing_factor", arity=1)
    class Cube(Function):
        """y = x**3 with backward g * x**2 (the factor 3 forgotten)."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved
            return g * x**2

    with pytest.raises(AssertionError, match=r"op 'cube_missing_factor' failed:.*mismatch"):
        assert_op_gradients("cube_missing_factor", max_examples=3)


def test_assert_op_gradients_fixture_compares_the_scalar_rule(assert_op_gradients, monkeypatch):
    """A right forward and backward beside a wrong rule (the derivative's square missing):
    before, the fixture passed it, and fused kernels generated from the rule were wrong."""
    monkeypatch.setattr(registry, "OPS", dict(registry.OPS))
    monkeypatch.setattr(registry, "_OP_INFO", dict(registry._OP_INFO))

    @register_op(
        "softsign_wrong_rule",
        arity=1,
        scalar={"y": "x / (1 + abs(x))", "dx": "g / (1 + abs(x))"},
    )
    class Softsign(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x / (1 + abs(x))

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved
            return g / ((1 + abs(x)) * (1 + abs(x)))

    with pytest.raises(AssertionError, match=r"scalar rule dx = g / \(1 \+ abs\(x\)\)"):
        assert_op_gradients("softsign_wrong_rule", max_examples=3)


def test_assert_cell_gradients_fixture(assert_cell_gradients):
    report = assert_cell_gradients("rnn", num_layers=1, bidirectional=False, max_examples=3)
    assert report.ok and report.kind == "cell" and report.cases == 3


def test_registered_by_lists_what_a_distribution_registered(registered_by):
    ops, cells = registered_by("tinygrad-lstm")
    assert {"add", "matmul", "sigmoid", "tanh", "unstack"} <= set(ops) and ops == sorted(ops)
    assert {"rnn", "lstm", "gru"} <= set(cells)
    assert registered_by("no-such-distribution") == ([], [])


def test_importing_the_plugin_module_imports_nothing_else():
    code = (
        "import sys; before = set(sys.modules); import tinygrad_lstm.tooling.pytest_plugin; "
        "new = set(sys.modules) - before; "
        "print(sorted(m for m in new if m.startswith(('hypothesis', 'numba'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", f"pytest_plugin imported {out.strip()} at import time"


def test_fixtures_are_found_through_the_entry_point(tmp_path):
    (tmp_path / "test_empty.py").write_text("")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    ).stdout
    assert "fixtures defined from tinygrad_lstm.tooling.pytest_plugin" in out, out
    for name in ("assert_op_gradients", "assert_cell_gradients", "registered_by"):
        assert name in out, f"fixture {name} not offered by the installed pytest plugin"
