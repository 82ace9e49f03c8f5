"""Seeded sequence tasks for recurrent networks: data, metrics and baselines (NumPy only).

Every task draws batches from a ``np.random.Generator`` (seeded: no downloads, same batches
for the same seed) and is time-major: ``x`` is (T, B, features), or (T, B) character indices
for text. Each knows its metrics, its baseline and the model readout it needs:

- ``adding`` (Hochreiter & Schmidhuber 1997): (value, marker) pairs, value ~ U(0, 1), one
  marker in each half of the sequence; the target is the sum of the two marked values.
  Predicting 1.0 always scores MSE 1/6 ~ 0.167.
- ``copy`` (delayed recall): 5 symbols from 8, blanks, a "go" marker, and the 5 symbols must
  be recalled in order during the last 5 steps. Chance: 1/8 per symbol.
- ``reber``: embedded Reber grammar strings, next-symbol prediction at each step; the
  long-memory part is the second-to-last symbol, which repeats the second (T or P).
- ``sine``: next-value forecasting of sine waves with random frequency and phase.
- ``text``: next-character prediction on any text file (default: the shipped
  ``data/recurrence.txt``).
- ``sunspots`` (``forecasting.py``): next year's sunspot number from a window of past years,
  a real series split in time order.
- ``sentiment`` (``sentiment.py``): generated reviews with negation and contrast, labelled
  by a grammar's rules; padded to the longest review of the batch.

What every task shares (the ``Task`` base class, the ``Targets`` type, the argument checks
``check_rng`` and ``check_count``) is in ``tinygrad_lstm.tooling.sequence_task``, re-exported
here. The losses, models and training glue live in ``tinygrad_lstm.tooling.tasks`` (tooling
layer); this module knows no op and no layer.
"""

from __future__ import annotations

import importlib.resources
import inspect
import math
from pathlib import Path

import numpy as np

from .forecasting import SunspotTask
from .sentiment import SentimentTask
from .sequence_task import Batch, Targets, Task, check_count, check_rng

__all__ = [
    "TASKS",
    "AddingTask",
    "CopyTask",
    "ReberTask",
    "SentimentTask",
    "SineTask",
    "SunspotTask",
    "Task",
    "TextTask",
    "check_count",
    "check_rng",
    "default_text_path",
    "make_task",
]


class AddingTask(Task):
    """The adding problem: x (T, B, 2) = (value, marker), y (B, 1) = sum of the marked values."""

    name, readout, causal, regression = "adding", "last", False, True
    input_size, output_size = 2, 1
    baseline_label = "MSE of always predicting 1.0"

    def __init__(self, seq_len: int):
        super().__init__(seq_len)
        if seq_len < 2:
            raise ValueError(f"adding: seq_len must be at least 2, got {seq_len}")

    def _batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        t, half = self.seq_len, self.seq_len // 2
        x = np.zeros((t, batch_size, 2), dtype=np.float32)
        x[:, :, 0] = rng.random((t, batch_size))
        cols = np.arange(batch_size)
        first, second = rng.integers(0, half, batch_size), rng.integers(half, t, batch_size)
        x[first, cols, 1] = x[second, cols, 1] = 1.0
        y = (x[first, cols, 0] + x[second, cols, 0])[:, None]
        return x, y.astype(np.float32)

    def metrics(self, prediction: np.ndarray, y: Targets) -> dict[str, float]:
        err = np.abs(prediction - y)
        return {"mse": float(np.mean(err**2)), "accuracy": float(np.mean(err < 0.04))}

    def baseline(self) -> float:
        return 1.0 / 6.0


