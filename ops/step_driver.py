"""Whole-pass drivers: the time loop of a compiled step inside one Numba function.

For small steps the per-step cost of calling a kernel and a BLAS matmul from Python
(a few microseconds each) outweighs the work, so, as the hand-written LSTM and RNN kernels
do, the whole loop runs in one call: each stage's kernel, then its matmuls with a
register-blocked product (``recurrent_kernels._matmul_rows``: out = h @ w^T, w read row by
row). ``pass_forward`` runs the steps in order; ``pass_backward`` runs them back, each
stage from the last: its matmuls' backward ``da += dm @ W^T``, then its backward kernel.

Arguments are named as in the stage kernels (``v``/``s``/``d`` + node: values, saved
values, gradients) plus, per matmul m, ``w{m}`` (the weight as (N, K) rows), ``u{m}`` (as
(K, N) rows, for the backward) and ``p{m}`` (a (B, K) scratch product).
"""

from __future__ import annotations

import re

__all__ = ["DRIVER_ARG", "driver_source"]

DRIVER_ARG = re.compile(r"^([vsdwup])(\d+)$")


def _unique(names):
    return list(dict.fromkeys(names))


def _kernel_args(kernel, backward: bool) -> list[str]:
    args = kernel.backward_args if backward else kernel.forward_args
    return [f"{'v' if r == 'val' else 's' if r == 'save' else 'd'}{i}" for r, i in args]


def driver_source(schedule, kernels, homes: dict[int, int]) -> tuple[str, list[str], list[str]]:
    """(source, forward argument names, backward argument names) of the two drivers."""
    nodes = schedule.program.nodes
    fwd_names, bwd_names, fwd, bwd = [], [], [], []
    for s, kernel in enumerate(kernels):
        if kernel is not None:
            args = _kernel_args(kernel, False)
            fwd_names += args
            fwd.append(f"stage{s}_forward(t, tp, B, dims, {', '.join(args)})")
        for m in schedule.matmuls[s]:
            a = nodes[m].inputs[0]
            at = "tp" if homes[a] != a else "t"
            fwd_names += [f"v{homes[a]}", f"w{m}", f"v{m}"]
            fwd.append(f"_matmul_rows(v{homes[a]}[{at}], w{m}, v{m}[t])")
    for s in range(len(kernels) - 1, -1, -1):
        for m in schedule.matmuls[s]:
            a = nodes[m].inputs[0]
            at = "tp" if homes[a] != a else "t"
            bwd_names += [f"d{m}", f"u{m}", f"p{m}", f"d{homes[a]}"]
            bwd += [f"_matmul_rows(d{m}[t], u{m}, p{m})", f"_accumulate(d{homes[a]}[{at}], p{m})"]
        if kernels[s] is not None:
            args = _kernel_args(kernels[s], True)
            bwd_names += args
            bwd.append(f"stage{s}_backward(t, tp, B, dims, {', '.join(args)})")
    fwd_names, bwd_names = _unique(fwd_names), _unique(bwd_names)
    lines = [
        "from tinygrad_lstm.ops.recurrent_kernels import _matmul_rows  # noqa: E402",
        "",
        "",
        "@numba.njit(cache=True, error_model='numpy')",
        "def _accumulate(into, add):",
        "    for b in range(into.shape[0]):",
        "        for k in range(into.shape[1]):",
        "            into[b, k] += add[b, k]",
        "",
        "",
        "@numba.njit(cache=True, error_model='numpy')",
        f"def pass_forward(times, previous, B, dims, {', '.join(fwd_names)}):",
        "    for p in range(times.shape[0]):",
        "        t = times[p]",
        "        tp = previous[p]",
        *(f"        {line}" for line in fwd),
        "",
        "",
        "@numba.njit(cache=True, error_model='numpy')",
        f"def pass_backward(times, previous, B, dims, {', '.join(bwd_names)}):",
        "    for p in range(times.shape[0] - 1, -1, -1):",
        "        t = times[p]",
        "        tp = previous[p]",
        *(f"        {line}" for line in bwd),
    ]
    return "\n".join(lines) + "\n", fwd_names, bwd_names
