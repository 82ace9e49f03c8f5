"""``tinygrad-lstm bptt``: how much gradient survives the trip back through time, per cell.

Each cell gets the same model (the cell, then a linear read-out of the last step) on the same
task, the adding problem, whose answer depends on two marked inputs anywhere in the sequence.
The loss is put on the last step and ``||dL/dh_t||`` is recorded at every step t by hooks on
the hidden states (``viz.step_gradient_norms``), once at initialisation and once after
``--train-steps`` steps of Adam. The summary's ratio ``||dL/dh_0|| / ||dL/dh_{T-1}||`` is the
fraction of the gradient that reaches the first step. Norms are measured in float64 (a ratio
of 1e-30 would underflow float32), training runs in float32.

An LSTM's gradient along its cell state is multiplied by the forget gate at every step, so
its initial bias sets how far the gradient reaches: ``--forget-bias`` adds one LSTM per value.

The other half of the story: ``--init-scale S`` rescales a square recurrent matrix (the
RNN's) to spectral radius S. Above 1 the gradient can grow with the distance from the loss
instead of shrinking; ``--compare-clipping N`` then trains each model N steps of plain SGD
twice, without clipping and with ``clip_grad_norm_(--clip)``, from the same weights on the
same batches, and reports when the unclipped run diverged and what loss the clipped run
reached (``_clipping.py`` beside this file). This module measures; the summary table and
the charts are drawn by ``_bptt_report.py`` beside it.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands._args import SEED
from tinygrad_lstm.tooling.commands._memory import check_fits
from tinygrad_lstm.tooling.explain import set_forget_bias
from tinygrad_lstm.tooling.viz import StepGradients, step_gradient_norms
from tqdm import tqdm

import tinygrad_lstm as tg
from tinygrad_lstm.optim import Adam
from tinygrad_lstm.training import Trainer

from ._bptt_report import draw, print_summary
from ._clipping import (
    compare_clipping,
    has_square_recurrence,
    print_clipping,
    set_spectral_radius,
)

NAME = "bptt"
HELP = (
    "plot the gradient norm at every time step against the distance from the loss, for "
    "RNN, LSTM, GRU (any registered cell), at initialisation and after training"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cells",
        default="rnn,lstm,gru",
        help="comma-separated registered cells (default rnn,lstm,gru)",
    )
    parser.add_argument("--seq-len", type=int, default=100, help="time steps T (default 100)")
    parser.add_argument("--hidden", type=int, default=32, help="hidden size (default 32)")
    parser.add_argument(
        "--train-steps",
        type=int,
        default=0,
        metavar="N",
        help="also measure after N Adam steps on the task (default 0: only at initialisation)",
    )
    parser.add_argument(
        "--forget-bias",
        default=None,
        help="comma-separated values: one extra LSTM per value, its forget-gate "
        "bias set to it at init (b_ih = value, b_hh = 0); 'none' for no "
        "extra LSTM (default 1.0 when lstm is among --cells)",
    )
    parser.add_argument(
        "--init-scale",
        type=float,
        default=None,
        metavar="S",
        help="rescale each cell's square recurrent matrix W_hh (the RNN's) to "
        "spectral radius S at init; above 1 gradients can explode",
    )
    parser.add_argument(
        "--compare-clipping",
        type=int,
        default=0,
        metavar="N",
        help="also train each model N steps of SGD (--lr) without and with "
        "gradient-norm clipping, and chart both losses (default 0: no)",
    )
    parser.add_argument(
        "--clip",
        type=float,
        default=1.0,
        help="max gradient norm for --compare-clipping (default 1.0)",
    )
    parser.add_argument("--batch", type=int, default=32, help="sequences per batch (default 32)")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (default 0.01)")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of weights and data (default 0)")
    parser.add_argument(
        "--out",
        default="bptt.png",
        help="PNG to write (default bptt.png); needs matplotlib, else a terminal chart is printed",
    )
    parser.add_argument(
        "--terminal",
        action="store_true",
        help="print the terminal chart (even when matplotlib is installed)",
    )


def _variants(args: argparse.Namespace) -> list[tuple[str, str, float | None]]:
    """(label, cell name, forget bias or None) for every model to measure."""
    registered = [c.name for c in tg.list_cells()]
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = [c for c in cells if c not in registered]
    if not cells or unknown:
        raise CommandError(
            f"bptt: unknown cell(s) {', '.join(map(repr, unknown)) or '(none)'}; "
            f"registered cells: {', '.join(registered)}"
        )
    variants = [(c, c, None) for c in cells]
    given = args.forget_bias
    if given is None and "lstm" not in cells:
        return variants
    if (given or "1.0").strip().lower() != "none":
        try:
            biases = [float(b) for b in (given or "1.0").split(",")]
        except ValueError:
            raise CommandError(
                f"bptt: --forget-bias takes numbers or 'none', got {given!r}"
            ) from None
        if "lstm" not in cells:
            raise CommandError(
                "bptt: --forget-bias needs lstm among --cells (or pass --forget-bias none)"
            )
        at = cells.index("lstm") + 1
        variants[at:at] = [(f"lstm, forget bias {b:g}", "lstm", b) for b in biases]
    return variants


def _ignored_options(args: argparse.Namespace, cells: list[str]) -> list[str]:
    """One note per cell that ignores a cell-specific option the user gave."""
    notes = []
    if args.forget_bias not in (None, "none"):
        notes += [
            f"note: {c} ignores --forget-bias (it sets the LSTM's forget-gate bias; a "
            f"custom cell's gates are its own)"
            for c in cells
            if c != "lstm"
        ]
    if args.init_scale is not None:
        for c in cells:
            if not has_square_recurrence(tg.cell(c)(2, 3)):
                notes.append(
                    f"note: {c} ignores --init-scale (it rescales a square recurrent "
                    f"matrix weight_hh; {c} has none)"
                )
    return notes


def _build(
    task: tasks.Task,
    cell: str,
    hidden: int,
    forget_bias: float | None,
    seed: int,
    init_scale: float | None = None,
) -> tasks.SequenceModel:
    model = tasks.build_model(
        tasks.model_config(task, cell, hidden), rng=np.random.default_rng(seed)
    )
    if forget_bias is not None:
        set_forget_bias(model.rnn.cell_l0, forget_bias)
    if init_scale is not None:
        set_spectral_radius(model.rnn.cell_l0, init_scale)
    return model


def _measure(
    model: tasks.SequenceModel, task: tasks.Task, x: np.ndarray, y: np.ndarray
) -> StepGradients:
    model.to(np.float64)
    try:
        target = y.astype(np.float64)
        return step_gradient_norms(
            model.rnn,
            x.astype(np.float64),
            loss_fn=lambda outs: tasks.task_loss(task, model.head(outs[0]), target),
        )
    finally:
        model.to(np.float32)


def _relative(result: StepGradients) -> np.ndarray:
    """y[d] = ||dL/dh_{T-1-d}|| / ||dL/dh_{T-1}||: the curve against distance d."""
    norms = result.norms["h"]
    return norms[::-1] / norms[-1]


def _check(args: argparse.Namespace) -> None:
    for flag, value, low in (
        ("--seq-len", args.seq_len, 2),
        ("--hidden", args.hidden, 1),
        ("--batch", args.batch, 1),
        ("--train-steps", args.train_steps, 0),
    ):
        if value < low:
            raise CommandError(f"bptt: {flag} must be at least {low}, got {value}")
    if not args.lr > 0:
        raise CommandError(f"bptt: --lr must be positive, got {args.lr}")
    if args.init_scale is not None and not args.init_scale > 0:
        raise CommandError(f"bptt: --init-scale must be positive, got {args.init_scale}")
    if args.compare_clipping < 0 or not args.clip > 0:
        raise CommandError(
            f"bptt: --compare-clipping must be >= 0 and --clip positive, got "
            f"{args.compare_clipping} and {args.clip}"
        )


def run(args: argparse.Namespace) -> int:
    _check(args)
    variants = _variants(args)
    for note in _ignored_options(args, sorted({cell for _, cell, _ in variants})):
        print(note)
    task = tasks.AddingTask(args.seq_len)
    for cell in sorted({cell for _, cell, _ in variants}):
        # The gradients are measured in float64: count every number at 8 bytes.
        config = tasks.model_config(task, cell, args.hidden)
        check_fits(config, args.seq_len, args.batch, command="bptt", float_bytes=8)
    probe_x, probe_y = task.batch(np.random.default_rng([args.seed, 1]), args.batch)
    rows, before, after, clipping = [], {}, {}, {}
    for label, cell, bias in tqdm(variants, desc="bptt", unit="model", leave=False):

        def build(cell: str = cell, bias: float | None = bias) -> tasks.SequenceModel:
            return _build(task, cell, args.hidden, bias, args.seed, args.init_scale)

        model = build()
        start = _measure(model, task, probe_x, probe_y)
        before[label] = _relative(start)
        row = {"label": label, "init": start, "loss": math.nan}
        if args.train_steps:
            trainer = Trainer(
                model,
                Adam(model.parameters(), lr=args.lr),
                lambda p, t: tasks.task_loss(task, p, t),
                clip=1.0,
                per_step_targets=task.per_step_targets,
            )
            data_rng = np.random.default_rng([args.seed, 2])  # the same batches for every model
            losses = [
                trainer.step(*task.batch(data_rng, args.batch)).loss
                for _ in tqdm(
                    range(args.train_steps),
                    desc=f"training {label}",
                    unit="step",
                    leave=False,
                    mininterval=0.5,
                )
            ]
            row["loss"] = float(np.mean(losses[-max(1, len(losses) // 10) :]))
            row["trained"] = _measure(model, task, probe_x, probe_y)
            after[label] = _relative(row["trained"])
        if args.compare_clipping:
            clipping[label] = compare_clipping(build, task, args)
        rows.append(row)
    print_summary(args, rows, task)
    if args.init_scale is not None or clipping:
        print_clipping(args, rows, clipping, task)
    draw(args, before, after, clipping)
    return 0
