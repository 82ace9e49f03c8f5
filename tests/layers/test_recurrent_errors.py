"""Bad input to the recurrent layers: each error names the layer and expected vs actual, and is
raised before anything changes."""

import re

import numpy as np
import pytest
from tinygrad_lstm.layers import GRU, LSTM, RNN, Recurrent

import tinygrad_lstm as tg
from tinygrad_lstm.module import StateDictError


def f32(*shape):
    return tg.Tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize(
    ("layer", "x", "message"),
    [
        (LSTM(8, 4), f32(5, 3, 7), "LSTM expected input of shape (T, N, 8), got (5, 3, 7)"),
        (
            LSTM(8, 4, batch_first=True),
            f32(3, 5, 7),
            "LSTM expected input of shape (N, T, 8), got (3, 5, 7)",
        ),
        (GRU(8, 4), f32(5, 7), "GRU expected input of shape (T, 8), got (5, 7)"),
        (
            RNN(8, 4),
            f32(2, 5, 3, 8),
            "RNN expected input of shape (T, N, 8) or unbatched (T, 8), got (2, 5, 3, 8)",
        ),
        (
            Recurrent("gru", 8, 4),
            f32(5, 3, 2),
            "Recurrent('gru') expected input of shape (T, N, 8), got (5, 3, 2)",
        ),
    ],
)
def test_wrong_feature_size(layer, x, message):
    with pytest.raises(tg.ShapeError, match=re.escape(message)):
        layer(x)
    assert all(p.grad is None for p in layer.parameters())


def test_empty_sequence():
    with pytest.raises(tg.ShapeError, match=re.escape("LSTM: got an empty sequence (T=0")):
        LSTM(3, 4)(f32(0, 2, 3))


def test_dtype_mismatch_between_input_and_weights():
    with pytest.raises(
        ValueError, match="LSTM: input dtype float64 does not match the weights' dtype float32"
    ):
        LSTM(3, 4)(tg.Tensor(np.zeros((5, 2, 3))))
    with pytest.raises(
        ValueError, match="GRU: input dtype float32 does not match the weights' dtype float64"
    ):
        GRU(3, 4, dtype=np.float64)(f32(5, 2, 3))


@pytest.mark.parametrize(
    ("layer", "state", "message"),
    [
        (
            LSTM(3, 4, num_layers=2),
            (f32(1, 2, 4), f32(2, 2, 4)),
            "LSTM expected initial state h0 of shape (2, 2, 4), got (1, 2, 4)",
        ),
        (
            LSTM(3, 4, proj_size=2),
            (f32(1, 2, 2), f32(1, 2, 2)),
            "LSTM expected initial state c0 of shape (1, 2, 4), got (1, 2, 2)",
        ),
        (
            GRU(3, 4, bidirectional=True),
            f32(1, 2, 4),
            "GRU expected initial state h0 of shape (2, 2, 4), got (1, 2, 4)",
        ),
        (
            LSTM(3, 4),
            f32(1, 2, 4),
            "LSTM expected the initial state as a tuple (h0, c0), got Tensor of 1",
        ),
        (
            RNN(3, 4),
            (f32(1, 2, 4), f32(1, 2, 4)),
            "RNN expected the initial state as one tensor (h0), got tuple of 2",
        ),
    ],
)
def test_wrong_initial_state(layer, state, message):
    with pytest.raises(tg.ShapeError, match=re.escape(message)):
        layer(f32(5, 2, 3), state)


def test_unbatched_state_must_be_two_dimensional():
    with pytest.raises(
        tg.ShapeError, match=re.escape("expected initial state h0 of shape (1, 4), got (1, 1, 4)")
    ):
        GRU(3, 4)(f32(5, 3), f32(1, 1, 4))


def test_state_dtype_mismatch():
    with pytest.raises(ValueError, match="RNN: input dtype float64 does not match"):
        RNN(3, 4)(f32(5, 2, 3), tg.Tensor(np.zeros((1, 2, 4))))


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ([5, 0], "every length must lie in [1, T=5], got [5, 0]"),
        ([6, 2], "every length must lie in [1, T=5], got [6, 2]"),
        ([5, 2, 1], "lengths has 3 entries but the batch has 2 sequence(s)"),
        ([5.0, 2.0], "lengths must be a 1-D list or array of integers"),
        ([[5, 2]], "lengths must be a 1-D list or array of integers"),
    ],
)
def test_bad_lengths(lengths, message):
    with pytest.raises(ValueError, match=re.escape("LSTM: " + message)):
        LSTM(3, 4)(f32(5, 2, 3), lengths=lengths)


