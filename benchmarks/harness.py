"""Shared harness of the recurrent-layer benchmarks (lstm_step.py, gru_step.py, rnn_step.py).

One *training step* = forward over the whole sequence, the loss L = sum(y * w) over all
outputs (w a fixed random array of y's shape), backward to every weight. Each benchmark
script names its implementations (``Impl``); this module

1. checks that they all agree on L and on the weight gradients, with the same weights, in
   float64 (tight) and float32 (loose), before anything is timed;
2. warms every one up (``tinygrad_lstm.ops.compile_all()`` first: no compilation in timed regions);
3. times them interleaved (each round runs every implementation once, in a rotating
   order, so a load spike on the shared machine hits all of them alike) and reports medians,
   the ratio of each to ``torch.nn`` and to torch composed, and the peak memory of the
   NumPy-based ones (tracemalloc, in a separate untimed run).

BLAS and OpenMP use one thread unless ``BENCH_THREADS`` says otherwise. OpenBLAS, MKL and
OpenMP read ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``OMP_NUM_THREADS`` once, when they
load, hence the assignments at the top of this module, before numpy or torch is imported. Then
``pin_threads`` makes sure: with threadpoolctl installed it sets every loaded BLAS/OpenMP pool
to that count and reads it back, and stops the benchmark if any still runs more threads.
"""

from __future__ import annotations

import os

THREAD_COUNT_VARIABLE = "BENCH_THREADS"
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_environment(environ) -> dict[str, str]:
    """{variable: count} for each of ``BLAS_THREAD_VARIABLES``, the count being
    ``environ["BENCH_THREADS"]`` (default 1); a count that is not a positive integer stops."""
    value = environ.get(THREAD_COUNT_VARIABLE, "1")
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(
            f"benchmarks/harness.py: {THREAD_COUNT_VARIABLE} must be a positive "
            f"integer, got {value!r}"
        )
    return {variable: str(int(value)) for variable in BLAS_THREAD_VARIABLES}


os.environ.update(thread_environment(os.environ))
THREADS = os.environ["OMP_NUM_THREADS"]

import argparse
import datetime
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

try:
    import torch

    torch.set_num_threads(int(THREADS))
except ImportError:  # the torch columns are then left out
    torch = None

try:
    import threadpoolctl
except ImportError:  # the environment variables above still apply, unverified
    threadpoolctl = None


def check_blas_threads(expected: int, pools: list[dict]) -> None:
    """Stop (SystemExit) if any pool in ``pools`` (``threadpoolctl.threadpool_info()``
    entries) runs more than ``expected`` threads."""
    excess = [p for p in pools if p["num_threads"] > expected]
    if excess:
        found = "; ".join(
            f"{p.get('internal_api')} ({p.get('filepath')}): {p['num_threads']} threads"
            for p in excess
        )
        raise SystemExit(
            f"benchmarks/harness.py: {THREAD_COUNT_VARIABLE}={expected}, but "
            f"{found}; the timings would not be single-threaded as documented"
        )


def pin_threads() -> str:
    """Limit every loaded BLAS/OpenMP pool to ``THREADS`` and check it took effect (needs
    threadpoolctl); returns a summary such as ``"openblas 1, openmp 1"`` for the table header."""
    if threadpoolctl is None:
        return "unverified: pip install threadpoolctl"
    threadpoolctl.threadpool_limits(limits=int(THREADS))
    pools = threadpoolctl.threadpool_info()
    check_blas_threads(int(THREADS), pools)
    return ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in pools) or "no pools"


pin_threads()

CONFIGS = {
    "tiny": (20, 1, 8, 16),
    "small": (50, 16, 32, 64),
    "medium": (100, 32, 128, 256),
    "long": (500, 8, 32, 64),
}
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
TORCH_NN = "torch.nn"
TORCH_COMPOSED = "torch composed"
NUMPY_BPTT = "numpy BPTT"


@dataclass
class Problem:
    """One benchmark case: x (T, B, I), loss weights w (T, B, H), layer weights by
    PyTorch name, all of ``dtype``."""

    cell: str
    steps: int
    batch: int
    inputs: int
    hidden: int
    dtype: type
    x: np.ndarray
    w: np.ndarray
    weights: dict


@dataclass
class Impl:
    """An implementation: ``make(problem)`` returns ``step() -> (loss, {name: grad})``;
    ``traced`` says whether tracemalloc sees its allocations (NumPy-based ones)."""

    name: str
    make: Callable[[Problem], Callable[[], tuple[float, dict]]]
    traced: bool = True


