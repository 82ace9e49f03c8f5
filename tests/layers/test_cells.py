"""RNNCell, LSTMCell, GRUCell: PyTorch's names, shapes and init; one step against the spec's
equations written independently in NumPy; single-step gradients; batchedness; errors."""

import numpy as np
import pytest
from tinygrad_lstm.layers import GRUCell, LSTMCell, RNNCell

import tinygrad_lstm as tg
from tinygrad_lstm.gradcheck import gradcheck

I, H, N = 3, 4, 5


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def np_rnn(x, h, p, act):
    return act(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"])


def np_lstm(x, h, c, p):
    a = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    ai, af, ag, ao = np.split(a, 4, axis=1)
    c2 = sigmoid(af) * c + sigmoid(ai) * np.tanh(ag)
    h2 = sigmoid(ao) * np.tanh(c2)
    return (h2 @ p["weight_hr"].T if "weight_hr" in p else h2), c2


def np_gru(x, h, p):
    gi = x @ p["weight_ih"].T + p["bias_ih"]
    gh = h @ p["weight_hh"].T + p["bias_hh"]
    (ir, iz, i_n), (hr, hz, hn) = np.split(gi, 3, axis=1), np.split(gh, 3, axis=1)
    r, z = sigmoid(ir + hr), sigmoid(iz + hz)
    n = np.tanh(i_n + r * hn)
    return (1 - z) * n + z * h


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (
            RNNCell(I, H),
            [("weight_ih", (H, I)), ("weight_hh", (H, H)), ("bias_ih", (H,)), ("bias_hh", (H,))],
        ),
        (
            GRUCell(I, H),
            [
                ("weight_ih", (3 * H, I)),
                ("weight_hh", (3 * H, H)),
                ("bias_ih", (3 * H,)),
                ("bias_hh", (3 * H,)),
            ],
        ),
        (
            LSTMCell(I, H, proj_size=2),
            [
                ("weight_ih", (4 * H, I)),
                ("weight_hh", (4 * H, 2)),
                ("bias_ih", (4 * H,)),
                ("bias_hh", (4 * H,)),
                ("weight_hr", (2, H)),
            ],
        ),
    ],
    ids=["rnn", "gru", "lstm_proj"],
)
def test_parameter_names_shapes_and_init(cell, expected):
    assert [(n, p.shape) for n, p in cell.named_parameters()] == expected
    for name, p in cell.named_parameters():
        # PyTorch draws every parameter from U(-1/sqrt(H), 1/sqrt(H)), weight_hr included
        assert np.abs(p.data).max() <= 1 / np.sqrt(H), name


def test_bias_false_keeps_the_attributes_as_none():
    cell = LSTMCell(I, H, bias=False)
    assert cell.bias_ih is None and cell.bias_hh is None
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh"]


def test_cells_are_registered_by_name():
    assert tg.cell("rnn") is RNNCell and tg.cell("lstm") is LSTMCell and tg.cell("gru") is GRUCell


def _inputs(rng, *sizes):
    return [rng.standard_normal((N, s)) for s in sizes]


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_step_matches_equations(nonlinearity):
    rng = np.random.default_rng(0)
    cell = RNNCell(I, H, True, nonlinearity, dtype=np.float64, rng=rng)
    x, h = _inputs(rng, I, H)
    out, state = cell(tg.Tensor(x), tg.Tensor(h))
    act = np.tanh if nonlinearity == "tanh" else (lambda a: np.maximum(a, 0))
    np.testing.assert_allclose(out.data, np_rnn(x, h, cell.state_dict(), act), rtol=1e-13)
    assert state is out


@pytest.mark.parametrize("proj_size", [0, 2])
def test_lstm_step_matches_equations(proj_size):
    rng = np.random.default_rng(1)
    cell = LSTMCell(I, H, proj_size=proj_size, dtype=np.float64, rng=rng)
    x, h, c = _inputs(rng, I, proj_size or H, H)
    out, (h2, c2) = cell(tg.Tensor(x), (tg.Tensor(h), tg.Tensor(c)))
    want_h, want_c = np_lstm(x, h, c, cell.state_dict())
    np.testing.assert_allclose(h2.data, want_h, rtol=1e-13)
    np.testing.assert_allclose(c2.data, want_c, rtol=1e-13)
    np.testing.assert_array_equal(out.data, h2.data)


