"""Kernel IR to Numba source: each stage's forward and backward, and the module around them.

The forward of a loop assigns each local its load or its op's scalar rule, then stores the
targets and the values the backward reads (in the stage's SAVES array, side by side). In
float32 an op with a fast variant (``FAST_FLOAT32``: sigmoid, tanh) calls it, and the loop
is split at those calls (fission.py) so LLVM vectorizes each piece.

The backward is reverse mode done while writing the code: it reloads the locals the
derivative rules read, then walks the ops in reverse, each local's adjoint the sum of what
its consumers' derivative rules give it,

    adj(operand_i) = sum over consumers of rule.grads[i](operands, y, g = adj(consumer)),

seeded, for a value the step writes, with the gradient arriving for it (from the step after,
the loss, a later stage). A local whose one consumer passes ``g`` on shares its adjoint
(kernel_ir.py). Last, each load's adjoint goes to its gradient array, stored or added as
the memory plan says (memory.py). Every element is read through a view taken before the
loops (function_text.py), so the loops vectorize.
"""

from __future__ import annotations

import ast

import numpy as np
from numpy.typing import DTypeLike
from tinygrad_lstm.ops.rule_source import FAST_FLOAT32, _Rewrite

from .fission import fissioned_loop
from .function_text import Constants, FunctionText, Sizes
from .kernel_ir import Local, Loop, Number, StageKernel
from .memory import Arg, Layout, Role
from .schedule import Schedule

__all__ = ["Source", "render"]


class _StageText:
    """Writes the two functions of one stage."""

    def __init__(self, layout: Layout, kernel: StageKernel, consts: Constants, sizes: Sizes):
        self.layout, self.kernel, self.consts, self.sizes = layout, kernel, consts, sizes
        self.program = layout.program
        self.nodes = layout.program.nodes
        self.saves = layout.saves[kernel.stage]

    def rewrite(self, expr: str, names: dict) -> str:
        names = {k: (v.value if isinstance(v, Number) else v) for k, v in names.items()}
        tree = _Rewrite(names, self.consts.name).visit(ast.parse(expr, mode="eval"))
        return ast.unparse(tree)

    def load(self, fn: FunctionText, loc: Local, width: int) -> str:
        """The element a load local reads."""
        return fn.ref(self.layout.value(loc.node), loc.at, loc.offset, width, loc.fixed)

    def saved(self, fn: FunctionText, var: str, loc: Local, width: int, write: bool = False) -> str:
        slot = self.saves[var]
        arg = Arg(Role.SAVES, self.kernel.stage)
        return fn.ref(arg, "t", slot.offset, width, loc.fixed, write)

    def rule_value(self, loc: Local) -> str:
        n = self.nodes[loc.node]
        names = dict(zip(n.rule.inputs, loc.operands))
        names.update(dict(n.attrs))
        return self.rewrite(n.rule.forward, names)

    def forward(self, name: str) -> FunctionText:
        fn = FunctionText(name, self.layout, self.sizes)
        for loop in self.kernel.loops:
            fn.body += self._forward_loop(fn, loop)
        return fn

    def _forward_loop(self, fn: FunctionText, loop: Loop) -> list[str]:
        by_var = {loc.var: loc for loc in loop.locals}
        fast = self.consts.dtype == np.float32
        activations = {
            loc.var: FAST_FLOAT32[self.nodes[loc.node].op]
            for loc in loop.locals
            if fast and not loc.load and self.nodes[loc.node].op in FAST_FLOAT32
        }
        writes = [
            (t.var, fn.ref(Arg(Role.VALUE, t.node), "t", t.column, loop.width, False, True))
            for t in loop.targets
        ] + [
            (var, self.saved(fn, var, by_var[var], loop.width, write=True))
            for var in self.saves
            if var in by_var
        ]
        homes: dict[str, str] = {}

        def home(var: str) -> str:
            """Where ``var`` is kept between sub-loops: where it is written anyway, else a
            scratch row (also for a fixed column, the same at every j)."""
            if var not in homes:
                where = next((w for v, w in writes if v == var), None)
                if where is None or by_var[var].fixed:
                    where = f"w{var}[j]"
                    size = fn.size(loop.width)
                    fn.scratch.append(f"    w{var} = np.empty({size}, np.{self.dtype})")
                homes[var] = where
            return homes[var]

        def value(loc: Local) -> str:
            return self.load(fn, loc, loop.width) if loc.load else self.rule_value(loc)

        width = fn.size(loop.width)
        return fissioned_loop(loop, value, activations, home, writes, width, self.consts.name)

    @property
    def dtype(self) -> str:
        return self.consts.dtype.name

    def backward(self, name: str) -> FunctionText:
        fn = FunctionText(name, self.layout, self.sizes)
        for loop in self.kernel.loops:
            fn.body.append(f"        for j in range({fn.size(loop.width)}):")
            fn.body += [f"            {line}" for line in self._backward_body(fn, loop)]
        return fn

    def _reload(self, fn: FunctionText, loc: Local, width: int) -> str:
        """The element the backward reads a needed local from."""
        if loc.var in self.saves:
            return self.saved(fn, loc.var, loc, width)
        if loc.load:
            return self.load(fn, loc, width)
        arg, column = self.layout.stored(self.kernel.stage, loc)
        return fn.ref(arg, "t", column, width, False)

    def _seeds(self, fn: FunctionText, loop: Loop, var: str) -> list[str]:
        """The gradients arriving for ``var`` as a value the step writes."""
        seeds = []
        for t in loop.targets:
            if t.var != var:
                continue
            if Arg(Role.GRAD, t.node) in self.layout.written or t.node in self.program.states:
                seeds.append(fn.ref(Arg(Role.GRAD, t.node), "t", t.column, loop.width, False))
            if t.node == self.program.output:
                seeds.append(fn.ref(Arg(Role.DY, t.node), "t", t.column, loop.width, False))
        return seeds

    def _backward_body(self, fn: FunctionText, loop: Loop) -> list[str]:
        stage = self.kernel.stage
        reads, recomputed = self.layout.reads[stage], self.layout.recomputed[stage]
        body = [
            f"{loc.var} = "
            + (self.rule_value(loc) if loc.var in recomputed else self._reload(fn, loc, loop.width))
            for loc in loop.locals
            if loc.var in reads
        ]
        owners = loop.adjoint_owners(self.program)
        contributions = loop.contributions(self.program)
        for loc in reversed(loop.locals):
            if owners[loc.var] != loc.var or (loc.load and not loc.takes_grad):
                continue
            terms = self._seeds(fn, loop, loc.var)
            for consumer, grad in contributions[loc.var]:
                n = self.nodes[consumer.node]
                names = dict(zip(n.rule.inputs, consumer.operands))
                names.update(dict(n.attrs), y=consumer.var, g=f"g{owners[consumer.var]}")
                terms.append(self._term(grad, names))
            body.append(f"g{loc.var} = {' + '.join(terms) or self.consts.zero}")
        for loc in loop.locals:
            key = ("kernel", self.kernel.stage, loc.var)
            if not loc.load or key not in self.layout.adds:
                continue
            grad = self.layout.grad(loc.node, loc.at)
            where = fn.ref(grad, loc.at, loc.offset, loop.width, loc.fixed, write=True)
            body.append(f"{where} {'+=' if self.layout.adds[key] else '='} g{owners[loc.var]}")
        return body

    def _term(self, grad: str, names: dict) -> str:
        """One consumer's derivative rule, as one term of a sum (an operand the op reads
        twice, ``x * x``, gets each input's rule: two terms)."""
        term = self.rewrite(grad, names)
        return f"({term})" if isinstance(ast.parse(term, mode="eval").body, ast.IfExp) else term


