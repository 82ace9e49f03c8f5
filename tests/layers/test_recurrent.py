"""Recurrent, RNN, LSTM, GRU: PyTorch's parameter names and state layout, shapes in every
input layout, any registered cell by name, dropout between layers, the recorded graph."""

import re

import numpy as np
import pytest
from tinygrad_lstm.layers import GRU, LSTM, RNN, Recurrent

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter


@tg.register_cell("test_min_gated", replace=True)
class MinimalGatedCell(Module):
    """f = sigmoid([x, h] W_f^T + b_f);  h' = (1 - f) h + f tanh([x, f h] W_h^T + b_h)."""

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        rng = tg.default_rng() if rng is None else rng
        size = input_size + hidden_size
        self.weight_f = Parameter(rng.uniform(-0.5, 0.5, (hidden_size, size)).astype(dtype))
        self.weight_h = Parameter(rng.uniform(-0.5, 0.5, (hidden_size, size)).astype(dtype))
        self.bias_f = Parameter(np.zeros(hidden_size, dtype))
        self.hidden_size = hidden_size

    def init_state(self, batch_size, dtype=np.float32):
        return tg.zeros(batch_size, self.hidden_size, dtype=dtype)

    def forward(self, x, h):
        f = (tg.concat([x, h], axis=1) @ self.weight_f.T + self.bias_f).sigmoid()
        h = h + f * ((tg.concat([x, f * h], axis=1) @ self.weight_h.T).tanh() - h)
        return h, h


def test_lstm_state_dict_keys_and_shapes_follow_pytorch():
    lstm = LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    per_layer = [
        ("weight_ih", (20, None)),
        ("weight_hh", (20, 2)),
        ("bias_ih", (20,)),
        ("bias_hh", (20,)),
        ("weight_hr", (2, 5)),
    ]
    expected = []
    for k, in_size in ((0, 3), (1, 4)):
        for suffix in ("", "_reverse"):
            expected += [
                (f"{n}_l{k}{suffix}", tuple(in_size if s is None else s for s in shape))
                for n, shape in per_layer
            ]
    assert [(k, v.shape) for k, v in lstm.state_dict().items()] == expected
    assert [n for n, _ in lstm.named_parameters()] == [k for k, _ in expected]


def test_no_bias_means_no_bias_keys():
    assert list(GRU(2, 3, bias=False).state_dict()) == ["weight_ih_l0", "weight_hh_l0"]


@pytest.mark.parametrize("batch_first", [False, True])
def test_output_and_final_state_layout(batch_first):
    T, N, I, H = 6, 2, 3, 4
    lstm = LSTM(
        I,
        H,
        num_layers=2,
        batch_first=batch_first,
        bidirectional=True,
        dtype=np.float64,
        rng=np.random.default_rng(0),
    )
    x = np.random.default_rng(1).standard_normal((N, T, I) if batch_first else (T, N, I))
    out, (h_n, c_n) = lstm(tg.Tensor(x))
    assert out.shape == ((N, T, 2 * H) if batch_first else (T, N, 2 * H))
    assert h_n.shape == c_n.shape == (4, N, H)  # batch_first never changes the state layout
    time_major = out.data.transpose(1, 0, 2) if batch_first else out.data
    # forward half of the last step is the last layer's forward h_n; for the reverse half
    # it is step 0 that holds the final state
    np.testing.assert_array_equal(time_major[-1, :, :H], h_n.data[-2])
    np.testing.assert_array_equal(time_major[0, :, H:], h_n.data[-1])


def test_unbatched_input_is_one_sequence():
    rnn = RNN(3, 4, 2, "relu", dtype=np.float64, rng=np.random.default_rng(2))
    x = np.random.default_rng(3).standard_normal((5, 3))
    h0 = np.random.default_rng(4).standard_normal((2, 4))
    out, h_n = rnn(tg.Tensor(x), tg.Tensor(h0))
    assert out.shape == (5, 4) and h_n.shape == (2, 4)
    out_b, h_b = rnn(tg.Tensor(x[:, None]), tg.Tensor(h0[:, None]))
    np.testing.assert_allclose(out.data, out_b.data[:, 0], rtol=1e-14)
    np.testing.assert_allclose(h_n.data, h_b.data[:, 0], rtol=1e-14)


def test_init_state_is_zeros_in_pytorch_layout():
    h0, c0 = LSTM(2, 5, num_layers=3, bidirectional=True, proj_size=3).init_state(4)
    assert h0.shape == (6, 4, 3) and c0.shape == (6, 4, 5)
    assert not h0.data.any() and not c0.data.any()
    assert GRU(2, 5).init_state(4).shape == (1, 4, 5)


def test_a_registered_cell_gets_every_feature_by_name():
    layer = Recurrent(
        "test_min_gated",
        3,
        4,
        num_layers=2,
        bidirectional=True,
        batch_first=True,
        dtype=np.float64,
        rng=np.random.default_rng(0),
    )
    assert list(layer.state_dict())[:4] == [
        "weight_f_l0",
        "weight_h_l0",
        "bias_f_l0",
        "weight_f_l0_reverse",
    ]
    assert layer.state_dict()["weight_f_l1"].shape == (4, 8 + 4)
    x = tg.Tensor(np.random.default_rng(5).standard_normal((2, 6, 3)))
    out, h_n = layer(x, lengths=[6, 3])
    assert out.shape == (2, 6, 8) and h_n.shape == (4, 2, 4)
    assert not out.data[1, 3:].any()
    same, _ = Recurrent(
        MinimalGatedCell,
        3,
        4,
        num_layers=2,
        bidirectional=True,
        batch_first=True,
        dtype=np.float64,
        rng=np.random.default_rng(0),
    )(x, lengths=[6, 3])
    np.testing.assert_array_equal(out.data, same.data)


