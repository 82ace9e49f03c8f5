"""What a one-step forecast must beat, and how forecasts are scored (NumPy only).

Every forecaster here predicts ``values[t]`` for each target index ``t`` from
``values[:t]`` alone, like the recurrent model's windows:

- ``persistence``: next year = this year, ``values[t - 1]``;
- ``seasonal_naive``: the value one period ago, ``values[t - period]`` (for sunspots the
  period is the ~11-year solar cycle);
- ``Autoregression``: ``values[t] ~ c + sum_k a_k values[t - k]``, k = 1..p, fitted by
  linear least squares on the training targets; ``select_autoregression`` picks p by the
  validation RMSE.

``forecast_errors`` gives MAE and RMSE in the series' own units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .sequence_task import check_count

__all__ = [
    "Autoregression",
    "forecast_errors",
    "persistence",
    "seasonal_naive",
    "select_autoregression",
]


def _check_targets(where: str, values: np.ndarray, targets: np.ndarray, lag: int) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.ndim != 1 or targets.dtype.kind not in "iu":
        raise ValueError(
            f"{where}: targets must be a 1-D array of indices, got {targets.dtype} "
            f"array of shape {targets.shape}"
        )
    if targets.size and (targets.min() < lag or targets.max() >= len(values)):
        raise ValueError(
            f"{where}: every target index must lie in [{lag}, {len(values)}) so that "
            f"{lag} earlier value(s) exist, got {targets.min()}..{targets.max()}"
        )
    return targets


def forecast_errors(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``{"mae": mean |e|, "rmse": sqrt(mean e^2)}`` with ``e = prediction - truth``
    (arrays of one shape)."""
    prediction, truth = np.asarray(prediction, np.float64), np.asarray(truth, np.float64)
    if prediction.shape != truth.shape:
        raise ValueError(
            f"forecast_errors: prediction {prediction.shape} and truth {truth.shape} differ"
        )
    error = prediction - truth
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}


def persistence(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``values[t - 1]`` for each target index ``t``: tomorrow is like today."""
    return _shifted("persistence", values, targets, 1)


def seasonal_naive(values: np.ndarray, targets: np.ndarray, period: int) -> np.ndarray:
    """``values[t - period]`` for each target index ``t``: the same point of the last cycle."""
    check_count("seasonal_naive", "period", period)
    return _shifted("seasonal_naive", values, targets, period)


def _shifted(where: str, values: np.ndarray, targets: np.ndarray, lag: int) -> np.ndarray:
    targets = _check_targets(where, values, targets, lag)
    return np.asarray(values, np.float64)[targets - lag]


def _lagged(values: np.ndarray, targets: np.ndarray, order: int) -> np.ndarray:
    """(N, order + 1) rows ``[values[t-1], ..., values[t-order], 1]``."""
    lags = targets[:, None] - np.arange(1, order + 1)[None, :]
    return np.hstack([values[lags], np.ones((len(targets), 1))])


@dataclass(frozen=True)
class Autoregression:
    """A linear AR(p) forecaster: ``values[t] = intercept + coefficients . (values[t-1],
    ..., values[t-p])``, coefficients (p,)."""

    coefficients: np.ndarray
    intercept: float

    @property
    def order(self) -> int:
        """p, how many past values it reads."""
        return len(self.coefficients)

    @classmethod
    def fit(cls, values: np.ndarray, targets: np.ndarray, order: int) -> Autoregression:
        """Least squares over the rows ``values[t]`` ~ lags of ``t``, for ``t`` in
        ``targets`` (each needs ``order`` earlier values): ``numpy.linalg.lstsq``."""
        check_count("Autoregression.fit", "order", order)
        values = np.asarray(values, np.float64)
        targets = _check_targets("Autoregression.fit", values, targets, order)
        if len(targets) <= order:
            raise ValueError(
                f"Autoregression.fit: {len(targets)} targets cannot determine {order + 1} "
                f"coefficients"
            )
        solution = np.linalg.lstsq(_lagged(values, targets, order), values[targets], rcond=None)
        return cls(solution[0][:-1], float(solution[0][-1]))

    def predict(self, values: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The one-step forecast of ``values[t]`` for each target index ``t``."""
        values = np.asarray(values, np.float64)
        targets = _check_targets("Autoregression.predict", values, targets, self.order)
        weights = np.append(self.coefficients, self.intercept)
        return _lagged(values, targets, self.order) @ weights


def select_autoregression(
    values: np.ndarray,
    train_targets: np.ndarray,
    val_targets: np.ndarray,
    orders: Sequence[int],
) -> Autoregression:
    """The AR(p), p in ``orders``, fitted on ``train_targets``, whose validation RMSE (on
    ``val_targets``) is lowest; the smallest p wins a tie."""
    if not orders:
        raise ValueError("select_autoregression: orders must name at least one order")
    best, best_rmse = None, np.inf
    for order in sorted(orders):
        model = Autoregression.fit(values, train_targets, order)
        truth = np.asarray(values, np.float64)[val_targets]
        rmse = forecast_errors(model.predict(values, val_targets), truth)["rmse"]
        if rmse < best_rmse:
            best, best_rmse = model, rmse
    return best