def make_problem(cell: str, gates: int, config: tuple, dtype, seed: int = 0) -> Problem:
    """Inputs and PyTorch-style U(-1/sqrt(H), 1/sqrt(H)) weights for one config."""
    steps, batch, inputs, hidden = config
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden)
    shapes = {
        "weight_ih": (gates * hidden, inputs),
        "weight_hh": (gates * hidden, hidden),
        "bias_ih": (gates * hidden,),
        "bias_hh": (gates * hidden,),
    }
    weights = {k: rng.uniform(-bound, bound, s).astype(dtype) for k, s in shapes.items()}
    x = rng.standard_normal((steps, batch, inputs)).astype(dtype)
    w = rng.standard_normal((steps, batch, hidden)).astype(dtype)
    return Problem(cell, steps, batch, inputs, hidden, dtype, x, w, weights)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: the error relative to the reference's scale."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / (np.max(np.abs(b)) + 1e-300))


def check_agreement(impls: list[Impl], cell: str, gates: int, config: tuple) -> dict:
    """Worst relative error of each implementation against the first, in float64 and
    float32; raises AssertionError past 1e-9 (float64) or 2e-3 (float32)."""
    worst = {}
    for dtype, limit in ((np.float64, 1e-9), (np.float32, 2e-3)):
        problem = make_problem(cell, gates, config, dtype)
        ref_loss, ref_grads = impls[0].make(problem)()
        for impl in impls[1:]:
            loss, grads = impl.make(problem)()
            errors = [abs(loss - ref_loss) / abs(ref_loss)]
            errors += [relative_error(grads[k], ref_grads[k]) for k in WEIGHTS]
            err = max(errors)
            if not err <= limit:
                raise AssertionError(
                    f"{impl.name} disagrees with {impls[0].name} on {cell} "
                    f"{config} in {np.dtype(dtype).name}: relative error "
                    f"{err:.2e} > {limit:.0e}"
                )
            worst[(impl.name, np.dtype(dtype).name)] = err
    return worst


def peak_memory(step: Callable) -> int:
    """Peak bytes tracemalloc sees allocated during one call of ``step``."""
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def time_interleaved(
    steps: dict[str, Callable], repeats: int, warmup: int, clock: str = "cpu", warm: bool = False
) -> dict:
    """Median seconds per call of each step, timed round-robin in a rotating order.

    ``clock="cpu"`` counts this process's CPU time (everything runs on one thread, so on an
    idle machine it equals wall time; on a shared one it leaves out the time other
    processes held the core); ``"wall"`` counts elapsed time. With ``warm``, each timed call
    follows an untimed call of the same step, as a training loop's step follows its previous
    one: its arrays and code are in the caches, not evicted by the other implementations."""
    now = CLOCKS[clock]
    for step in steps.values():
        for _ in range(warmup):
            step()
    names = list(steps)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            if warm:
                steps[n]()
            start = now()
            steps[n]()
            times[n].append(now() - start)
    return {n: statistics.median(ts) for n, ts in times.items()}


