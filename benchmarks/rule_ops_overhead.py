"""Benchmark: an LSTM training step whose elementwise ops run their scalar rules
(``RuleFunction``, ops/rule_function.py) against the same step with hand-written NumPy ops,
in one process.

The hand-written ops below are add, mul, sigmoid and tanh as they were written before every
op ran its rule: forward and backward in NumPy (sigmoid's and tanh's derivative through the
same rule ufuncs). Each round re-registers one set under the ops' names and times the step
(forward over the sequence, ``L = sum(y * w)``, backward), alternating which set goes first;
the figures are medians over rounds of the process CPU time per step. Run with one BLAS
thread (``OPENBLAS_NUM_THREADS=1``) so that BLAS noise does not drown the op overhead.

    OPENBLAS_NUM_THREADS=1 python benchmarks/rule_ops_overhead.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from tinygrad_lstm.layers import LSTM
from tinygrad_lstm.ops.rule_ufuncs import rule_ufunc

import tinygrad_lstm as tg
from tinygrad_lstm import Function, registry

CONFIGS = {"tiny": (20, 1, 8, 16), "small": (50, 16, 32, 64)}


def _like(out, x):
    return out if out.dtype == x.dtype else out.astype(x.dtype)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = _like(rule_ufunc("sigmoid", "y", x.dtype, fast=True)(x), x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return _like(rule_ufunc("sigmoid", "dx", y.dtype)(g, y), y)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return _like(rule_ufunc("tanh", "dx", y.dtype)(g, y), y)


HAND_WRITTEN = {"add": Add, "mul": Mul, "sigmoid": Sigmoid, "tanh": Tanh}


def _use(ops: dict) -> None:
    """Make ``ops`` the ones the names run (the registry's table, as registration would)."""
    for name, cls in ops.items():
        cls.op_name = name
        registry.OPS[name] = cls


def _step(steps: int, batch: int, inputs: int, hidden: int):
    model = LSTM(inputs, hidden, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = tg.Tensor(rng.standard_normal((steps, batch, inputs)).astype(np.float32))
    w = tg.Tensor(rng.standard_normal((steps, batch, hidden)).astype(np.float32))

    def step():
        y, _ = model(x)
        (y * w).sum().backward()

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (medians)")
    args = parser.parse_args(argv)
    rules = {name: tg.op(name) for name in HAND_WRITTEN}
    sets = {"hand-written": HAND_WRITTEN, "rules": rules}
    print(f"numpy {np.__version__}, {args.rounds} alternating rounds, CPU time, medians\n")
    print("| config (T, B, I, H) | hand-written ms | rules ms | rules / hand-written |")
    print("|---|---|---|---|")
    try:
        for config, sizes in CONFIGS.items():
            step = _step(*sizes)
            for ops in sets.values():  # warm up: kernels built, rules written out
                _use(ops)
                for _ in range(5):
                    step()
            times: dict = {label: [] for label in sets}
            for r in range(args.rounds):
                for label in sets if r % 2 else reversed(list(sets)):
                    _use(sets[label])
                    start = time.process_time()
                    for _ in range(10):
                        step()
                    times[label].append((time.process_time() - start) / 10)
            hand, rule = (statistics.median(times[label]) for label in sets)
            print(
                f"| {config} {sizes} | {1e3 * hand:.3f} | {1e3 * rule:.3f} | {rule / hand:.2f}x |"
            )
    finally:
        _use(rules)


if __name__ == "__main__":
    main()
