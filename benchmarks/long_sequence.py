"""Backpropagation through very long sequences: time and peak memory against T.

An LSTM (input 2, hidden 4, batch 2, float32, composed path) runs forward over T steps and
backpropagates from ``sum(output) + sum(h_n)``; the time of each phase and the peak memory
traced by ``tracemalloc`` during a second, untimed forward+backward are printed per T. Memory
per step staying flat as T grows is what "linear in T" means; no recursion is involved, so
T=10,000 needs no raised recursion limit.

    python benchmarks/long_sequence.py [--steps 1000 5000 10000] [--fused]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

# harness sets the BLAS/OpenMP thread count (BENCH_THREADS) before NumPy loads.
import harness  # noqa: F401  # isort: split
import numpy as np
from tinygrad_lstm.layers import LSTM

import tinygrad_lstm as tg


def run(lstm: LSTM, x: tg.Tensor) -> tuple[float, float]:
    """Seconds of forward and of backward for one pass over ``x``."""
    start = time.perf_counter()
    out, (h, _) = lstm(x)
    middle = time.perf_counter()
    (out.sum() + h.sum()).backward()
    return middle - start, time.perf_counter() - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--fused", action="store_true", help="the fused LSTM op instead")
    args = parser.parse_args()
    lstm = LSTM(2, 4, fused=args.fused, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    run(lstm, tg.Tensor(rng.standard_normal((10, 2, 2)).astype(np.float32)))  # compile, warm
    print(f"{'T':>7} {'forward s':>10} {'backward s':>11} {'peak MiB':>9} {'bytes/step':>11}")
    for steps in args.steps:
        x = tg.Tensor(rng.standard_normal((steps, 2, 2)).astype(np.float32), requires_grad=True)
        forward, backward = run(lstm, x)
        x.grad = None
        lstm.zero_grad()
        tracemalloc.start()
        run(lstm, x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        lstm.zero_grad()
        print(
            f"{steps:7d} {forward:10.2f} {backward:11.2f} {peak / 2**20:9.1f} {peak / steps:11.0f}"
        )


if __name__ == "__main__":
    main()
