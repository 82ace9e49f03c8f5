"""The step of a drawn cell, built one random action at a time (``cells()`` draws them).

``CellSteps`` keeps the values of the step (x_t of width K, the state parts, and what each
action computes), the lines of ``__init__`` (parameters, attributes) and of ``forward``, and
the ops used. An action is a gate (a registered op with a scalar rule, its inputs mapped
into a safe interval where its domain or a pole requires), a matmul with a weight, a shape
op (``split``, ``getitem``, ``concat``) or one of ``FEATURES``. Widths are sums of the
symbols K, H and 1 (``("H", "H")`` is 2H), turned into code by ``width_code``.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tinygrad_lstm.registry import OpInfo

from .testing_program import python_literal
from .testing_strategies import SPAN, op_attrs, value_grid

__all__ = ["FEATURES", "CellSteps", "Width", "width_code"]

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


def width_code(width: Width) -> str:
    """``("H", "H")`` -> ``"2 * H"``, ``("K", "1")`` -> ``"input_size + 1"``."""
    terms = []
    for atom in dict.fromkeys(width):
        n, code = width.count(atom), _WIDTH_CODE[atom]
        terms.append(code if n == 1 else f"{n} * {code}")
    return " + ".join(terms)


class CellSteps:
    """The step being drawn (see the module docstring)."""

    def __init__(self, draw: st.DrawFn, ruled: list[OpInfo], reductions: list[OpInfo]) -> None:
        self.draw, self.ruled, self.reductions = draw, ruled, reductions
        self.init: list[str] = []
        self.body: list[str] = []
        self.params: list[tuple[str, tuple]] = []
        self.ops: list[str] = []
        self.count = 0
        self.values: list[_V] = [_V("x", ("K",), False)]

    def add_state(self, name: str, width: Width) -> None:
        """A state part the step reads (computed from the state, by definition)."""
        self.values.append(_V(name, width, True))

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
            dims = ", ".join(width_code(w) for w in shape) + ("," if len(shape) == 1 else "")
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
            # Above 0 the two sample steps a compiler records are likely to take different
            # sides; above 1 or 2, likely the same one, while a long sequence may cross it.
            threshold = self.draw(st.sampled_from([0.0, 1.0, 2.0]))
            name = f"v{self.count}"
            self.count += 1
            branches = [
                self.call(i, [self.conditioned(i, 0, v.name)], self.draw(op_attrs(i)))
                for i in (a, b)
            ]
            self.body += [
                f"if float({v.name}.data.mean()) > {threshold}:",
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
