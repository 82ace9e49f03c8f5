"""``tinygrad-lstm train``: train a recurrent model on a task, with checkpoints and resume.

Writes into ``--out``: ``checkpoint.npz`` (weights, optimizer state, and the whole
configuration, so ``--resume`` and ``sample`` need nothing else), ``metrics.csv`` (one row
per step: loss, gradient norm before clipping, seconds) and, when matplotlib is installed,
``loss.png``. Batch ``i`` is drawn from a generator seeded with ``(seed, i)``, so a resumed
run sees exactly the batches an uninterrupted one would have seen.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinygrad_lstm as tg
from tinygrad_lstm import checkpoint, tasks
from tinygrad_lstm.cli import CommandError
from tinygrad_lstm.optim import OPTIMIZERS, Optimizer
from tinygrad_lstm.training import Trainer

NAME = "train"
HELP = "train an RNN/LSTM/GRU (or any registered cell) on a task; checkpoints, metrics, resume"

DEFAULTS = {"task": "adding", "cell": "lstm", "hidden": 64, "layers": 1, "seq_len": 50,
            "steps": 1000, "batch": 32, "lr": None, "optimizer": "adam", "clip": 1.0,
            "bptt": None, "bidirectional": False, "fused": False, "seed": 0, "text": None}
DEFAULT_LR = {"adam": 1e-2, "sgd": 0.1, "adagrad": 0.1}
# What a resumed run may change; everything else must match the checkpoint.
RESUMABLE = {"steps"}
POSITIVE = ("hidden", "layers", "seq_len", "steps", "batch")
METRICS_FIELDS = ["step", "loss", "grad_norm", "seconds"]
EVAL_STEP = 1 << 40  # the held-out batch's stream: a step number training never reaches


def batch_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of training batch ``step``: independent of every other step, so a
    resumed run draws the same batches as an uninterrupted one."""
    return np.random.default_rng([seed, step])


def add_arguments(parser) -> None:
    parser.add_argument("--task", help=f"one of {', '.join(tasks.TASKS)} (default adding)")
    parser.add_argument("--cell", help="rnn, lstm, gru or any registered cell (default lstm)")
    parser.add_argument("--hidden", type=int, help="hidden units per layer (default 64)")
    parser.add_argument("--layers", type=int, help="stacked recurrent layers (default 1)")
    parser.add_argument("--seq-len", type=int, help="time steps per sequence (default 50)")
    parser.add_argument("--steps", type=int, help="total training steps (default 1000)")
    parser.add_argument("--batch", type=int, help="sequences per step (default 32)")
    parser.add_argument("--lr", type=float,
                        help="learning rate (default: adam 0.01, sgd 0.1, adagrad 0.1)")
    parser.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)} (default adam)")
    parser.add_argument("--clip", type=float,
                        help="max gradient norm, 0 for none (default 1.0)")
    parser.add_argument("--bptt", type=int, help="truncated BPTT chunk length (default: full)")
    parser.add_argument("--bidirectional", action="store_true", default=None,
                        help="bidirectional layers (not for tasks that predict the future)")
    parser.add_argument("--fused", action="store_true", default=None,
                        help="run each layer as one fused op (built-in cells only)")
    parser.add_argument("--text", help="text file for --task text (default: the shipped text)")
    parser.add_argument("--seed", type=int, help="seed for weights and data (default 0)")
    parser.add_argument("--out", help="output directory (default runs/<task>-<cell>)")
    parser.add_argument("--resume", metavar="DIR",
                        help="continue the run saved in DIR up to --steps")
    parser.add_argument("--save-every", type=int, default=0,
                        help="also checkpoint every N steps (default: at the end only)")


def _fresh_config(args) -> dict:
    config = {k: (v if getattr(args, k) is None else getattr(args, k))
              for k, v in DEFAULTS.items()}
    if config["lr"] is None and config["optimizer"] in DEFAULT_LR:
        config["lr"] = DEFAULT_LR[config["optimizer"]]
    return config


def _resumed_config(args, saved: dict) -> dict:
    config = dict(saved)
    for key in DEFAULTS:
        given = getattr(args, key)
        if given is None:
            continue
        if key in RESUMABLE:
            config[key] = given
        elif given != saved.get(key):
            flag = "--" + key.replace("_", "-")
            raise CommandError(f"{flag} {given} differs from the checkpoint's "
                               f"{saved.get(key)}; a resumed run keeps its configuration")
    return config


def _check(config: dict) -> None:
    if config["task"] not in tasks.TASKS:
        raise CommandError(f"unknown task {config['task']!r}; choose from "
                           f"{', '.join(tasks.TASKS)}")
    cells = [c.name for c in tg.list_cells()]
    if config["cell"] not in cells:
        raise CommandError(f"unknown cell {config['cell']!r}; registered cells: "
                           f"{', '.join(cells)}")
    if config["optimizer"] not in OPTIMIZERS:
        raise CommandError(f"unknown optimizer {config['optimizer']!r}; choose from "
                           f"{', '.join(OPTIMIZERS)}")
    for key in POSITIVE:
        if config[key] <= 0:
            raise CommandError(f"--{key.replace('_', '-')} must be positive, got {config[key]}")
    if config["lr"] <= 0 or config["clip"] < 0:
        raise CommandError(f"--lr must be positive and --clip >= 0, got {config['lr']} and "
                           f"{config['clip']}")
    if config["bptt"] is not None and config["bptt"] <= 0:
        raise CommandError(f"--bptt must be positive, got {config['bptt']}")
    if config["text"] is not None and config["task"] != "text":
        raise CommandError(f"--text is for --task text, not --task {config['task']}")
    if config["bptt"] is not None and config["bidirectional"]:
        raise CommandError("--bptt carries the state forward in time; a bidirectional "
                           "layer's reverse direction cannot be truncated that way")


