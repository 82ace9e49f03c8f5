"""``cells()``: a hypothesis strategy of random recurrent cells, each a real cell class.

A drawn cell keeps 1-3 state tensors of widths among H, 1 and 2H, and its step is a random
DAG over x_t (width K) and the state: gates from every registered op with a scalar rule
(with its attributes; an input the op's domain bounds, or that its rule divides by, is first
mapped into a safe interval by a sigmoid), arithmetic with Python numbers on either side,
parameters of shape (), (H,) and (W, W') (some used twice), ``split``, ``getitem``,
``concat``, and matmuls of x_t and of the state with weights. In some draws the step also
does one thing the compiler must not get silently wrong (``FEATURES``): reads a float
attribute or a mask Tensor attribute (changed between forwards by ``change_attributes()``),
draws random numbers (``Dropout``, or noise; ``reseed(seed)`` restarts them), branches on a
value, mixes the rows of the batch, builds a constant shaped by the batch, makes its state
in float32 whatever the dtype asked, or reduces inside the recurrence.

``DrawnCell.source`` is a Python module a user can paste; ``cell_class()`` runs exactly that
source, and the class works with ``Recurrent(cls, input_size, hidden_size, ...)``.
``compare_fused`` (``testing_fusion``) is the property; ``testing_cell_steps`` draws the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

import tinygrad_lstm as tg
from tinygrad_lstm.module import Module

from .testing_cell_steps import FEATURES, CellSteps, width_code

__all__ = ["FEATURES", "DrawnCell", "cells"]


@dataclass(frozen=True)
class DrawnCell:
    """A drawn cell: ``source`` defines ``class DrawnCell(Module)``; ``feature`` is the one
    thing from ``FEATURES`` its step does, or None (registered ops only)."""

    source: str
    feature: str | None
    ops: tuple[str, ...]
    _compiled: dict = field(default_factory=dict, compare=False, repr=False)

    def cell_class(self) -> type[Module]:
        """The class the source defines (run once, then cached)."""
        if "cls" not in self._compiled:
            scope: dict[str, Any] = {"__name__": "drawn_cell"}
            exec(compile(self.source, "<drawn cell>", "exec"), scope)  # noqa: S102
            self._compiled["cls"] = scope["DrawnCell"]
        return self._compiled["cls"]

    def __repr__(self) -> str:
        return f"DrawnCell ({self.feature or 'registered ops only'}), as code:\n{self.source}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # what hypothesis prints for a falsifying example


_STATE_WIDTHS = {"H": ("H",), "1": ("1",), "2H": ("H", "H")}
# Gates twice as often as matmuls or shape ops.
_ACTIONS = ("gate", "matmul", "gate", "shape")


def _source(
    builder: CellSteps, widths: list[str], feature: str | None, changes: list, reseeds: list
) -> str:
    def block(lines: list[str], indent: int = 8) -> str:
        return "\n".join(" " * indent + line for line in lines)

    dtype = "" if feature == "float32 state" else ", dtype=dtype"
    zeros = [f"tg.zeros(batch_size, {width_code(_STATE_WIDTHS[w])}{dtype})" for w in widths]
    names = [f"s{j}" for j in range(len(widths))]
    new_states: list[str] = []
    for w in widths:
        new_states.append(builder.produce(_STATE_WIDTHS[w], new_states).name)
    out = builder.produce(("H",), []).name
    if len(widths) == 1:
        unpack, initial, new = f"{names[0]} = state", zeros[0], new_states[0]
    else:
        unpack = f"{', '.join(names)} = state"
        initial = f"({', '.join(zeros)})"
        new = f"({', '.join(new_states)})"
    imports = "import math\n\nimport numpy as np\n\nimport tinygrad_lstm as tg\n"
    imports += "from tinygrad_lstm import Module, Parameter\n"
    if feature == "dropout":
        imports += "from tinygrad_lstm.layers import Dropout\n"
    text = f'''{imports}

class DrawnCell(Module):
    """A recurrent cell drawn by tinygrad_lstm.testing.cells(): state widths {", ".join(widths)};
    {feature or "registered ops only"}."""

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        rng = tg.default_rng() if rng is None else rng
        H = self.hidden_size = hidden_size
{block(builder.init)}

    def init_state(self, batch_size, dtype=np.float32):
        H = self.hidden_size
        return {initial}

    def forward(self, x, state):
        H = self.hidden_size
        {unpack}
{block(builder.body)}
        return {out}, {new}
'''
    if changes:
        text += f"\n    def change_attributes(self):\n{block(changes)}\n"
    if reseeds:
        text += f"\n    def reseed(self, seed):\n{block(reseeds)}\n"
    return text


def cells(features: tuple[str, ...] = FEATURES) -> st.SearchStrategy[DrawnCell]:
    """Random cells (see the module docstring); ``features``: which of ``FEATURES`` a draw
    may add (``()`` for cells of registered ops only)."""
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"cells: unknown features {sorted(unknown)}; known: {list(FEATURES)}")
    ruled = [i for i in tg.list_ops() if i.scalar is not None and i.differentiable]
    reductions = [
        i
        for i in tg.list_ops()
        if i.kind == "reduction"
        and -1 in i.attrs.get("axis", ())
        and True in i.attrs.get("keepdims", ())
    ]
    return _cells(tuple(features), ruled, reductions)


@st.composite
def _cells(draw: st.DrawFn, features: tuple, ruled: list, reductions: list) -> DrawnCell:
    builder = CellSteps(draw, ruled, reductions)
    widths = draw(st.lists(st.sampled_from(["H", "1", "2H"]), min_size=1, max_size=3))
    for j, w in enumerate(widths):
        builder.add_state(f"s{j}", _STATE_WIDTHS[w])
    # About half the draws are registered ops only.
    feature = draw(st.sampled_from(features)) if features and draw(st.booleans()) else None
    actions = draw(st.lists(st.sampled_from(_ACTIONS), min_size=1, max_size=7))
    where = draw(st.integers(0, len(actions)))
    changes: list[str] = []
    reseeds: list[str] = []
    for k, action in enumerate(actions + [None]):
        if k == where and feature is not None:
            builder.feature(feature, changes, reseeds)
        if action == "gate":
            builder.gate()
        elif action == "matmul":
            builder.matmul()
        elif action == "shape":
            builder.shape_op()
    source = _source(builder, widths, feature, changes, reseeds)
    return DrawnCell(source, feature, tuple(builder.ops))
