"""Benchmark: the kernels of one pass alone, compiled against hand-written.

    python benchmarks/pass_kernels.py [--cells lstm,gru,rnn] [--configs small,long] [--repeats 7]

One training step of each layer (float32, one thread, the configs of harness.py) is run
with every kernel call recorded: the compiled cell's whole-pass drivers (``pass_forward``,
``pass_backward``) and the hand-written kernels (ops/recurrent_kernels.py: whole-pass
``lstm_forward``... for small steps, per-step ``gru_step``... otherwise), each with copies of
its arguments (the last call of each). Each recorded call is then timed alone, with its
arrays warm in the caches: the minimum over ``--repeats`` repeats of ``--calls`` calls, per
call, in microseconds. What this leaves out (Python work around the kernels, the input
projection and the weight gradients, caches cold after other work) is in
benchmarks/compiled_cells.py's figures.
"""

from __future__ import annotations

import os

os.environ.update(dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"), "1"))

import argparse
import timeit

import compiled_cells
import harness
import numpy as np
from tinygrad_lstm.compiler import runtime
from tinygrad_lstm.ops import recurrent_kernels

HAND = ("forward", "backward", "step", "step_back")


def _copies(args: tuple) -> list:
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def record(cell: str, config: tuple) -> dict:
    """{kernel name: (function, copied arguments)} of one training step of ``cell``,
    compiled and hand-written."""
    calls: dict = {}
    originals = runtime.CompiledStep.functions
    hand = {f"{cell}_{k}": getattr(recurrent_kernels, f"{cell}_{k}", None) for k in HAND}

    def functions(step):
        found = originals(step)

        def recorder(name, function):
            def call(*args):
                calls[f"compiled {name}"] = (
                    function,
                    _copies(args),
                )  # the last: not the smoke test's
                return function(*args)

            return call

        return {name: recorder(name, f) for name, f in found.items()}

    def hand_recorder(name, function):
        def call(*args):
            calls[f"hand {name}"] = (function, _copies(args))
            return function(*args)

        return call

    runtime.CompiledStep.functions = functions
    for name, function in hand.items():
        if function is not None:
            setattr(recurrent_kernels, name, hand_recorder(name, function))
    try:
        for fused in ("compiled", True):
            compiled_cells.ours(cell, fused, config)()
    finally:
        runtime.CompiledStep.functions = originals
        for name, function in hand.items():
            if function is not None:
                setattr(recurrent_kernels, name, function)
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="lstm,gru,rnn")
    parser.add_argument("--configs", default="small,long")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    print("| config | cell | kernel | us per call |")
    print("|---|---|---|---|")
    for config_name in args.configs.split(","):
        config = harness.CONFIGS[config_name]
        for cell in args.cells.split(","):
            for name, (function, call_args) in record(cell, config).items():
                if "stage" in name:  # inlined into the drivers: only called alone when
                    continue  # the pass runs step by step in Python
                timer = timeit.Timer(lambda f=function, a=call_args: f(*a))
                best = min(timer.repeat(args.repeats, args.calls)) / args.calls * 1e6
                print(f"| {config_name} {config} | {cell} | {name} | {best:.1f} |")


if __name__ == "__main__":
    main()
