"""``tinygrad-lstm bptt``: runs tiny, prints the per-cell summary, draws the chart, and shows
what theory predicts about how much gradient reaches the first step."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest
from tinygrad_lstm.tooling.cli import main
from tinygrad_lstm.tooling.commands._charts import terminal_chart

ROW = re.compile(r"^(?P<label>[a-z][a-z ,0-9.]*?)\s{2,}(?P<rest>[-0-9.e+ ]+)$")


def summary(out: str) -> dict[str, list[str]]:
    """label -> the table's other columns, from the printed summary."""
    rows = {}
    for line in out.splitlines():
        m = ROW.match(line)
        if m and not line.startswith("cell "):
            rows[m["label"]] = m["rest"].split()
    return rows


def test_tiny_run_prints_the_summary_and_draws(tmp_path, capsys):
    png = tmp_path / "b.png"
    assert (
        main(
            [
                "bptt",
                "--cells",
                "rnn,lstm,gru",
                "--seq-len",
                "12",
                "--hidden",
                "4",
                "--batch",
                "4",
                "--train-steps",
                "2",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "||dL/dh_0|| / ||dL/dh_11||" in out
    rows = summary(out)
    assert list(rows) == ["rnn", "lstm", "lstm, forget bias 1", "gru"], out
    for label, cols in rows.items():
        ratios = [float(c) for c in cols if c != "-"]
        assert len(ratios) == 2 + 2 * label.startswith("lstm") + 1, (label, cols)
        assert all(0 < r < 10 for r in ratios[:-1]), (label, cols)  # ratios, then the loss
    if importlib.util.find_spec("matplotlib"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in out
    else:
        assert "distance from the loss" in out


def test_terminal_chart_on_request(tmp_path, capsys):
    assert (
        main(
            [
                "bptt",
                "--cells",
                "rnn",
                "--forget-bias",
                "none",
                "--seq-len",
                "8",
                "--hidden",
                "3",
                "--batch",
                "2",
                "--terminal",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "R = rnn" in out and "distance from the loss" in out
    assert not (tmp_path / "x.png").exists()
    assert list(summary(out)) == ["rnn"]


def test_terminal_chart_puts_each_point_on_its_decade():
    chart = terminal_chart({"a": np.array([1.0, 1e-1, 1e-2, 1e-3])}, width=4, height=4)
    grid = [line.split("|", 1)[1] for line in chart.splitlines()[:4]]
    assert grid == ["A   ", " A  ", "  A ", "   A"], chart
    assert chart.splitlines()[0].strip().startswith("1e+0") and "1e-3" in chart


def test_forget_bias_sets_how_far_the_lstm_gradient_reaches(capsys):
    # Along the cell state the gradient is multiplied by f = sigmoid(b + ...) at every step,
    # so a larger forget bias must let more of it reach the first step.
    assert (
        main(
            [
                "bptt",
                "--cells",
                "lstm",
                "--forget-bias",
                "1,3",
                "--seq-len",
                "20",
                "--hidden",
                "8",
                "--batch",
                "8",
                "--terminal",
            ]
        )
        == 0
    )
    rows = summary(capsys.readouterr().out)
    default, one, three = (
        float(rows[k][0]) for k in ("lstm", "lstm, forget bias 1", "lstm, forget bias 3")
    )
    assert default < one < three, rows


def test_rnn_vanishes_over_100_steps_where_a_forget_bias_3_lstm_does_not(capsys):
    # RNN at PyTorch's init: W_hh ~ U(+-1/sqrt(H)) has spectral radius ~ 1/sqrt(3), and
    # tanh' <= 1, so ~0.58**99 ~ 1e-23 reaches back. LSTM with b_f = 3: sigmoid(3)**99 ~ 1e-2.
    assert (
        main(
            [
                "bptt",
                "--cells",
                "rnn,lstm",
                "--forget-bias",
                "3",
                "--seq-len",
                "100",
                "--hidden",
                "32",
                "--batch",
                "8",
                "--terminal",
            ]
        )
        == 0
    )
    rows = summary(capsys.readouterr().out)
    assert float(rows["rnn"][0]) < 1e-15, rows
    assert float(rows["lstm, forget bias 3"][0]) > 1e-4, rows


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cells", "rnn,nope"], "unknown cell(s) 'nope'; registered cells:"),
        (["--forget-bias", "high"], "--forget-bias takes numbers or 'none'"),
        (["--cells", "gru", "--forget-bias", "1"], "--forget-bias needs lstm among --cells"),
        (["--init-scale", "0"], "--init-scale must be positive"),
        (["--compare-clipping", "5", "--clip", "0"], "--clip positive"),
        (["--seq-len", "1"], "--seq-len must be at least 2"),
        (["--lr", "0"], "--lr must be positive"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    assert main(["bptt", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


# ---- exploding gradients and clipping ----------------------------------------------------
def growth(out: str) -> dict[str, float]:
    """label -> the printed gradient growth per step."""
    rows = {}
    for line in out.split("Gradient growth per step", 1)[1].splitlines()[2:]:
        m = re.match(r"^(?P<label>[a-z][a-z ,0-9.]*?)\s{2,}x(?P<g>[0-9.]+)", line)
        if m:
            rows[m["label"]] = float(m["g"])
    return rows


def test_spectral_radius_is_set_exactly():
    from tinygrad_lstm.layers import LSTMCell, RNNCell
    from tinygrad_lstm.tooling.commands._clipping import set_spectral_radius

    cell = RNNCell(2, 6, rng=np.random.default_rng(0))
    assert set_spectral_radius(cell, 2.5)
    assert np.max(np.abs(np.linalg.eigvals(cell.weight_hh.data))) == pytest.approx(2.5, rel=1e-5)
    lstm = LSTMCell(2, 6)
    before = lstm.weight_hh.data.copy()
    assert not set_spectral_radius(lstm, 2.5)
    np.testing.assert_array_equal(lstm.weight_hh.data, before)


def test_spectral_radius_above_one_makes_the_gradient_grow_back_in_time(capsys):
    # Going back one step multiplies the gradient by diag(tanh') W_hh: with W_hh's spectral
    # radius at 3 it can grow (tanh' <= 1 takes some back); at 0.5 it must shrink.
    for scale, grows in (("3", True), ("0.5", False)):
        assert (
            main(
                [
                    "bptt",
                    "--cells",
                    "rnn",
                    "--forget-bias",
                    "none",
                    "--init-scale",
                    scale,
                    "--seq-len",
                    "20",
                    "--hidden",
                    "16",
                    "--batch",
                    "8",
                    "--terminal",
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        rate, ratio = growth(out)["rnn"], float(summary(out)["rnn"][0])
        assert (rate > 1 and ratio > 1) if grows else (rate < 1 and ratio < 1), out


def test_without_clipping_sgd_overflows_and_with_clipping_it_trains(tmp_path, capsys):
    # Spectral radius 4: unclipped SGD overflows near step 60 of 80, however float32 rounds
    # (at 3 whether it overflowed before step 80 turned on the last bits of the float32 math).
    png = tmp_path / "clip.png"
    assert (
        main(
            [
                "bptt",
                "--cells",
                "rnn",
                "--forget-bias",
                "none",
                "--init-scale",
                "4",
                "--seq-len",
                "20",
                "--hidden",
                "16",
                "--compare-clipping",
                "80",
                "--lr",
                "0.1",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("rnn ") and "step" in line)
    unclipped, clipped = re.split(r"\s{2,}", row)[2:4]
    assert re.search(r"loss (inf|nan) at step \d+", unclipped), row
    assert "spike" not in clipped and "at step" not in clipped, row
    assert float(clipped.split()[-1]) < 0.3, row  # from 0.34 at the first step
    if importlib.util.find_spec("matplotlib"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_options_a_cell_ignores_are_named(capsys):
    from tinygrad_lstm.layers import GRUCell

    from tinygrad_lstm import registry

    saved = dict(registry._CELLS)
    registry.register_cell("my_gru")(type("MyGRU", (GRUCell,), {}))
    try:
        assert (
            main(
                [
                    "bptt",
                    "--cells",
                    "lstm,my_gru",
                    "--forget-bias",
                    "2",
                    "--init-scale",
                    "1.5",
                    "--seq-len",
                    "5",
                    "--hidden",
                    "3",
                    "--batch",
                    "2",
                    "--terminal",
                ]
            )
            == 0
        )
    finally:
        registry._CELLS.clear()
        registry._CELLS.update(saved)
    out = capsys.readouterr().out
    assert "note: my_gru ignores --forget-bias" in out
    assert "note: my_gru ignores --init-scale" in out and "note: lstm ignores --init-scale" in out
    assert "note: lstm ignores --forget-bias" not in out


def test_default_forget_bias_needs_no_lstm(capsys):
    assert (
        main(
            [
                "bptt",
                "--cells",
                "gru",
                "--seq-len",
                "5",
                "--hidden",
                "3",
                "--batch",
                "2",
                "--terminal",
            ]
        )
        == 0
    )
    assert list(summary(capsys.readouterr().out)) == ["gru"]
