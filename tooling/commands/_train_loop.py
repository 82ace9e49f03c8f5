"""The training loop of ``tinygrad-lstm train``, which saves only at step boundaries.

``TrainingRun`` keeps a copy of the model and optimizer after the last completed step, and
every save (periodic, Ctrl-C, an error, a loss that turns NaN/inf) writes that copy, so a
resumed run continues bit for bit. ``batch_rng`` seeds each step's batch on its own. Split
out of ``train.py``, the command, which sets the run up and evaluates it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands import _run_dir
from tqdm import tqdm

from tinygrad_lstm import checkpoint
from tinygrad_lstm.module import Module
from tinygrad_lstm.optim import Optimizer
from tinygrad_lstm.training import Trainer


def batch_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of training batch ``step``: independent of every other step, so a
    resumed run draws the same batches as an uninterrupted one."""
    return np.random.default_rng([seed, step])


class TrainingRun:
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
