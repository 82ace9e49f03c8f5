"""Kernel IR to Numba source: each stage's forward and backward, and the whole-pass drivers.

The forward of a loop assigns each local its load or its op's scalar rule, then stores the
targets and the saved values. In float32 an op with a fast variant (``FAST_FLOAT32``:
sigmoid, tanh) calls it, and the loop is split at those calls (fission.py) so LLVM
vectorizes each piece.

The backward is reverse mode done while writing the code: it reloads the locals the
derivative rules read (saved ones from the forward's saves), walks the ops in reverse and
adds each op's derivative rule to its operands' adjoints,

    adj(operand_i) += rule.grads[i](operands, y, g = adj(output)),

then adds the adjoints of what the stage read (state, hoisted rows, matmul outputs,
parameter vectors) into their gradient arrays.

Each function reads a (T, B, W) array one row at a time (``v5_t = v5[t, b]``, made once per
batch row): contiguous 1-D rows, which LLVM vectorizes. The renderer records the rows it
uses as it writes; nothing is parsed back from the text.
"""

from __future__ import annotations

import ast
import math

import numpy as np
from numpy.typing import DTypeLike
from tinygrad_lstm.ops.rule_source import FAST_FLOAT32, _Rewrite

from .fission import fissioned_loop
from .kernel_ir import Arg, Local, Loop, Number, Role, StageKernel
from .program import StepProgram
from .schedule import Schedule

__all__ = ["Source", "render"]


class _Constants:
    """Module-level constants of the kernel dtype (Numba freezes them, typed: a bare ``1``
    would turn float32 arithmetic into float64)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype, self.names = np.dtype(dtype), {}

    def name(self, value: float) -> str:
        key = float(value)
        if key not in self.names:
            self.names[key] = f"_c{len(self.names)}"
        return self.names[key]

    def lines(self) -> list[str]:
        out = []
        for value, name in self.names.items():
            text = repr(value)
            if math.isinf(value) or math.isnan(value):
                text = {"inf": "np.inf", "-inf": "-np.inf"}.get(text, "np.nan")
            out.append(f"{name} = np.{self.dtype.name}({text})")
        return out


class _Function:
    """The text of one generated function, with the (T, B, W) rows it reads or writes."""

    def __init__(self, name: str, args: list[Arg], size_names: dict[int, str]) -> None:
        self.name, self.args, self.size_names = name, args, size_names
        self.rows: dict[str, str] = {}
        self.body: list[str] = []
        self.scratch: list[str] = []

    def row(self, arg: Arg, at: str) -> str:
        """The name of ``arg``'s row at step ``at`` ("t" or "tp") in batch row b."""
        name = f"{arg.name}_{at}"
        self.rows[name] = f"{arg.name}[{at}, b]"
        return name

    def text(self) -> str:
        sizes = [f"    {n} = dims[{k}]" for k, (s, n) in enumerate(self.size_names.items()) if s]
        names = ", ".join(a.name for a in self.args)
        return "\n".join(
            [
                "@numba.njit(cache=True, error_model='numpy')",
                f"def {self.name}(t, tp, B, dims, {names}):",
                *sizes,
                *self.scratch,
                "    for b in range(B):",
                *(f"        {name} = {row}" for name, row in self.rows.items()),
                *self.body,
            ]
        )


