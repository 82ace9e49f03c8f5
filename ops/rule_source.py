"""The text of a generated kernel module: its header, its typed constants, and scalar rules
rewritten into Numba-ready expressions (``exp(-x)`` -> ``math.exp(-x2)``, ``1`` -> ``_c1``,
a ``np.float32`` constant in a float32 module, so float32 arithmetic stays float32).

Both generators of ops/ write their modules with it: ops/rule_ufuncs.py (one ufunc per rule
expression) and the cell compiler (whole steps). A rule reaches it checked by the registry
(``ScalarRule.parse``): an expression of the syntax it rewrites, calling only the functions
``FUNCTIONS`` maps, each of the registry's ``SCALAR_FUNCTIONS``.
"""

from __future__ import annotations

import ast
import math

import numpy as np

__all__ = ["FAST_FLOAT32", "FUNCTIONS", "Module", "names_in"]

# An op's float32 fast variant: ops/scalar_math.py's function of the same math, a few ulps
# from libm but vectorizable, called in place of the rule's forward by the cell compiler's
# float32 kernels and by ops/rule_ufuncs.py's fast=True (the recurrent kernels call them too).
FAST_FLOAT32 = {"sigmoid": "sigmoid_fast", "tanh": "tanh_fast"}
FUNCTIONS = {
    "exp": "math.exp",
    "log": "math.log",
    "log1p": "math.log1p",
    "expm1": "math.expm1",
    "tanh": "math.tanh",
    "sqrt": "math.sqrt",
    "abs": "abs",
    "min": "min",
    "max": "max",
}


class _Rewrite(ast.NodeTransformer):
    """Names to locals or typed constants, functions to ``math.*``, numbers to constants."""

    def __init__(self, names: dict, constant):
        self.names, self.constant = names, constant

    def visit_Name(self, node):
        if node.id in self.names:
            value = self.names[node.id]
            name = value if isinstance(value, str) else self.constant(value)
            return ast.Name(id=name, ctx=ast.Load())
        if node.id in FUNCTIONS:
            return ast.parse(FUNCTIONS[node.id], mode="eval").body
        return node

    def visit_Constant(self, node):
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return ast.Name(id=self.constant(node.value), ctx=ast.Load())
        return node


class _Ufunc(ast.NodeTransformer):
    """A rule's compares as a ufunc needs them (``rewrite(..., ufunc=...)``).

    ``min``/``max`` become the comparison they make, Python's (``max(a, b)`` is ``b if b > a
    else a``): under NUMBA_DISABLE_JIT the builtins cannot be compiled into a ufunc.

    ``quiet``: a vectorized ``a < b`` compiles to a compare that raises the invalid flag
    when a lane holds NaN, and NumPy turns that flag, after a ufunc's loop, into a
    RuntimeWarning (PyTorch computes the same quietly). So each ordered compare becomes a
    call of the module's quiet compare (``_lt(a, b)``: ``QUIET`` below, equality being a
    quiet compare). ``used`` collects the ones called."""

    _NAMES = {ast.Lt: "_lt", ast.LtE: "_le", ast.Gt: "_gt", ast.GtE: "_ge"}

    def __init__(self, quiet: bool, used: set):
        self.quiet, self.used = quiet, used

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func.id if isinstance(node.func, ast.Name) else None
        if func not in ("min", "max") or len(node.args) != 2:
            return node
        a, b = node.args
        test = ast.Compare(left=b, ops=[ast.Gt() if func == "max" else ast.Lt()], comparators=[a])
        return ast.IfExp(test=self._pairs(test), body=b, orelse=a)

    def visit_Compare(self, node):
        self.generic_visit(node)
        return self._pairs(node)

    def _pairs(self, node: ast.Compare) -> ast.expr:
        """``node`` (its operands rewritten already) as one compare per pair, quiet ones
        where asked."""
        operands = [node.left, *node.comparators]
        pairs = []
        for op, left, right in zip(node.ops, operands, operands[1:]):
            if self.quiet and type(op) in self._NAMES:
                name = self._NAMES[type(op)]
                self.used.add(name)
                func = ast.Name(id=name, ctx=ast.Load())
                pairs.append(ast.Call(func=func, args=[left, right], keywords=[]))
            else:
                pairs.append(ast.Compare(left=left, ops=[op], comparators=[right]))
        return pairs[0] if len(pairs) == 1 else ast.BoolOp(op=ast.And(), values=pairs)


