"""``tinygrad-lstm demo``: RNN vs LSTM vs GRU on the adding problem, in about a minute.

The adding problem (Hochreiter & Schmidhuber 1997) needs memory: two of T random values are
marked, one in each half of the sequence, and the answer, the sum of the two, is asked for
only after the last step. Predicting 1.0 every time scores MSE 1/6 ~ 0.167; a model below
that has found the marked values and held them across time. All three cells get the same
data, the same optimizer and the same number of steps.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands._args import POSITIVE_FLOAT, POSITIVE_INT, SEED, integer
from tinygrad_lstm.tooling.commands._memory import check_fits
from tqdm import tqdm

from tinygrad_lstm.optim import Adam
from tinygrad_lstm.training import Trainer

NAME = "demo"
HELP = "train RNN, LSTM and GRU on the adding problem and compare them (about a minute)"

LEARNED = 0.1  # a cell "learned" the task when its MSE is below this fraction of the baseline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seq-len", type=integer(2), default=50, help="sequence length (default 50)"
    )
    parser.add_argument(
        "--steps", type=POSITIVE_INT, default=1200, help="training steps per cell (default 1200)"
    )
    parser.add_argument("--hidden", type=POSITIVE_INT, default=32, help="hidden units (default 32)")
    parser.add_argument(
        "--batch", type=POSITIVE_INT, default=32, help="sequences per step (default 32)"
    )
    parser.add_argument(
        "--lr", type=POSITIVE_FLOAT, default=0.02, help="Adam learning rate (default 0.02)"
    )
    parser.add_argument(
        "--cells",
        default="rnn,lstm,gru",
        help="comma-separated cells to compare (default rnn,lstm,gru)",
    )
    parser.add_argument("--seed", type=SEED, default=0, help="seed for weights and data")


def verdict(loss: float, mse: float, baseline: float) -> str:
    """How a cell did against the baseline; a NaN/inf result diverged (it learned nothing)."""
    if not (math.isfinite(loss) and math.isfinite(mse)):
        return "diverged (NaN/inf loss): lower --lr"
    if mse < LEARNED * baseline:
        return "learned the sum"
    return "no better than the baseline" if mse > 0.75 * baseline else "partly learned"


def train_cell(task: tasks.Task, cell: str, args: argparse.Namespace) -> dict:
    """Train one cell on ``task``; returns its row of the results table."""
    model = tasks.build_model(
        tasks.model_config(task, cell, args.hidden), rng=np.random.default_rng(args.seed)
    )
    trainer = Trainer(
        model,
        Adam(model.parameters(), lr=args.lr),
        lambda p, y: tasks.task_loss(task, p, y),
        clip=1.0,
        per_step_targets=False,
    )
    losses = []
    start = time.perf_counter()
    with tqdm(
        range(args.steps),
        desc=f"{cell:>5}",
        unit="step",
        leave=False,
        dynamic_ncols=True,
        mininterval=0.5,
    ) as bar:
        for step in bar:
            x, y = task.batch(np.random.default_rng([args.seed, step]), args.batch)
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported
                losses.append(trainer.step(x, y).loss)
            if not math.isfinite(losses[-1]):
                break  # diverged: more steps cannot bring it back
            if step % 25 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-25:]):.4f}")
    seconds = time.perf_counter() - start
    scores = tasks.evaluate(model, task, np.random.default_rng([args.seed, 1 << 40]), 1000)
    return {
        "cell": cell,
        "loss": float(np.mean(losses[-50:])),
        "mse": scores["mse"],
        "accuracy": scores["accuracy"],
        "seconds": seconds,
    }


def run(args: argparse.Namespace) -> int:
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    if not cells:
        raise CommandError(f"--cells {args.cells!r} names no cell")
    try:
        task = tasks.AddingTask(args.seq_len)
        for cell in cells:
            check_fits(tasks.model_config(task, cell, args.hidden), args.seq_len, args.batch)
    except (ValueError, LookupError) as exc:
        raise CommandError(str(exc)) from None
    baseline = task.baseline()
    print(
        f"The adding problem, T={args.seq_len}: sum the two marked values of a random "
        f"sequence,\nanswering after the last step. Always predicting 1.0 scores MSE "
        f"{baseline:.3f}.\nEach cell: hidden {args.hidden}, Adam lr {args.lr}, clip 1.0, "
        f"{args.steps} steps of {args.batch} sequences.\n"
    )
    rows = [train_cell(task, cell, args) for cell in cells]
    print(f"{'cell':<6}{'final loss':>11}{'test MSE':>10}{'|err|<0.04':>12}{'time':>8}  verdict")
    for r in rows:
        print(
            f"{r['cell']:<6}{r['loss']:>11.4f}{r['mse']:>10.4f}{r['accuracy']:>12.1%}"
            f"{r['seconds']:>7.1f}s  {verdict(r['loss'], r['mse'], baseline)}"
        )
    print(
        "\nfinal loss: mean training MSE of the last 50 steps; test MSE and |err|<0.04: on "
        "1000 fresh\nsequences. The gated cells keep the marked values in their state; the "
        "plain RNN's\ngradient fades over the steps between a marker and the answer.\n"
    )
    print(
        "Next:\n"
        "  tinygrad-lstm train --task adding --cell gru --seq-len 100 --steps 3000 --out runs/a\n"
        "  tinygrad-lstm train --task text --cell lstm --steps 2000 --bptt 25 --out runs/text\n"
        '  tinygrad-lstm sample --checkpoint runs/text --prime "The " --temperature 0.8\n'
        "  tinygrad-lstm train --resume runs/a --steps 4000\n"
        "  python examples/adding_problem.py    (RNN vs LSTM vs GRU at T=50 and T=100)\n"
        "  tinygrad-lstm --help                 (every command)"
    )
    return 0
