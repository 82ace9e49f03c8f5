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
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands import _run_dir
from tinygrad_lstm.tooling.commands._args import POSITIVE_FLOAT, POSITIVE_INT, SEED, finite, integer
from tinygrad_lstm.tooling.commands._memory import check_fits
from tqdm import tqdm

import tinygrad_lstm as tg
from tinygrad_lstm import checkpoint
from tinygrad_lstm.module import Module
from tinygrad_lstm.optim import OPTIMIZERS, Optimizer
from tinygrad_lstm.training import Trainer

NAME = "train"
HELP = "train an RNN/LSTM/GRU (or any registered cell) on a task; checkpoints, metrics, resume"

DEFAULTS = {
    "task": "adding",
    "cell": "lstm",
    "hidden": 64,
    "layers": 1,
    "seq_len": 50,
    "steps": 1000,
    "batch": 32,
    "lr": None,
    "optimizer": "adam",
    "clip": 1.0,
    "bptt": None,
    "bidirectional": False,
    "fused": False,
    "seed": 0,
    "text": None,
}
DEFAULT_LR = {"adam": 1e-2, "sgd": 0.1, "adagrad": 0.1}
SAVE_EVERY = 500
# What a resumed run may change; everything else must match the checkpoint.
RESUMABLE = {"steps"}
POSITIVE = ("hidden", "layers", "seq_len", "steps", "batch")
EVAL_STEP = 1 << 40  # the held-out batch's stream: a step number training never reaches


