"""``tinygrad-lstm explain``: the backward pass of a small recurrent model as a ledger, step by
step from t = T-1 down to 0, and its summed weight gradients checked three ways (the ledger,
autograd's ``.grad``, central differences). Exit status 1 when they disagree."""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands._args import SEED, finite
from tinygrad_lstm.tooling.commands._memory import check_layer_fits, layer_parameter_count
from tinygrad_lstm.tooling.explain import (
    DEFAULT_SEQ_LEN,
    LOSS_MODES,
    SOURCES,
    TOLERANCE,
    Ledger,
    explain,
)

import tinygrad_lstm as tg

# About a second of a small cell's steps; past it, the run is announced.
LONG_RUN_CELL_STEPS = 50_000

NAME = "explain"
HELP = (
    "print the backward pass of a small RNN/LSTM/GRU (any registered cell) step by step, "
    "and check its weight gradients three ways"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cell", default="lstm", help="a registered cell (default lstm)")
    parser.add_argument(
        "--seq-len",
        type=int,
        default=DEFAULT_SEQ_LEN,
        help=f"time steps T (default {DEFAULT_SEQ_LEN})",
    )
    parser.add_argument(
        "--hidden",
        type=int,
        default=3,
        help="hidden size (default 3; central differences run the model four "
        "times per weight, so keep it small)",
    )
    parser.add_argument("--input-size", type=int, default=2, help="input features (default 2)")
    parser.add_argument(
        "--loss",
        choices=LOSS_MODES,
        default="last",
        help="put the loss on the last output or on all of them (default last)",
    )
    parser.add_argument(
        "--forget-bias",
        type=finite(-math.inf, strict=False),
        default=None,
        metavar="B",
        help="LSTM only: set the forget gate's bias to B at init (b_ih = B, b_hh = 0); "
        "1 keeps more of the gradient along the cell state than the default init",
    )
    parser.add_argument("--seed", type=SEED, default=0, help="seed of weights and data (default 0)")
    parser.add_argument(
        "--from-graph",
        action="store_true",
        help="read the ledger off the recorded graph even for a built-in cell",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also print every vector and each step's full weight matrices",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the ledger as strict JSON (a NaN or inf is written as null, and "
        "non_finite names where)",
    )


def run(args: argparse.Namespace) -> int:
    for flag, value in (
        ("--seq-len", args.seq_len),
        ("--hidden", args.hidden),
        ("--input-size", args.input_size),
    ):
        if value < 1:
            raise CommandError(f"explain: {flag} must be at least 1, got {value}")
    try:
        tg.cell_info(args.cell)
    except tg.RegistryError as exc:
        raise CommandError(f"explain: {exc}") from None
    if args.forget_bias is not None and args.cell != "lstm":
        raise CommandError(
            f"explain: --forget-bias sets the LSTM's forget-gate bias; {args.cell} has its "
            "own gates (run it with --cell lstm)"
        )
    # Each step keeps its contribution to every weight, the running sum, and its own
    # gradient leaves: three copies of the parameters per step, in float64.
    check_layer_fits(
        "explain",
        args.cell,
        args.input_size,
        args.hidden,
        args.seq_len,
        per_step_copies=3,
        float_bytes=8,
    )
    _note_long_run(args)
    result = explain(
        args.cell,
        args.seq_len,
        args.hidden,
        args.input_size,
        args.loss,
        args.seed,
        from_graph=args.from_graph,
        forget_bias=args.forget_bias,
    )
    if args.json:
        print(json.dumps({**result.to_dict(), "tolerance": TOLERANCE}, allow_nan=False))
    else:
        print(format_ledger(result, verbose=args.verbose))
    return 0 if result.agrees() else 1


def _note_long_run(args: argparse.Namespace) -> None:
    """Say so before a run that will take minutes: central differences run the whole model
    four times per weight element."""
    params = layer_parameter_count(args.cell, args.input_size, args.hidden)
    cell_steps = 4 * params * args.seq_len
    if cell_steps > LONG_RUN_CELL_STEPS:
        print(
            f"explain: central differences run the model 4 x {params:,} times over "
            f"{args.seq_len} steps ({cell_steps:,} cell steps); this takes a while "
            "(the defaults, --hidden 3, run in a second)",
            file=sys.stderr,
        )


def _norm(a: np.ndarray) -> str:
    return f"{float(np.linalg.norm(a)):.2e}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()
        for cells in [header, *rows]
    ]


