"""The sunspot forecasting task: the shipped series, the chronological split, windows that
hold exactly the years before their target, and normalisation fitted on the training years
alone (checked by changing the later years and seeing nothing move)."""

import numpy as np
import pytest
from tinygrad_lstm.tooling import forecasting, tasks
from tinygrad_lstm.tooling.forecasting import Series, SunspotTask, chronological_split, sunspots


def test_the_shipped_series_is_the_yearly_sunspot_record():
    series = sunspots()
    np.testing.assert_array_equal(series.years, np.arange(1700, 2009))
    assert series.values.shape == (309,) and series.values.min() >= 0
    # Values read off the source (NOAA NGDC's yearly table): the first and last years, the
    # first year of the monthly record, and the largest maximum on record, 1957.
    by_year = dict(zip(series.years.tolist(), series.values.tolist()))
    assert (by_year[1700], by_year[1749], by_year[1957], by_year[2008]) == (5, 80.9, 190.2, 2.9)
    assert series.values.argmax() == 1957 - 1700


def test_chronological_split_cuts_in_time_order():
    spans = chronological_split(309)
    # 15% of 309 is 46.35: 46 test years, 46 validation years, the first 217 train.
    assert (spans.train_end, spans.val_end, spans.length) == (217, 263, 309)
    assert [spans.bounds(s) for s in ("train", "val", "test")] == [(0, 217), (217, 263), (263, 309)]
    assert chronological_split(10, val=0.2, test=0.3).bounds("test") == (7, 10)
    with pytest.raises(ValueError, match="Spans: span must be one of"):
        spans.bounds("validation")
    with pytest.raises(ValueError, match="val and test must be fractions"):
        chronological_split(100, val=0.5, test=0.5)
    with pytest.raises(ValueError, match="4 values leave no training span"):
        chronological_split(4, val=0.45, test=0.45)


@pytest.mark.parametrize("span", ["train", "val", "test"])
def test_each_window_holds_the_years_just_before_its_target(span):
    task = SunspotTask(12)
    x, y = task.windows(span)
    targets = task.targets(span)
    start, stop = task.spans.bounds(span)
    assert x.shape == (12, len(targets), 1) and y.shape == (len(targets), 1)
    assert x.dtype == np.float32 and targets.min() >= max(start, 12) and targets.max() < stop
    assert np.all(np.diff(targets) == 1) and targets[-1] == stop - 1  # every year, in order
    z = (task.series.values - task.mean) / task.std
    for i, t in enumerate(targets):
        np.testing.assert_allclose(x[:, i, 0], z[t - 12 : t], rtol=1e-6)
        np.testing.assert_allclose(y[i, 0], z[t], rtol=1e-6)


def test_normalisation_is_fitted_on_the_training_years_only(monkeypatch):
    task = SunspotTask(10)
    train = task.series.values[:217]
    assert task.mean == pytest.approx(train.mean()) and task.std == pytest.approx(train.std())
    real = sunspots()
    later_changed = real.values.copy()
    later_changed[217:] = later_changed[217:] * 10 + 500
    monkeypatch.setattr(
        forecasting, "sunspots", lambda: Series(real.name, real.years, later_changed)
    )
    changed = SunspotTask(10)
    assert (changed.mean, changed.std) == (task.mean, task.std)
    np.testing.assert_array_equal(changed.windows("train")[0], task.windows("train")[0])


def test_training_batches_come_from_training_windows_only():
    task = SunspotTask(15)
    x, y = task.batch(np.random.default_rng(0), 500)
    train_x, train_y = task.windows("train")
    known = {tuple(train_x[:, i, 0]) + (train_y[i, 0],) for i in range(train_y.shape[0])}
    drawn = {tuple(x[:, i, 0]) + (y[i, 0],) for i in range(500)}
    assert drawn <= known and len(drawn) > 100


def test_metrics_and_baseline_are_in_sunspot_numbers():
    task = SunspotTask(20)
    _, y = task.held_out(np.random.default_rng(0), 7)  # every validation window, whatever asked
    assert y.shape == (46, 1)
    shifted = task.metrics(y + 2.0 / task.std, y)  # 2 sunspots too high everywhere
    assert shifted == pytest.approx({"mae": 2.0, "rmse": 2.0}, rel=1e-6)
    values = task.series.values
    persistence_rmse = np.sqrt(np.mean((values[216:262] - values[217:263]) ** 2))
    assert task.baseline() == pytest.approx(persistence_rmse, rel=1e-12)
    assert task.held_out_label == "the validation years 1917-1962"


def test_evaluate_scores_the_validation_windows():
    task = tasks.make_task({"name": "sunspots", "seq_len": 8})
    model = tasks.build_model(tasks.model_config(task, "gru", 4), rng=np.random.default_rng(0))
    scores = tasks.evaluate(model, task, np.random.default_rng(1))
    x, y = task.windows("val")
    prediction, _ = model(x)
    assert set(scores) == {"loss", "mae", "rmse"}
    assert scores["rmse"] == pytest.approx(
        task.std * np.sqrt(np.mean((prediction.data - y) ** 2)), rel=1e-5
    )


def test_window_longer_than_the_training_span_is_refused():
    with pytest.raises(ValueError, match="sunspots: seq_len must be below 217"):
        SunspotTask(217)
    with pytest.raises(ValueError, match="held_out: batch_size must be an integer >= 1"):
        SunspotTask(5).held_out(np.random.default_rng(0), 0)