def test_unknown_cell_name():
    with pytest.raises(tg.RegistryError, match="unknown cell 'nope'; registered cells: .*lstm"):
        Recurrent("nope", 3, 4)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: LSTM(3, 4, dropout=1.5), ValueError, "LSTM: dropout must be a number in [0, 1]"),
        (lambda: GRU(3, 4, dropout=True), ValueError, "GRU: dropout must be a number in [0, 1]"),
        (lambda: RNN(3, 4, dropout="0.1"), ValueError, "RNN: dropout must be a number in [0, 1]"),
        (lambda: RNN(3, 4, proj_size=2), ValueError, "RNN: proj_size is only supported by LSTM"),
        (lambda: GRU(3, 4, proj_size=2), ValueError, "GRU: proj_size is only supported by LSTM"),
        (
            lambda: LSTM(3, 4, proj_size=4),
            ValueError,
            "LSTM: LSTMCell: proj_size must be an integer in [0, hidden_size=4), got 4",
        ),
        (lambda: LSTM(3, 4, proj_size=-1), ValueError, "proj_size must be an integer in [0"),
        (
            lambda: RNN(3, 4, 1, "sigmoid"),
            ValueError,
            "RNN: RNNCell: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'",
        ),
        (lambda: LSTM(0, 4), ValueError, "LSTM: input_size must be an integer >= 1, got 0"),
        (lambda: LSTM(3, 0), ValueError, "LSTM: hidden_size must be an integer >= 1, got 0"),
        (lambda: GRU(3, 4, num_layers=0), ValueError, "GRU: num_layers must be an integer >= 1"),
        (
            lambda: Recurrent("gru", 3, 4, proj_size=2),
            ValueError,
            "Recurrent('gru'): cell GRUCell does not take these arguments",
        ),
        (lambda: Recurrent(42, 3, 4), TypeError, "cell must be a registered cell name or a cell"),
    ],
)
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_bad_state_dict_is_reported_whole_and_changes_nothing():
    lstm = LSTM(3, 4, num_layers=2)
    before = lstm.state_dict()
    bad = {k: v + 1 for k, v in before.items()}
    del bad["bias_hh_l1"]
    bad["weight_hh_l2"] = np.zeros((16, 4), np.float32)
    bad["weight_ih_l1"] = np.zeros((16, 3), np.float32)
    with pytest.raises(StateDictError) as info:
        lstm.load_state_dict(bad)
    text = str(info.value)
    assert "missing keys: bias_hh_l1" in text and "unexpected keys: weight_hh_l2" in text
    assert "weight_ih_l1: expected shape (16, 4), got (16, 3)" in text
    for key, value in lstm.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


# ---- the cell protocol, checked where the runner calls the cell ---------------------------
class OneTensorCell(tg.Module):
    """A learner's cell whose forward returns h alone instead of (output_t, new_state)."""

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        rng = rng or np.random.default_rng(0)
        self.weight = tg.Parameter(rng.standard_normal((hidden_size, input_size)).astype(dtype))
        self.hidden_size = hidden_size

    def init_state(self, batch_size, dtype=np.float32):
        return tg.zeros(batch_size, self.hidden_size, dtype=dtype)

    def forward(self, x, h):
        return (x @ self.weight.T + h).tanh()


class WrongStateCell(OneTensorCell):
    def forward(self, x, h):
        h = (x @ self.weight.T + h).tanh()
        return h, (h, h)


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_a_cell_that_breaks_the_protocol_is_named_at_any_batch(batch):
    """At batch 2 a returned (2, H) tensor unpacked as (out, new) into its two rows, and the
    layer ran on, wrong; at batch 3 the unpacking failed with an unrelated error."""
    layer = Recurrent(OneTensorCell, 3, 4)
    x = tg.Tensor(np.ones((5, batch, 3), np.float32))
    message = (
        r"OneTensorCell\.forward\(x_t, state\) must return \(output_t, new_state\); "
        rf"it returned a Tensor of shape \({batch}, 4\): it is not a pair"
    )
    with pytest.raises(TypeError, match=message):
        layer(x)


def test_a_new_state_unlike_the_old_one_is_named():
    with pytest.raises(TypeError, match=r"WrongStateCell.*new_state must be a Tensor of shape"):
        Recurrent(WrongStateCell, 3, 4)(tg.Tensor(np.ones((2, 2, 3), np.float32)))


def test_gradcheck_and_the_step_views_name_the_protocol_too():
    from tinygrad_lstm.tooling import viz
    from tinygrad_lstm.tooling.testing import check_cell

    x = np.ones((4, 2, 3))
    with pytest.raises(TypeError, match="must return \\(output_t, new_state\\)"):
        viz.step_gradient_norms(OneTensorCell(3, 4, dtype=np.float64), x)
    report = check_cell(OneTensorCell, num_layers=1, bidirectional=False)
    assert not report.ok and "must return (output_t, new_state)" in report.failure
