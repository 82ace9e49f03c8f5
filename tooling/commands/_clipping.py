"""Exploding gradients and clipping, measured, for ``tinygrad-lstm bptt --init-scale S
--compare-clipping N``.

A recurrent matrix with spectral radius S > 1 can make the gradient grow by up to S per step
back from the loss (tanh' <= 1 takes some of it back). Plain SGD then takes steps as large as
the gradient: the loss spikes and overflows. ``clip_grad_norm_`` rescales the whole gradient
to at most ``--clip`` in norm, keeping its direction, so the same model from the same weights
on the same batches trains.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tinygrad_lstm.tooling import tasks
from tqdm import tqdm

from tinygrad_lstm.module import Module
from tinygrad_lstm.optim import SGD
from tinygrad_lstm.training import Trainer

# A run has diverged when its loss is not finite or exceeds this multiple of its first loss.
SPIKE = 10.0


@dataclass
class ClippingRuns:
    """Per-step losses of the same model trained without and with clipping; a run stops at
    the first loss that is not finite."""

    unclipped: list[float]
    clipped: list[float]


def spike_step(losses: list[float]) -> int | None:
    """The first step (1-based) whose loss is not finite or above ``SPIKE`` x the first."""
    return next(
        (
            k + 1
            for k, loss in enumerate(losses)
            if not math.isfinite(loss) or loss > SPIKE * losses[0]
        ),
        None,
    )


def overflow_step(losses: list[float]) -> int | None:
    """The step (1-based) whose loss was not finite, if any."""
    return len(losses) if losses and not math.isfinite(losses[-1]) else None


def has_square_recurrence(cell: Module) -> bool:
    """True when the cell has a square ``weight_hh`` (H, H), whose spectral radius
    ``--init-scale`` sets (the RNN's; gated cells stack several blocks)."""
    w = getattr(cell, "weight_hh", None)
    return w is not None and w.ndim == 2 and w.shape[0] == w.shape[1]


def set_spectral_radius(cell: Module, radius: float) -> bool:
    """Rescale ``weight_hh`` to spectral radius ``radius`` (max |eigenvalue|), in place;
    False (and nothing changed) for a cell without a square one."""
    if not has_square_recurrence(cell):
        return False
    w = cell.weight_hh.data
    w *= w.dtype.type(radius / np.max(np.abs(np.linalg.eigvals(w))))
    return True


def _train(
    build: Callable[[], Module], task: tasks.Task, args: argparse.Namespace, clip: float | None
) -> list[float]:
    model = build()
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=args.lr),
        lambda p, t: tasks.task_loss(task, p, t),
        clip=clip,
        per_step_targets=task.per_step_targets,
    )
    rng = np.random.default_rng([args.seed, 3])  # the same batches for both runs
    losses = []
    label = "no clipping" if clip is None else f"clip {clip:g}"
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is what is being shown
        for _ in tqdm(
            range(args.compare_clipping),
            desc=f"SGD, {label}",
            unit="step",
            leave=False,
            mininterval=0.5,
        ):
            losses.append(trainer.step(*task.batch(rng, args.batch)).loss)
            if not math.isfinite(losses[-1]):
                break
    return losses


def compare_clipping(
    build: Callable[[], Module], task: tasks.Task, args: argparse.Namespace
) -> ClippingRuns:
    """Train ``build()`` for ``args.compare_clipping`` SGD steps (lr ``args.lr``) without
    clipping, then again with ``clip_grad_norm_(args.clip)``."""
    return ClippingRuns(_train(build, task, args, None), _train(build, task, args, args.clip))


def _outcome(losses: list[float]) -> str:
    spike, overflow = spike_step(losses), overflow_step(losses)
    parts = [] if spike is None else [f"spike at step {spike}"]
    if overflow is not None:
        parts.append(f"loss {losses[-1]} at step {overflow}")
    else:
        parts.append(f"loss {np.mean(losses[-max(1, len(losses) // 10) :]):.3f}")
    return ", ".join(parts)


def print_clipping(
    args: argparse.Namespace, rows: list[dict], clipping: dict[str, ClippingRuns], task: tasks.Task
) -> None:
    """The growth of the gradient per step back from the loss, and (with clipping runs)
    what training did without and with clipping."""
    steps = args.seq_len - 1
    scale = "" if args.init_scale is None else f", W_hh spectral radius {args.init_scale:g}"
    print(
        f"\nGradient growth per step back from the loss, (||dL/dh_0|| / "
        f"||dL/dh_{steps}||)^(1/{steps}), at init{scale}"
    )
    header = ["cell", "growth/step"]
    if clipping:
        header += [
            f"SGD {args.compare_clipping} steps, no clipping",
            f"clip_grad_norm_({args.clip:g})",
        ]
    table = []
    for row in rows:
        cells = [row["label"], f"x{row['init'].ratio() ** (1 / steps):.3f}"]
        runs = clipping.get(row["label"])
        if runs is not None:
            cells += [_outcome(runs.unclipped), _outcome(runs.clipped)]
        table.append(cells)
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    for cells in [header, *table]:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    if clipping:
        print(
            f"(spike: first loss above {SPIKE:g}x the first step's; a run stops when its "
            f"loss overflows; loss: mean of the last 10% of steps; lr {args.lr:g}, batch "
            f"{args.batch}; {task.baseline_label}: {task.baseline():.3f})"
        )
