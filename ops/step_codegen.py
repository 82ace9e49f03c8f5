"""Numba source for each stage of a compiled step, forward and backward, from scalar rules.

A stage's kernel loops over the batch rows b and, inside, over the columns j of its
targets (one loop per distinct target width). Each value a target needs becomes one scalar
local of the loop body, written with its op's scalar rule; a slice costs nothing (its
consumer reads the input at a shifted column: ``split(a + b, 4)[1]`` at column j is
``a[b, j + H] + b[b, j + H]``), and a value read twice at one column is computed once.

The backward kernel is reverse mode done while generating the code: it walks the same
scalar locals in reverse and adds each op's derivative rule to its inputs' adjoints,

    adj(input_i) += rule.grads[i](inputs, y, g = adj(output)),

then adds the adjoints of what the stage read (state, hoisted rows, matmul outputs,
parameter vectors) into their gradient arrays. It reads, rather than recomputes, every
forward value a rule mentions: the forward kernel saves exactly those (``saved``).
In float32, ops with a fast variant (``FAST_FLOAT32``: sigmoid, tanh) call it forward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .step_driver import driver_source
from .step_fission import fissioned_loop
from .step_program import LEAF_KINDS, NotFusible, Schedule
from .step_source import FAST_FLOAT32, Module, names_in

__all__ = ["FAST_FLOAT32", "StageKernel", "generate"]


@dataclass
class StageKernel:
    """The two generated functions of one stage and what to pass them.

    Arguments after ``(t, tp, B, dims)`` (this step's time index, the previous step's, the
    batch size, the program's sizes) are arrays named by ``(role, node)``: ``val`` the
    node's values (T, B, W) (a vector's (W,)), ``save`` its saved copies, ``adj`` its
    gradients (added to). A state part is read from its new-state node's arrays at ``tp``.
    """

    stage: int
    forward_args: list[tuple[str, int]] = field(default_factory=list)
    backward_args: list[tuple[str, int]] = field(default_factory=list)
    saved: list[int] = field(default_factory=list)


class _Loop:
    """One column loop of a stage: its scalar locals in creation (topological) order."""

    def __init__(self, gen: _Stage, width: int):
        self.gen, self.width = gen, width
        self.memo: dict = {}
        self.locals: list[dict] = []  # {"var", "node", "index", "kind", "operands"}
        self.targets: list[tuple[str, int, int]] = []  # (local, target node, column offset)

    def index(self, base: str, offsets: tuple[int, ...]) -> str:
        terms = ([base] if base == "j" else []) + [
            self.gen.module.size_names[o] for o in offsets if o
        ]
        return " + ".join(terms) or "0"

    def emit(self, node: int, base: str, offsets: tuple[int, ...]) -> str:
        offsets = tuple(sorted(o for o in offsets if o))
        key = (node, base, offsets)
        if key not in self.memo:
            self.memo[key] = self._make(node, base, offsets)
        return self.memo[key]

    def _make(self, i: int, base: str, offsets: tuple[int, ...]) -> str:
        gen, n = self.gen, self.gen.nodes[i]
        if n.kind == "const" and n.value is not None:
            return gen.module.constant(n.value)
        if n.kind == "slice":
            return self.emit(n.inputs[0], base, offsets + (n.offset,))
        index = self.index(base, offsets)
        if n.kind in LEAF_KINDS or n.kind == "matmul" or gen.is_input(i):
            step = "tp" if n.kind == "state" else "t"
            where = f"[{index}]" if n.kind in ("vector", "const") else f"_{step}[{index}]"
            return self._add(i, index, "load", (), where)
        if n.kind == "concat":
            raise NotFusible(
                f"concat %{i} is read by an op of the stage that makes it; "
                "only a concat feeding a matmul or ending the step is fused"
            )
        operands = []
        for j in n.inputs:
            wide = gen.nodes[j].width != 1 or n.width == 1
            operands.append(self.emit(j, base if wide else "0", offsets if wide else ()))
        return self._add(i, index, "op", tuple(operands), "")

    def _add(self, node, index, kind, operands, where) -> str:
        var = f"x{len(self.locals)}"
        self.locals.append(
            {
                "var": var,
                "node": node,
                "index": index,
                "kind": kind,
                "operands": operands,
                "where": where,
            }
        )
        return var


class _Stage:
    def __init__(self, schedule: Schedule, stage: int, module: Module):
        self.schedule, self.stage, self.module = schedule, stage, module
        self.nodes = schedule.program.nodes
        self.targets = set(schedule.kernels[stage])
        self.loops: dict[int, _Loop] = {}
        for t in schedule.kernels[stage]:
            n = self.nodes[t]
            parts = (
                [(j, self.nodes[j].width) for j in n.inputs]
                if n.kind == "concat"
                else [(t, n.width)]
            )
            column = 0
            for part, width in parts:
                loop = self.loops.setdefault(width, _Loop(self, width))
                loop.targets.append((loop.emit(part, "j", ()), t, column))
                column += width

    def home(self, i: int) -> int:
        """The node whose arrays hold node i: a state part lives in the buffer of the new
        state it becomes (at the previous step ``tp``), any other node in its own."""
        n = self.nodes[i]
        return self.schedule.program.states[n.slot] if n.kind == "state" else i

    def is_input(self, i: int) -> bool:
        """True when node i reaches this stage from memory (made by an earlier stage)."""
        return self.schedule.level[i] < self.stage

    def needs_grad(self, i: int) -> bool:
        return self.nodes[i].kind != "const"

    def _rule_needs(self, local: dict) -> set[str]:
        """Operand/output locals the backward rules of ``local`` read."""
        rule = self.nodes[local["node"]].rule
        names, needed = dict(zip(rule.inputs, local["operands"])), set()
        for k, grad in enumerate(rule.grads):
            if grad is None or not self._operand_wants_grad(local, k):
                continue
            for name in names_in(grad):
                if name in names:
                    needed.add(names[name])
                elif name == "y":
                    needed.add(local["var"])
        return needed

    def _operand_wants_grad(self, local: dict, k: int) -> bool:
        var = local["operands"][k]
        source = self._by_var.get(var)
        return source is not None and self.needs_grad(source["node"])

    def code(self, name: str) -> tuple[str, str, StageKernel]:
        kernel = StageKernel(self.stage)
        self._by_var = {loc["var"]: loc for loop in self.loops.values() for loc in loop.locals}
        needed = set()
        for loop in self.loops.values():
            for loc in loop.locals:
                if loc["kind"] == "op":
                    needed |= self._rule_needs(loc)
        saved = sorted(
            {self._by_var[v]["node"] for v in needed if self._by_var[v]["kind"] == "op"}
            - self.targets
        )
        kernel.saved = saved
        loads = [
            loc["node"]
            for loop in self.loops.values()
            for loc in loop.locals
            if loc["kind"] == "load"
        ]
        reads = sorted({self.home(i) for i in loads})
        targets = sorted(self.targets)
        values = sorted(set(reads) | set(targets))
        kernel.forward_args = [("val", i) for i in values] + [("save", s) for s in saved]
        wanted = {self.home(i) for i in loads if self.needs_grad(i)} | set(targets)
        kernel.backward_args = kernel.forward_args + [("adj", i) for i in sorted(wanted)]
        forward = self._forward(f"{name}_forward", kernel, saved, needed)
        backward = self._backward(f"{name}_backward", kernel, saved, needed)
        return forward, backward, kernel

    def _signature(self, fname: str, args) -> list[str]:
        names = ", ".join(
            f"{'v' if r == 'val' else 's' if r == 'save' else 'd'}{i}" for r, i in args
        )
        sizes = [
            f"    {n} = dims[{k}]"
            for k, (size, n) in enumerate(self.module.size_names.items())
            if size
        ]
        return [
            "@numba.njit(cache=True, error_model='numpy')",
            f"def {fname}(t, tp, B, dims, {names}):",
            *sizes,
            "    for b in range(B):",
        ]

    def _value(self, loc: dict, fast: bool) -> str:
        n = self.nodes[loc["node"]]
        if loc["kind"] == "load":
            return f"v{self.home(loc['node'])}{loc['where']}"
        if fast and n.op in FAST_FLOAT32:
            return f"{FAST_FLOAT32[n.op]}({loc['operands'][0]})"
        names = dict(zip(n.rule.inputs, loc["operands"]))
        names.update(dict(n.attrs))
        return self.module.rewrite(n.rule.forward, names)

    def _forward(self, fname: str, kernel: StageKernel, saved: list[int], needed: set[str]) -> str:
        fast = self.module.dtype == np.float32
        lines = self._signature(fname, kernel.forward_args)
        for width, loop in self.loops.items():
            writes = [
                (var, f"v{t}_t[{loop.index('j', (col,))}] = {var}") for var, t, col in loop.targets
            ]
            writes += [
                (loc["var"], f"s{loc['node']}_t[{loc['index']}] = {loc['var']}")
                for loc in loop.locals
                if loc["kind"] == "op" and loc["node"] in saved and loc["var"] in needed
            ]
            size = self.module.size_names[width]
            activations = {
                loc["var"]: FAST_FLOAT32[self.nodes[loc["node"]].op]
                for loc in loop.locals
                if fast and loc["kind"] == "op" and self.nodes[loc["node"]].op in FAST_FLOAT32
            }
            if activations:
                scratch, body = fissioned_loop(
                    loop,
                    lambda loc: self._value(loc, False),
                    activations,
                    size,
                    self.module.dtype.name,
                    writes,
                )
                lines[-1:-1] = scratch
                lines += body
                continue
            lines.append(f"        for j in range({size}):")
            body = [f"{loc['var']} = {self._value(loc, fast)}" for loc in loop.locals]
            lines += [f"            {line}" for line in body + [w for _, w in writes]]
        return _with_row_views(lines)

    def _backward(self, fname: str, kernel: StageKernel, saved: list[int], needed: set[str]) -> str:
        lines = self._signature(fname, kernel.backward_args)
        zero = self.module.zero
        for width, loop in self.loops.items():
            lines.append(f"        for j in range({self.module.size_names[width]}):")
            body = []
            for loc in loop.locals:
                if loc["var"] in needed:
                    node = loc["node"]
                    source = (
                        f"v{self.home(node)}{loc['where']}"
                        if loc["kind"] == "load"
                        else f"{'s' if node in saved else 'v'}{node}_t[{loc['index']}]"
                    )
                    body.append(f"{loc['var']} = {source}")
            body += [f"g{loc['var']} = {zero}" for loc in loop.locals]
            body += [
                f"g{var} += d{t}_t[{loop.index('j', (col,))}]"
                for var, t, col in loop.targets
                if var in self._by_var
            ]
            for loc in reversed(loop.locals):
                if loc["kind"] != "op":
                    continue
                n = self.nodes[loc["node"]]
                names = dict(zip(n.rule.inputs, loc["operands"]))
                names.update(dict(n.attrs), y=loc["var"], g=f"g{loc['var']}")
                for k, grad in enumerate(n.rule.grads):
                    if grad is not None and self._operand_wants_grad(loc, k):
                        body.append(f"g{loc['operands'][k]} += {self.module.rewrite(grad, names)}")
            body += [
                f"d{self.home(loc['node'])}{loc['where']} += g{loc['var']}"
                for loc in loop.locals
                if loc["kind"] == "load" and self.needs_grad(loc["node"])
            ]
            lines += [f"            {line}" for line in body]
        return _with_row_views(lines)


_ROW = re.compile(r"\b([vsd]\d+)_(tp|t)\[")


def _with_row_views(lines: list[str]) -> str:
    """``lines`` with the row of every (T, B, W) array the body reads or writes taken once
    per batch row (``v5_t = v5[t, b]``): 1-D contiguous rows, so LLVM vectorizes the
    column loops."""
    views = sorted(set(_ROW.findall("\n".join(lines))))
    head = lines.index("    for b in range(B):") + 1
    rows = [f"        {name}_{step} = {name}[{step}, b]" for name, step in views]
    return "\n".join(lines[:head] + rows + lines[head:])


def generate(schedule: Schedule, dtype) -> tuple[str, list[StageKernel | None], tuple]:
    """The module source of every stage's kernels for ``dtype``, per stage its
    ``StageKernel`` (None for a stage with nothing to compute), and the argument names of
    the whole-pass drivers (ops/step_driver.py). Stage k's functions are
    ``stage{k}_forward`` and ``stage{k}_backward``."""
    nodes = schedule.program.nodes
    sizes = sorted({n.width for n in nodes} | {n.offset for n in nodes})
    module = Module(dtype, sizes)
    functions, kernels = [], []
    for stage, targets in enumerate(schedule.kernels):
        if not targets:
            kernels.append(None)
            continue
        forward, backward, kernel = _Stage(schedule, stage, module).code(f"stage{stage}")
        functions += [forward, "", "", backward, "", ""]
        kernels.append(kernel)
    program = schedule.program
    homes = {i: program.states[n.slot] if n.kind == "state" else i for i, n in enumerate(nodes)}
    driver, forward_names, backward_names = driver_source(schedule, kernels, homes)
    source = "\n".join(module.header() + [driver, ""] + functions).rstrip() + "\n"
    return source, kernels, (forward_names, backward_names)
