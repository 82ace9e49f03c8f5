"""Benchmark: a custom cell written with a plain ``forward`` against the same cell written
with the split-step protocol (``project_inputs`` / ``prepare_step`` / ``step``).

    python benchmarks/custom_cell_split.py [--configs tiny,small] [--repeats 30]

The cells are JANET, exactly as docs/plugins.md shows them (its code block is run here). One
training step = forward of a one-layer ``Recurrent`` over x (T, B, I), L = sum(y * w),
backward to every weight; float32, one BLAS thread, both variants with
the same weights, interleaved rounds, medians.
"""

from __future__ import annotations

import os

# One BLAS thread unless BENCHTHREADS says otherwise; set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = os.environ.get("BENCHTHREADS", "1")

import argparse
import re
import statistics
import time
from pathlib import Path

import harness
import numpy as np
from tinygrad_lstm.layers import Recurrent

import tinygrad_lstm as tg
from tinygrad_lstm import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def documented_cells() -> dict:
    """Run the docs' JANET code block; returns its namespace (JANETCell, SplitJANETCell)."""
    text = DOC.read_text()
    block = re.search(r"<!-- janet-cells:.*?-->\s*```python\n(.*?)```", text, re.DOTALL)
    namespace: dict = {}
    saved = dict(registry._CELLS)
    try:
        exec(compile(block.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our docs
    finally:
        registry._CELLS.clear()
        registry._CELLS.update(saved)
    return namespace


def training_step(layer, x: tg.Tensor, w: tg.Tensor):
    def step():
        layer.zero_grad()
        out, _ = layer(x)
        (out * w).sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs",
        default="tiny,small",
        help=f"comma-separated, from {', '.join(harness.CONFIGS)}",
    )
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    cells = documented_cells()
    print(
        f"JANET, one training step, float32, {harness.THREADS} thread(s), median of "
        f"{args.repeats} interleaved rounds"
    )
    print(f"{'config (T, B, I, H)':<28}{'plain forward':>15}{'split step':>13}{'speed-up':>10}")
    for name in args.configs.split(","):
        steps, batch, inputs, hidden = harness.CONFIGS[name]
        rng = np.random.default_rng(0)
        plain = Recurrent(cells["JANETCell"], inputs, hidden, rng=rng)
        split = Recurrent(cells["SplitJANETCell"], inputs, hidden)
        split.load_state_dict(plain.state_dict())
        x = tg.Tensor(rng.standard_normal((steps, batch, inputs)).astype(np.float32))
        w = tg.Tensor(rng.standard_normal((steps, batch, hidden)).astype(np.float32))
        runs = {"plain": training_step(plain, x, w), "split": training_step(split, x, w)}
        times = {k: [] for k in runs}
        for fn in runs.values():
            fn()  # warm-up: Numba kernels compile on first use
        for r in range(args.repeats):
            for key in list(runs) if r % 2 == 0 else list(runs)[::-1]:
                start = time.perf_counter()
                runs[key]()
                times[key].append(time.perf_counter() - start)
        plain_ms, split_ms = (1e3 * statistics.median(times[k]) for k in ("plain", "split"))
        print(
            f"{name + ' ' + str(harness.CONFIGS[name]):<28}{plain_ms:>12.2f} ms"
            f"{split_ms:>10.2f} ms{plain_ms / split_ms:>9.2f}x"
        )


if __name__ == "__main__":
    main()