def _matrix(a: np.ndarray, indent: str = "      ") -> str:
    text = np.array2string(np.asarray(a), precision=4, suppress_small=False, max_line_width=96)
    return "\n".join(indent + line for line in text.splitlines())


def format_ledger(ledger: Ledger, verbose: bool = False) -> str:
    """The ledger as the terminal shows it: three tables (what arrives at the state and the
    gates' local gradients; each step's contribution to each weight and the running sum; the
    three sources of the summed gradients), all norms Frobenius norms."""
    first = ledger.steps[0]
    lines = [
        f"BPTT ledger: {ledger.title}",
        f"derivation: {ledger.derivation}",
        f"loss L = {ledger.loss:.6g}",
        "",
        f"Backward pass, t = {first.t} down to 0: what arrives at the state, ‖·‖",
    ]
    header = ["t", *(f"‖{k}‖" for k in first.arriving), *(f"‖{k}‖" for k in first.local)]
    if ledger.path:
        header.append(ledger.path[0])
    rows = [
        [
            str(s.t),
            *map(_norm, s.arriving.values()),
            *map(_norm, s.local.values()),
            *([f"{s.path:.3g}"] if ledger.path else []),
        ]
        for s in ledger.steps
    ]
    lines += _table(header, rows)
    if ledger.path:
        lines.append(f"{ledger.path[0]}: {ledger.path[1]}")
    params = list(first.contributions)
    lines += ["", ("What step t adds to each weight's gradient: ‖C_t‖ (running sum ‖Σ_{k≥t} C_k‖)")]
    rows = [
        [str(s.t), *(f"{_norm(s.contributions[n])} ({_norm(r[n])})" for n in params)]
        for s, r in zip(ledger.steps, ledger.running)
    ]
    lines += _table(["t", *params], rows)
    if verbose:
        lines += _verbose_steps(ledger)
    lines += ["", "Summed weight gradients, three sources"]
    rows = [
        [
            n,
            *(_norm(ledger.grads[src][n]) for src in SOURCES),
            f"{max(per[n] for per in ledger.disagreements.values()):.1e}",
        ]
        for n in params
    ]
    lines += _table(["param", *(f"‖{src}‖" for src in SOURCES), "worst rel. diff."], rows)
    if verbose:
        for n in params:
            for src in SOURCES:
                lines += [f"  {n}, {src}:", _matrix(ledger.grads[src][n])]
    lines.append(
        "; ".join(f"{pair} {max(per.values()):.1e}" for pair, per in ledger.disagreements.items())
    )
    if ledger.from_graph:
        lines.append(
            "(ledger vs autograd holds by construction here: the ledger is read off the "
            "graph autograd walks; central differences are the independent check)"
        )
    sign = "<=" if ledger.agrees() else ">"
    lines.append(
        f"largest relative disagreement {ledger.worst:.1e} {sign} {TOLERANCE:g}: {ledger.verdict()}"
    )
    return "\n".join(lines)


def _verbose_steps(ledger: Ledger) -> list[str]:
    lines = ["", "Every step in full (sequence 0 for vectors)"]
    for step in ledger.steps:
        lines.append(f"  t = {step.t}")
        for name, value in {**step.arriving, **step.local}.items():
            lines.append(f"    {name:<16} {np.array2string(np.asarray(value)[0], precision=4)}")
        for name, value in step.contributions.items():
            lines += [f"    C_t[{name}]", _matrix(value)]
    return lines
