"""Tasks and models: each generator's data obeys its definition (checked independently of
how it is generated), batches are seeded, and the model builder's readouts are right.

(``tooling/datasets.py`` holds the generators; ``tooling/tasks.py`` re-exports
them with the models, so both are tested here.)
"""

import re

import numpy as np
import pytest
from tinygrad_lstm.tooling import tasks

import tinygrad_lstm as tg

# The Reber language written as a regular expression, from the grammar's graph: node 3
# continues with (X T* V P)* then S or X T* V V; node 4 with V, or P and then node 3.
_NODE3 = r"(XT*VP)*(S|XT*VV)"
REBER = re.compile(rf"^B(TS*X{_NODE3}|PT*V(V|P{_NODE3}))E$")
EMBEDDED = re.compile(r"^B(T(?P<t>.+)T|P(?P<p>.+)P)E$")


def test_reber_regex_sanity():
    for good in ["BTSSXXTVVE", "BPVVE", "BTXSE", "BPTVPXVVE"]:
        assert REBER.match(good), good
    for bad in ["BTSSXXTVE", "BPVE", "BTXXE", "BTSE"]:
        assert not REBER.match(bad), bad


def _rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_batches_are_seeded(name):
    task = tasks.make_task({"name": name, "seq_len": 24})
    (x1, y1), (x2, y2), (x3, _) = (task.batch(_rng(s), 5) for s in (3, 3, 4))
    np.testing.assert_array_equal(x1, x2)
    for a, b in zip(y1 if isinstance(y1, tuple) else [y1], y2 if isinstance(y2, tuple) else [y2]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(x1, x3)


def test_adding_problem_definition():
    task = tasks.AddingTask(40)
    x, y = task.batch(_rng(), 500)
    assert x.shape == (40, 500, 2) and y.shape == (500, 1) and x.dtype == np.float32
    markers = x[:, :, 1]
    assert np.all(markers.sum(0) == 2)
    assert np.all(markers[:20].sum(0) == 1) and np.all(markers[20:].sum(0) == 1)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * markers).sum(0), rtol=1e-6)
    assert 0 <= x[:, :, 0].min() and x[:, :, 0].max() < 1
    baseline_mse = np.mean((1.0 - y) ** 2)  # 1/6 is the variance of U(0,1) + U(0,1)
    assert abs(baseline_mse - 1 / 6) < 0.02
    assert task.baseline() == pytest.approx(0.1667, abs=1e-4)


def test_copy_task_definition():
    task = tasks.CopyTask(20)
    x, y = task.batch(_rng(), 6)
    codes = x.argmax(-1)
    assert x.shape == (20, 6, 10) and np.all(x.sum(-1) == 1)
    np.testing.assert_array_equal(codes[:5], y)  # the symbols to recall
    assert np.all(codes[5:14] == 8) and np.all(codes[14] == 9) and np.all(codes[15:] == 8)
    assert y.shape == (task.tail, 6) and y.max() < 8


def test_reber_strings_are_embedded_reber_and_encoded_as_next_symbol():
    task = tasks.ReberTask(30)
    for s in task.strings(_rng(), 200):
        m = EMBEDDED.match(s)
        assert m and REBER.match(m.group("t") or m.group("p")), s
        assert len(s) - 1 <= 30
    x, (y, mask) = task.batch(_rng(1), 8)
    symbols = "BTPSXVE"
    for b, s in enumerate(task.strings(_rng(1), 8)):
        n = len(s) - 1
        assert "".join(symbols[i] for i in x[:n, b].argmax(-1)) == s[:-1]
        assert "".join(symbols[i] for i in y[:n, b]) == s[1:]
        assert mask[:, b].sum() == n and np.all(x[n:, b] == 0)


def test_reber_metric_scores_the_repeated_symbol():
    task = tasks.ReberTask(30)
    _, (y, mask) = task.batch(_rng(2), 16)
    perfect = np.eye(7)[y]
    assert task.metrics(perfect, (y, mask)) == {"accuracy": 1.0, "step_accuracy": 1.0}
    wrong = perfect.copy()
    last = mask.sum(0).astype(int) - 2
    wrong[last, np.arange(16)] = np.eye(7)[(y[last, np.arange(16)] + 1) % 7]
    assert task.metrics(wrong, (y, mask))["accuracy"] == 0.0


def test_sine_targets_are_the_next_value():
    x, y = tasks.SineTask(30).batch(_rng(), 4)
    np.testing.assert_array_equal(x[1:], y[:-1])
    assert x.shape == (30, 4, 1)