# The quiet compares' bodies: NaN lanes compare as zeros, and ``x == a`` (False exactly where
# a is NaN) makes the result False there. (Testing ``a == a`` instead lets LLVM fold the whole
# guard back into the flag-raising compare.)
_QUIET_OPS = {"_lt": "<", "_le": "<=", "_gt": ">", "_ge": ">="}
QUIET = {
    name: [
        "x = a if a == a else {zero}",
        "y = b if b == b else {zero}",
        f"return x {op} y and x == a and y == b",
    ]
    for name, op in _QUIET_OPS.items()
}


def names_in(expr: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Name)}


class Module:
    """The generated module's text: typed constants, shared by all its kernels.

    ``recurrent_helpers``: the cell compiler's generated driver imports ``_matmul_rows``
    from ops/recurrent_kernels.py, which ops/lazy_numba.py's ``jit_helpers()`` jits, so
    its header calls that (the default, the compiler's); the rule ufuncs' modules do not.
    The option goes with recurrent_kernels.py.
    """

    def __init__(self, dtype: np.dtype, sizes: list[int], recurrent_helpers: bool = True):
        self.dtype, self.constants = np.dtype(dtype), {}
        self.size_names = {s: f"n{i}" for i, s in enumerate(sizes)}
        self.recurrent_helpers = recurrent_helpers
        self.quiet: set[str] = set()  # the quiet compares the module's kernels call
        self.zero = self.constant(0.0)

    def constant(self, value: float) -> str:
        """The name of a module-level constant of the kernel dtype (Numba freezes it, typed:
        a bare ``1`` would turn float32 arithmetic into float64)."""
        key = float(value)
        if key not in self.constants:
            self.constants[key] = f"_c{len(self.constants)}"
        return self.constants[key]

    def rewrite(self, expr: str, names: dict, ufunc: str | None = None) -> str:
        """``expr`` with ``names`` (rule name -> local name, or a number for a constant)
        substituted, functions mapped to Numba's, numbers typed. ``ufunc``: the body of a
        ufunc's, ``"quiet"`` (its ordered compares raise no flag at NaN, for NumPy checks
        the flags after a ufunc) or ``"plain"`` (NUMBA_DISABLE_JIT): see ``_Ufunc``."""
        tree = _Rewrite(names, self.constant).visit(ast.parse(expr, mode="eval"))
        if ufunc is not None:
            tree = _Ufunc(ufunc == "quiet", self.quiet).visit(tree)
            tree = ast.fix_missing_locations(tree)
        return ast.unparse(tree)

    def header(self) -> list[str]:
        """Imports, ops/scalar_math.py's functions made callable from kernels (the fast
        ones a float32 kernel calls, by their names), the constants, the quiet compares."""
        fast = sorted(FAST_FLOAT32.values()) if self.dtype == np.float32 else []
        lines = ["import math", "", "import numba", "import numpy as np"]
        if self.quiet:
            lines.append("from numba.extending import register_jitable")
        lines.append("")
        if self.recurrent_helpers:
            lines.append("from tinygrad_lstm.ops.lazy_numba import jit_helpers")
        lines.append(
            f"from tinygrad_lstm.ops.scalar_math import {', '.join(['kernel_functions', *fast])}"
        )
        lines += ["", "kernel_functions()"]
        if self.recurrent_helpers:
            lines.append("jit_helpers()")
        lines.append("")
        for value, name in self.constants.items():
            lines.append(f"{name} = np.{self.dtype.name}({_literal(value)})")
        for name in sorted(self.quiet):
            lines += ["", "", "@register_jitable", f"def {name}(a, b):"]
            lines += [f"    {line.format(zero=self.zero)}" for line in QUIET[name]]
        return lines


def _literal(value: float) -> str:
    """``value`` as Python source: ``math.inf`` and ``math.nan`` have no literal."""
    if math.isfinite(value):
        return repr(value)
    return "math.nan" if math.isnan(value) else f"{'-' if value < 0 else ''}math.inf"
