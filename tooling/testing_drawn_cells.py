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
``compare_fused`` (``testing_fusion``) is the property.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

import tinygrad_lstm as tg
from tinygrad_lstm.module import Module
from tinygrad_lstm.registry import OpInfo

from .testing_program import python_literal
from .testing_strategies import SPAN, op_attrs, value_grid

__all__ = ["FEATURES", "DrawnCell", "cells"]

# What a drawn step may do besides registered ops (at most one per cell; most cells none).
FEATURES = (
    "float attribute",
    "mask attribute",
    "dropout",
    "noise",
    "branch on a value",
    "rows mixed",
    "batch-shaped constant",
    "float32 state",
    "reduction",
)
_WIDTH_CODE = {"K": "input_size", "H": "H", "1": "1"}
Width = tuple[str, ...]  # a sum of K, H and 1 (("H", "H") is 2H)


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


@dataclass
class _V:
    name: str
    width: Width
    state: bool  # depends on the state


def _divides_by(info: OpInfo, i: int) -> bool:
    """Whether a derivative of the op's rule divides by input ``i`` itself (``g / b``): a
    pole where it is 0."""
    name = info.scalar.inputs[i]
    return any(
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Div)
        and isinstance(node.right, ast.Name)
        and node.right.id == name
        for expr in info.scalar.grads
        for node in ast.walk(ast.parse(expr or "0", mode="eval"))
    )


def _safe_interval(info: OpInfo, i: int) -> tuple[float, float] | None:
    """Where input ``i`` is mapped before the op: inside a bounded domain (``margin`` in from
    its ends), and for an input the rule divides by, the widest stretch between the points
    it avoids (``margin`` away from them); None when it may take any value."""
    low, high = info.input_domain(i)
    poles = _divides_by(info, i) and bool(info.avoid)
    if math.isinf(low) and math.isinf(high) and not poles:
        return None
    if math.isfinite(low):
        lo = low + info.margin
        hi = high - info.margin if math.isfinite(high) else lo + 2 * SPAN
    elif math.isfinite(high):
        hi = high - info.margin
        lo = hi - 2 * SPAN
    else:
        lo, hi = -2 * SPAN, 2 * SPAN
    if not poles:
        return lo, hi
    cuts = sorted([lo, hi, *(p for p in info.avoid if lo < p < hi)])
    a, b = max(zip(cuts, cuts[1:]), key=lambda gap: gap[1] - gap[0])
    return (a if a == lo else a + info.margin, b if b == hi else b - info.margin)


def _width_code(width: Width) -> str:
    """``("H", "H")`` -> ``"2 * H"``, ``("K", "1")`` -> ``"input_size + 1"``."""
    terms = []
    for atom in dict.fromkeys(width):
        n, code = width.count(atom), _WIDTH_CODE[atom]
        terms.append(code if n == 1 else f"{n} * {code}")
    return " + ".join(terms)


