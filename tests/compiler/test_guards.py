"""Guards (compiler/guards.py): a snapshot of what a compiled step read from its cell,
compared before every pass with one comparison of plain tuples."""

import numpy as np
from tinygrad_lstm.compiler.guards import Guard

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter


class Cell(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter(np.ones((2, 2)))
        self.beta = float("nan")
        self.table = np.arange(4.0)
        self.mask = tg.Tensor(np.ones(3))
        self.names = ["a", {"k": np.zeros(2)}]


def test_an_unchanged_cell_holds_nan_attribute_included():
    cell = Cell()
    guard = Guard(cell)
    assert guard.holds(cell)
    assert guard.holds(cell)  # a float NaN, the same object, equals itself here
    assert guard.changed(cell) == []


def test_values_changed_in_place_break_the_guard_and_are_named():
    cases = {
        "table": lambda c: c.table.__setitem__(1, -1.0),
        "mask": lambda c: c.mask.data.__setitem__(0, 0.0),
        "names": lambda c: c.names[1]["k"].__setitem__(0, 5.0),
        "beta": lambda c: setattr(c, "beta", 0.5),
        "w": lambda c: setattr(c, "w", Parameter(np.ones((3, 2)))),  # a new shape
    }
    for name, change in cases.items():
        cell = Cell()
        guard = Guard(cell)
        change(cell)
        assert not guard.holds(cell), name
        assert guard.changed(cell) == [name]


def test_a_parameters_values_are_not_guarded():
    """Parameters are the compiled op's inputs, read at every pass: an optimizer step
    changes their values, not what the step computes from them."""
    cell = Cell()
    guard = Guard(cell)
    cell.w.data -= 0.1
    assert guard.holds(cell)
