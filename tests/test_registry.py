"""The plugin registry: registering, replacing, looking up and listing ops and cells, and
loading plugins through entry points (failures are simulated with fake entry points)."""

import math
import types

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import (
    Function,
    PluginWarning,
    RegistryError,
    register_cell,
    register_op,
    registry,
)

ISSUE_OPS = {
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
    "matmul",
    "concat",
    "stack",
    "split",
    "getitem",
    "reshape",
    "transpose",
    "sum",
    "mean",
    "max",
    "logsumexp",
    "softmax",
    "log_softmax",
}


class Double(Function):
    """y = 2 x."""

    @staticmethod
    def forward(ctx, x):
        return 2.0 * x

    @staticmethod
    def backward(ctx, g):
        return 2.0 * g


# ---- lookup and listing --------------------------------------------------------------------
def test_every_op_of_the_issue_is_registered_with_metadata():
    infos = {info.name: info for info in tg.list_ops()}
    assert ISSUE_OPS <= set(infos)
    assert [i.name for i in tg.list_ops()] == sorted(infos)
    for info in infos.values():
        assert info.kind in registry.OP_KINDS and info.fn is tg.op(info.name)
        assert info.arity is not None or info.n_inputs
        assert info.doc, f"{info.name} has no docstring"
    assert infos["log"].input_domain(0)[0] == 0.0
    assert 0.0 in infos["relu"].avoid
    assert infos["matmul"].kind == "linalg" and infos["concat"].arity is None


def test_builtin_ops_came_through_the_entry_point():
    assert tg.op_info("sigmoid").origin.startswith("tinygrad-lstm:ops")


def test_unknown_names_list_what_exists():
    with pytest.raises(RegistryError, match=r"unknown op 'sigmoidd'.*sigmoid"):
        tg.op("sigmoidd")
    with pytest.raises(RegistryError, match="unknown op"):
        tg.op_info("nope")
    with pytest.raises(RegistryError, match=r"unknown cell 'nope'"):
        tg.cell("nope")


# ---- registering ops -------------------------------------------------------------------------
def test_duplicate_name_fails_unless_replace(scratch_registry):
    original = tg.op("sigmoid")
    with pytest.raises(RegistryError, match=r"'sigmoid' is already registered.*replace=True"):
        register_op("sigmoid", arity=1)(Double)
    assert tg.op("sigmoid") is original
    register_op("sigmoid", arity=1, replace=True)(Double)
    # Functional forms and methods resolve by name, so they pick up the replacement.
    x = tg.Tensor([1.0, 2.0])
    np.testing.assert_array_equal(tg.sigmoid(x).data, [2.0, 4.0])
    np.testing.assert_array_equal(x.sigmoid().data, [2.0, 4.0])


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"arity": 1, "kind": "magic"}, "kind must be one of"),
        ({"arity": None}, "variadic op.*n_inputs"),
        ({"arity": 1, "kind": "reduction"}, "needs shapes="),
    ],
)
def test_bad_metadata_is_refused(scratch_registry, metadata, match):
    with pytest.raises(RegistryError, match=match):
        register_op("_test_bad", **metadata)(Double)
    assert "_test_bad" not in registry.OPS


def test_non_function_and_missing_backward_are_refused(scratch_registry):
    with pytest.raises(RegistryError, match="not a Function subclass"):
        register_op("_test_bad", arity=1)(object)

    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x

    with pytest.raises(RegistryError, match="defines no backward"):
        register_op("_test_bad", arity=1)(NoBackward)
    register_op("_test_flag", arity=1, differentiable=False)(NoBackward)
    assert not tg.op_info("_test_flag").differentiable


def test_metadata_is_kept(scratch_registry):
    register_op(
        "_test_meta",
        arity=2,
        domain=[(0.0, math.inf), (-1.0, 1.0)],
        avoid=(0.5,),
        margin=0.05,
        attrs={"mode": ["a", "b"]},
    )(Double)
    info = tg.op_info("_test_meta")
    assert info.input_domain(0) == (0.0, math.inf) and info.input_domain(1) == (-1.0, 1.0)
    assert (info.avoid, info.margin, info.attrs) == ((0.5,), 0.05, {"mode": ["a", "b"]})
    assert Double.op_name == "_test_meta" and info.doc == "y = 2 x."


# ---- cells -----------------------------------------------------------------------------------
class ToyCell(tg.Module):
    """A cell that keeps its state."""

    def init_state(self, batch_size, dtype=np.float32):
        return tg.zeros(batch_size, 1, dtype=dtype)

    def forward(self, x, state):
        return state, state


def test_cells_register_list_and_refuse_duplicates(scratch_registry):
    register_cell("_test_toy")(ToyCell)
    assert tg.cell("_test_toy") is ToyCell and ToyCell.cell_name == "_test_toy"
    assert "_test_toy" in [c.name for c in tg.list_cells()]
    assert tg.cell_info("_test_toy").doc == "A cell that keeps its state."
    with pytest.raises(RegistryError, match="already registered"):
        register_cell("_test_toy")(ToyCell)
    register_cell("_test_toy", replace=True)(ToyCell)


def test_cell_without_init_state_is_refused(scratch_registry):
    class NoState:
        def forward(self, x, state):
            return x, state

    with pytest.raises(RegistryError, match=r"NoState has no init_state\(\)"):
        register_cell("_test_nostate")(NoState)


def test_builtin_cells_are_registered():
    assert {"rnn", "lstm", "gru"} <= {c.name for c in tg.list_cells()}


# ---- plugin loading ----------------------------------------------------------------------------
def _fake_entry_point(name, load):
    return types.SimpleNamespace(
        name=name,
        value=f"{name}_pkg.plugin",
        dist=types.SimpleNamespace(name=f"{name}-dist"),
        load=load,
    )


def test_broken_plugin_warns_naming_it_and_others_still_load(scratch_registry, monkeypatch):
    def broken():
        raise ImportError("No module named 'missing_dependency'")

    def good():
        register_op("_test_plugin_op", arity=1)(Double)

    eps = [_fake_entry_point("broken", broken), _fake_entry_point("good", good)]
    monkeypatch.setattr(registry, "_entry_points", lambda: eps)
    with pytest.warns(
        PluginWarning,
        match=r"broken-dist:broken.*broken_pkg\.plugin.*"
        r"ImportError.*missing_dependency",
    ):
        loaded = tg.load_plugins()
    assert loaded == ["good-dist:good"]
    assert tg.op_info("_test_plugin_op").origin.startswith("good-dist:good")
    assert tg.op("sigmoid").__name__ == "Sigmoid"
    assert tg.load_plugins() == [], "a plugin is loaded once"