def test_gru_step_matches_equations():
    rng = np.random.default_rng(2)
    cell = GRUCell(I, H, dtype=np.float64, rng=rng)
    x, h = _inputs(rng, I, H)
    out, _ = cell(tg.Tensor(x), tg.Tensor(h))
    np.testing.assert_allclose(out.data, np_gru(x, h, cell.state_dict()), rtol=1e-13)


CELLS = [
    lambda: RNNCell(I, H, dtype=np.float64, rng=np.random.default_rng(3)),
    lambda: LSTMCell(I, H, dtype=np.float64, rng=np.random.default_rng(3)),
    lambda: LSTMCell(I, H, proj_size=2, dtype=np.float64, rng=np.random.default_rng(3)),
    lambda: GRUCell(I, H, dtype=np.float64, rng=np.random.default_rng(3)),
]
IDS = ["rnn", "lstm", "lstm_proj", "gru"]


@pytest.mark.parametrize("make", CELLS, ids=IDS)
def test_single_step_gradients(make):
    cell = make()
    rng = np.random.default_rng(4)
    zeros = cell.init_state(N)
    parts = zeros if isinstance(zeros, tuple) else (zeros,)
    x = tg.Tensor(rng.standard_normal((N, I)), requires_grad=True)
    state = [tg.Tensor(rng.standard_normal(z.shape), requires_grad=True) for z in parts]
    params = [p for _, p in cell.named_parameters()]

    def step(x, *rest):
        s = tuple(rest[: len(state)])
        return cell(x, s if len(s) > 1 else s[0])

    gradcheck(step, x, *state, *params, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("make", CELLS, ids=IDS)
def test_default_state_is_zeros_and_unbatched_input_works(make):
    cell = make()
    x = np.random.default_rng(5).standard_normal((N, I))
    out_default, _ = cell(tg.Tensor(x))
    out_zeros, _ = cell(tg.Tensor(x), cell.init_state(N))
    np.testing.assert_array_equal(out_default.data, out_zeros.data)
    out_one, state_one = cell(tg.Tensor(x[1]))
    assert out_one.shape == (cell.output_size,)
    np.testing.assert_allclose(out_one.data, out_default.data[1], rtol=1e-14)
    for part in state_one if isinstance(state_one, tuple) else (state_one,):
        assert part.ndim == 1


def test_cell_errors_name_the_cell_and_shapes():
    cell = LSTMCell(I, H)
    with pytest.raises(
        tg.ShapeError, match=r"LSTMCell expected input of shape \(N, 3\) or \(3,\), got \(5, 4\)"
    ):
        cell(tg.Tensor(np.zeros((N, 4), np.float32)))
    with pytest.raises(
        tg.ShapeError, match=r"LSTMCell expected state c of shape \(5, 4\), got \(5, 3\)"
    ):
        cell(tg.Tensor(np.zeros((N, I), np.float32)), (tg.zeros(N, H), tg.zeros(N, 3)))
    with pytest.raises(tg.ShapeError, match=r"expected a state of 2 tensor\(s\)"):
        cell(tg.Tensor(np.zeros((N, I), np.float32)), tg.zeros(N, H))
    with pytest.raises(ValueError, match="input dtype float64 does not match"):
        cell(tg.Tensor(np.zeros((N, I))))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        RNNCell(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"proj_size must be an integer in \[0, hidden_size=4\)"):
        LSTMCell(I, H, proj_size=4)
    with pytest.raises(ValueError, match="hidden_size must be an integer >= 1"):
        GRUCell(I, 0)


def test_to_float64_then_forward():
    cell = GRUCell(I, H).to(np.float64)
    out, _ = cell(tg.Tensor(np.ones((2, I))))
    assert out.dtype == np.float64
    assert repr(cell) == "GRUCell(3, 4)"
