"""AttentionLSTMCell: the check every registered cell gets (a whole sequence layer of it,
gradients against float64 central differences, the memory and the mask included); forward
and gradients against the same step written with PyTorch (the reference: its LSTMCell,
softmax and batched products); masking; Recurrent against stepping by hand; errors."""

import warnings

import numpy as np
import pytest
from tinygrad_lstm.layers import Recurrent
from tinygrad_lstm.layers.attention import MASKED, AttentionLSTMCell
from tinygrad_lstm.layers.unroll import FusionWarning

import tinygrad_lstm as tg
from tinygrad_lstm.testing import assert_cell_gradients

I, H, E, S, N, T = 3, 4, 5, 6, 3, 4
KINDS = ("additive", "dot")


def make_cell(attention, dtype=np.float64, seed=0, **options):
    options = {"memory_size": E, "memory_len": S, **options}
    return AttentionLSTMCell(
        I, H, attention=attention, dtype=dtype, rng=np.random.default_rng(seed), **options
    )


@pytest.mark.parametrize("attention", KINDS)
def test_sequence_layer_gradients_like_every_cell(attention):
    # 2 layers, bidirectional: the second layer's input is both directions' [h; context].
    report = assert_cell_gradients(
        AttentionLSTMCell,
        input_size=2,
        hidden_size=3,
        seq_len=3,
        num_layers=2,
        bidirectional=True,
        memory_size=2,
        memory_len=3,
        attention=attention,
        **({"attention_size": 2} if attention == "additive" else {}),
    )
    assert report.ok


def memory_and_lengths(rng, dtype=np.float64):
    return rng.standard_normal((N, S, E)).astype(dtype), np.array([S, 2, 4])


def torch_steps(torch, cell, xs, memory, lengths):
    """The cell's equations in PyTorch, on the cell's weights: outputs, final (h, c), the
    attention weights of every step, and the tensors to take gradients of."""
    p = {n: torch.tensor(v.data, requires_grad=True) for n, v in cell.named_parameters()}
    lstm = torch.nn.LSTMCell(I + E, H, dtype=torch.float64)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, name).copy_(p[f"lstm.{name}"])
    m = torch.tensor(memory, requires_grad=True)
    x = torch.tensor(xs, requires_grad=True)
    mask = torch.tensor(np.arange(S)[None, :] >= lengths[:, None])
    h = torch.zeros(N, H, dtype=torch.float64)
    c = torch.zeros(N, H, dtype=torch.float64)
    outputs, weights = [], []
    for t in range(len(xs)):
        if cell.attention == "additive":
            hidden = torch.tanh(m @ p["key_weight"].T + (h @ p["query_weight"].T)[:, None, :])
            scores = hidden @ p["score_weight"]
        else:
            scores = torch.einsum("nse,ne->ns", m, h @ p["query_weight"].T)
        a = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        context = torch.einsum("ns,nse->ne", a, m)
        h, c = lstm(torch.cat([x[t], context], dim=1), (h, c))
        outputs.append(torch.cat([h, context], dim=1))
        weights.append(a)
    return torch.stack(outputs), (h, c), torch.stack(weights), {"x": x, "memory": m, **p}, lstm


