"""``RuleFunction``: an elementwise op whose forward and backward are its scalar rule.

An op's math is stated once, in its ``register_op(..., scalar={...})`` line. An op class
deriving from ``RuleFunction`` runs that rule, through the ufuncs ops/rule_ufuncs.py
generates from it:

    forward:   y          = rule_ufunc(op, "y", dtype)(inputs, attributes)
    backward:  d<input_i> = rule_ufunc(op, "d<input_i>", dtype)(g, inputs, y, attributes)

each ufunc taking the names its expression reads, broadcasting like NumPy (the engine's
``unbroadcast`` sums each gradient back to its input's shape). Forward saves exactly the
arrays the derivatives read (inputs and/or y); a derivative that is ``g`` itself returns
g; an input whose derivative is ``None`` (a ``where`` mask: the output does not move when
it moves a little) gets zeros, and one that needs no gradient gets None.

Fast variants, each visible where the op is defined:
- ``numpy = {key: routine}``: NumPy's own routine computing exactly that expression of the
  rule, run in its place where it is measurably faster (benchmarks/README.md, "Rule
  ufuncs and their NumPy variants"); tests/ops/test_rule_function.py checks each against
  the generated ufunc, at NaN, infinities and signed zeros too.
- the float32 forward of an op with a fast float32 function (ops/rule_source.py
  ``FAST_FLOAT32``: sigmoid) runs it (``rule_ufunc(..., fast=True)``).

dtypes: the output and every gradient have the result dtype of the inputs that take a
gradient (NumPy promotion; a ``where`` mask does not count). The kernels have float32 and
float64 loops: float16 is computed in float32 and cast back. Attributes reach the kernels as
numbers of the kernel's dtype, after ``attributes`` (defaults and checks, per op).
"""

from __future__ import annotations

import ast
from typing import ClassVar

import numpy as np

from tinygrad_lstm import Function, list_ops, op_info

from .rule_ufuncs import rule_arguments, rule_ufunc

__all__ = ["RuleFunction", "compile_kernels"]

# The dtype each input dtype's kernel runs in: float16 has no loop, float32 computes it.
_KERNEL_DTYPE = {np.dtype(t): np.dtype(t) for t in (np.float32, np.float64)}
_KERNEL_DTYPE[np.dtype(np.float16)] = np.dtype(np.float32)


def _is_g(expr: str) -> bool:
    body = ast.parse(expr, mode="eval").body
    return isinstance(body, ast.Name) and body.id == "g"


_G, _ZEROS = "g", "zeros"  # a derivative that is g itself; one the rule declares None


class _Run:
    """An op's routines for one combination of input dtypes: the result's dtype, the
    kernels', the forward kernel, and per input its derivative (``_G``, ``_ZEROS`` or
    (kernel, argument positions)), filled in at the first backward."""

    __slots__ = ("cast", "dtype", "forward", "grads", "kernel_dtype")

    def __init__(self, dtype: np.dtype, kernel_dtype: np.dtype, forward, variant: bool):
        self.dtype, self.kernel_dtype, self.forward, self.grads = dtype, kernel_dtype, forward, None
        # A generated ufunc returns its kernel dtype; a NumPy variant may promote.
        self.cast = variant or dtype != kernel_dtype


class _Plan:
    """What op ``op``'s rule reads, in which order, and its runs by input dtypes.

    Arguments are picked by position: forward's from ``(*inputs, *attributes)``, each
    derivative's from ``(*saved, g, *attributes)``, where ``saved`` is what forward saved.
    """

    def __init__(self, cls: type[RuleFunction], op: str):
        info = op_info(op)
        rule = info.scalar
        if rule is None:
            raise TypeError(f"{op}: a RuleFunction runs its scalar rule, and it declares none")
        self.cls, self.op, self.attrs = cls, op, tuple(info.attrs)
        # Per input: None (no derivative), (key, None) (the gradient is g) or (key, names).
        grads, read = [], set()
        for name, expr in zip(rule.inputs, rule.grads):
            if expr is None:
                grads.append(None)
            elif _is_g(expr):
                grads.append((f"d{name}", None))
            else:
                grads.append((f"d{name}", rule_arguments(op, f"d{name}")))
                read.update(grads[-1][1])
        saved = tuple(name for name in (*rule.inputs, "y") if name in read)
        self.saves_y = "y" in saved
        self.saved_inputs = tuple(rule.inputs.index(n) for n in saved if n != "y")
        self.saves_inputs = self.saved_inputs == tuple(range(len(rule.inputs)))
        slots = (*rule.inputs, *self.attrs)
        self.forward = tuple(slots.index(n) for n in rule_arguments(op, "y"))
        # Forward reads exactly the inputs, in order: it is called on them as they come.
        self.forward_is_inputs = self.forward == tuple(range(len(rule.inputs)))
        slots = (*saved, "g", *self.attrs)
        self.grads = tuple(
            g if g is None or g[1] is None else (g[0], tuple(slots.index(n) for n in g[1]))
            for g in grads
        )
        # The inputs whose dtypes make the result's: those that take a gradient.
        self.typed = tuple(i for i, g in enumerate(grads) if g is not None) or tuple(
            range(len(rule.inputs))
        )
        self.runs: dict = {}

    def kernel(self, key: str, dtype: np.dtype):
        """The routine computing expression ``key`` in ``dtype``: the op's NumPy variant,
        else the rule's ufunc (the fast float32 one for the forward)."""
        return self.cls.numpy.get(key) or rule_ufunc(self.op, key, dtype, fast=key == "y")

    def run(self, key, arrays: tuple) -> _Run:
        """The run for inputs of dtypes ``key`` (one dtype, or a tuple of them when they
        differ): float16 runs in float32, and a mask wider than the values widens the
        kernel, not the result."""
        found = self.runs.get(key)
        if found is None:
            if isinstance(key, tuple):
                wide = _KERNEL_DTYPE[np.result_type(*(a for a in arrays if a.dtype.kind == "f"))]
                dtype = np.result_type(*(arrays[i] for i in self.typed))
            else:
                dtype, wide = key, _KERNEL_DTYPE[key]
            variant = "y" in self.cls.numpy
            found = self.runs[key] = _Run(dtype, wide, self.kernel("y", wide), variant)
        return found

    def derivatives(self, run: _Run) -> tuple:
        """``run.grads``, made on first use."""
        if run.grads is None:
            run.grads = tuple(
                _ZEROS
                if g is None
                else _G
                if g[1] is None
                else (self.kernel(g[0], run.kernel_dtype), g[1])
                for g in self.grads
            )
        return run.grads

    def numbers(self, attrs: dict, dtype: np.dtype) -> tuple:
        """The attributes (after the op's ``attributes``) as numbers of ``dtype``."""
        values = self.cls.attributes(**attrs)
        if len(values) != len(self.attrs) or any(a not in values for a in self.attrs):
            raise TypeError(f"{self.op}: attributes are {list(self.attrs)}, got {sorted(values)}")
        return tuple(dtype.type(values[name]) for name in self.attrs)