def _build(config: dict):
    task_config = {"name": config["task"], "seq_len": config["seq_len"]}
    if config["task"] == "text":
        task_config["path"] = config["text"]
    try:
        task = tasks.make_task(task_config)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if config["bidirectional"] and task.causal:
        raise CommandError(f"task {task.name} predicts what comes next; a bidirectional "
                           "model would see the answer")
    model_config = tasks.model_config(task, config["cell"], config["hidden"],
                                      config["layers"], config["bidirectional"],
                                      config["fused"])
    try:
        model = tasks.build_model(model_config, rng=np.random.default_rng(config["seed"]))
    except (TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    optimizer: Optimizer = OPTIMIZERS[config["optimizer"]](model.parameters(), lr=config["lr"])
    return task, model, model_config, optimizer


def _read_metrics(path: Path, before: int) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["step"]) <= before]


def _write_metrics(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def _plot(path: Path, rows: list[dict], task, title: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], lw=1)
    if task.name == "adding":
        ax.axhline(task.baseline(), color="gray", ls="--", label="always predict 1.0")
        ax.legend()
    ax.set(xlabel="step", ylabel="training loss", title=title, yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def run(args) -> int:
    if args.save_every < 0:
        raise CommandError(f"--save-every must be >= 0, got {args.save_every}")
    start, saved_rows = 0, []
    if args.resume:
        try:
            ckpt = checkpoint.read(args.resume)
        except checkpoint.CheckpointError as exc:
            raise CommandError(str(exc)) from None
        if "train" not in ckpt.meta:
            raise CommandError(f"{ckpt.path} was not written by 'tinygrad-lstm train'")
        config = _resumed_config(args, ckpt.meta["train"])
        start = int(ckpt.meta["step"])
    else:
        config = _fresh_config(args)
    _check(config)
    out = Path(args.out or args.resume or f"runs/{config['task']}-{config['cell']}")
    task, model, model_config, optimizer = _build(config)
    if args.resume:
        try:
            checkpoint.load(args.resume, model, optimizer)
        except checkpoint.CheckpointError as exc:
            raise CommandError(str(exc)) from None
        saved_rows = _read_metrics(Path(args.resume) / "metrics.csv", start)
        if start >= config["steps"]:
            raise CommandError(f"the checkpoint is at step {start} already; pass --steps "
                               f"larger than {start} to continue")
    trainer = Trainer(model, optimizer, lambda p, y: tasks.task_loss(task, p, y),
                      clip=config["clip"] or None, bptt=config["bptt"],
                      per_step_targets=task.per_step_targets)
    out.mkdir(parents=True, exist_ok=True)
    rows = saved_rows

    def save(step: int, evaluation: dict | None = None) -> None:
        meta = {"train": config, "model": model_config, "task": task.config(), "step": step,
                "eval": evaluation}
        checkpoint.save(out, model, optimizer, meta=meta)
        _write_metrics(out / "metrics.csv", rows)

    print(f"training {config['cell']} (hidden {config['hidden']}, {config['layers']} layer(s)) "
          f"on {task.name}, seq-len {config['seq_len']}, steps {start}..{config['steps']}")
    started = time.perf_counter()
    bar = tqdm(range(start, config["steps"]), initial=start, total=config["steps"],
               unit="step", dynamic_ncols=True, mininterval=0.5)
    try:
        for step in bar:
            x, y = task.batch(batch_rng(config["seed"], step), config["batch"])
            result = trainer.step(x, y)
            rows.append({"step": step + 1, "loss": f"{result.loss:.6g}",
                         "grad_norm": f"{result.grad_norm:.6g}",
                         "seconds": f"{result.seconds:.4f}"})
            bar.set_postfix(loss=f"{result.loss:.4f}", gnorm=f"{result.grad_norm:.3f}")
            if args.save_every and (step + 1) % args.save_every == 0:
                save(step + 1)
    except KeyboardInterrupt:     # keep what was done, so --resume can pick it up
        save(int(rows[-1]["step"]) if rows else 0)
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    evaluation = tasks.evaluate(model, task, batch_rng(config["seed"], EVAL_STEP))
    save(config["steps"], evaluation)
    scores = ", ".join(f"{k} {v:.4f}" for k, v in evaluation.items())
    print(f"trained to step {config['steps']} in {seconds:.1f}s; on a fresh batch: {scores}; "
          f"baseline ({task.baseline_label}) {task.baseline():.4f}")
    written = [out / "checkpoint.npz", out / "metrics.csv"]
    if _plot(out / "loss.png", rows, task, f"{config['cell']} on {task.name}"):
        written.append(out / "loss.png")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