def _graph_nodes(t):
    nodes, stack, seen = [], [t._node], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(i._node for i in node.inputs)
    return nodes


@pytest.mark.parametrize("steps", [3, 7])
def test_steps_are_taken_with_one_unstack_and_scoped_per_step(steps):
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True)
    x = tg.Tensor(np.ones((steps, 2, 3), np.float32), requires_grad=True)
    out, _ = lstm(x)
    nodes = _graph_nodes(out)
    names = [n.name for n in nodes]
    assert names.count("unstack") == 4 and "getitem" not in names
    # weights are transposed once per sequence, not once per step
    assert names.count("transpose") == 4 * 2
    scopes = {n.scope for n in nodes if n.scope and "/t" in n.scope}
    assert scopes == {
        f"layer{k}/{d}/t{t}" for k in range(2) for d in ("forward", "reverse") for t in range(steps)
    }


def test_dropout_acts_between_layers_in_training_only():
    x = tg.Tensor(np.random.default_rng(6).standard_normal((4, 2, 3)))
    gru = GRU(3, 5, num_layers=2, dropout=1.0, rng=np.random.default_rng(7)).to(np.float64)
    out_train, _ = gru(x)
    # p = 1 zeroes the second layer's input, so the output no longer depends on x
    out_other, _ = gru(tg.Tensor(x.data * 3))
    np.testing.assert_array_equal(out_train.data, out_other.data)
    gru.eval()
    out_eval, _ = gru(x)
    assert not np.allclose(out_eval.data, out_train.data)
    assert not gru.layer_dropout.training


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="no effect with num_layers=1"):
        LSTM(3, 4, dropout=0.5)


def test_reassigning_a_flat_parameter_reaches_the_cell():
    rnn = RNN(2, 3, dtype=np.float64)
    new = Parameter(np.zeros((3, 2)))
    rnn.weight_ih_l0 = new
    assert rnn.cell_l0.weight_ih is new
    _, h_n = rnn(tg.Tensor(np.ones((4, 2))))
    # with W_ih = 0 and h0 = 0 the state depends on the biases alone, not on the input
    _, h_again = rnn(tg.Tensor(np.full((4, 2), 5.0)))
    np.testing.assert_array_equal(h_n.data, h_again.data)


def test_to_float64_and_repr():
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True).to(np.float64)
    out, _ = lstm(tg.Tensor(np.ones((2, 1, 3))))
    assert out.dtype == np.float64
    assert repr(lstm).startswith("LSTM(3, 4, num_layers=2, bidirectional=True")
    assert "(cell_l1_reverse): LSTMCell(8, 4)" in repr(lstm)


# ---- one Parameter behind both names: lstm.weight_ih_l0 and lstm.cell_l0.weight_ih ----------
@pytest.mark.parametrize("through", ["flat", "cell"])
@pytest.mark.parametrize("fused", [False, True])
def test_assigning_a_weight_through_either_name_replaces_the_one_parameter(through, fused):
    rng = np.random.default_rng(0)
    lstm = LSTM(3, 4, num_layers=2, dtype=np.float64, rng=rng, fused=fused)
    keys = list(lstm.state_dict())
    x = tg.Tensor(rng.standard_normal((5, 2, 3)))
    new = Parameter(rng.standard_normal((16, 3)))
    if through == "flat":
        lstm.weight_ih_l0 = new
    else:
        lstm.cell_l0.weight_ih = new
    assert lstm.weight_ih_l0 is new and lstm.cell_l0.weight_ih is new
    assert list(lstm.state_dict()) == keys, "state_dict keys stay PyTorch's, none stale or extra"
    np.testing.assert_array_equal(lstm.state_dict()["weight_ih_l0"], new.data)
    assert sum(p is new for p in lstm.parameters()) == 1
    # The layer computes with the new weight: the same as a fresh layer loaded with it.
    reference = LSTM(3, 4, num_layers=2, dtype=np.float64, fused=fused)
    reference.load_state_dict(lstm.state_dict())
    out, _ = lstm(x)
    np.testing.assert_array_equal(out.data, reference(x)[0].data)
    out.sum().backward()
    assert new.grad is not None and new.grad.shape == (16, 3)


def test_reading_an_unknown_attribute_still_raises_attribute_error():
    lstm = LSTM(3, 4)
    with pytest.raises(AttributeError, match="weight_ih_l7"):
        lstm.weight_ih_l7  # noqa: B018


# ---- a dtype mismatch suggests conversions that work ----------------------------------------
def _suggestions(message):
    return re.findall(r"(x\.(?:to|astype)\(np\.\w+\)|layer\.to\(np\.\w+\))", message)


@pytest.mark.parametrize("make", [lambda a: tg.Tensor(a), lambda a: a], ids=["Tensor", "array"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float64])
def test_a_wrong_input_dtype_suggests_a_fix_that_works(make, dtype):
    layer = LSTM(3, 4, rng=np.random.default_rng(0))
    x = make(np.ones((2, 1, 3), dtype=dtype))
    with pytest.raises(ValueError, match="does not match the weights' dtype float32") as info:
        layer(x)
    suggestions = _suggestions(str(info.value))
    assert suggestions, str(info.value)
    assert not any("int" in s and s.startswith("layer") for s in suggestions), str(info.value)
    for fix in suggestions:  # each one, applied as written, makes the call work
        fixed_layer = LSTM(3, 4, rng=np.random.default_rng(0))
        scope = {"x": x, "np": np, "layer": fixed_layer}
        converted = eval(fix, scope)  # the message's own suggestion, applied as written
        fixed_x = x if fix.startswith("layer") else converted
        out, _ = fixed_layer(fixed_x)
        assert out.shape == (2, 1, 4)