class CopyTask(Task):
    """Delayed recall: symbols, blanks, a go marker at step T-L-1, recall in the last L steps.

    x (T, B, K+2) one-hot (K symbols, blank, go); y (L, B) the symbols to recall."""

    name, readout, causal = "copy", "tail", False
    symbols, recall = 8, 5
    input_size, output_size = symbols + 2, symbols
    tail = recall
    baseline_label = "accuracy of guessing"

    def __init__(self, seq_len: int):
        super().__init__(seq_len)
        if seq_len < 2 * self.recall + 1:
            raise ValueError(
                f"copy: seq_len must be at least {2 * self.recall + 1} "
                f"({self.recall} symbols, a go marker, {self.recall} recalls), "
                f"got {seq_len}"
            )

    def _batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        t, k, n = self.seq_len, self.symbols, self.recall
        codes = np.full((t, batch_size), k)  # blank
        data = rng.integers(0, k, (n, batch_size))
        codes[:n] = data
        codes[t - n - 1] = k + 1  # go
        return np.eye(k + 2, dtype=np.float32)[codes], data

    def baseline(self) -> float:
        return 1.0 / self.symbols


_REBER = {
    0: [("T", 1), ("P", 2)],
    1: [("S", 1), ("X", 3)],
    2: [("T", 2), ("V", 4)],
    3: [("X", 2), ("S", 5)],
    4: [("P", 3), ("V", 5)],
}
_REBER_SYMBOLS = "BTPSXVE"


def _reber_string(rng: np.random.Generator) -> str:
    out, node = ["B"], 0
    while node != 5:
        symbol, node = _REBER[node][rng.integers(2)]
        out.append(symbol)
    return "".join(out) + "E"


class ReberTask(Task):
    """Embedded Reber grammar ``B (T|P) <Reber string> (same T|P) E``, next-symbol prediction.

    x (T, B, 7) one-hot of the current symbol (zeros after the end), y = (next symbol (T, B),
    mask (T, B): 1 on real steps). ``accuracy`` is the long-memory score: the fraction of
    strings whose second-to-last symbol is predicted right (chance 0.5); ``step_accuracy``
    the fraction of real steps whose top prediction is the symbol that came next."""

    name, readout = "reber", "all"
    input_size = output_size = len(_REBER_SYMBOLS)
    baseline_label = "accuracy of guessing T or P"

    def __init__(self, seq_len: int):
        super().__init__(seq_len)
        if seq_len < 8:
            raise ValueError(
                f"reber: seq_len must be at least 8 (the shortest embedded "
                f"string has 9 symbols), got {seq_len}"
            )

    def strings(self, rng: np.random.Generator, batch_size: int) -> list[str]:
        """Embedded Reber strings with at most ``seq_len + 1`` symbols."""
        out = []
        while len(out) < batch_size:
            branch = "TP"[rng.integers(2)]
            s = "B" + branch + _reber_string(rng) + branch + "E"
            if len(s) - 1 <= self.seq_len:
                out.append(s)
        return out

    def _batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        strings = self.strings(rng, batch_size)
        t = max(len(s) for s in strings) - 1
        x = np.zeros((t, batch_size, self.input_size), dtype=np.float32)
        y = np.zeros((t, batch_size), dtype=np.int64)
        mask = np.zeros((t, batch_size), dtype=np.float32)
        for b, s in enumerate(strings):
            codes = [_REBER_SYMBOLS.index(c) for c in s]
            x[np.arange(len(s) - 1), b, codes[:-1]] = 1.0
            y[: len(s) - 1, b], mask[: len(s) - 1, b] = codes[1:], 1.0
        return x, (y, mask)

    def metrics(self, prediction: np.ndarray, y: Targets) -> dict[str, float]:
        targets, mask = y
        guess = prediction.argmax(-1)
        last = mask.sum(0).astype(int) - 2  # predicts the repeated T/P
        cols = np.arange(mask.shape[1])
        valid = mask > 0
        return {
            "accuracy": float(np.mean(guess[last, cols] == targets[last, cols])),
            "step_accuracy": float(np.mean(guess[valid] == targets[valid])),
        }

    def baseline(self) -> float:
        return 0.5


