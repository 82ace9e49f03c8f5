"""Module and Parameter: registration order, traversal, state dicts, modes, dtype, RNG."""

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter
from tinygrad_lstm.module import StateDictError


class Leaf(Module):
    def __init__(self, n: int, bias: bool = True):
        super().__init__()
        self.weight = Parameter(np.arange(n * 2, dtype=np.float32).reshape(n, 2))
        if bias:
            self.bias = Parameter(np.zeros(n, np.float32))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return x @ self.weight.T


class Tree(Module):
    def __init__(self):
        super().__init__()
        self.scale = Parameter(np.ones(1, np.float32))
        self.first = Leaf(3)
        self.second = Leaf(2, bias=False)
        self.again = self.first  # shared: its parameters must be listed once

    def forward(self, x):
        return self.second(self.first(x)[:, :2]) * self.scale


def test_named_parameters_are_dotted_in_assignment_order_and_unique():
    names = [n for n, _ in Tree().named_parameters()]
    assert names == ["scale", "first.weight", "first.bias", "second.weight"]
    assert len(list(Tree().parameters())) == 4


def test_children_and_modules():
    tree = Tree()
    assert [n for n, _ in tree.named_children()] == ["first", "second", "again"]
    assert [type(m).__name__ for m in tree.modules()] == ["Tree", "Leaf", "Leaf"]
    assert [n for n, _ in tree.named_modules()] == ["", "first", "second"]


def test_parameter_is_a_float_leaf_that_requires_grad():
    p = Parameter(np.zeros((2, 2)))
    assert p.requires_grad and p.is_leaf and p.dtype == np.float64
    assert "Parameter(" in repr(p)
    with pytest.raises(TypeError, match="float32 or float64"):
        Parameter(np.zeros(3, dtype=np.int64))


def test_assigning_a_non_parameter_to_a_parameter_name_is_refused():
    leaf = Leaf(2)
    with pytest.raises(TypeError, match="Parameter or None"):
        leaf.weight = tg.Tensor(np.zeros((2, 2), np.float32))
    leaf.bias = None
    assert [n for n, _ in leaf.named_parameters()] == ["weight"]
    with pytest.raises(KeyError, match="without '.'"):
        leaf.register_parameter("a.b", None)


def test_state_dict_is_a_copy():
    tree = Tree()
    state = tree.state_dict()
    assert list(state) == ["scale", "first.weight", "first.bias", "second.weight"]
    state["scale"][0] = 5.0
    assert tree.scale.data[0] == 1.0


def test_load_state_dict_round_trip_keeps_parameter_objects():
    src, dst = Tree(), Tree()
    for p in src.parameters():
        p.data = p.data + 1.5
    weight = dst.first.weight
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst.first.weight is weight
    for (name, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_load_state_dict_reports_every_problem_and_changes_nothing():
    tree = Tree()
    before = tree.state_dict()
    bad = tree.state_dict()
    del bad["first.bias"]
    bad["extra"] = np.zeros(1, np.float32)
    bad["second.weight"] = np.zeros((5, 2), np.float32)
    bad["scale"] = np.ones(1, np.float64)
    bad["first.weight"] = bad["first.weight"] + 7  # valid, must still not be loaded
    with pytest.raises(StateDictError) as info:
        tree.load_state_dict(bad)
    message = str(info.value)
    for piece in (
        "missing keys: first.bias",
        "unexpected keys: extra",
        "second.weight: expected shape (2, 2), got (5, 2)",
        "scale: expected dtype float32, got float64",
        "nothing was loaded",
    ):
        assert piece in message
    for name, value in tree.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_load_state_dict_non_strict_returns_the_skipped_keys():
    tree = Tree()
    state = tree.state_dict()
    del state["scale"]
    state["unused"] = np.zeros(2, np.float32)
    state["first.bias"] = np.full(3, 2.0, np.float32)
    result = tree.load_state_dict(state, strict=False)
    assert result.missing_keys == ["scale"] and result.unexpected_keys == ["unused"]
    np.testing.assert_array_equal(tree.first.bias.data, 2.0)


def test_train_eval_are_recursive():
    tree = Tree()
    assert all(m.training for m in tree.modules())
    assert tree.eval() is tree
    assert not any(m.training for m in tree.modules())
    tree.train()
    assert all(m.training for m in tree.modules())


def test_zero_grad_and_call():
    tree = Tree()
    x = tg.Tensor(np.ones((4, 2), np.float32))
    tree(x).sum().backward()
    assert all(p.grad is not None for p in [tree.scale, tree.first.weight, tree.second.weight])
    tree.zero_grad()
    assert all(p.grad is None for p in tree.parameters())


def test_to_converts_in_place():
    tree = Tree()
    weight = tree.first.weight
    tree.first.weight.grad = np.ones((3, 2), np.float32)
    assert tree.to(np.float64) is tree
    assert all(p.dtype == np.float64 for p in tree.parameters())
    assert tree.first.weight is weight and weight.grad.dtype == np.float64
    with pytest.raises(TypeError, match="float32 or float64"):
        tree.to(np.int32)


def test_repr_lists_children():
    text = repr(Tree())
    assert text.startswith("Tree(\n") and "(first): Leaf()" in text and text.endswith(")")


def test_manual_seed_makes_default_rng_reproducible():
    tg.manual_seed(3)
    a = tg.default_rng().random(4)
    tg.manual_seed(3)
    np.testing.assert_array_equal(a, tg.default_rng().random(4))


def test_setting_attributes_before_init_is_a_clear_error():
    class Broken(Module):
        def __init__(self):
            self.w = Parameter(np.zeros(1))

    with pytest.raises(AttributeError, match="Module.__init__"):
        Broken()