class _StageText:
    """Writes the two functions of one stage."""

    def __init__(
        self,
        program: StepProgram,
        kernel: StageKernel,
        consts: _Constants,
        sizes: dict[int, str],
    ):
        self.program, self.kernel, self.consts, self.size_names = program, kernel, consts, sizes
        self.nodes = program.nodes

    def rewrite(self, expr: str, names: dict) -> str:
        names = {k: (v.value if isinstance(v, Number) else v) for k, v in names.items()}
        tree = _Rewrite(names, self.consts.name).visit(ast.parse(expr, mode="eval"))
        return ast.unparse(tree)

    def load(self, fn: _Function, loc: Local, role: Role = Role.VALUE) -> str:
        home = self.program.home(loc.node)
        if loc.at is None:
            return f"{Arg(role, home).name}[{loc.column}]"
        return f"{fn.row(Arg(role, home), loc.at)}[{loc.column}]"

    def value(self, fn: _Function, loc: Local, fast: bool) -> str:
        """The right-hand side of ``loc`` in the forward."""
        if loc.load:
            return self.load(fn, loc)
        n = self.nodes[loc.node]
        if fast and n.op in FAST_FLOAT32:
            operand = loc.operands[0]
            operand = self.consts.name(operand.value) if isinstance(operand, Number) else operand
            return f"{FAST_FLOAT32[n.op]}({operand})"
        names = dict(zip(n.rule.inputs, loc.operands))
        names.update(dict(n.attrs))
        return self.rewrite(n.rule.forward, names)

    def column(self, j: str, offset: int) -> str:
        return " + ".join([j] + ([self.size_names[offset]] if offset else []))

    def forward(self, name: str) -> str:
        kernel, fast = self.kernel, self.consts.dtype == np.float32
        fn = _Function(name, kernel.forward_args, self.size_names)
        for loop in kernel.loops:
            writes = [
                (t.var, f"{fn.row(Arg(Role.VALUE, t.node), 't')}[{self.column('j', t.column)}]")
                for t in loop.targets
            ] + [
                (loc.var, f"{fn.row(Arg(Role.SAVED, loc.node), 't')}[{loc.column}]")
                for loc in loop.locals
                if not loc.load and loc.node in kernel.saved and loc.var in kernel.needed
            ]
            stores = [(var, f"{where} = {var}") for var, where in writes]
            size = self.size_names[loop.width]
            activations = {
                loc.var: FAST_FLOAT32[self.nodes[loc.node].op]
                for loc in loop.locals
                if fast and not loc.load and self.nodes[loc.node].op in FAST_FLOAT32
            }
            if activations:
                scratch, lines = fissioned_loop(
                    loop,
                    lambda loc: self.value(fn, loc, False),
                    activations,
                    size,
                    self.consts.dtype.name,
                    stores,
                )
                fn.scratch += scratch
                fn.body += lines
                continue
            body = [f"{loc.var} = {self.value(fn, loc, fast)}" for loc in loop.locals]
            fn.body.append(f"        for j in range({size}):")
            fn.body += [f"            {line}" for line in body + [s for _, s in stores]]
        return fn.text()

    def backward(self, name: str) -> str:
        kernel = self.kernel
        fn = _Function(name, kernel.backward_args, self.size_names)
        zero = self.consts.name(0.0)
        for loop in kernel.loops:
            fn.body.append(f"        for j in range({self.size_names[loop.width]}):")
            fn.body += [f"            {line}" for line in self._backward_body(fn, loop, zero)]
        return fn.text()

    def _backward_body(self, fn: _Function, loop: Loop, zero: str) -> list[str]:
        kernel, body = self.kernel, []
        for loc in loop.locals:
            if loc.var not in kernel.needed:
                continue
            if loc.load:
                body.append(f"{loc.var} = {self.load(fn, loc)}")
            else:
                role = Role.SAVED if loc.node in kernel.saved else Role.VALUE
                row = fn.row(Arg(role, loc.node), "t")
                body.append(f"{loc.var} = {row}[{loc.column}]")
        body += [f"g{loc.var} = {zero}" for loc in loop.locals]
        body += [
            f"g{t.var} += {fn.row(Arg(Role.GRAD, t.node), 't')}[{self.column('j', t.column)}]"
            for t in loop.targets
        ]
        for loc in reversed(loop.locals):
            if loc.load:
                continue
            n = self.nodes[loc.node]
            names = dict(zip(n.rule.inputs, loc.operands))
            names.update(dict(n.attrs), y=loc.var, g=f"g{loc.var}")
            for operand, grad, wanted in zip(loc.operands, n.rule.grads, loc.grad_operands):
                if grad is not None and wanted:
                    body.append(f"g{operand} += {self.rewrite(grad, names)}")
        for loc in loop.locals:
            if loc.load and loc.takes_grad:
                body.append(f"{self.load(fn, loc, Role.GRAD)} += g{loc.var}")
        return body


class Source:
    """A generated kernel module: its text and the typed arguments of its functions.

    ``stages[k]`` is stage k's ``StageKernel`` (None when it computes nothing), its
    functions ``stage{k}_forward`` and ``stage{k}_backward``; the drivers
    ``pass_forward`` / ``pass_backward`` take ``driver_args[0]`` / ``driver_args[1]``.
    """

    def __init__(self, text: str, stages: list, driver_args: tuple[list[Arg], list[Arg]]):
        self.text, self.stages, self.driver_args = text, stages, driver_args


def _header(consts: _Constants) -> list[str]:
    lines = [
        "import math",
        "",
        "import numba",
        "import numpy as np",
        "",
        "from tinygrad_lstm.ops.lazy_numba import jit_helpers",
        "",
        "jit_helpers()",
    ]
    if consts.dtype == np.float32:
        lines.append(
            "from tinygrad_lstm.ops.scalar_math import "
            + ", ".join(sorted(FAST_FLOAT32.values()))
            + "  # noqa: E402"
        )
    return lines + ["", *consts.lines()]


def render(
    schedule: Schedule,
    kernels: list[StageKernel | None],
    size_names: dict[int, str],
    dtype: DTypeLike,
) -> Source:
    """The module source of every stage's kernels and of the drivers, for ``dtype``."""
    from .drivers import driver_source

    program = schedule.program
    consts = _Constants(dtype)
    consts.name(0.0)
    functions = []
    for stage, kernel in enumerate(kernels):
        if kernel is None:
            continue
        text = _StageText(program, kernel, consts, size_names)
        functions += [text.forward(f"stage{stage}_forward"), "", ""]
        functions += [text.backward(f"stage{stage}_backward"), "", ""]
    driver, forward_args, backward_args = driver_source(schedule, kernels)
    text = "\n".join(_header(consts) + ["", driver, ""] + functions).rstrip() + "\n"
    return Source(text, kernels, (forward_args, backward_args))