class SineTask(Task):
    """Forecast the next value of ``sin(w t + phi)``, w ~ U(0.1, 0.5), phi ~ U(0, 2 pi).

    x (T, B, 1) the wave, y (T, B, 1) the wave one step later."""

    name, readout, regression = "sine", "all", True
    baseline_label = "MSE of repeating the last value"

    def _batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        w = rng.uniform(0.1, 0.5, batch_size)
        phi = rng.uniform(0, 2 * np.pi, batch_size)
        t = np.arange(self.seq_len + 1)[:, None]
        wave = np.sin(w * t + phi).astype(np.float32)[:, :, None]
        return wave[:-1], wave[1:]

    def baseline(self) -> float:
        x, y = self.batch(np.random.default_rng(0), 256)
        return float(np.mean((x - y) ** 2))


def default_text_path() -> Path:
    """The text shipped with the package (original prose about recurrent networks)."""
    return Path(str(importlib.resources.files("tinygrad_lstm.tooling") / "data" / "recurrence.txt"))


class TextTask(Task):
    """Next-character prediction on random windows of a text file.

    x (T, B) character indices, y (T, B) the characters one step later. ``vocab`` (a string
    of the distinct characters) defaults to the file's; it is part of ``config`` so a model
    can be sampled without the file."""

    name, readout = "text", "all"
    baseline_label = "accuracy of always guessing the commonest character"

    def __init__(self, seq_len: int, path: str | None = None, vocab: str | None = None):
        super().__init__(seq_len)
        if vocab is not None and (
            not isinstance(vocab, str) or not vocab or len(set(vocab)) != len(vocab)
        ):
            raise ValueError(
                f"text: vocab must be a string of distinct characters, got {vocab!r:.60}"
            )
        self.path = path
        self.text = None
        if path is not None or vocab is None:
            file = Path(path) if path is not None else default_text_path()
            try:
                self.text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"text: cannot read {file}: {exc}") from None
            if len(self.text) < seq_len + 2:
                raise ValueError(
                    f"text: {file} has {len(self.text)} characters, fewer than "
                    f"seq_len + 2 = {seq_len + 2}"
                )
        self.vocab = vocab if vocab is not None else "".join(sorted(set(self.text)))
        self.input_size = self.output_size = self.vocab_size = len(self.vocab)
        self.index = {c: i for i, c in enumerate(self.vocab)}
        if self.text is not None:
            unknown = sorted(set(self.text) - set(self.index))
            if unknown:
                raise ValueError(f"text: characters {unknown} are not in the vocabulary")
            self.codes = np.array([self.index[c] for c in self.text], dtype=np.int64)

    def config(self) -> dict:
        return {"name": self.name, "seq_len": self.seq_len, "path": self.path, "vocab": self.vocab}

    def encode(self, text: str) -> np.ndarray:
        """Character indices of ``text``; ``ValueError`` naming any unknown character."""
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"text: characters {unknown} are not in the model's vocabulary")
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def _batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        if self.text is None:
            raise ValueError("text: this task was rebuilt from a vocabulary only; give a path")
        starts = rng.integers(0, len(self.codes) - self.seq_len - 1, batch_size)
        windows = self.codes[starts[None, :] + np.arange(self.seq_len + 1)[:, None]]
        return windows[:-1], windows[1:]

    def baseline(self) -> float:
        return float(np.bincount(self.codes).max() / len(self.codes)) if self.text else math.nan


TASKS: dict[str, type[Task]] = {
    t.name: t
    for t in (
        AddingTask,
        CopyTask,
        ReberTask,
        SineTask,
        TextTask,
        SunspotTask,
        SentimentTask,
    )
}


def make_task(config: dict) -> Task:
    """The task described by ``config`` (``Task.config()``'s output, or name + seq_len)."""
    if not isinstance(config, dict):
        raise TypeError(
            f"make_task: config must be a dict such as {{'name': 'adding', "
            f"'seq_len': 50}}, got {type(config).__name__}"
        )
    options = dict(config)
    name = options.pop("name", None)
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    accepted = set(inspect.signature(TASKS[name]).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown or "seq_len" not in options:
        raise ValueError(
            f"make_task: task {name} takes {sorted(accepted)} (seq_len "
            f"required), got {sorted(options)}"
        )
    return TASKS[name](**options)
