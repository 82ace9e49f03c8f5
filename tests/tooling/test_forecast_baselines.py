"""The forecasting baselines against hand values, and the least-squares autoregression
against a series that is an exact AR(2): a sinusoid around an offset."""

import numpy as np
import pytest
from tinygrad_lstm.tooling.forecast_baselines import (
    Autoregression,
    forecast_errors,
    persistence,
    seasonal_naive,
    select_autoregression,
)

VALUES = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0])


def test_naive_forecasts_read_the_past_only():
    targets = np.array([3, 5])
    np.testing.assert_array_equal(persistence(VALUES, targets), [4.0, 11.0])
    np.testing.assert_array_equal(seasonal_naive(VALUES, targets, 2), [2.0, 7.0])
    np.testing.assert_array_equal(seasonal_naive(VALUES, targets, 3), [1.0, 4.0])


def test_forecast_errors_hand_values():
    errors = forecast_errors(np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 6.0]))
    assert errors == pytest.approx({"mae": 5 / 3, "rmse": np.sqrt(13 / 3)}, rel=1e-15)


def _offset_sinusoid(n=80, w=0.7, c=3.0):
    # sin(w t) = 2 cos(w) sin(w (t-1)) - sin(w (t-2)), so y = c + sin(w t) obeys
    # y_t = 2 cos(w) y_{t-1} - y_{t-2} + c (2 - 2 cos(w)) exactly.
    return c + np.sin(w * np.arange(n)), (2 * np.cos(w), -1.0), c * (2 - 2 * np.cos(w))


def test_least_squares_recovers_an_exact_ar2():
    values, coefficients, intercept = _offset_sinusoid()
    model = Autoregression.fit(values, np.arange(2, 60), 2)
    assert model.order == 2
    np.testing.assert_allclose(model.coefficients, coefficients, rtol=1e-10)
    assert model.intercept == pytest.approx(intercept, rel=1e-10)
    np.testing.assert_allclose(model.predict(values, np.arange(60, 80)), values[60:], atol=1e-10)


def test_least_squares_residual_is_orthogonal_to_every_lag():
    # The normal equations of least squares, checked on a series no AR fits exactly.
    values = np.random.default_rng(0).standard_normal(50).cumsum()
    targets = np.arange(3, 50)
    residual = values[targets] - Autoregression.fit(values, targets, 3).predict(values, targets)
    design = np.stack([values[targets - 1], values[targets - 2], values[targets - 3]], 1)
    np.testing.assert_allclose(design.T @ residual, 0, atol=1e-9)
    assert abs(residual.sum()) < 1e-9  # the intercept's column


def test_the_validation_span_picks_the_order():
    values, _, _ = _offset_sinusoid()
    chosen = select_autoregression(values, np.arange(2, 60), np.arange(60, 80), [1, 2])
    assert chosen.order == 2  # AR(1) cannot follow a sinusoid; AR(2) is exact
    assert select_autoregression(values, np.arange(2, 60), np.arange(60, 80), [1]).order == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: persistence(VALUES, np.array([0, 2])),
            r"persistence: every target index must lie in \[1, 6\)",
        ),
        (lambda: seasonal_naive(VALUES, np.array([6]), 1), r"lie in \[1, 6\)"),
        (lambda: seasonal_naive(VALUES, np.array([3]), 0), "period must be an integer >= 1"),
        (lambda: persistence(VALUES, np.array([2.0])), "targets must be a 1-D array of indices"),
        (lambda: Autoregression.fit(VALUES, np.array([2, 3]), 2), "2 targets cannot determine 3"),
        (lambda: forecast_errors(np.zeros(3), np.zeros(4)), r"prediction \(3,\) and truth \(4,\)"),
        (
            lambda: select_autoregression(VALUES, np.arange(1, 4), np.arange(4, 6), []),
            "orders must",
        ),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()