class RuleFunction(Function):
    """An elementwise op computing its registered scalar rule, forward and backward.

    Its plan (what the rule reads) is made on the class's first call, from the rule
    registered then."""

    # Expression key -> NumPy's routine computing exactly it, run in its place (see above).
    numpy: ClassVar[dict] = {}
    _plans: ClassVar[dict] = {}  # class -> its _Plan

    @staticmethod
    def attributes(**attrs) -> dict:
        """The attribute values the rule reads, by name: an op with attributes gives their
        defaults and checks them here (raising before any work is done)."""
        return attrs

    @classmethod
    def plan(cls) -> _Plan:
        plan = RuleFunction._plans.get(cls)
        if plan is None:
            plan = RuleFunction._plans[cls] = _Plan(cls, cls.op_name)
        return plan

    # forward and backward run for every elementwise op of every time step: the common
    # cases (inputs of one dtype, no attributes) take the fewest steps.
    @classmethod
    def forward(cls, ctx, *arrays, **attrs):
        plan = RuleFunction._plans.get(cls) or cls.plan()
        key = arrays[0].dtype
        if len(arrays) > 1:
            for a in arrays:
                if a.dtype != key:
                    key = tuple(a.dtype for a in arrays)
                    break
        run = plan.runs.get(key) or plan.run(key, arrays)
        if attrs or plan.attrs:
            numbers = plan.numbers(attrs, run.kernel_dtype)
            slots = (*arrays, *numbers)
            y = run.forward(*[slots[i] for i in plan.forward])
        else:
            numbers = ()
            y = run.forward(
                *(arrays if plan.forward_is_inputs else [arrays[i] for i in plan.forward])
            )
        if type(y) is not np.ndarray:  # a ufunc of 0-d arrays gives a NumPy scalar
            y = np.asarray(y)
        if run.cast and y.dtype != run.dtype:
            y = y.astype(run.dtype)
        saved = arrays if plan.saves_inputs else [arrays[i] for i in plan.saved_inputs]
        if plan.saves_y:
            ctx.save_for_backward(*saved, y)
        else:
            ctx.save_for_backward(*saved)
        ctx.rule_run = (plan, run, numbers)
        return y

    @staticmethod
    def backward(ctx, g):
        plan, run, numbers = ctx.rule_run
        if g.dtype != run.dtype:
            g = g.astype(run.dtype)
        slots = (*ctx.saved, g, *numbers)
        grads = []
        for grad, needed in zip(run.grads or plan.derivatives(run), ctx.needs_input_grad):
            if not needed:
                grads.append(None)
            elif grad is _G:
                grads.append(g)
            elif grad is _ZEROS:
                grads.append(np.zeros_like(g))
            else:
                d = grad[0](*[slots[i] for i in grad[1]])
                grads.append(d if d.dtype == run.dtype else d.astype(run.dtype))
        return grads[0] if len(grads) == 1 else tuple(grads)


def compile_kernels() -> None:
    """Build (or load from the on-disk cache) every kernel of every registered
    ``RuleFunction`` op, in float32 and float64: no compilation is left for first use."""
    for info in list_ops():
        if isinstance(info.fn, type) and issubclass(info.fn, RuleFunction):
            plan = info.fn.plan()
            for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
                plan.derivatives(plan.run(dtype, ()))