class _CellBuilder:
    def __init__(self, draw: st.DrawFn, ruled: list[OpInfo], reductions: list[OpInfo]) -> None:
        self.draw, self.ruled, self.reductions = draw, ruled, reductions
        self.init: list[str] = []
        self.body: list[str] = []
        self.params: list[tuple[str, tuple]] = []
        self.ops: list[str] = []
        self.count = 0
        self.values: list[_V] = [_V("x", ("K",), False)]

    # ---- naming and parameters ---------------------------------------------------------------
    def emit(self, expr: str, width: Width, state: bool) -> _V:
        value = _V(f"v{self.count}", width, state)
        self.count += 1
        self.body.append(f"{value.name} = {expr}")
        self.values.append(value)
        return value

    def param(self, shape: tuple[Width, ...]) -> str:
        same = [name for name, s in self.params if s == shape]
        if same and self.draw(st.booleans()):
            return f"self.{self.draw(st.sampled_from(same))}"
        name = f"p{len(self.params)}"
        self.params.append((name, shape))
        if not shape:
            self.init.append(
                f"self.{name} = Parameter(np.asarray(rng.uniform(0.5, 1.5), dtype=dtype))"
            )
        else:
            dims = ", ".join(_width_code(w) for w in shape) + ("," if len(shape) == 1 else "")
            self.init.append(
                f"self.{name} = Parameter(rng.uniform(-0.5, 0.5, ({dims})).astype(dtype))"
            )
        return f"self.{name}"

    def pick(self, fits: Any = None, state: bool = False) -> _V:
        """A value (the latest first, so the step chains), optionally of a fitting width, or
        one computed from the state."""
        pool = [
            v
            for v in reversed(self.values)
            if (fits is None or fits(v.width)) and (v.state or not state)
        ]
        return self.draw(st.sampled_from(pool))

    # ---- actions -------------------------------------------------------------------------------
    def conditioned(self, info: OpInfo, i: int, expr: str) -> str:
        interval = _safe_interval(info, i)
        if interval is None:
            return expr
        lo, hi = interval
        return f"({python_literal(lo)} + {python_literal(hi - lo)} * {expr}.sigmoid())"

    def call(self, info: OpInfo, args: list[str], attrs: dict) -> str:
        self.ops.append(info.name)
        symbol = {"add": "+", "sub": "-", "mul": "*", "div": "/"}.get(info.name)
        if symbol and not attrs and info.fn.__module__.startswith("tinygrad_lstm.ops"):
            return f"({args[0]} {symbol} {args[1]})"
        pairs = [f"{k}={python_literal(v)}" for k, v in attrs.items()]
        return f"tg.op({info.name!r}).apply({', '.join(args + pairs)})"

    def gate(self, number: str | None = None) -> None:
        """One ruled op; its first differentiable input is an existing value."""
        choices = self.ruled
        if number is not None:  # an op with a second differentiable input to take it
            choices = [i for i in self.ruled if sum(g is not None for g in i.scalar.grads) > 1]
        info = self.draw(st.sampled_from(choices))
        attrs = self.draw(op_attrs(info))
        grads = [g is not None for g in info.scalar.grads]
        # Which input the value takes: a number or parameter may stand on either side.
        first = self.draw(st.sampled_from([i for i, g in enumerate(grads) if g]))
        v = self.pick()
        width, state = v.width, v.state
        args: list[str | None] = [None] * len(grads)
        args[first] = self.conditioned(info, first, v.name)
        for i, takes_grad in enumerate(grads):
            if args[i] is not None:
                continue
            if not takes_grad:  # a mask: every other column
                args[i] = f"(np.arange({v.name}.shape[1]) % 2).astype(x.dtype)"
                continue
            kind = self.draw(st.sampled_from(["value", "number", "parameter"]))
            if number is not None:
                kind = "number"
            if kind == "value":
                other = self.pick(lambda w, at=width: w in (at, ("1",)) or at == ("1",))
                width = width if other.width == ("1",) else other.width
                state = state or other.state
                args[i] = self.conditioned(info, i, other.name)
            elif kind == "number":
                args[i] = number or python_literal(
                    self.draw(st.sampled_from(value_grid(info, i).tolist()))
                )
                number = None
            else:
                shape = self.draw(st.sampled_from([(), (width,)] if width == ("H",) else [()]))
                args[i] = self.conditioned(info, i, self.param(shape))
        self.emit(self.call(info, args, attrs), width, state)

    def matmul(self, out: Width | None = None) -> _V:
        v = self.pick()
        out = out or self.draw(st.sampled_from([("H",), ("H", "H"), ("1",)]))
        self.ops.append("matmul")
        if self.draw(st.booleans()):
            return self.emit(f"{v.name} @ {self.param((out, v.width))}.T", out, v.state)
        return self.emit(f"{v.name} @ {self.param((v.width, out))}", out, v.state)

    def shape_op(self) -> None:
        wide = [v for v in self.values if v.width == ("H", "H")]
        kind = self.draw(st.sampled_from(["concat", "split", "getitem"]))
        if kind == "concat":
            a, b = self.pick(), self.pick()
            self.ops.append("concat")
            self.emit(
                f"tg.concat([{a.name}, {b.name}], axis=1)", a.width + b.width, a.state or b.state
            )
        elif kind == "split" and wide:
            v = self.draw(st.sampled_from(wide))
            self.ops.append("split")
            axis = self.draw(st.sampled_from([1, -1]))
            a, b = f"v{self.count}", f"v{self.count + 1}"
            self.count += 2
            self.body.append(f"{a}, {b} = tg.split({v.name}, 2, axis={axis})")
            self.values += [_V(a, ("H",), v.state), _V(b, ("H",), v.state)]
        elif kind == "getitem" and wide:
            v = self.draw(st.sampled_from(wide))
            self.ops.append("getitem")
            half = self.draw(st.sampled_from(["[:, :H]", "[:, H:]"]))
            self.emit(f"{v.name}{half}", ("H",), v.state)
        else:
            v = self.some_h()
            self.ops.append("getitem")
            self.emit(f"{v.name}[:, 0:1]", ("1",), v.state)

    # ---- features -------------------------------------------------------------------------------
    def some_h(self) -> _V:
        """A value of width H (made by a matmul if there is none)."""
        if not any(v.width == ("H",) for v in self.values):
            return self.matmul(("H",))
        return self.pick(lambda w: w == ("H",))

    def feature(self, feature: str, changes: list[str], reseeds: list[str]) -> None:
        """One step doing ``feature`` (see ``FEATURES``)."""
        if feature == "float attribute":
            self.init.append("self.beta = 0.75")
            changes.append("self.beta = -0.5")
            self.gate(number="self.beta")
        elif feature == "mask attribute":
            self.init.append("self.mask = tg.Tensor((np.arange(H) % 2).astype(dtype))")
            changes.append("self.mask = tg.Tensor(1 - self.mask.data)")
            v = self.some_h()
            self.emit(f"{v.name} * self.mask", v.width, v.state)
        elif feature == "dropout":
            self.init.append("self.drop = Dropout(0.5, rng=np.random.default_rng(0))")
            reseeds.append("self.drop.rng = np.random.default_rng(seed)")
            v = self.pick()
            self.emit(f"self.drop({v.name})", v.width, v.state)
        elif feature == "noise":
            self.init.append("self.noise = np.random.default_rng(0)")
            reseeds.append("self.noise = np.random.default_rng(seed)")
            v = self.pick()
            self.emit(
                f"{v.name} + 0.1 * self.noise.standard_normal({v.name}.shape)", v.width, v.state
            )
        elif feature == "branch on a value":
            v = self.pick()
            unary = [i for i in self.ruled if i.arity == 1]
            a, b = (self.draw(st.sampled_from(unary)) for _ in range(2))
            name = f"v{self.count}"
            self.count += 1
            branches = [
                self.call(i, [self.conditioned(i, 0, v.name)], self.draw(op_attrs(i)))
                for i in (a, b)
            ]
            self.body += [
                f"if float({v.name}.data.mean()) > 0:",
                f"    {name} = {branches[0]}",
                "else:",
                f"    {name} = {branches[1]}",
            ]
            self.values.append(_V(name, v.width, v.state))
        elif feature == "rows mixed":
            self.ops.append("getitem")
            self.emit(self.draw(st.sampled_from(["x - x[0:1]", "x[::-1]"])), ("K",), False)
        elif feature == "batch-shaped constant":
            self.ops.append("concat")
            expr = "tg.concat([x, tg.ones(x.shape[0], 1, dtype=x.dtype)], axis=1)"
            self.emit(expr, ("K", "1"), False)
        elif feature == "reduction" and self.reductions:
            info = self.draw(st.sampled_from(self.reductions))
            v = self.pick()
            self.emit(self.call(info, [v.name], {"axis": -1, "keepdims": True}), ("1",), v.state)

    def produce(self, width: Width, taken: list[str]) -> _V:
        """A value of ``width`` for the output or a new state part: preferably one computed
        from the state and not ``taken`` already (the latest first), else a matmul of a
        state-dependent value; now and then one of the others (the same value twice, one
        computed from x_t alone), which a compiler must also get right or refuse."""
        made = [v for v in reversed(self.values) if v.width == width and v.name.startswith("v")]
        good = [v for v in made if v.state and v.name not in taken]
        choice = self.draw(st.sampled_from([*good, None, *(v for v in made if v not in good)]))
        if choice is not None and self.params:  # a cell needs a parameter (for its dtype)
            return choice
        v = self.pick(lambda w: True, state=True)
        out = width
        self.ops.append("matmul")
        return self.emit(f"{v.name} @ {self.param((v.width, out))}", out, True)


_STATE_WIDTHS = {"H": ("H",), "1": ("1",), "2H": ("H", "H")}
# Gates twice as often as matmuls or shape ops.
_ACTIONS = ("gate", "matmul", "gate", "shape")


def _source(
    builder: _CellBuilder, widths: list[str], feature: str | None, changes: list, reseeds: list
) -> str:
    def block(lines: list[str], indent: int = 8) -> str:
        return "\n".join(" " * indent + line for line in lines)

    dtype = "" if feature == "float32 state" else ", dtype=dtype"
    zeros = [f"tg.zeros(batch_size, {_width_code(_STATE_WIDTHS[w])}{dtype})" for w in widths]
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
    builder = _CellBuilder(draw, ruled, reductions)
    widths = draw(st.lists(st.sampled_from(["H", "1", "2H"]), min_size=1, max_size=3))
    builder.values += [_V(f"s{j}", _STATE_WIDTHS[w], True) for j, w in enumerate(widths)]
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