@pytest.mark.parametrize("attention", KINDS)
def test_matches_the_same_step_in_pytorch(attention):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    cell = make_cell(attention)
    memory, lengths = memory_and_lengths(rng)
    xs = rng.standard_normal((T, N, I))
    x = tg.Tensor(xs, requires_grad=True)
    m = tg.Tensor(memory, requires_grad=True)
    state = cell.attend_to(m, lengths)
    outputs, weights = [], []
    for t in range(T):
        out, state, a = cell.step(x[t], state)
        outputs.append(out)
        weights.append(a)
    ours = tg.stack(outputs)
    upstream = rng.standard_normal(ours.shape)
    (ours * upstream).sum().backward()

    ref, (h, c), ref_weights, leaves, lstm = torch_steps(torch, cell, xs, memory, lengths)
    (ref * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(ours.data, ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state[0].data, h.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state[1].data, c.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        np.stack([a.data for a in weights]), ref_weights.detach().numpy(), rtol=1e-12, atol=1e-14
    )
    grads = {"x": x.grad, "memory": m.grad, **{n: p.grad for n, p in cell.named_parameters()}}
    for name, grad in grads.items():
        if name.startswith("lstm."):
            expected = getattr(lstm, name[len("lstm.") :]).grad
        else:
            expected = leaves[name].grad
        np.testing.assert_allclose(grad, expected.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("attention", KINDS)
def test_padding_gets_no_weight_and_no_gradient(attention):
    rng = np.random.default_rng(2)
    cell = make_cell(attention)
    memory, lengths = memory_and_lengths(rng)
    garbage = memory.copy()
    pad = np.arange(S)[None, :] >= lengths[:, None]
    garbage[pad] = rng.standard_normal((pad.sum(), E)) * 100
    x = rng.standard_normal((N, I))
    results = []
    for values in (memory, garbage):
        m = tg.Tensor(values, requires_grad=True)
        out, _, a = cell.step(x, cell.attend_to(m, lengths))
        out.sum().backward()
        results.append((out.data, a.data, m.grad))
    (out, a, grad), (out_garbage, _, _) = results
    assert np.all(a[pad] == 0.0) and np.all(a[~pad] > 0)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-15)
    assert np.all(grad[pad] == 0.0) and np.any(grad[~pad] != 0.0)
    np.testing.assert_array_equal(out, out_garbage)


def test_recurrent_runs_the_cell_as_stepping_it_by_hand():
    rng = np.random.default_rng(3)
    layer = Recurrent(
        AttentionLSTMCell,
        I,
        H,
        memory_size=E,
        memory_len=S,
        dtype=np.float64,
        rng=np.random.default_rng(0),
    )
    cell = layer.cell_l0
    memory, lengths = memory_and_lengths(rng)
    xs = rng.standard_normal((T, N, I))
    state = cell.attend_to(tg.Tensor(memory), lengths)
    out, final = layer(xs, tuple(s.reshape(1, *s.shape) for s in state))
    for t in range(T):
        step_out, state = cell(xs[t], state)
        np.testing.assert_array_equal(out.data[t], step_out.data)
    for ours, by_hand in zip(final, state):
        np.testing.assert_array_equal(ours.data[0], by_hand.data)
    assert out.shape == (T, N, H + E) and cell.output_size == H + E


def test_the_compiler_declines_it_and_the_layer_runs_composed():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = Recurrent(AttentionLSTMCell, I, H, memory_size=E, memory_len=S, fused=True)
    assert layer._runners == ["composed"]
    assert any(issubclass(w.category, FusionWarning) for w in caught), caught


def test_zero_state_and_parameter_names():
    cell = make_cell("additive", dtype=np.float32)
    h, c, memory, bias = cell.init_state(2)
    assert (h.shape, c.shape, memory.shape, bias.shape) == ((2, H), (2, H), (2, S * E), (2, S))
    assert h.dtype == np.float32
    assert {n for n, _ in cell.named_parameters()} == {
        "lstm.weight_ih",
        "lstm.weight_hh",
        "lstm.bias_ih",
        "lstm.bias_hh",
        "query_weight",
        "key_weight",
        "score_weight",
    }
    assert cell.lstm.weight_ih.shape == (4 * H, I + E)
    assert repr(cell).startswith(
        f"AttentionLSTMCell({I}, {H}, memory_size={E}, memory_len={S}, attention='additive', "
        f"attention_size={H}\n"
    )
    dot = make_cell("dot")
    assert {n for n, _ in dot.named_parameters() if not n.startswith("lstm.")} == {"query_weight"}
    assert dot.query_weight.shape == (E, H)
    assert cell.attend_to(tg.Tensor(np.zeros((1, S, E), np.float32)), [2])[3].data.tolist() == [
        [0.0, 0.0] + [MASKED] * (S - 2)
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_cell("cosine"), "AttentionLSTMCell: attention must be 'additive' or 'dot'"),
        (
            lambda: make_cell("dot", attention_size=2),
            "AttentionLSTMCell: attention_size is for additive attention, not 'dot'",
        ),
        (
            lambda: make_cell("dot", memory_len=0),
            "AttentionLSTMCell: memory_len must be an integer >= 1",
        ),
        (
            lambda: make_cell("dot").attend_to(tg.Tensor(np.zeros((2, S - 1, E)))),
            f"AttentionLSTMCell.attend_to expected memory of shape (N, {S}, {E}), "
            f"got (2, {S - 1}, {E})",
        ),
        (
            lambda: make_cell("dot").attend_to(tg.Tensor(np.zeros((2, S, E))), [0, 3]),
            f"AttentionLSTMCell.attend_to: lengths must be 2 integers in [1, {S}], got [0, 3]",
        ),
        (
            lambda: make_cell("dot").step(np.zeros((2, I + 1))),
            f"AttentionLSTMCell expected input of shape (N, {I}), got (2, {I + 1})",
        ),
        (
            lambda: make_cell("dot").step(np.zeros((2, I)), make_cell("dot").init_state(3)),
            f"AttentionLSTMCell expected state h of shape (2, {H}), got (3, {H})",
        ),
    ],
)
def test_bad_arguments_are_refused_with_one_line(call, message):
    with pytest.raises((ValueError, tg.ShapeError)) as caught:
        call()
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)
