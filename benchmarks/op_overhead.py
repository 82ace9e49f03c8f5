"""Per-op overhead of the autograd engine against PyTorch's, measured in one run.

For sigmoid, mul and matmul on a small (1, 16) and a larger (64, 256) float32 input
(matmul: (1, 16) @ (16, 16) and (64, 256) @ (256, 256)), every input requiring grad:

- forward: the cost of one recorded op (the call, its graph node, dropping the result);
- backward: the cost of ``y.backward(g)`` through that one op into the leaves' ``.grad``
  (graphs are built before the timed loop);
- backward after a write: the same, with an in-place write (into an unrelated tensor)
  between building the graphs and backward, so that every node's saved arrays are checked
  for in-place changes (tinygrad_lstm checks only then; torch checks every time).

Rounds are interleaved (each round times ours, then torch, for every case) so that load on
the shared machine hits both alike; each figure is the median over rounds of the mean time
per call within a round. Kernels are compiled and everything warmed up before timing. Also
reported: the wall time of ``python -c "import tinygrad_lstm"`` with a warm Numba cache
(median of 5 subprocesses), next to ``python -c "pass"``.

BLAS and OpenMP use one thread in both libraries unless BENCH_THREADS says otherwise.

    python benchmarks/op_overhead.py [--rounds 15] [--quick]
"""

from __future__ import annotations

# harness sets the BLAS/OpenMP thread count (BENCH_THREADS) before NumPy and torch load,
# so it comes first; torch is None when it is not installed.
from harness import THREADS, torch  # isort: split

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
from tinygrad_lstm.ops import compile_all

import tinygrad_lstm as tg

# (op, label, shapes of the inputs): calls per timed loop scale inversely with the work.
CASES = [
    ("sigmoid", [(1, 16)]),
    ("sigmoid", [(64, 256)]),
    ("mul", [(1, 16), (1, 16)]),
    ("mul", [(64, 256), (64, 256)]),
    ("matmul", [(1, 16), (16, 16)]),
    ("matmul", [(64, 256), (256, 256)]),
]


def _ours(op: str) -> Callable:
    return {"sigmoid": tg.sigmoid, "mul": tg.mul, "matmul": tg.matmul}[op]


def _theirs(op: str) -> Callable:
    return {"sigmoid": torch.sigmoid, "mul": torch.mul, "matmul": torch.matmul}[op]


def _setup(op: str, shapes: list, library: str):
    """(fn, leaf inputs, upstream gradient, a maker of a fresh graph) for one library."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    if library == "ours":
        fn, ins = _ours(op), [tg.Tensor(a, requires_grad=True) for a in arrays]
    else:
        fn, ins = _theirs(op), [torch.tensor(a, requires_grad=True) for a in arrays]
    out_shape = fn(*ins).shape
    g = rng.standard_normal(tuple(out_shape)).astype(np.float32)
    g = g if library == "ours" else torch.from_numpy(g)
    return fn, ins, g


def time_forward(fn: Callable, ins: list, calls: int) -> float:
    """Mean seconds per recorded call of ``fn(*ins)`` (the result is dropped each time)."""
    start = time.perf_counter()
    for _ in range(calls):
        fn(*ins)
    return (time.perf_counter() - start) / calls


def time_backward(fn: Callable, ins: list, g, calls: int, write=None) -> float:
    """Mean seconds per ``y.backward(g)`` through one op, graphs built beforehand (then
    ``write()`` called, when given)."""
    outs = [fn(*ins) for _ in range(calls)]
    if write is not None:
        write()
    start = time.perf_counter()
    for y in outs:
        y.backward(g)
    elapsed = time.perf_counter() - start
    for t in ins:
        t.grad = None
    return elapsed / calls


def measure(rounds: int, quick: bool) -> list[dict]:
    """Interleaved medians per (case, phase, library), in microseconds."""
    libraries = ["ours"] + (["torch"] if torch is not None else [])
    setups = {
        (i, lib): _setup(op, shapes, lib)
        for i, (op, shapes) in enumerate(CASES)
        for lib in libraries
    }
    scratch = {
        "ours": tg.Tensor(np.zeros(1)),
        "torch": torch.zeros(1) if torch is not None else None,
    }

    def write_ours():
        scratch["ours"].data += 1.0  # a tracked in-place write

    def write_torch():
        scratch["torch"].add_(1.0)

    writes = {"ours": write_ours, "torch": write_torch}
    samples: dict = {}
    for r in range(rounds + 1):  # round 0 is the warm-up
        for i, (_, shapes) in enumerate(CASES):
            big = shapes[0][0] > 1
            calls = (20 if big else 300) if quick else (100 if big else 2000)
            for lib in libraries:
                fn, ins, g = setups[(i, lib)]
                fwd = time_forward(fn, ins, calls)
                bwd = time_backward(fn, ins, g, calls)
                checked = time_backward(fn, ins, g, calls, writes[lib])
                if r:
                    samples.setdefault((i, "forward", lib), []).append(fwd)
                    samples.setdefault((i, "backward", lib), []).append(bwd)
                    samples.setdefault((i, "bwd+write", lib), []).append(checked)
    rows = []
    for i, (op, shapes) in enumerate(CASES):
        for phase in ("forward", "backward", "bwd+write"):
            row = {
                "op": op,
                "shapes": " @ ".join(map(str, shapes)) if op == "matmul" else str(shapes[0]),
                "phase": phase,
            }
            for lib in libraries:
                row[lib] = 1e6 * statistics.median(samples[(i, phase, lib)])
            rows.append(row)
    return rows


def import_time(repeats: int = 5) -> tuple[float, float]:
    """Median wall seconds of ``python -c "import tinygrad_lstm"`` and of ``python -c pass``."""

    def wall(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    wall("import tinygrad_lstm")  # warm the OS file cache and Numba's on-disk cache
    ours = statistics.median(wall("import tinygrad_lstm") for _ in range(repeats))
    bare = statistics.median(wall("pass") for _ in range(repeats))
    return ours, bare


def main(argv: list[str] | None = None) -> None:
    """Warm up, measure, print the table and the import time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (medians)")
    parser.add_argument("--quick", action="store_true", help="fewer calls per round")
    args = parser.parse_args(argv)
    compile_all()
    rows = measure(args.rounds, args.quick)
    print(
        f"numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}, "
        f"BLAS/OpenMP threads {THREADS}, {args.rounds} interleaved rounds, medians\n"
    )
    header = f"{'op':8} {'input shapes':22} {'phase':9} {'ours us':>9}"
    if torch is not None:
        header += f" {'torch us':>9} {'ours/torch':>10}"
    print(header)
    print("-" * len(header))
    for row in rows:
        line = f"{row['op']:8} {row['shapes']:22} {row['phase']:9} {row['ours']:9.2f}"
        if torch is not None:
            line += f" {row['torch']:9.2f} {row['ours'] / row['torch']:10.2f}"
        print(line)
    ours, bare = import_time()
    print(
        f'\npython -c "import tinygrad_lstm": {ours:.3f} s median of 5 '
        f"(python -c pass: {bare:.3f} s, so the import itself: {ours - bare:.3f} s)"
    )


if __name__ == "__main__":
    main()
