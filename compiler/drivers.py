"""Whole-pass drivers: the time loop of a compiled step inside one Numba function.

For small steps the per-step cost of calling a kernel and a BLAS matmul from Python (a few
microseconds each) outweighs the work, so the whole loop runs in one call: the actions of
step_plan.py, with products by BLAS ``gemm`` called from the driver (``gemm_rows`` in
compiler/matmul.py, given the function blas.py found as the driver's argument ``blas``),
or, where no BLAS was found, by ``matmul_rows`` (out = h @ w^T, w read row by row).
``pass_forward`` runs the steps in order; ``pass_backward`` runs them back and swaps the
carried gradients after each. The drivers' arguments are typed ``Arg``s, as the stage
kernels'.
"""

from __future__ import annotations

from .memory import Arg, Layout, Space
from .schedule import Schedule
from .step_plan import Action, KernelCall, Product, Zero, backward_actions, forward_actions

__all__ = ["driver_source"]


def _at(layout: Layout, arg: Arg, at: str) -> str:
    return arg.name if layout.space(arg) is Space.ROWS else f"{arg.name}[{at}]"


def _lines(
    layout: Layout,
    actions: list[Action],
    kernel_args: dict[str, list[Arg]],
    used: list[Arg],
    blas: bool,
) -> list[str]:
    lines = []
    for action in actions:
        if isinstance(action, KernelCall):
            args = kernel_args[action.function]
            used += args
            lines.append(f"{action.function}(t, tp, B, dims, {', '.join(a.name for a in args)})")
        elif isinstance(action, Product):
            left = _at(layout, action.left, action.left_at)
            out = _at(layout, action.out, action.out_at)
            if blas:
                matrix = action.matrix
                lines.append(f"gemm_rows(blas, {left}, {matrix.name}, {out}, {action.add})")
            else:
                matrix = action.rows
                lines.append(f"matmul_rows({left}, {matrix.name}, {out}, {action.add})")
            used += [action.left, matrix, action.out]
        elif isinstance(action, Zero):
            used.append(action.arg)
            lines.append(f"{action.arg.name}.fill(_c0)")
    return lines


def _driver(
    name: str, order: str, body: list[str], used: list[Arg], blas: bool
) -> tuple[str, list[Arg]]:
    args = list(dict.fromkeys(used))
    fixed = "times, previous, B, dims, blas" if blas else "times, previous, B, dims"
    lines = [
        "@numba.njit(cache=True, error_model='numpy')",
        f"def {name}({fixed}, {', '.join(a.name for a in args)}):",
        f"    for p in {order}:",
        "        t = times[p]",
        "        tp = previous[p]",
        *(f"        {line}" for line in body),
    ]
    return "\n".join(lines), args


def driver_source(
    schedule: Schedule, layout: Layout, kernel_args: dict[str, list[Arg]], blas: bool
) -> tuple[str, dict[str, list[Arg]]]:
    """(source, arguments by name) of ``pass_forward`` and ``pass_backward``; with ``blas``
    each takes the BLAS ``gemm`` after ``dims`` and computes its products with it."""
    used: list[Arg] = []
    body = _lines(layout, forward_actions(schedule, layout), kernel_args, used, blas)
    forward, forward_args = _driver("pass_forward", "range(times.shape[0])", body, used, blas)
    used = []
    body = _lines(layout, backward_actions(schedule, layout), kernel_args, used, blas)
    for new, old in layout.carried():
        used += [new, old]
        body.append(f"{new.name}, {old.name} = {old.name}, {new.name}")
    order = "range(times.shape[0] - 1, -1, -1)"
    backward, backward_args = _driver("pass_backward", order, body, used, blas)
    text = forward + "\n\n\n" + backward + "\n"
    return text, {"pass_forward": forward_args, "pass_backward": backward_args}
