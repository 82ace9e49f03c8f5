"""``tinygrad-lstm fuse``: what the cell compiler does to a cell, step by step.

Prints the captured step (every op the cell's forward calls, each value's role: once per
sequence, hoisted over all steps, or recurrent), the partition of the recurrence (state
matmuls on BLAS per step, the fused stages between them), and the generated Numba source
of every stage, forward and backward: BPTT for this cell, as one would write it by hand.
With ``--target torch``, the step written as PyTorch source instead (tooling/torch_export.py).
"""

from __future__ import annotations

import argparse

import numpy as np
from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands._memory import check_layer_fits

import tinygrad_lstm as tg

NAME = "fuse"
HELP = "show how the cell compiler fuses a cell: captured step, partition, generated kernels"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cell", default="lstm", help="a registered cell (default lstm)")
    parser.add_argument("--input-size", type=int, default=3, help="input features (default 3)")
    parser.add_argument("--hidden", type=int, default=4, help="hidden size (default 4)")
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="kernel dtype (default float32, whose kernels use the fast sigmoid/tanh)",
    )
    parser.add_argument(
        "--target",
        choices=("numba", "torch"),
        default="numba",
        help="numba: the captured step, the partition and the generated kernels (default); "
        "torch: the step written as PyTorch source (a cell and a layer, same parameter names)",
    )


def _section(title: str, body: str) -> None:
    print(f"== {title} " + "=" * max(0, 76 - len(title)))
    print(body.rstrip())
    print()


def _print_torch(args: argparse.Namespace, dtype: np.dtype) -> int:
    from tinygrad_lstm.compiler import NotFusible
    from tinygrad_lstm.layers import Recurrent
    from tinygrad_lstm.tooling.torch_export import torch_source

    layer = Recurrent(
        args.cell, args.input_size, args.hidden, dtype=dtype, rng=np.random.default_rng(0)
    )
    try:
        print(torch_source(layer), end="")
    except (NotFusible, TypeError) as exc:
        print(f"cannot write {args.cell!r} for PyTorch: {' '.join(str(exc).split())}")
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    from tinygrad_lstm.compiler import CompilerError, NotFusible, lower

    for flag, value in (("--input-size", args.input_size), ("--hidden", args.hidden)):
        if value < 1:
            raise CommandError(f"fuse: {flag} must be at least 1, got {value}")
    names = [c.name for c in tg.list_cells()]
    if args.cell not in names:
        raise CommandError(
            f"fuse: unknown cell {args.cell!r}; registered cells: {', '.join(names)}"
        )
    dtype = np.dtype(args.dtype)
    check_layer_fits(
        "fuse", args.cell, args.input_size, args.hidden, None, float_bytes=dtype.itemsize
    )
    if args.target == "torch":
        return _print_torch(args, dtype)
    cell = tg.cell(args.cell)(
        args.input_size, args.hidden, dtype=dtype, rng=np.random.default_rng(0)
    )
    try:
        compiled = lower(cell, args.input_size, dtype)
    except (NotFusible, CompilerError) as exc:
        reason = " ".join(str(exc).split())
        print(
            f"not fusible: {reason}\n(Recurrent({args.cell!r}, ..., fused=True) runs it "
            "composed, with a FusionWarning saying this.)"
        )
        return 1
    trace, step = compiled.trace, compiled.step()
    x = trace.values[trace.x]
    _section(f"captured step of {args.cell!r} (x_t {x.shape}, batch {x.shape[0]})", trace.text())
    values = trace.values
    hoisted = [c for c in compiled.replay if values[c.outputs[0]].role == "hoisted"]
    once = [c for c in compiled.replay if values[c.outputs[0]].role == "once"]
    _section(
        "partition",
        "\n".join(
            [
                f"once per sequence: {', '.join(c.op for c in once) or '-'}",
                "hoisted over all T steps (one batched op each): "
                + (", ".join(c.op for c in hoisted) or "-"),
                "recurrence (B = batch rows):",
                compiled.program.text(),
                "",
                step.schedule.text(),
            ]
        ),
    )
    _section(
        f"generated kernels ({dtype.name}): stage k's forward, then its backward",
        step.source.text,
    )
    return 0
