"""Benchmark: each elementwise op's generated rule ufunc against NumPy's own routine for
the same expression, measured in one run.

An elementwise op runs the ufuncs generated from its scalar rule (ops/rule_function.py),
except where it names NumPy's routine for one of its expressions as a fast variant
(``numpy = {...}`` in its class). This script times, for every expression NumPy computes
exactly (``CANDIDATES``), the routine the op would run from its rule (the generated ufunc;
in float32 the fast variant of sigmoid and tanh) against the NumPy routine, on a small
(1, 16) and a larger (64, 256) input in float32 and float64, and prints the ratio
NumPy / rule (below 1: NumPy faster) and whether the op uses the NumPy routine.

Rounds are interleaved (each round times both routines of every case, alternating which
goes first) and each figure is the median over rounds of the mean time per call. The
routines are single-threaded. Kernels are compiled before timing.

    python benchmarks/rule_variants.py [--rounds 15] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from tinygrad_lstm.ops.rule_ufuncs import rule_arguments, rule_ufunc

import tinygrad_lstm as tg

# (op, expression key) -> the NumPy routine computing exactly that expression, called with
# the ufunc's arguments (rule_arguments order: g, the inputs, y, the attributes).
CANDIDATES = {
    ("add", "y"): np.add,
    ("sub", "y"): np.subtract,
    ("sub", "db"): np.negative,
    ("mul", "y"): np.multiply,
    ("mul", "da"): np.multiply,
    ("div", "y"): np.divide,
    ("div", "da"): np.divide,
    ("neg", "y"): np.negative,
    ("exp", "y"): np.exp,
    ("exp", "dx"): np.multiply,
    ("log", "y"): np.log,
    ("log", "dx"): np.divide,
    ("tanh", "y"): np.tanh,
    ("abs", "y"): np.abs,
    ("relu", "y"): lambda x: np.maximum(x, 0),
    ("maximum", "y"): np.maximum,
    ("minimum", "y"): np.minimum,
    ("where", "y"): np.where,
}
SHAPES = [(1, 16), (64, 256)]
DTYPES = [np.float32, np.float64]


def _arguments(op: str, key: str, shape: tuple, dtype) -> list:
    """Inputs inside every op's domain (positive: log), a bool mask for where."""
    rng = np.random.default_rng(0)
    args = []
    for name in rule_arguments(op, key):
        if op == "where" and name == "mask":
            args.append(rng.random(shape) > 0.5)
        else:
            args.append(rng.uniform(0.5, 2.0, shape).astype(dtype))
    return args


def _mean_time(fn, args: list, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(*args)
    return (time.perf_counter() - start) / calls


def measure(rounds: int, quick: bool) -> list[dict]:
    """Median seconds per call of the rule's routine and NumPy's, per case."""
    cases = []
    for (op, key), numpy in CANDIDATES.items():
        for dtype in DTYPES:
            rule = rule_ufunc(op, key, np.dtype(dtype), fast=key == "y")
            for shape in SHAPES:
                args = _arguments(op, key, shape, dtype)
                rule(*args), numpy(*args)  # compile, warm up
                cases.append((op, key, dtype, shape, rule, numpy, args))
    samples: dict = {}
    for r in range(rounds + 1):  # round 0 is the warm-up
        for i, (*_, shape, rule, numpy, args) in enumerate(cases):
            calls = (200 if shape[0] > 1 else 2000) // (10 if quick else 1)
            pair = [("rule", rule), ("numpy", numpy)]
            for name, fn in pair if (r + i) % 2 else pair[::-1]:
                t = _mean_time(fn, args, calls)
                if r:
                    samples.setdefault((i, name), []).append(t)
    rows = []
    for i, (op, key, dtype, shape, *_) in enumerate(cases):
        rule, numpy = (statistics.median(samples[(i, n)]) for n in ("rule", "numpy"))
        used = tg.op(op).numpy.get(key) is not None
        rows.append(dict(op=op, key=key, dtype=np.dtype(dtype).name, shape=shape, rule=rule,
                         numpy=numpy, used=used))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (medians)")
    parser.add_argument("--quick", action="store_true", help="fewer calls per round")
    args = parser.parse_args(argv)
    rows = measure(args.rounds, args.quick)
    print(f"numpy {np.__version__}, {args.rounds} interleaved rounds, medians\n")
    print("| op | expression | dtype | shape | rule us | NumPy us | NumPy / rule | op runs |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['op']} | {r['key']} | {r['dtype']} | {r['shape']} | {1e6 * r['rule']:.2f} "
            f"| {1e6 * r['numpy']:.2f} | {r['numpy'] / r['rule']:.2f}x "
            f"| {'NumPy' if r['used'] else 'rule'} |"
        )


if __name__ == "__main__":
    main()
