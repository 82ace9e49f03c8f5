"""The running prediction: entry t is the model's answer for the first t+1 words run on
their own, as one sequence with no padding; the printout gives one line per word."""

import numpy as np
import pytest
from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.sentiment import SentimentTask
from tinygrad_lstm.tooling.sentiment_view import running_prediction, running_prediction_text

import tinygrad_lstm as tg

WORDS = "the plot was good but the acting was not very good".split()


def _model():
    task = SentimentTask(14)
    config = tasks.model_config(task, "lstm", 6, bidirectional=True)
    return task, tasks.build_model(config, rng=np.random.default_rng(0))


def test_each_entry_is_the_prefix_on_its_own():
    task, model = _model()
    running = running_prediction(model, task, WORDS)
    assert running.shape == (len(WORDS),) and model.training  # training mode restored
    for t in range(len(WORDS)):
        with tg.no_grad():
            logits, _ = model(task.encode([WORDS[: t + 1]]))  # T = t+1, no padding
        z = logits.data[0].astype(np.float64)
        assert running[t] == pytest.approx(1 / (1 + np.exp(z[0] - z[1])), rel=1e-5)


def test_printout_has_a_line_per_word_and_the_rule_verdict():
    text = running_prediction_text(["the", "plot", "was", "bad"], np.array([0.5, 0.6, 0.2, 0.0]))
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["word", "P(positive)"] and len(lines) == 6
    assert lines[4].split()[:2] == ["bad", "0.000"] and lines[4].endswith("|" + " " * 14)
    assert lines[4].split()[2].startswith("#") and lines[2].split()[2] == "|"
    assert lines[5] == "model: negative; the grammar's rules: negative"
    other = running_prediction_text(["the", "plot"], np.array([0.5, 0.9]))
    assert other.splitlines()[-1] == "(not a sentence of the grammar: no rule label)"


def test_bad_arguments_are_named():
    task, model = _model()
    with pytest.raises(ValueError, match="the review has no words"):
        running_prediction(model, task, [])
    with pytest.raises(TypeError, match="task must be a SentimentTask"):
        running_prediction(model, tasks.AddingTask(5), WORDS)
    with pytest.raises(ValueError, match="3 words but 2 predictions"):
        running_prediction_text(["a", "b", "c"], np.zeros(2))
