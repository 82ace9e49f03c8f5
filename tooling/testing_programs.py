"""``programs()``: a hypothesis strategy of random differentiable programs over registered ops.

A program is a DAG drawn one step at a time, every step a registered op read from the
registry's metadata (arity, kind, domain, points to avoid, attribute choices, input shapes),
so a plugin's ops are drawn beside the built-in ones. Each value may be reused up to
``MAX_USES`` times, by different ops or twice by one op (``mul(v0, v0)``, ``concat([v1,
v1])``); leaves are 0-d, 1-d or N-d and elementwise operands broadcast; reductions come with
and without ``keepdims``; Python numbers stand on either side of an op with several inputs.

Values are computed as the program is drawn, so an op only receives operands inside its
declared domain, ``margin`` away from the points it avoids, finite and at most ``BOUND`` in
magnitude (where float64 central differences still resolve a derivative at the library's
tolerances). An op whose inputs are shaped by its metadata (``shapes=``) takes existing
values when they fit, and fresh leaves of the shapes it declares when none does. An input
whose scalar rule declares no derivative (``where``'s mask) gets a constant. Shrinking goes
to fewer steps, fewer leaves, smaller shapes and earlier ops. ``check_program``
(``testing_program_check``) is the property.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_lstm as tg
from tinygrad_lstm.registry import OpInfo

from .testing_program import Leaf, Number, Program, Step
from .testing_strategies import GRID_POINTS, SPAN, op_attrs, value_grid

__all__ = ["BOUND", "MAX_ELEMENTS", "MAX_USES", "program_ops", "programs"]

# Every value is finite and at most BOUND in magnitude: L = sum(v * outputs) then rounds at
# ~1e-14, which central differences (eps 1e-6) turn into ~1e-8, the absolute tolerance.
BOUND = 30.0
MAX_ELEMENTS = 24  # per value: the gradient check evaluates the program twice per leaf element
MAX_USES = 4  # how often one value may feed later ops (the "reused 1-4 times")

_LEAF_GRID = np.linspace(-SPAN, SPAN, GRID_POINTS)
_LEAF_VALUES = st.sampled_from(sorted(_LEAF_GRID.tolist(), key=abs))


def program_ops(ops: Sequence[str] | None = None) -> list[OpInfo]:
    """The ops ``programs(ops)`` draws from: those named (each must be registered and
    differentiable), or by default every registered differentiable op except whole
    sequence layers (kind ``"fused"``, checked by ``check_op`` and the cell properties)."""
    if ops is None:
        return [i for i in tg.list_ops() if i.differentiable and i.kind != "fused"]
    if isinstance(ops, str) or not ops:
        raise ValueError(f"programs: ops must be a non-empty list of op names, got {ops!r}")
    infos = [tg.op_info(name) for name in ops]
    for info in infos:
        if not info.differentiable:
            raise ValueError(f"programs: op {info.name!r} is not differentiable")
    return infos


def programs(
    ops: Sequence[str] | None = None, max_steps: int = 6, max_leaves: int = 3
) -> st.SearchStrategy[Program]:
    """Random programs of 1..``max_steps`` ops over 1..``max_leaves`` float64 leaves.

    ``ops``: op names to draw from (default: see ``program_ops``). The drawn ``Program``
    prints as pasteable Python (``Program.source()``); check it with ``check_program``.
    """
    infos = program_ops(ops)
    if max_steps < 1 or max_leaves < 1:
        raise ValueError(
            f"programs: max_steps and max_leaves must be >= 1, got {max_steps} and {max_leaves}"
        )
    return _programs(tuple(infos), max_steps, max_leaves)


@dataclass(eq=False)  # compared by identity: ``args.count(v)`` counts this very value
class _Value:
    name: str
    data: np.ndarray
    grad: bool  # depends on a leaf that requires grad
    uses: int = 0


def _usable(info: OpInfo, i: int, a: np.ndarray) -> bool:
    """Input ``i`` of ``info`` may be ``a``: inside the domain, away from avoided points."""
    if a.size == 0 or not np.all(np.isfinite(a)) or np.max(np.abs(a)) > BOUND:
        return False
    low, high = info.input_domain(i)
    if math.isfinite(low) and np.min(a) < low + info.margin:
        return False
    if math.isfinite(high) and np.max(a) > high - info.margin:
        return False
    return all(np.min(np.abs(a - p)) >= info.margin for p in info.avoid)


def _takes_no_gradient(info: OpInfo, i: int) -> bool:
    return info.scalar is not None and info.scalar.grads[i] is None


class _Builder:
    """The program being drawn: its leaves, steps and the values computed so far."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.leaves: list[Leaf] = []
        self.steps: list[Step] = []
        self.values: list[_Value] = []
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter - 1}"

    # ---- leaves ------------------------------------------------------------------------------
    def leaf_array(self, shape: tuple[int, ...], info: OpInfo | None, i: int) -> np.ndarray:
        if info is None:
            elements = _LEAF_VALUES
        else:
            grid = value_grid(info, i)
            assume(len(grid) >= math.prod(shape))
            elements = st.sampled_from(grid.tolist())
            if _takes_no_gradient(info, i):  # a mask: zeros too, so both branches are taken
                elements = st.sampled_from([0.0, 1.0]) | elements
        unique = info is None or not _takes_no_gradient(info, i)
        return self.draw(hnp.arrays(np.float64, shape, elements=elements, unique=unique))

    def new_leaf(self, shape: tuple[int, ...], info: OpInfo | None = None, i: int = 0) -> _Value:
        array = self.leaf_array(shape, info, i)
        grad = info is None or not _takes_no_gradient(info, i)
        if grad and self.leaves:
            grad = self.draw(st.sampled_from([True, False]))
        leaf = Leaf(self.name("x" if grad else "c"), array, grad)
        self.leaves.append(leaf)
        value = _Value(leaf.name, array, grad)
        self.values.append(value)
        return value

    # ---- steps -------------------------------------------------------------------------------
    def pick(
        self, info: OpInfo, i: int, fits: Callable[[np.ndarray], bool], args: list
    ) -> _Value | None:
        """An existing value input ``i`` may take (``fits(array)``), or None. The most used
        first, then the latest: values chain, and a value feeds several ops (gradients that
        fan in are where accumulation goes wrong)."""
        candidates = [
            v
            for v in reversed(self.values)
            if v.uses + args.count(v) < MAX_USES and _usable(info, i, v.data) and fits(v.data)
        ]
        candidates.sort(key=lambda v: -v.uses)
        return self.draw(st.sampled_from(candidates)) if candidates else None

    def elementwise_args(self, info: OpInfo) -> list[_Value | Number]:
        n = info.arity if info.arity is not None else info.n_inputs
        args: list[_Value | Number] = []
        for i in range(n):
            shapes = [a.data.shape for a in args if isinstance(a, _Value)]

            def fits(a: np.ndarray, shapes: list = shapes) -> bool:
                try:
                    out = np.broadcast_shapes(a.shape, *shapes)
                except ValueError:
                    return False
                return math.prod(out) <= MAX_ELEMENTS

            tensors = sum(isinstance(a, _Value) for a in args)
            kinds = ["value", "fresh"]
            if n > 1 and (tensors > 0 or i < n - 1) and not _takes_no_gradient(info, i):
                kinds.append("number")
            if args:
                kinds.append("again")
            kind = self.draw(st.sampled_from(kinds))
            if _takes_no_gradient(info, i):
                kind = "fresh"
            chosen = None
            if kind == "again":
                earlier = self.draw(st.sampled_from(args))
                if isinstance(earlier, Number):
                    chosen = earlier if tensors > 0 or i < n - 1 else None
                elif (
                    _usable(info, i, earlier.data) and earlier.uses + args.count(earlier) < MAX_USES
                ):
                    chosen = earlier
            elif kind == "number":
                chosen = Number(self.draw(st.sampled_from(value_grid(info, i).tolist())))
            elif kind == "value":
                chosen = self.pick(info, i, fits, args)
            if chosen is None:
                base = np.broadcast_shapes(*shapes) if shapes else None
                shape = self.draw(
                    hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)
                    if base is None
                    else hnp.broadcastable_shapes(base, max_dims=3, max_side=3)
                )
                assume(fits(np.empty(shape)))
                chosen = self.new_leaf(shape, info, i)
            args.append(chosen)
        return args

    def any_value(self, info: OpInfo) -> list[_Value] | None:
        """For a one-input op that declares its shapes, sometimes any existing value (the
        op may take many shapes), else None."""
        if info.arity == 1 and not self.draw(st.booleans()):
            chosen = self.pick(info, 0, lambda a: True, [])
            return None if chosen is None else [chosen]
        return None

    def shaped_args(self, info: OpInfo, attrs: dict) -> list[_Value]:
        """Inputs of an op that declares its shapes: values that fit them, else fresh leaves."""
        dims = self.draw(st.lists(st.integers(1, 3), min_size=6, max_size=6))
        args = []
        for i, shape in enumerate(info.shapes(dims, attrs)):
            shape = tuple(shape)
            kinds = ["value", "fresh"] + (["again"] if args else [])
            kind = self.draw(st.sampled_from(kinds))
            chosen = None
            if kind == "again":
                chosen = self.draw(st.sampled_from(args))
                room = chosen.uses + args.count(chosen) < MAX_USES
                chosen = chosen if room and chosen.data.shape == shape else None
            elif kind == "value":
                chosen = self.pick(info, i, lambda a, s=shape: a.shape == s, args)
            if chosen is None:
                assume(math.prod(shape) <= MAX_ELEMENTS)
                chosen = self.new_leaf(shape, info, i)
            args.append(chosen)
        return args

    def step(self, info: OpInfo) -> None:
        """Append one application of ``info``, or nothing when it does not apply here (its
        fresh leaves are then dropped as well)."""
        kept = (len(self.leaves), len(self.values), self.counter)
        attrs = self.draw(op_attrs(info))
        if info.shapes is None:
            args = self.elementwise_args(info)
            out = self.run(info, args, attrs)
        else:
            args = self.any_value(info)
            out = None if args is None else self.run(info, args, attrs)
            if out is None:
                args = self.shaped_args(info, attrs)
                out = self.run(info, args, attrs)
        if out is None:
            del self.leaves[kept[0] :], self.values[kept[1] :]
            self.counter = kept[2]
            return
        for a in args:
            if isinstance(a, _Value):
                a.uses += 1
        multi = isinstance(out, tuple)
        names = tuple(self.name("v") for _ in (out if multi else (out,)))
        grad = any(a.grad for a in args if isinstance(a, _Value))
        for name, o in zip(names, out if multi else (out,)):
            self.values.append(_Value(name, o.data, grad))
        refs = tuple(a.name if isinstance(a, _Value) else a for a in args)
        shapes = tuple(o.shape for o in (out if multi else (out,)))
        self.steps.append(Step(info.name, refs, attrs, names, shapes, multi))

    @staticmethod
    def run(info: OpInfo, args: list, attrs: dict) -> tg.Tensor | tuple | None:
        """The op's outputs on ``args``, or None if it refuses them or leaves the bounds."""
        operands = [a.value if isinstance(a, Number) else tg.Tensor(a.data.copy()) for a in args]
        try:
            with tg.no_grad():
                out = tg.op(info.name).apply(*operands, **attrs)
        except (ValueError, IndexError, TypeError):  # shapes or attributes that do not fit
            return None
        for o in out if isinstance(out, tuple) else (out,):
            d = o.data
            if (
                d.dtype != np.float64
                or d.size == 0
                or d.size > MAX_ELEMENTS
                or not np.all(np.isfinite(d))
                or np.max(np.abs(d)) > BOUND
            ):
                return None
        return out

    def is_output(self, v: _Value, used: set[str], parts: set[str]) -> bool:
        if v.name in used:
            return self.draw(st.booleans())
        return v.name not in parts or not self.draw(st.booleans())

    def program(self) -> Program:
        assume(self.steps)
        used = {a for s in self.steps for a in s.args if isinstance(a, str)}
        made = {name for s in self.steps for name in s.outputs}
        parts = {name for s in self.steps if s.multi for name in s.outputs}
        # Every value no later step uses is an output, so all the work reaches the loss
        # (but a part of split/unstack may stay unused: its gradient is then None), and a
        # used value sometimes is too (its gradient then has one more source).
        outputs = [v for v in self.values if v.name in made and self.is_output(v, used, parts)]
        assume(any(v.grad for v in outputs))
        leaves = tuple(leaf for leaf in self.leaves if leaf.name in used)
        return Program(leaves, tuple(self.steps), tuple(v.name for v in outputs))


@st.composite
def _programs(
    draw: st.DrawFn, infos: tuple[OpInfo, ...], max_steps: int, max_leaves: int
) -> Program:
    builder = _Builder(draw)
    for _ in range(draw(st.integers(1, max_leaves))):
        builder.new_leaf(draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)))
    for info in draw(st.lists(st.sampled_from(infos), min_size=1, max_size=max_steps)):
        builder.step(info)
    return builder.program()