def parse_args(description: str) -> argparse.Namespace:
    """--configs, --repeats, --warmup, --check-only, --no-check."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"comma-separated subset of {', '.join(CONFIGS)}",
    )
    parser.add_argument("--repeats", type=int, default=30, help="timed rounds per config")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per impl first")
    parser.add_argument("--check-only", action="store_true", help="only check agreement")
    parser.add_argument("--no-check", action="store_true", help="skip the agreement check")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: process CPU time (robust on a shared machine); wall",
    )
    parser.add_argument(
        "--profile",
        metavar="IMPL",
        help="instead of timing, cProfile 5 steps of one implementation "
        "(e.g. 'ours composed') and print where the time goes",
    )
    args = parser.parse_args()
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {unknown}; choose from {list(CONFIGS)}")
    return args


def profile(step: Callable, top: int = 15) -> None:
    """Print the ``top`` functions by own time over 5 calls of ``step`` (after 2 untimed)."""
    import cProfile
    import pstats

    for _ in range(2):
        step()
    profiler = cProfile.Profile()
    for _ in range(5):
        profiler.runcall(step)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def _ratio(value: float, ref: float | None) -> str:
    return "" if ref is None else f"{value / ref:.2f}x"


def run(cell: str, gates: int, impls: list[Impl], description: str) -> int:
    """The whole benchmark of one cell type; prints a Markdown table with each median's
    ratio to torch.nn, torch composed and the NumPy BPTT. Returns an exit code."""
    args = parse_args(description)
    from tinygrad_lstm.ops import compile_all

    compile_all()
    pinned = pin_threads()  # again: importing the library may have loaded another pool
    uptime = os.getloadavg()
    print(
        f"# {cell} training step, {datetime.date.today()}, threads={THREADS} ({pinned}), "
        f"clock={args.clock}, repeats={args.repeats}, "
        f"load average {uptime[0]:.2f} at start, python {sys.version.split()[0]}, "
        f"numpy {np.__version__}, torch {torch.__version__ if torch else 'absent'}"
    )
    print(
        "| config (T, B, I, H) | implementation | median ms | vs torch.nn | "
        "vs torch composed | vs numpy BPTT | peak MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for config_name in args.configs:
        config = CONFIGS[config_name]
        if not args.no_check:
            worst = check_agreement(impls, cell, gates, config)
            detail = ", ".join(f"{n} {d} {e:.1e}" for (n, d), e in worst.items())
            print(f"<!-- {config_name}: agree with {impls[0].name}: {detail} -->", flush=True)
        if args.check_only:
            continue
        problem = make_problem(cell, gates, config, np.float32)
        if args.profile:
            chosen = [impl for impl in impls if impl.name == args.profile]
            if not chosen:
                raise SystemExit(
                    f"--profile: no implementation {args.profile!r}; choose "
                    f"from {[impl.name for impl in impls]}"
                )
            print(f"<!-- profile of {args.profile}, {config_name}, 5 steps -->")
            profile(chosen[0].make(problem))
            continue
        steps = {impl.name: impl.make(problem) for impl in impls}
        medians = time_interleaved(steps, args.repeats, args.warmup, args.clock)
        memory = {impl.name: peak_memory(steps[impl.name]) for impl in impls if impl.traced}
        ref_nn, ref_composed = medians.get(TORCH_NN), medians.get(TORCH_COMPOSED)
        ref_numpy = medians.get(NUMPY_BPTT)
        for impl in impls:
            m = medians[impl.name]
            mem = f"{memory[impl.name] / 2**20:.1f}" if impl.name in memory else "n/a"
            print(
                f"| {config_name} {config} | {impl.name} | {m * 1e3:.3f} | "
                f"{_ratio(m, ref_nn)} | {_ratio(m, ref_composed)} | {_ratio(m, ref_numpy)} | "
                f"{mem} |",
                flush=True,
            )
    print(f"<!-- load average at end {os.getloadavg()[0]:.2f} -->")
    return 0


def ours(layer: str, fused: bool, **options) -> Impl:
    """tinygrad_lstm's ``layers.<layer>``, composed of ops or with ``fused=True``."""

    def make(p: Problem):
        import tinygrad_lstm as tg
        from tinygrad_lstm import layers

        model = getattr(layers, layer)(p.inputs, p.hidden, dtype=p.dtype, fused=fused, **options)
        model.load_state_dict({f"{k}_l0": v for k, v in p.weights.items()})
        params = {k: getattr(model, f"{k}_l0") for k in WEIGHTS}
        x, w = tg.Tensor(p.x), tg.Tensor(p.w)

        def step():
            for param in params.values():
                param.grad = None
            y, _ = model(x)
            loss = (y * w).sum()
            loss.backward()
            return float(loss.data), {k: q.grad for k, q in params.items()}

        return step

    return Impl(f"ours {'fused' if fused else 'composed'}", make)


def torch_nn(layer: str, **options) -> Impl:
    """``torch.nn.<layer>`` (ATen's / oneDNN's fused kernels)."""

    def make(p: Problem):
        dtype = torch.float64 if p.dtype == np.float64 else torch.float32
        model = getattr(torch.nn, layer)(p.inputs, p.hidden, dtype=dtype, **options)
        with torch.no_grad():
            for k, v in p.weights.items():
                getattr(model, f"{k}_l0").copy_(torch.from_numpy(v))
        params = {k: getattr(model, f"{k}_l0") for k in WEIGHTS}
        x, w = torch.from_numpy(p.x), torch.from_numpy(p.w)

        def step():
            model.zero_grad(set_to_none=True)
            y, _ = model(x)
            loss = (y * w).sum()
            loss.backward()
            return loss.item(), {k: q.grad.numpy() for k, q in params.items()}

        return step

    return Impl(TORCH_NN, make, traced=False)


def torch_composed(cell_step: Callable) -> Impl:
    """The layer written with torch ops, one step at a time (no input-projection hoisting):
    ``cell_step(x_t, state, W_ih, W_hh, b_ih, b_hh) -> (h, state)``."""

    def make(p: Problem):
        params = {k: torch.tensor(v, requires_grad=True) for k, v in p.weights.items()}
        x, w = torch.from_numpy(p.x), torch.from_numpy(p.w)
        zeros = torch.zeros(p.batch, p.hidden, dtype=x.dtype)

        def step():
            for q in params.values():
                q.grad = None
            state, outs = (zeros, zeros), []
            for t in range(p.steps):
                h, state = cell_step(x[t], state, *(params[k] for k in WEIGHTS))
                outs.append(h)
            loss = (torch.stack(outs) * w).sum()
            loss.backward()
            return loss.item(), {k: q.grad.numpy() for k, q in params.items()}

        return step

    return Impl(TORCH_COMPOSED, make, traced=False)


def implementations(layer: str, numpy_bptt: Callable, cell_step: Callable, **options) -> list[Impl]:
    """The five implementations in table order (the torch ones when torch is installed)."""
    impls = [Impl(NUMPY_BPTT, numpy_bptt)]
    if torch is not None:
        impls = [torch_nn(layer, **options), torch_composed(cell_step)] + impls
    return impls + [ours(layer, fused=False, **options), ours(layer, fused=True, **options)]
