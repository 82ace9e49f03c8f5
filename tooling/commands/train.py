"""``tinygrad-lstm train``: train a recurrent model on a task, with checkpoints and resume.

Writes into ``--out``: ``checkpoint.npz`` (weights, optimizer state, and the whole
configuration, so ``--resume`` and ``sample`` need nothing else), ``metrics.csv`` (one row
per step: loss, gradient norm before clipping, seconds) and, when matplotlib is installed,
``loss.png``. Batch ``i`` is drawn from a generator seeded with ``(seed, i)``, so a resumed
run sees exactly the batches an uninterrupted one would have seen.

Nothing is lost: the output directory is checked before the first step; a checkpoint is
saved every ``--save-every`` steps; Ctrl-C, an error or a loss that turns NaN/inf saves the
state at the last completed step (never a half-applied update, never NaN weights), so a
resume continues bit for bit.

This module is the command: its flags, setting a run up and reporting it. The configuration
(defaults and checks) is in ``_train_config.py``, the loop and its saves in
``_train_loop.py``, the output directory's files in ``_run_dir.py``, all beside this file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands import _run_dir
from tinygrad_lstm.tooling.commands._args import POSITIVE_FLOAT, POSITIVE_INT, SEED, finite, integer
from tinygrad_lstm.tooling.commands._memory import check_fits
from tinygrad_lstm.tooling.commands._train_config import (
    check_config,
    fresh_config,
    is_int,
    resumed_config,
)
from tinygrad_lstm.tooling.commands._train_loop import TrainingRun, batch_rng

from tinygrad_lstm import checkpoint
from tinygrad_lstm.optim import OPTIMIZERS, Optimizer
from tinygrad_lstm.training import Trainer

NAME = "train"
HELP = "train an RNN/LSTM/GRU (or any registered cell) on a task; checkpoints, metrics, resume"

SAVE_EVERY = 500
EVAL_STEP = 1 << 40  # the held-out batch's stream: a step number training never reaches


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", help=f"one of {', '.join(tasks.TASKS)} (default adding)")
    parser.add_argument("--cell", help="rnn, lstm, gru or any registered cell (default lstm)")
    parser.add_argument("--hidden", type=POSITIVE_INT, help="hidden units per layer (default 64)")
    parser.add_argument("--layers", type=POSITIVE_INT, help="stacked recurrent layers (default 1)")
    parser.add_argument("--seq-len", type=POSITIVE_INT, help="time steps per sequence (default 50)")
    parser.add_argument("--steps", type=POSITIVE_INT, help="total training steps (default 1000)")
    parser.add_argument("--batch", type=POSITIVE_INT, help="sequences per step (default 32)")
    parser.add_argument(
        "--lr", type=POSITIVE_FLOAT, help="learning rate (default: adam 0.01, sgd 0.1, adagrad 0.1)"
    )
    parser.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)} (default adam)")
    parser.add_argument(
        "--clip", type=finite(0.0, strict=False), help="max gradient norm, 0 for none (default 1.0)"
    )
    parser.add_argument(
        "--bptt", type=POSITIVE_INT, help="truncated BPTT chunk length (default: full)"
    )
    parser.add_argument(
        "--bidirectional",
        action="store_true",
        default=None,
        help="bidirectional layers (not for tasks that predict the future)",
    )
    parser.add_argument(
        "--fused",
        action="store_true",
        default=None,
        help="run each layer as one fused op: hand-written kernels for the "
        "built-in cells, compiled from scalar rules for any other cell",
    )
    parser.add_argument("--text", help="text file for --task text (default: the shipped text)")
    parser.add_argument("--seed", type=SEED, help="seed for weights and data (default 0)")
    parser.add_argument(
        "--out",
        help="output directory (default runs/<task>-<cell>); "
        "refused if it holds a run, unless --resume or --force",
    )
    parser.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run saved in DIR (or its checkpoint.npz) up to --steps",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite the run in --out (its checkpoint, metrics and plot)",
    )
    parser.add_argument(
        "--save-every",
        type=integer(0),
        default=SAVE_EVERY,
        metavar="N",
        help=f"checkpoint every N steps, 0 for only at the end (default "
        f"{SAVE_EVERY}); Ctrl-C and errors save the last step too",
    )


def _build(config: dict) -> tuple[tasks.Task, tasks.SequenceModel, dict, Optimizer]:
    task_config = {"name": config["task"], "seq_len": config["seq_len"]}
    if config["task"] == "text":
        task_config["path"] = config["text"]
    try:
        task = tasks.make_task(task_config)
    except (TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if config["bptt"] is not None and task.pad_index is not None:
        raise CommandError(
            f"--bptt cuts every sequence at the same steps, but task {task.name} pads its "
            f"sequences to different lengths; train it without --bptt"
        )
    if config["bidirectional"] and task.causal:
        raise CommandError(
            f"task {task.name} predicts what comes next; a bidirectional model would see the answer"
        )
    model_config = tasks.model_config(
        task,
        config["cell"],
        config["hidden"],
        config["layers"],
        config["bidirectional"],
        config["fused"],
    )
    check_fits(model_config, config["seq_len"], config["batch"])
    try:
        model = tasks.build_model(model_config, rng=np.random.default_rng(config["seed"]))
        optimizer: Optimizer = OPTIMIZERS[config["optimizer"]](model.parameters(), lr=config["lr"])
    except (TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    return task, model, model_config, optimizer


def _start(args: argparse.Namespace) -> tuple[dict, int, Path | None]:
    """(config, first step, resumed checkpoint file or None)."""
    if not args.resume:
        return fresh_config(args), 0, None
    try:
        meta = checkpoint.read_meta(args.resume)
    except checkpoint.CheckpointError as exc:
        raise CommandError(str(exc)) from None
    path = checkpoint.resolve(args.resume)
    if "train" not in meta:
        raise CommandError(f"{path} was not written by 'tinygrad-lstm train'")
    step = meta.get("step")
    if not is_int(step) or step < 0:
        raise CommandError(f"{path}: its step {step!r} is not a count of steps")
    return resumed_config(args, meta["train"]), step, path


def run(args: argparse.Namespace) -> int:
    config, start, resumed = _start(args)
    check_config(config)
    resume_dir = resumed.parent if resumed is not None else None
    out = (
        Path(args.out)
        if args.out
        else resume_dir or Path(f"runs/{config['task']}-{config['cell']}")
    )
    if resumed is not None and start >= config["steps"]:
        raise CommandError(
            f"the checkpoint is at step {start} already; pass --steps "
            f"larger than {start} to continue"
        )
    task, model, model_config, optimizer = _build(config)
    rows = []
    if resumed is not None:
        try:
            checkpoint.load(resumed, model, optimizer)
        except checkpoint.CheckpointError as exc:
            raise CommandError(str(exc)) from None
        rows = _run_dir.read_metrics(resume_dir / _run_dir.METRICS_FILE, start)
    continuing = resume_dir is not None and out.resolve() == resume_dir.resolve()
    _run_dir.prepare(out, continuing=continuing, force=args.force)
    trainer = Trainer(
        model,
        optimizer,
        lambda p, y: tasks.task_loss(task, p, y),
        clip=config["clip"] or None,
        bptt=config["bptt"],
        per_step_targets=task.per_step_targets,
    )
    run_state = TrainingRun(
        out,
        model,
        optimizer,
        rows,
        {"train": config, "model": model_config, "task": task.config()},
        start,
    )
    print(
        f"training {config['cell']} (hidden {config['hidden']}, {config['layers']} layer(s)) "
        f"on {task.name}, seq-len {config['seq_len']}, steps {start}..{config['steps']}"
    )
    started = time.perf_counter()
    run_state.train(trainer, task, config, args.save_every)
    seconds = time.perf_counter() - started
    evaluation = tasks.evaluate(model, task, batch_rng(config["seed"], EVAL_STEP))
    run_state.save(evaluation)
    scores = ", ".join(f"{k} {v:.4f}" for k, v in evaluation.items())
    print(
        f"trained to step {config['steps']} in {seconds:.1f}s; on {task.held_out_label}: {scores}; "
        f"baseline ({task.baseline_label}) {task.baseline():.4f}"
    )
    written = [out / checkpoint.CHECKPOINT_FILE, out / _run_dir.METRICS_FILE]
    baseline = task.baseline() if task.name == "adding" else None
    if _run_dir.plot(
        out / _run_dir.PLOT_FILE,
        rows,
        baseline,
        "always predict 1.0",
        f"{config['cell']} on {task.name}",
    ):
        written.append(out / _run_dir.PLOT_FILE)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
