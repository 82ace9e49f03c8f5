"""Benchmark: the per-step product of the compiled cells' whole-pass drivers.

    python benchmarks/driver_products.py [--repeats 5] [--calls 1000]

A driver multiplies a step's (B, K) rows by a (K, N) weight once per step, inside Numba.
Three ways are timed at the step sizes of benchmarks/compiled_cells.py's configs, float32,
one thread: ``matmul_rows`` (compiler/matmul.py, the register-blocked loop the drivers use
where no BLAS is found) and ``gemm_rows`` (BLAS ``gemm`` called from Numba, blas.py), each
called ``--calls`` times in a Numba loop, and ``np.dot(h, w, out=...)`` called from Python
(what a per-step Python loop pays). Per call: the minimum over ``--repeats`` repeats, in
microseconds, and the ratio to ``np.dot``.
"""

from __future__ import annotations

import os

os.environ.update(dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"), "1"))

import argparse
import time

import numba
import numpy as np
from tinygrad_lstm.compiler import blas
from tinygrad_lstm.compiler.matmul import gemm_rows, matmul_rows

# (B, K, N): a step's product at the configs tiny, small, medium and long (LSTM: N = 4H).
SHAPES = {"tiny": (1, 16, 64), "small": (16, 64, 256), "medium": (32, 256, 1024)}
SHAPES["long"] = (8, 64, 256)


@numba.njit(cache=True)
def _loop_rows(h, w_rows, out, calls):
    for _ in range(calls):
        matmul_rows(h, w_rows, out, False)


@numba.njit(cache=True)
def _loop_gemm(gemm, h, w, out, calls):
    for _ in range(calls):
        gemm_rows(gemm, h, w, out, False)


def _best(run, calls: int, repeats: int) -> float:
    """Microseconds a call, minimum over ``repeats`` timings of ``run()`` (``calls`` calls)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def _row(name: str, shape: tuple[int, int, int], gemm, calls: int, repeats: int) -> str:
    """One table row: the three products of ``shape`` (B, K, N), checked, then timed."""
    b, k, n = shape
    rng = np.random.default_rng(0)
    h = rng.standard_normal((b, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    w_rows = np.ascontiguousarray(w.T)
    out = np.empty((b, n), np.float32)
    expected = h @ w
    _loop_rows(h, w_rows, out, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    rows = _best(lambda: _loop_rows(h, w_rows, out, calls), calls, repeats)

    def dots() -> None:
        for _ in range(calls):
            np.dot(h, w, out=out)

    dot = _best(dots, calls, repeats)
    found, ratio = "n/a", ""
    if gemm is not None:
        _loop_gemm(gemm, h, w, out, 1)
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
        seconds = _best(lambda: _loop_gemm(gemm, h, w, out, calls), calls, repeats)
        found, ratio = f"{seconds:.2f}", f"{seconds / dot:.2f}x"
    return (
        f"| {name} | ({b}, {k}) @ ({k}, {n}) | {rows:.2f} | {found} | {dot:.2f} "
        f"| {rows / dot:.2f}x | {ratio} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    gemm = blas.gemm(np.float32)
    print(f"BLAS gemm found: {gemm is not None}")
    columns = ["config", "(B, K) @ (K, N)", "matmul_rows us", "gemm_rows us", "np.dot us"]
    columns += ["rows / dot", "gemm / dot"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for name, shape in SHAPES.items():
        print(_row(name, shape, gemm, args.calls, args.repeats))


if __name__ == "__main__":
    main()
