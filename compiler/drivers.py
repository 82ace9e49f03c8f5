"""Whole-pass drivers: the time loop of a compiled step inside one Numba function.

For small steps the per-step cost of calling a kernel and a BLAS matmul from Python (a few
microseconds each) outweighs the work, so the whole loop runs in one call: each stage's
kernel, then its matmuls with a register-blocked product (``matmul_rows``: out = h @ w^T,
w read row by row). ``pass_forward`` runs the steps in order; ``pass_backward`` runs them
back, each stage from the last: its matmuls' backward ``da += dm @ W^T``, then its backward
kernel. The drivers' arguments are typed ``Arg``s, as the stage kernels'.
"""

from __future__ import annotations

from .kernel_ir import Arg, Role, StageKernel
from .schedule import Schedule

__all__ = ["driver_source"]


def _unique(args: list[Arg]) -> list[Arg]:
    return list(dict.fromkeys(args))


def _call(name: str, args: list[Arg]) -> str:
    return f"{name}(t, tp, B, dims, {', '.join(a.name for a in args)})"


def driver_source(
    schedule: Schedule, kernels: list[StageKernel | None]
) -> tuple[str, list[Arg], list[Arg]]:
    """(source, forward arguments, backward arguments) of the two drivers."""
    program, nodes = schedule.program, schedule.program.nodes
    fwd_args: list[Arg] = []
    bwd_args: list[Arg] = []
    fwd, bwd = [], []
    for s, kernel in enumerate(kernels):
        if kernel is not None:
            fwd_args += kernel.forward_args
            fwd.append(_call(f"stage{s}_forward", kernel.forward_args))
        for m in schedule.matmuls[s]:
            a = nodes[m].inputs[0]
            home, at = program.home(a), "tp" if program.home(a) != a else "t"
            left, weight, out = Arg(Role.VALUE, home), Arg(Role.WEIGHT, m), Arg(Role.VALUE, m)
            fwd_args += [left, weight, out]
            fwd.append(f"matmul_rows({left.name}[{at}], {weight.name}, {out.name}[t])")
    for s in range(len(kernels) - 1, -1, -1):
        for m in schedule.matmuls[s]:
            a = nodes[m].inputs[0]
            home, at = program.home(a), "tp" if program.home(a) != a else "t"
            dm, wt, p = Arg(Role.GRAD, m), Arg(Role.WEIGHT_T, m), Arg(Role.SCRATCH, m)
            da = Arg(Role.GRAD, home)
            bwd_args += [dm, wt, p, da]
            bwd += [
                f"matmul_rows({dm.name}[t], {wt.name}, {p.name})",
                f"add_rows({da.name}[{at}], {p.name})",
            ]
        kernel = kernels[s]
        if kernel is not None:
            bwd_args += kernel.backward_args
            bwd.append(_call(f"stage{s}_backward", kernel.backward_args))
    fwd_args, bwd_args = _unique(fwd_args), _unique(bwd_args)
    lines = [
        "from tinygrad_lstm.ops.recurrent_kernels import _matmul_rows as matmul_rows  # noqa",
        "",
        "",
        "@numba.njit(cache=True, error_model='numpy')",
        "def add_rows(into, add):",
        "    for b in range(into.shape[0]):",
        "        for k in range(into.shape[1]):",
        "            into[b, k] += add[b, k]",
        "",
        "",
        "@numba.njit(cache=True, error_model='numpy')",
        f"def pass_forward(times, previous, B, dims, {', '.join(a.name for a in fwd_args)}):",
        "    for p in range(times.shape[0]):",
        "        t = times[p]",
        "        tp = previous[p]",
        *(f"        {line}" for line in fwd),
        "",
        "",
        "@numba.njit(cache=True, error_model='numpy')",
        f"def pass_backward(times, previous, B, dims, {', '.join(a.name for a in bwd_args)}):",
        "    for p in range(times.shape[0] - 1, -1, -1):",
        "        t = times[p]",
        "        tp = previous[p]",
        *(f"        {line}" for line in bwd),
    ]
    return "\n".join(lines) + "\n", fwd_args, bwd_args