def test_text_windows_come_from_the_text(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abracadabra, said the cat. " * 4)
    task = tasks.TextTask(10, path=str(path))
    assert task.vocab == "".join(sorted(set(path.read_text())))
    x, y = task.batch(_rng(), 3)
    np.testing.assert_array_equal(x[1:], y[:-1])
    text = path.read_text()
    for b in range(3):
        assert "".join(task.vocab[i] for i in x[:, b]) in text
    rebuilt = tasks.make_task({"name": "text", "seq_len": 10, "vocab": task.vocab})
    np.testing.assert_array_equal(rebuilt.encode("cat"), task.encode("cat"))
    with pytest.raises(ValueError, match=r"characters \['z'\] are not in the model's vocab"):
        task.encode("zebra")


def test_default_text_ships_with_the_package():
    task = tasks.TextTask(50)
    assert len(task.text) > 3000 and task.vocab_size < 80


def test_make_task_errors():
    with pytest.raises(ValueError, match="unknown task 'xor'"):
        tasks.make_task({"name": "xor", "seq_len": 5})
    with pytest.raises(ValueError, match="seq_len must be a positive integer"):
        tasks.make_task({"name": "sine", "seq_len": 0})


@pytest.mark.parametrize(
    "name, cell, bidirectional, shape",
    [
        ("adding", "lstm", False, (3, 1)),
        ("adding", "gru", True, (3, 1)),
        ("copy", "rnn", True, (5, 3, 8)),
        ("sine", "lstm", False, (12, 3, 1)),
        ("text", "gru", False, (12, 3, None)),
    ],
)
def test_model_readouts(name, cell, bidirectional, shape):
    task = tasks.make_task({"name": name, "seq_len": 12})
    model = tasks.build_model(tasks.model_config(task, cell, 6, 2, bidirectional), rng=_rng())
    x, y = task.batch(_rng(1), 3)
    prediction, state = model(x)
    assert prediction.shape == shape[:-1] + (shape[-1] or task.vocab_size,)
    assert float(tasks.task_loss(task, prediction, y).item()) > 0
    h_n = state[0] if isinstance(state, tuple) else state
    assert h_n.shape == (4 if bidirectional else 2, 3, 6)
    if task.readout == "last":  # the readout is the head applied to the final states
        final = np.concatenate([h_n.data[-2], h_n.data[-1]], -1) if bidirectional else h_n.data[-1]
        expected = final @ model.head.weight.data.T + model.head.bias.data
        np.testing.assert_allclose(prediction.data, expected, rtol=1e-5, atol=1e-6)


def test_masked_loss_averages_real_steps_only():
    task = tasks.ReberTask(20)
    _, (y, mask) = task.batch(_rng(), 4)
    logits = tg.Tensor(_rng(3).standard_normal(y.shape + (7,)).astype(np.float32))
    per_step = -np.take_along_axis(
        logits.data - np.log(np.exp(logits.data).sum(-1, keepdims=True)), y[..., None], -1
    )[..., 0]
    expected = (per_step * mask).sum() / mask.sum()
    np.testing.assert_allclose(tasks.task_loss(task, logits, (y, mask)).item(), expected, rtol=1e-5)


def test_evaluate_restores_training_mode_and_sampling_is_seeded():
    task = tasks.TextTask(16)
    model = tasks.build_model(tasks.model_config(task, "lstm", 8), rng=_rng())
    scores = tasks.evaluate(model, task, _rng(), 4)
    assert model.training and set(scores) == {"loss", "accuracy"}
    a = tasks.sample_text(model, task, "The ", 20, 0.8, _rng(5))
    assert a == tasks.sample_text(model, task, "The ", 20, 0.8, _rng(5))
    assert a.startswith("The ") and len(a) == 24
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        tasks.sample_text(model, task, "The ", 5, 0.0, _rng())


def _adding_model():
    task = tasks.AddingTask(6)
    return task, tasks.build_model(tasks.model_config(task, "gru", 4), rng=_rng())


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda t, m: tasks.evaluate(m, t), TypeError, None),  # rng forgotten: Python's own
        (
            lambda t, m: tasks.evaluate(m, t, 7),
            TypeError,
            "evaluate: rng must be a numpy.random.Generator, "
            "e.g. np.random.default_rng(0); got int",
        ),
        (lambda t, m: tasks.evaluate(m, t, None), TypeError, "evaluate: rng must be a numpy"),
        (
            lambda t, m: tasks.evaluate(m, t, _rng(), 0),
            ValueError,
            "evaluate: batch_size must be an integer >= 1, got 0",
        ),
        (
            lambda t, m: tasks.evaluate(m, t, _rng(), 2.5),
            TypeError,
            "evaluate: batch_size must be an integer >= 1, got float 2.5",
        ),
        (lambda t, m: tasks.evaluate(t, m, _rng()), TypeError, "evaluate: model must be a Module"),
        (lambda t, m: t.batch(3, 4), TypeError, "adding.batch: rng must be a numpy"),
        (lambda t, m: t.batch(_rng(), -1), ValueError, "adding.batch: batch_size must be"),
        (lambda t, m: tasks.make_task("adding"), TypeError, "make_task: config must be a dict"),
        (
            lambda t, m: tasks.make_task({"name": "adding", "seq_len": 5, "vocab": "ab"}),
            ValueError,
            "make_task: task adding takes ['seq_len']",
        ),
        (lambda t, m: tasks.make_task({"name": "adding"}), ValueError, "seq_len required"),
        (lambda t, m: tasks.model_config(t, "gru", 0), ValueError, "model_config: hidden must be"),
        (lambda t, m: tasks.model_config("adding", "gru", 4), TypeError, "task must be a Task"),
        (lambda t, m: tasks.build_model({"cell": "gru"}), ValueError, "build_model: config must"),
        (
            lambda t, m: tasks.build_model({**tasks.model_config(t, "gru", 4), "hidden_size": "4"}),
            TypeError,
            "build_model: hidden_size must be an integer",
        ),
        (lambda t, m: tasks.TextTask(8, vocab=["a", "b"]), ValueError, "vocab must be a string"),
    ],
)
def test_public_entry_points_check_their_arguments(call, error, message):
    task, model = _adding_model()
    with pytest.raises(error) as info:
        call(task, model)
    if message is not None:
        assert message in str(info.value), str(info.value)
    else:  # the missing argument is named, not "only integer scalar arrays ..."
        assert "rng" in str(info.value), str(info.value)