def batch_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of training batch ``step``: independent of every other step, so a
    resumed run draws the same batches as an uninterrupted one."""
    return np.random.default_rng([seed, step])


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


def _fresh_config(args: argparse.Namespace) -> dict:
    config = {k: (v if getattr(args, k) is None else getattr(args, k)) for k, v in DEFAULTS.items()}
    if config["lr"] is None and config["optimizer"] in DEFAULT_LR:
        config["lr"] = DEFAULT_LR[config["optimizer"]]
    return config


def _resumed_config(args: argparse.Namespace, saved: Any) -> dict:
    if not isinstance(saved, dict) or set(saved) != set(DEFAULTS):
        raise CommandError(
            f"the checkpoint's training configuration is damaged: expected "
            f"the keys {sorted(DEFAULTS)}"
        )
    config = dict(saved)
    for key in DEFAULTS:
        given = getattr(args, key)
        if given is None:
            continue
        if key in RESUMABLE:
            config[key] = given
        elif given != saved.get(key):
            flag = "--" + key.replace("_", "-")
            raise CommandError(
                f"{flag} {given} differs from the checkpoint's "
                f"{saved.get(key)}; a resumed run keeps its configuration"
            )
    return config


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(config: dict) -> None:
    """The whole configuration, which may come from a checkpoint written by hand."""
    for key in ("task", "cell", "optimizer"):
        if not isinstance(config[key], str):
            raise CommandError(f"--{key} must be a name, got {config[key]!r}")
    if config["task"] not in tasks.TASKS:
        raise CommandError(f"unknown task {config['task']!r}; choose from {', '.join(tasks.TASKS)}")
    cells = [c.name for c in tg.list_cells()]
    if config["cell"] not in cells:
        raise CommandError(f"unknown cell {config['cell']!r}; registered cells: {', '.join(cells)}")
    if config["optimizer"] not in OPTIMIZERS:
        raise CommandError(
            f"unknown optimizer {config['optimizer']!r}; choose from {', '.join(OPTIMIZERS)}"
        )
    for key in (*POSITIVE, "seed", "bptt"):
        value, low = config[key], 0 if key == "seed" else 1
        if not (value is None and key == "bptt") and not (_is_int(value) and value >= low):
            raise CommandError(
                f"--{key.replace('_', '-')} must be an integer >= {low}, got {value!r}"
            )
    for key, low in (("lr", 0.0), ("clip", 0.0)):
        value = config[key]
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value < low
            or (key == "lr" and value == 0)
        ):
            raise CommandError(
                f"--{key} must be a finite number {'>' if key == 'lr' else '>='} 0, got {value!r}"
            )
    for key in ("bidirectional", "fused"):
        if not isinstance(config[key], bool):
            raise CommandError(f"--{key} must be true or false, got {config[key]!r}")
    if config["text"] is not None and config["task"] != "text":
        raise CommandError(f"--text is for --task text, not --task {config['task']}")
    if config["bptt"] is not None and config["bidirectional"]:
        raise CommandError(
            "--bptt carries the state forward in time; a bidirectional "
            "layer's reverse direction cannot be truncated that way"
        )


def _build(config: dict) -> tuple[tasks.Task, tasks.SequenceModel, dict, Optimizer]:
    task_config = {"name": config["task"], "seq_len": config["seq_len"]}
    if config["task"] == "text":
        task_config["path"] = config["text"]
    try:
        task = tasks.make_task(task_config)
    except (TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
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
        return _fresh_config(args), 0, None
    try:
        meta = checkpoint.read_meta(args.resume)
    except checkpoint.CheckpointError as exc:
        raise CommandError(str(exc)) from None
    path = checkpoint.resolve(args.resume)
    if "train" not in meta:
        raise CommandError(f"{path} was not written by 'tinygrad-lstm train'")
    step = meta.get("step")
    if not _is_int(step) or step < 0:
        raise CommandError(f"{path}: its step {step!r} is not a count of steps")
    return _resumed_config(args, meta["train"]), step, path


def run(args: argparse.Namespace) -> int:
    config, start, resumed = _start(args)
    _check(config)
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
    run_state = _Run(
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
        f"trained to step {config['steps']} in {seconds:.1f}s; on a fresh batch: {scores}; "
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


class _Run:
    """The training loop's state: the model and optimizer, the metrics rows, and a copy of
    both at the last completed step (``boundary``), which is what every save writes."""

    def __init__(
        self,
        out: Path,
        model: Module,
        optimizer: Optimizer,
        rows: list[dict],
        meta: dict,
        step: int,
    ):
        self.out, self.model, self.optimizer, self.rows, self.meta = (
            out,
            model,
            optimizer,
            rows,
            meta,
        )
        self.saved_step = step
        self.mark(step)

    def mark(self, step: int) -> None:
        """Remember the state after ``step`` completed steps."""
        self.boundary = (step, self.model.state_dict(), self.optimizer.state_dict())

    def rewind(self) -> int:
        """Put the model and optimizer back to the last completed step; returns it."""
        step, weights, opt_state = self.boundary
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(opt_state)
        return step

    def save(self, evaluation: dict | None = None) -> None:
        """Write the state at the last completed step (metrics first: they may run ahead
        of the checkpoint, which ``--resume`` trims, never behind it)."""
        step = self.rewind()
        rows = [r for r in self.rows if int(r["step"]) <= step]
        try:
            _run_dir.write_metrics(self.out / _run_dir.METRICS_FILE, rows)
            checkpoint.save(
                self.out,
                self.model,
                self.optimizer,
                meta={**self.meta, "step": step, "eval": evaluation},
            )
        except OSError as exc:
            kept = (
                f"the last checkpoint there is step {self.saved_step}"
                if self.saved_step
                else "no checkpoint was saved"
            )
            raise CommandError(
                f"could not save step {step} in {self.out}: {exc.strerror or exc}; {kept}"
            ) from None
        self.saved_step = step

    def train(self, trainer: Trainer, task: tasks.Task, config: dict, save_every: int) -> None:
        bar = tqdm(
            range(self.boundary[0], config["steps"]),
            initial=self.boundary[0],
            total=config["steps"],
            unit="step",
            dynamic_ncols=True,
            mininterval=0.5,
        )
        try:
            for step in bar:
                x, y = task.batch(batch_rng(config["seed"], step), config["batch"])
                # A diverging run is caught below and stopped with one message naming the
                # step; NumPy's overflow warnings on the way there would only bury it.
                with np.errstate(over="ignore", invalid="ignore"):
                    result = trainer.step(x, y)
                if not (math.isfinite(result.loss) and self._weights_finite()):
                    self._diverged(step + 1, result.loss, config)
                self.rows.append(
                    {
                        "step": step + 1,
                        "loss": f"{result.loss:.6g}",
                        "grad_norm": f"{result.grad_norm:.6g}",
                        "seconds": f"{result.seconds:.4f}",
                    }
                )
                self.mark(step + 1)
                bar.set_postfix(loss=f"{result.loss:.4f}", gnorm=f"{result.grad_norm:.3f}")
                if save_every and (step + 1) % save_every == 0:
                    self.save()
        except BaseException:
            # Ctrl-C or an error mid-step: keep what was done, at a step boundary, so
            # --resume continues exactly (nothing to add when it is saved already).
            bar.close()
            if self.boundary[0] > self.saved_step:
                self.save()
            raise
        bar.close()

    def _weights_finite(self) -> bool:
        return all(np.isfinite(p.data).all() for p in self.model.parameters())

    def _diverged(self, step: int, loss: float, config: dict) -> None:
        what = (
            f"the loss became {loss}"
            if not math.isfinite(loss)
            else "the weights became NaN or inf"
        )
        kept = (
            f"{self.out} keeps the last finite state, step {self.boundary[0]}"
            if self.boundary[0]
            else "no step had completed, nothing was saved"
        )
        raise CommandError(
            f"{what} at step {step} (--lr {config['lr']}, --clip {config['clip']}); stopped, {kept}"
        )