class Source:
    """A generated kernel module: its text, its ``dims`` (the sizes it names, in order), the
    arguments of each of its functions by name, and whether its drivers take the BLAS
    ``gemm`` (blas.py) after ``dims``."""

    def __init__(self, text: str, dims: list[int], args: dict[str, list[Arg]], blas: bool):
        self.text, self.dims, self.args, self.blas = text, dims, args, blas


def _header(consts: Constants) -> list[str]:
    fast = sorted(FAST_FLOAT32.values()) if consts.dtype == np.float32 else []
    return [
        "import math",
        "",
        "import numba",
        "import numpy as np",
        "",
        "from tinygrad_lstm.compiler.matmul import gemm_rows, matmul_rows",
        f"from tinygrad_lstm.ops.scalar_math import {', '.join(['kernel_functions', *fast])}",
        "",
        "kernel_functions()  # ops/scalar_math.py's functions, callable from the kernels",
        "",
        *consts.lines(),
    ]


def render(schedule: Schedule, layout: Layout, dtype: DTypeLike, blas: bool) -> Source:
    """The module source of every stage's kernels and of the drivers, for ``dtype``; with
    ``blas``, the drivers take BLAS ``gemm`` for their products (blas.py)."""
    from .drivers import driver_source

    consts, sizes = Constants(dtype), Sizes()
    functions, args = [], {}
    for stage, kernel in enumerate(layout.kernels):
        if kernel is None:
            continue
        text = _StageText(layout, kernel, consts, sizes)
        for fn in (text.forward(f"stage{stage}_forward"), text.backward(f"stage{stage}_backward")):
            functions += [fn.text(), "", ""]
            args[fn.name] = fn.args
    driver, driver_args = driver_source(schedule, layout, args, blas)
    args.update(driver_args)
    body = "\n".join(_header(consts) + ["", "", driver, ""] + functions).rstrip() + "\n"
    return Source(body, sizes.values(), args, blas)
