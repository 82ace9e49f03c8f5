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

Every elementwise op of every time step runs this, so it is written out as straight-line
Python, once: at an op's first call its forward for its arity (``_Plan.front``: pick the run
of the inputs' dtype), which then takes the place of ``RuleFunction.forward`` in the op's
class; for each op and input dtypes, the forward and the backward calling the kernels
(``_Run``: mul's backward is ``return (_d0(g, s1) if need0 else None), (_d1(g, s0) if need1
else None)``; ``_Run.source`` shows them). What that costs against hand-written ops is in
benchmarks/README.md.
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
# Names the written-out forward uses itself, which an input's name must not shadow there.
_FRONT_NAMES = {"ctx", "attrs", "run", "_runs", "_general", "_numbers"}


def _is_g(expr: str) -> bool:
    body = ast.parse(expr, mode="eval").body
    return isinstance(body, ast.Name) and body.id == "g"


class _Plan:
    """What op ``op``'s rule reads, and its runs by input dtypes.

    Names in the written-out code: inputs ``i0, i1, ...``, attributes ``n0, ...``, the saved
    arrays ``s0, ...`` (the inputs the derivatives read, then ``y`` if they read it).
    """

    def __init__(self, cls: type[RuleFunction], op: str):
        info = op_info(op)
        rule = info.scalar
        if rule is None:
            raise TypeError(f"{op}: a RuleFunction runs its scalar rule, and it declares none")
        self.cls, self.op, self.attrs, self.names = cls, op, tuple(info.attrs), rule.inputs
        # Names in forward (inputs, attributes), then in backward (saved arrays, g, attributes).
        names = {n: f"i{k}" for k, n in enumerate(rule.inputs)}
        names.update({a: f"n{k}" for k, a in enumerate(self.attrs)})
        self.inputs = [f"i{k}" for k in range(len(rule.inputs))]
        self.forward_args = [names[n] for n in rule_arguments(op, "y")]
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
        saved = [n for n in (*rule.inputs, "y") if n in read]
        self.saved = [names.get(n, "y") for n in saved]  # what forward saves, in its names
        names.update({n: f"s{k}" for k, n in enumerate(saved)}, g="g")
        self.grads = [
            g if g is None or g[1] is None else (g[0], [names[n] for n in g[1]]) for g in grads
        ]
        # The inputs whose dtypes make the result's: those that take a gradient.
        self.typed = tuple(i for i, g in enumerate(grads) if g is not None) or tuple(
            range(len(rule.inputs))
        )
        self.runs: dict = {}

    def front(self, general):
        """The op's forward for its arity: the run of its inputs' dtype (all alike), else
        ``general(ctx, arrays, attrs)`` (dtypes that differ, a first call in a dtype)."""
        # The inputs by their rule names (a wrong call's TypeError names them), if all free.
        names = list(self.names)
        if set(names) & _FRONT_NAMES:
            names = [f"i{k}" for k in range(len(names))]
        inputs = ", ".join(names)
        same = "".join(f" or {n}.dtype != {names[0]}.dtype" for n in names[1:])
        if self.attrs:
            call = "run.forward(ctx, " + inputs + ", *_numbers(attrs, run.kernel_dtype))"
            test = f"run is None{same}"
        else:
            call = f"run.forward(ctx, {inputs})"
            test = f"run is None or attrs{same}"
        lines = [
            f"def forward(ctx, {inputs}, **attrs):",
            f"    run = _runs.get({names[0]}.dtype)",
            f"    if {test}:",
            f"        return _general(ctx, ({inputs},), attrs)",
            f"    return {call}",
        ]
        namespace = {"_runs": self.runs, "_general": general, "_numbers": self.numbers}
        exec(compile("\n".join(lines), f"<{self.op} forward>", "exec"), namespace)  # noqa: S102
        return namespace["forward"]

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
            found = self.runs[key] = _Run(self, dtype, wide)
        return found

    def numbers(self, attrs: dict, dtype: np.dtype) -> tuple:
        """The attributes (after the op's ``attributes``) as numbers of ``dtype``."""
        values = self.cls.attributes(**attrs)
        if len(values) != len(self.attrs) or any(a not in values for a in self.attrs):
            raise TypeError(f"{self.op}: attributes are {list(self.attrs)}, got {sorted(values)}")
        return tuple(dtype.type(values[name]) for name in self.attrs)


def _tuple(names: list[str]) -> str:
    """Python's text of a tuple of ``names`` (a target or a value)."""
    return f"{names[0]}," if len(names) == 1 else ", ".join(names)


