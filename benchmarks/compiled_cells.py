"""Benchmark: compiled cells (the cell compiler) against hand-written fused kernels,
the composed layers and torch.nn, one training step each.

    python benchmarks/compiled_cells.py [--configs tiny,small,medium,long] [--repeats 20] [--warm]

One training step: forward over the sequence (one layer, one direction, float32), the loss
L = sum(y * w), backward to every weight. Rows: the MGU of examples/custom_cell.py, the
peephole and CIFG LSTMs of examples/lstm_variants.py (composed and compiled) and the
built-in GRU, LSTM and RNN (composed, compiled from their composed step, hand-written
fused, torch.nn). Ratios are to the hand-fused GRU (issue 17's target for the MGU: at
most 1.0x, it does less work a step than a GRU), to each built-in's own hand-written kernel
(target: at most 1.0x) and to torch.nn (target for the compiled LSTM: at most 1.0x).

Before timing, each compiled layer is checked against its composed layer in float64. The
first call of each compiled cell, with an empty kernel cache (a fresh temporary directory),
is timed as its compile time (forward and backward kernels, float32). Threads: one (BLAS,
OpenMP, torch), as harness.py; the clock is CPU time unless --clock wall. Each round runs
every implementation once, in a rotating order; with --warm, each timed call follows an
untimed call of the same step (its arrays warm in the caches, as in a training loop), where
by default it follows the other implementations' calls.
"""

from __future__ import annotations

import os
import tempfile

THREADS = os.environ.get("BENCH_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = THREADS
os.environ["TINYGRAD_LSTM_KERNEL_CACHE"] = tempfile.mkdtemp(prefix="tgl-kernels-")

import argparse
import importlib.util
import time
from pathlib import Path

import harness
import numpy as np
from tinygrad_lstm.layers import Recurrent

import tinygrad_lstm as tg

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CUSTOM = ("mgu", "peephole_lstm", "cifg_lstm")
BUILTIN = {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}


def load_examples() -> None:
    for name in ("custom_cell", "lstm_variants"):
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def ours(cell: str, fused, config, dtype=np.float32, seed: int = 0):
    """A training step of ``Recurrent(cell, fused=fused)``: () -> (loss, grads by name)."""
    steps, batch, inputs, hidden = config
    rng = np.random.default_rng(seed)
    model = Recurrent(
        cell, inputs, hidden, dtype=dtype, fused=fused, rng=np.random.default_rng(seed + 1)
    )
    x = tg.Tensor(rng.standard_normal((steps, batch, inputs)).astype(dtype))
    w = tg.Tensor(rng.standard_normal((steps, batch, model.output_size)).astype(dtype))

    def step():
        model.zero_grad()
        y, _ = model(x)
        loss = (y * w).sum()
        loss.backward()
        return float(loss.data), {n: p.grad for n, p in model.named_parameters()}

    return step


def torch_step(cell: str, config):
    """torch.nn.GRU/LSTM/RNN on the same sizes (its own weights: only its time counts)."""
    torch = harness.torch
    steps, batch, inputs, hidden = config
    model = getattr(torch.nn, BUILTIN[cell])(inputs, hidden)
    x, w = torch.randn(steps, batch, inputs), torch.randn(steps, batch, hidden)

    def step():
        model.zero_grad(set_to_none=True)
        y, _ = model(x)
        (y * w).sum().backward()

    return step


def check(cells, config) -> float:
    """Worst relative disagreement of compiled vs composed (float64) over ``cells``."""
    worst = 0.0
    for cell in cells:
        want_loss, want = ours(cell, False, config, np.float64)()
        got_loss, got = ours(cell, "compiled", config, np.float64)()
        errors = [abs(got_loss - want_loss) / abs(want_loss)]
        errors += [harness.relative_error(got[k], want[k]) for k in want]
        if not max(errors) <= 1e-9:
            raise AssertionError(
                f"compiled {cell} disagrees with composed on {config}: {max(errors):.2e}"
            )
        worst = max(worst, max(errors))
    return worst


def compile_seconds(cell: str, config) -> float:
    """First call (capture, code generation, Numba compile of both kernels) minus a
    steady-state call, with the kernel cache directory still empty for this cell."""
    step = ours(cell, "compiled", config)
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    start = time.perf_counter()
    step()
    return first - (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,small,medium,long")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--clock", choices=sorted(harness.CLOCKS), default="cpu")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="time each call right after an untimed call of the same step (warm caches)",
    )
    args = parser.parse_args()
    load_examples()
    from tinygrad_lstm.ops import compile_all

    compile_all()
    first = harness.CONFIGS["tiny"]
    print(
        "first call with an empty kernel cache (compile, forward + backward, float32): "
        + ", ".join(f"{c} {compile_seconds(c, first):.2f} s" for c in (*CUSTOM, *BUILTIN))
    )
    print(
        f"load average {os.getloadavg()[0]:.2f}, threads={THREADS}, clock={args.clock}, "
        f"repeats={args.repeats}, warm={args.warm}"
    )
    print(
        "| config (T, B, I, H) | implementation | median ms | vs GRU hand-fused | "
        "vs own hand-fused | vs torch.nn |"
    )
    print("|---|---|---|---|---|---|")
    for name in args.configs.split(","):
        config = harness.CONFIGS[name]
        print(
            f"<!-- {name}: compiled vs composed, float64, worst "
            f"{check((*CUSTOM, *BUILTIN), config):.1e} -->",
            flush=True,
        )
        steps = {}
        for cell in CUSTOM:
            steps[f"{cell} composed"] = ours(cell, False, config)
            steps[f"{cell} compiled"] = ours(cell, "compiled", config)
        for cell in BUILTIN:
            steps[f"{cell} composed"] = ours(cell, False, config)
            steps[f"{cell} compiled"] = ours(cell, "compiled", config)
            steps[f"{cell} hand-fused"] = ours(cell, True, config)
            if harness.torch is not None:
                steps[f"{cell} torch.nn"] = torch_step(cell, config)
        medians = harness.time_interleaved(
            steps, args.repeats, args.warmup, args.clock, warm=args.warm
        )
        for label, m in medians.items():
            cell = label.split()[0]
            own = medians.get(f"{cell} hand-fused")
            torch_ms = medians.get(f"{cell} torch.nn")
            print(
                f"| {name} {config} | {label} | {m * 1e3:.3f} | "
                f"{m / medians['gru hand-fused']:.2f}x | "
                f"{'' if own is None else f'{m / own:.2f}x'} | "
                f"{'' if torch_ms is None else f'{m / torch_ms:.2f}x'} |",
                flush=True,
            )
    print(f"<!-- load average at end {os.getloadavg()[0]:.2f} -->")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
