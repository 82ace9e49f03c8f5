"""Properties of the recurrent layers, over hypothesis-drawn cells, sizes and data (float64):

- a batch element's output does not depend on the other elements;
- the reverse direction equals the forward direction run on the flipped sequence;
- ``lengths`` equals running each sequence alone on its prefix;
- truncated BPTT carries the state values exactly, and with a window >= T its gradients are
  the full-BPTT gradients;
- eval mode is deterministic, and dropout=0 changes nothing.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tinygrad_lstm.layers import Recurrent

import tinygrad_lstm as tg

CELLS = {
    "rnn": {},
    "rnn_relu": {"nonlinearity": "relu"},
    "lstm": {},
    "lstm_proj": {"proj_size": 1},
    "gru": {},
}
RTOL = 1e-12  # different batch sizes may take different BLAS paths: rounding only


@st.composite
def setups(draw, max_layers=2, bidirectional=None):
    kind = draw(st.sampled_from(sorted(CELLS)))
    steps, batch = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    in_size, hidden = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    layers = draw(st.integers(1, max_layers))
    bi = draw(st.booleans()) if bidirectional is None else bidirectional
    x = draw(
        hnp.arrays(
            np.float64, (steps, batch, in_size), elements=st.floats(-2, 2, allow_subnormal=False)
        )
    )
    seed = draw(st.integers(0, 2**16))
    return kind, x, hidden, layers, bi, seed


def build(kind, in_size, hidden, layers, bi, seed, **kwargs):
    return Recurrent(
        kind.split("_")[0],
        in_size,
        hidden,
        num_layers=layers,
        bidirectional=bi,
        dtype=np.float64,
        rng=np.random.default_rng(seed),
        **CELLS[kind],
        **kwargs,
    )


def parts(state):
    return state if isinstance(state, tuple) else (state,)


def close(a, b, what):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL, err_msg=what)


@settings(max_examples=20)
@given(setups())
def test_batch_elements_are_independent(setup):
    kind, x, hidden, layers, bi, seed = setup
    model = build(kind, x.shape[2], hidden, layers, bi, seed)
    out, final = model(tg.Tensor(x))
    b = x.shape[1] - 1
    alone, final_alone = model(tg.Tensor(x[:, b : b + 1]))
    close(out.data[:, b], alone.data[:, 0], "output of the last batch element")
    for s, s_alone in zip(parts(final), parts(final_alone)):
        close(s.data[:, b], s_alone.data[:, 0], "final state of the last batch element")
    others = x.copy()
    others[:, :b] = np.random.default_rng(seed).standard_normal(others[:, :b].shape)
    changed, _ = model(tg.Tensor(others))
    close(changed.data[:, b], out.data[:, b], "output after changing the other elements")


@settings(max_examples=20)
@given(setups(max_layers=1, bidirectional=True))
def test_reverse_direction_is_forward_on_the_flipped_sequence(setup):
    kind, x, hidden, _, _, seed = setup
    bi = build(kind, x.shape[2], hidden, 1, True, seed)
    uni = build(kind, x.shape[2], hidden, 1, False, seed + 1)
    uni.load_state_dict(
        {k[: -len("_reverse")]: v for k, v in bi.state_dict().items() if k.endswith("_reverse")}
    )
    out, final = bi(tg.Tensor(x))
    out_flipped, final_flipped = uni(tg.Tensor(x[::-1].copy()))
    h_out = out.shape[2] // 2
    close(out.data[::-1, :, h_out:], out_flipped.data, "reverse outputs")
    for s, s_uni in zip(parts(final), parts(final_flipped)):
        close(s.data[1], s_uni.data[0], "reverse final state")


@settings(max_examples=20)
@given(setups(), st.data())
def test_lengths_equal_running_each_sequence_alone(setup, data):
    kind, x, hidden, layers, bi, seed = setup
    steps, batch = x.shape[:2]
    lengths = data.draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
    model = build(kind, x.shape[2], hidden, layers, bi, seed)
    zeros = model.init_state(batch)
    rng = np.random.default_rng(seed)
    initial = tuple(tg.Tensor(rng.standard_normal(z.shape)) for z in parts(zeros))
    initial = initial if isinstance(zeros, tuple) else initial[0]
    out, final = model(tg.Tensor(x), initial, lengths=lengths)
    for b, n in enumerate(lengths):
        alone_state = tuple(tg.Tensor(s.data[:, b : b + 1]) for s in parts(initial))
        alone, final_alone = model(
            tg.Tensor(x[:n, b : b + 1]),
            alone_state if isinstance(initial, tuple) else alone_state[0],
        )
        close(out.data[:n, b], alone.data[:, 0], f"output of sequence {b} (length {n})")
        assert not out.data[n:, b].any(), f"outputs past the end of sequence {b} are not zero"
        for s, s_alone in zip(parts(final), parts(final_alone)):
            close(s.data[:, b], s_alone.data[:, 0], f"final state of sequence {b}")


def run_tbptt(model, x, weights, window):
    """Chunks of ``window`` steps; the state's values carry over, its graph is cut."""
    state, outputs = None, []
    for start in range(0, x.shape[0], window):
        if state is not None:
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        out, state = model(tg.Tensor(x[start : start + window]), state)
        (out * tg.Tensor(weights[start : start + window])).sum().backward()
        outputs.append(out.data)
    return np.concatenate(outputs), {n: p.grad.copy() for n, p in model.named_parameters()}


@settings(max_examples=15)
@given(setups(), st.integers(1, 8))
def test_truncated_bptt(setup, window):
    kind, x, hidden, layers, bi, seed = setup
    if bi:  # a bidirectional layer sees the whole sequence: chunking changes its values
        window = max(window, x.shape[0])
    model = build(kind, x.shape[2], hidden, layers, bi, seed)
    out, _ = model(tg.Tensor(x))
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * tg.Tensor(weights)).sum().backward()
    full = {n: p.grad.copy() for n, p in model.named_parameters()}
    model.zero_grad()
    outputs, grads = run_tbptt(model, x, weights, window)
    close(outputs, out.data, f"outputs of truncated BPTT with window {window}")
    if window >= x.shape[0]:
        for name, g in grads.items():
            close(g, full[name], f"gradient of {name} with window {window} >= T")


@settings(max_examples=15)
@given(setups(max_layers=3), st.floats(0.1, 0.9))
def test_eval_is_deterministic_and_dropout_zero_changes_nothing(setup, p):
    kind, x, hidden, layers, bi, seed = setup
    with_dropout = build(kind, x.shape[2], hidden, max(layers, 2), bi, seed, dropout=p)
    without = build(kind, x.shape[2], hidden, max(layers, 2), bi, seed + 1)
    without.load_state_dict(with_dropout.state_dict())
    with_dropout.eval()
    first, _ = with_dropout(tg.Tensor(x))
    second, _ = with_dropout(tg.Tensor(x))
    np.testing.assert_array_equal(first.data, second.data)
    train_out, _ = without(tg.Tensor(x))
    np.testing.assert_array_equal(first.data, train_out.data)
    without.eval()
    np.testing.assert_array_equal(without(tg.Tensor(x))[0].data, train_out.data)