class _Run:
    """One op's forward and backward for one combination of input dtypes, written out as
    Python over its kernels (the backward's at the first backward: inference builds none).

    ``dtype``: the result's (and the gradients'); ``kernel_dtype``: the kernels'."""

    def __init__(self, plan: _Plan, dtype: np.dtype, kernel_dtype: np.dtype):
        self.plan, self.dtype, self.kernel_dtype = plan, dtype, kernel_dtype
        self.source: list[str] = []
        numbers = [f"n{k}" for k in range(len(plan.attrs))]
        body = [f"y = _y({', '.join(plan.forward_args)})"]
        if "y" in plan.cls.numpy or dtype != kernel_dtype:  # a NumPy routine may promote
            body += ["if y.dtype != _dtype:", "    y = y.astype(_dtype)"]
        if "y" in plan.saved:  # (Function.apply makes the output an array; this, the saved y)
            body += ["if type(y) is not np.ndarray:  # a ufunc of 0-d arrays: a NumPy scalar"]
            body += ["    y = np.asarray(y)"]
        if plan.saved:
            body.append(f"ctx.save_for_backward({', '.join(plan.saved)})")
        if numbers:
            body.append(f"ctx.rule_numbers = {_tuple(numbers)}")
        body += ["ctx.rule_run = _run", "return y"]
        args = ["ctx", *plan.inputs, *numbers]
        self.forward = self._define("forward", args, body, _y=plan.kernel("y", kernel_dtype))

    def backward(self, ctx, g):
        """The first backward: write the backward out, then run it (it replaces this)."""
        plan, kernels, terms = self.plan, {}, []
        cast = "" if self.dtype == self.kernel_dtype else ".astype(_dtype)"
        for k, grad in enumerate(plan.grads):
            if grad is None:
                terms.append(f"np.zeros_like(g) if need{k} else None")
            elif grad[1] is None:
                terms.append("g")  # backward passes it on only where it is needed
            else:
                kernels[f"_d{k}"] = plan.kernel(grad[0], self.kernel_dtype)
                terms.append(f"_d{k}({', '.join(grad[1])}){cast} if need{k} else None")
        body = ["if g.dtype != _dtype:", "    g = g.astype(_dtype)"]
        if plan.saved:
            body.append(f"{_tuple([f's{k}' for k in range(len(plan.saved))])} = ctx.saved")
        if plan.attrs:
            body.append(f"{_tuple([f'n{k}' for k in range(len(plan.attrs))])} = ctx.rule_numbers")
        if any("need" in term for term in terms):
            body.append(f"{_tuple([f'need{k}' for k in range(len(terms))])} = ctx.needs_input_grad")
        body.append(f"return {terms[0]}" if len(terms) == 1 else f"return ({'), ('.join(terms)})")
        self.backward = self._define("backward", ["ctx", "g"], body, **kernels)
        return self.backward(ctx, g)

    def _define(self, name: str, args: list[str], body: list[str], **kernels):
        lines = [f"def {name}({', '.join(args)}):", *(f"    {line}" for line in body)]
        self.source += lines
        namespace = {"np": np, "_dtype": self.dtype, "_run": self, **kernels}
        code = compile("\n".join(lines), f"<{self.plan.op} {self.dtype} {name}>", "exec")
        exec(code, namespace)  # noqa: S102 - our own text, made of the rule's positions
        return namespace[name]


class RuleFunction(Function):
    """An elementwise op computing its registered scalar rule, forward and backward.

    Its plan (what the rule reads) and its written-out forward are made on the class's
    first call, from the rule registered then."""

    # Expression key -> NumPy's routine computing exactly it, run in its place (see above).
    numpy: ClassVar[dict] = {}
    _plans: ClassVar[dict] = {}  # class -> its _Plan

    @staticmethod
    def attributes(**attrs) -> dict:
        """The attribute values the rule reads, by name: an op with attributes gives their
        defaults and checks them here (raising before any work is done)."""
        return attrs

    def __init_subclass__(cls, **kwargs) -> None:
        # Each op class starts from the generic forward (never a parent op's written-out one).
        super().__init_subclass__(**kwargs)
        cls.forward = RuleFunction.__dict__["forward"]

    @classmethod
    def plan(cls) -> _Plan:
        plan = RuleFunction._plans.get(cls)
        if plan is None:
            plan = RuleFunction._plans[cls] = _Plan(cls, cls.op_name)
        return plan

    @classmethod
    def forward(cls, ctx, *arrays, **attrs):
        """The first call: write the op's forward out for its arity, put it in place of this
        (every later call runs it), and run it."""
        front = cls.plan().front(cls.general)
        cls.forward = staticmethod(front)
        return front(ctx, *arrays, **attrs)

    @classmethod
    def general(cls, ctx, arrays, attrs):
        """Forward for any inputs: their dtypes' run (made on first use), the attributes."""
        plan = cls.plan()
        key = arrays[0].dtype
        for a in arrays:
            if a.dtype != key:
                key = tuple(a.dtype for a in arrays)
                break
        run = plan.runs.get(key) or plan.run(key, arrays)
        if attrs or plan.attrs:
            return run.forward(ctx, *arrays, *plan.numbers(attrs, run.kernel_dtype))
        return run.forward(ctx, *arrays)

    @staticmethod
    def backward(ctx, g):
        return ctx.rule_run.backward(ctx, g)


def compile_kernels() -> None:
    """Build (or load from the on-disk cache) every kernel of every registered
    ``RuleFunction`` op, in float32 and float64: no compilation is left for first use."""
    for info in list_ops():
        if isinstance(info.fn, type) and issubclass(info.fn, RuleFunction):
            plan = info.fn.plan()
            for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
                plan.run(dtype, ())
                for grad in plan.grads:
                    if grad is not None and grad[1] is not None:
                        plan.kernel(grad[0], dtype)
