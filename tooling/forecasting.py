"""Forecasting a real series: next year's sunspot number from the years before (NumPy only).

The series is the yearly sunspot numbers 1700-2008 shipped with the package
(``data/sunspots.csv``, public domain; source and licence in ``data/README.md``). It is cut
the way a forecast is used, in time order:

- ``chronological_split``: the first 70% of the years train, the next 15% validate (choose
  the step count, the AR order, ...), the last 15% test; nothing is shuffled across the cuts;
- ``SunspotTask``: a window of ``seq_len`` years in, the next year out (many-to-one). The
  values are normalised with the mean and standard deviation of the *training* years only,
  so nothing about the later years leaks into the model's inputs. A window belongs to the
  span of its target year; its inputs may reach back into earlier spans, as they would when
  forecasting for real.

The baselines that a forecast must beat (persistence, the previous cycle, a linear
autoregression) are in ``tinygrad_lstm.tooling.forecast_baselines``.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

import numpy as np

from .forecast_baselines import forecast_errors, persistence
from .sequence_task import Batch, Targets, Task, check_count, check_rng

__all__ = ["SPANS", "Series", "Spans", "SunspotTask", "chronological_split", "sunspots"]

SPANS = ("train", "val", "test")


@dataclass(frozen=True)
class Series:
    """A yearly series: ``years`` (N,) int and ``values`` (N,) float64, in time order."""

    name: str
    years: np.ndarray
    values: np.ndarray


def sunspots() -> Series:
    """The yearly mean sunspot numbers 1700-2008 (309 values), from the shipped CSV."""
    path = importlib.resources.files("tinygrad_lstm.tooling") / "data" / "sunspots.csv"
    with importlib.resources.as_file(path) as file:
        table = np.loadtxt(file, delimiter=",", skiprows=1, ndmin=2)
    return Series("yearly sunspot number", table[:, 0].astype(np.int64), table[:, 1])


@dataclass(frozen=True)
class Spans:
    """Index bounds of a chronological split of N values: train ``[0, train_end)``,
    validation ``[train_end, val_end)``, test ``[val_end, length)``."""

    train_end: int
    val_end: int
    length: int

    def bounds(self, span: str) -> tuple[int, int]:
        """``(start, stop)`` of ``span``: ``"train"``, ``"val"`` or ``"test"``."""
        if span not in SPANS:
            raise ValueError(f"Spans: span must be one of {SPANS}, got {span!r}")
        edges = (0, self.train_end, self.val_end, self.length)
        k = SPANS.index(span)
        return edges[k], edges[k + 1]


def chronological_split(length: int, val: float = 0.15, test: float = 0.15) -> Spans:
    """The last ``test`` fraction of ``length`` values (rounded) for testing, the ``val``
    fraction before it for validation, the rest, the earliest, for training."""
    check_count("chronological_split", "length", length, low=3)
    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        raise ValueError(
            f"chronological_split: val and test must be fractions in (0, 1) with a sum "
            f"below 1, got val={val!r}, test={test!r}"
        )
    n_test = max(1, round(length * test))
    n_val = max(1, round(length * val))
    if n_test + n_val >= length:
        raise ValueError(f"chronological_split: {length} values leave no training span")
    return Spans(length - n_val - n_test, length - n_test, length)


class SunspotTask(Task):
    """Forecast next year's sunspot number from the ``seq_len`` years before it.

    x (seq_len, B, 1) normalised values, y (B, 1) the normalised value of the year after the
    window. ``batch`` draws training windows (target years in the training span);
    ``held_out`` gives every validation window, ``windows("test")`` every test window, each
    in time order. ``metrics`` are in sunspot numbers: MAE and RMSE of the de-normalised
    prediction. ``baseline()`` is the validation RMSE of persistence.
    """

    name, readout, regression = "sunspots", "last", True
    # The model reads a window of past years and predicts the year after it, so reading the
    # window in both directions sees nothing of the answer.
    causal = False
    input_size = output_size = 1
    baseline_label = "RMSE of persistence (next year = this year)"

    def __init__(self, seq_len: int):
        super().__init__(seq_len)
        self.series = sunspots()
        self.spans = chronological_split(len(self.series.values))
        if seq_len >= self.spans.train_end:
            raise ValueError(
                f"sunspots: seq_len must be below {self.spans.train_end} (the training span "
                f"has {self.spans.train_end} years), got {seq_len}"
            )
        train = self.series.values[: self.spans.train_end]
        self.mean, self.std = float(train.mean()), float(train.std())
        self.scaled = ((self.series.values - self.mean) / self.std).astype(np.float32)
        start, stop = self.spans.bounds("val")
        years = self.series.years
        self.held_out_label = f"the validation years {years[start]}-{years[stop - 1]}"

    def targets(self, span: str) -> np.ndarray:
        """Indices (into the series) of the years forecast in ``span``, in time order: those
        with a whole window of ``seq_len`` years before them."""
        start, stop = self.spans.bounds(span)
        return np.arange(max(start, self.seq_len), stop)

    def _windows_at(self, targets: np.ndarray) -> Batch:
        steps = targets[None, :] + np.arange(-self.seq_len, 0)[:, None]
        return self.scaled[steps][:, :, None], self.scaled[targets][:, None]

    def windows(self, span: str) -> Batch:
        """Every window of ``span`` in time order: x (seq_len, N, 1), y (N, 1)."""
        return self._windows_at(self.targets(span))

    def _batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        train = self.targets("train")
        return self._windows_at(train[rng.integers(0, len(train), batch_size)])

    def held_out(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """Every validation window (the same ones each time; ``rng`` and ``batch_size`` are
        checked but not used)."""
        check_rng(f"{self.name}.held_out", rng)
        check_count(f"{self.name}.held_out", "batch_size", batch_size)
        return self.windows("val")

    def to_values(self, normalised: np.ndarray) -> np.ndarray:
        """Normalised values back in sunspot numbers: ``v = z * std + mean`` (train's)."""
        return np.asarray(normalised, dtype=np.float64) * self.std + self.mean

    def metrics(self, prediction: np.ndarray, y: Targets) -> dict[str, float]:
        return forecast_errors(self.to_values(prediction), self.to_values(y))

    def baseline(self) -> float:
        values, targets = self.series.values, self.targets("val")
        return forecast_errors(persistence(values, targets), values[targets])["rmse"]
