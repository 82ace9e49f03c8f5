"""The forecast chart: each value lands in its year's column and its value's row; the PNG
is written with matplotlib and skipped, returning False, without it."""

import sys

import numpy as np
import pytest
from tinygrad_lstm.tooling.forecast_chart import forecast_png, forecast_text_chart

YEARS = np.array([2000, 2001, 2002])


def test_text_chart_places_each_year_in_its_column_and_row():
    chart = forecast_text_chart(YEARS, {"truth": np.array([0.0, 5.0, 10.0])}, height=3)
    rows = [line.split("|", 1)[1] for line in chart.splitlines()[:3]]
    assert rows == ["  T", " T ", "T  "]  # 10 on top, 5 in the middle, 0 at the bottom
    assert chart.splitlines()[0].split()[0] == "10" and chart.splitlines()[2].split()[0] == "0"
    assert "2000" in chart and "2002" in chart and "T = truth" in chart


def test_text_chart_marks_where_curves_meet():
    chart = forecast_text_chart(
        YEARS, {"truth": np.array([0.0, 5.0, 10.0]), "lstm": np.array([0.0, 10.0, 10.0])}, height=3
    )
    rows = [line.split("|", 1)[1] for line in chart.splitlines()[:3]]
    assert rows == [" L*", " T ", "*  "] and "L = lstm" in chart


def test_curves_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="forecast_text_chart: curve 'lstm' has shape"):
        forecast_text_chart(YEARS, {"lstm": np.zeros(2)})
    with pytest.raises(ValueError, match="needs height >= 2, width >= 1 and one year or more"):
        forecast_text_chart(YEARS, {"lstm": np.zeros(3)}, height=1)


def test_png_with_matplotlib_and_false_without(tmp_path, monkeypatch):
    curves = {"lstm": np.array([1.0, 4.0, 9.0])}
    truth = np.array([1.0, 5.0, 8.0])
    if "matplotlib" not in sys.modules:
        pytest.importorskip("matplotlib")
    assert forecast_png(str(tmp_path / "f.png"), YEARS, truth, curves, "test")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert not forecast_png(str(tmp_path / "g.png"), YEARS, truth, curves, "test")
    assert not (tmp_path / "g.png").exists()