def test_sample_text_checks_its_arguments():
    task = tasks.TextTask(8)
    model = tasks.build_model(tasks.model_config(task, "gru", 4), rng=_rng())
    for kwargs, message in (
        ({"rng": 5}, "sample_text: rng must be"),
        ({"length": -1}, "sample_text: length must be an integer >= 0"),
        ({"temperature": float("nan")}, "temperature must be a finite"),
        ({"prime": 42}, "the prime must be a non-empty string"),
    ):
        args = {"prime": "The ", "length": 3, "temperature": 0.8, "rng": _rng(), **kwargs}
        with pytest.raises((TypeError, ValueError), match=re.escape(message)):
            tasks.sample_text(model, task, **args)


@pytest.mark.parametrize(
    "name, cell, hidden, layers, bidirectional",
    [
        ("adding", "lstm", 64, 1, False),
        ("text", "gru", 50, 2, False),
        ("copy", "rnn", 7, 3, True),
        ("text", "lstm", 20, 1, False),
    ],
)
def test_parameter_count_equals_the_built_model(name, cell, hidden, layers, bidirectional):
    config = tasks.model_config(
        tasks.make_task({"name": name, "seq_len": 12}), cell, hidden, layers, bidirectional
    )
    built = sum(p.data.size for p in tasks.build_model(config).parameters())
    assert tasks.parameter_count(config) == built


def test_parameter_count_of_a_huge_model_builds_nothing_large():
    config = tasks.model_config(tasks.AddingTask(5), "lstm", 10**11)
    # torch.nn.LSTM's count: 4H(I + H) + 8H weights, H + 1 for the Linear head.
    h = 10**11
    assert tasks.parameter_count(config) == 4 * h * (2 + h) + 8 * h + h + 1


def _padded_model(fused=False):
    task = tasks.SentimentTask(14)
    config = tasks.model_config(task, "lstm", 5, bidirectional=True, fused=fused)
    return task, tasks.build_model(config, rng=_rng())


@pytest.mark.parametrize("fused", [False, True])
def test_a_padded_batch_predicts_as_each_sequence_alone(fused):
    task, model = _padded_model(fused)
    x, _ = task.batch(_rng(2), 6)
    lengths = (x != 0).sum(0)
    assert len(set(lengths)) > 1  # the batch does pad
    batched, _ = model(x)
    for b in range(6):
        alone, _ = model(x[: lengths[b], b : b + 1])
        np.testing.assert_allclose(batched.data[b], alone.data[0], rtol=1e-5, atol=1e-6)


def test_padded_last_readout_is_the_head_on_the_final_states():
    task, model = _padded_model()
    x, y = task.batch(_rng(4), 5)
    prediction, (h_n, _) = model(x)
    final = np.concatenate([h_n.data[-2], h_n.data[-1]], -1)  # forward at l-1, reverse at 0
    expected = final @ model.head.weight.data.T + model.head.bias.data
    np.testing.assert_allclose(prediction.data, expected, rtol=1e-5, atol=1e-6)
    tasks.task_loss(task, prediction, y).backward()
    assert all(np.isfinite(p.grad).all() for p in model.parameters())


def test_padding_inside_a_sequence_or_a_column_of_padding_is_refused():
    _, model = _padded_model()
    with pytest.raises(ValueError, match="each column padded only at its end with pad_index 0"):
        model(np.array([[1, 1], [0, 2], [3, 0]]))
    with pytest.raises(ValueError, match=r"columns \[1\] of x are all padding"):
        model(np.array([[1, 0], [2, 0]]))


def test_configs_saved_before_padding_still_build():
    task = tasks.AddingTask(6)
    config = tasks.model_config(task, "gru", 4)
    assert config["pad_index"] is None
    del config["pad_index"]
    assert tasks.build_model(config).pad_index is None
    sentiment = tasks.model_config(tasks.SentimentTask(14), "gru", 4)
    with pytest.raises(ValueError, match="pad_index 99 must index the embedding's input_size"):
        tasks.build_model({**sentiment, "pad_index": 99})
