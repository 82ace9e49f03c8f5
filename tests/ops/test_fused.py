"""ops/fused.py: each fused sequence op equals the composed layer it replaces (the oracle),
to float64 precision, over hypothesis-drawn layers; its own gradients pass a tight gradcheck;
bad input and unsupported options fail clearly."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tinygrad_lstm.layers import GRU, LSTM, RNN, Recurrent
from tinygrad_lstm.layers.unroll import FusionWarning
from tinygrad_lstm.ops import fused

import tinygrad_lstm as tg
from tinygrad_lstm.gradcheck import gradcheck

LAYERS = {
    "lstm": (LSTM, {}),
    "gru": (GRU, {}),
    "rnn_tanh": (RNN, {}),
    "rnn_relu": (RNN, {"nonlinearity": "relu"}),
}


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| relative to the largest |want| (the array's own scale)."""
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


def run(model, x: np.ndarray, state, weights: dict, dtype):
    """Outputs, final states and every gradient of L = sum(w * each output) as arrays."""
    xt = tg.Tensor(x.astype(dtype), requires_grad=True)
    st0 = (
        None
        if state is None
        else tuple(tg.Tensor(s.astype(dtype), requires_grad=True) for s in state)
    )
    y, final = model(xt, st0 if st0 is None or len(st0) > 1 else st0[0])
    finals = final if isinstance(final, tuple) else (final,)
    loss = (y * tg.Tensor(weights["y"].astype(dtype))).sum()
    for k, f in enumerate(finals):
        loss = loss + (f * tg.Tensor(weights[k].astype(dtype))).sum()
    loss.backward()
    arrays = {"output": y.data, "x.grad": xt.grad}
    arrays.update({f"final[{k}]": f.data for k, f in enumerate(finals)})
    arrays.update({f"{n}.grad": p.grad for n, p in model.named_parameters()})
    if st0 is not None:
        arrays.update({f"state[{k}].grad": s.grad for k, s in enumerate(st0)})
    return arrays


@st.composite
def layer_cases(draw):
    cell = draw(st.sampled_from(sorted(LAYERS)))
    dims = draw(st.tuples(*[st.integers(1, 4)] * 4))  # T, B, I, H
    options = {
        "num_layers": draw(st.integers(1, 2)),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bidirectional": draw(st.booleans()),
    }
    return cell, dims, options, draw(st.booleans()), draw(st.integers(0, 2**16))


def build_pair(cell, dims, options, seed, dtype):
    cls, extra = LAYERS[cell]
    _, _, isize, hidden = dims
    return [
        cls(
            isize,
            hidden,
            **options,
            **extra,
            dtype=dtype,
            fused=fused,
            rng=np.random.default_rng(seed),
        )
        for fused in (False, True)
    ]


def case_data(cell, dims, options, with_state, seed):
    steps, batch, isize, hidden = dims
    rng = np.random.default_rng(seed + 1)
    x_shape = (batch, steps, isize) if options["batch_first"] else (steps, batch, isize)
    n_states = 2 if cell == "lstm" else 1
    layers = options["num_layers"] * (2 if options["bidirectional"] else 1)
    state = tuple(rng.standard_normal((layers, batch, hidden)) for _ in range(n_states))
    y_shape = x_shape[:2] + (hidden * (2 if options["bidirectional"] else 1),)
    weights = {"y": rng.standard_normal(y_shape)}
    weights.update({k: rng.standard_normal((layers, batch, hidden)) for k in range(n_states)})
    return rng.standard_normal(x_shape), state if with_state else None, weights


@given(layer_cases())
def test_fused_layer_equals_composed_layer_in_float64(case):
    cell, dims, options, with_state, seed = case
    composed, fused = build_pair(cell, dims, options, seed, np.float64)
    x, state, weights = case_data(cell, dims, options, with_state, seed)
    want = run(composed, x, state, weights, np.float64)
    got = run(fused, x, state, weights, np.float64)
    assert got.keys() == want.keys()
    for key in want:
        err = rel_error(got[key], want[key])
        assert err < 1e-12, (
            f"{cell} {dims} {options} state={with_state}: {key} differs "
            f"from the composed layer by {err:.2e} (relative)"
        )


@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_fused_layer_keeps_float32_and_matches_composed(cell):
    dims = (6, 3, 4, 5)
    options = {"num_layers": 2, "bias": True, "batch_first": False, "bidirectional": True}
    composed, fused = build_pair(cell, dims, options, 7, np.float32)
    x, state, weights = case_data(cell, dims, options, True, 7)
    want = run(composed, x, state, weights, np.float32)
    got = run(fused, x, state, weights, np.float32)
    for key in want:
        assert got[key].dtype == np.float32, f"{cell}: {key} is {got[key].dtype}"
        assert rel_error(got[key], want[key]) < 1e-5, f"{cell}: {key} differs in float32"


@pytest.mark.parametrize("cell", ["lstm", "rnn_tanh", "rnn_relu"])
def test_per_step_blas_path_equals_composed(cell, monkeypatch):
    """Large steps run a Python loop of BLAS calls and step kernels instead of the one-call
    kernels that small ones (all the hypothesis cases) use; both must equal the oracle."""
    monkeypatch.setattr(fused, "SMALL_STEP", -1)
    dims = (4, 5, 3, 6)
    options = {"num_layers": 2, "bias": True, "batch_first": True, "bidirectional": True}
    composed, fused_layer = build_pair(cell, dims, options, 11, np.float64)
    x, state, weights = case_data(cell, dims, options, True, 11)
    want = run(composed, x, state, weights, np.float64)
    got = run(fused_layer, x, state, weights, np.float64)
    for key in want:
        assert rel_error(got[key], want[key]) < 1e-12, f"{key} differs on the BLAS path"


def op_inputs(cell, rng, steps=3, batch=2, isize=3, hidden=2):
    gates = {"lstm": 4, "gru": 3}.get(cell, 1)
    shapes = [(steps, batch, isize), (batch, hidden)] + ([(batch, hidden)] if gates == 4 else [])
    shapes += [
        (gates * hidden, isize),
        (gates * hidden, hidden),
        (gates * hidden,),
        (gates * hidden,),
    ]
    return [tg.Tensor(rng.uniform(-1, 1, s), requires_grad=True) for s in shapes]


@pytest.mark.parametrize("small_step", [fused.SMALL_STEP, -1])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_fused_op_passes_a_tight_gradcheck(cell, reverse, small_step, monkeypatch):
    monkeypatch.setattr(fused, "SMALL_STEP", small_step)
    name = f"{cell.split('_')[0]}_sequence"
    attrs = {"reverse": reverse}
    if cell.startswith("rnn"):
        attrs["nonlinearity"] = cell.split("_")[1]
    inputs = op_inputs(cell, np.random.default_rng(3))
    # Raises GradcheckError past |analytic - numeric| <= 1e-9 + 1e-6 |numeric|.
    result = gradcheck(lambda *a: tg.op(name).apply(*a, **attrs), *inputs, atol=1e-9, rtol=1e-6)
    assert len(result.inputs) == len(inputs)


def test_fused_op_names_itself_and_the_shapes_on_bad_input():
    inputs = op_inputs("lstm", np.random.default_rng(0))
    inputs[3] = tg.Tensor(np.zeros((8, 5)))  # weight_ih with I = 5, but x has I = 3
    with pytest.raises(
        tg.ShapeError,
        match=r"lstm_sequence: expected weight_ih of shape "
        r"\(8, 3\).*got \(8, 5\)",
    ):
        tg.op("lstm_sequence").apply(*inputs)
    mixed = op_inputs("gru", np.random.default_rng(0))
    mixed[0] = tg.Tensor(mixed[0].data.astype(np.float32))
    with pytest.raises(TypeError, match="gru_sequence: all inputs must have one dtype"):
        tg.op("gru_sequence").apply(*mixed)


def test_options_without_a_handwritten_op_go_to_the_compiler_or_run_composed():
    """proj_size and lengths have no hand-written kernel: fused=True compiles the step
    (tests/compiler/test_compiled_cells.py checks the results); a step that does not compile
    runs composed, with a FusionWarning naming why."""
    assert LSTM(3, 4, proj_size=2, fused=True)._runners == ["compiled"]

    class PlainCell(tg.Module):
        def init_state(self, batch, dtype):
            return tg.zeros(batch, 4, dtype=dtype)

        def forward(self, x, h):
            return h * float(h.data.mean()), h  # reads a value: not compiled

        def __init__(self, *args, **kwargs):
            super().__init__()

    with pytest.warns(FusionWarning, match="cannot compile PlainCell.*runs composed"):
        layer = Recurrent(PlainCell, 3, 4, fused=True)
    assert layer._runners == ["composed"]


def test_fused_layer_records_one_node_per_layer_and_direction():
    model = LSTM(3, 4, num_layers=2, bidirectional=True, fused=True)
    y, _ = model(np.ones((7, 2, 3), np.float32))
    seen, stack = {y._node}, [y._node]
    while stack:
        for t in stack.pop().inputs:
            if t._node is not None and t._node not in seen:
                seen.add(t._node)
                stack.append(t._node)
    names = [node.name for node in seen]
    assert names.count("lstm_sequence") == 4, sorted(names)


MODES = {"whole_pass": 2**62, "per_step_blas": -1}  # SMALL_STEP: every step below, or none


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("batch", range(4, 10))
@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_batches_of_full_and_partial_row_blocks_equal_composed(cell, batch, mode, monkeypatch):
    """The whole-pass kernels multiply four rows of h at a time plus a remainder loop: batch
    4 and 8 are full blocks, 5-7 and 9 a block and a remainder (hypothesis draws 1..4 only).
    A wrong row index in either loop must fail here. GRU has one path: both modes agree."""
    monkeypatch.setattr(fused, "SMALL_STEP", MODES[mode])
    dims = (3, batch, 3, 5)
    options = {"num_layers": 1, "bias": True, "batch_first": False, "bidirectional": True}
    composed, fused_layer = build_pair(cell, dims, options, batch, np.float64)
    x, state, weights = case_data(cell, dims, options, True, batch)
    want = run(composed, x, state, weights, np.float64)
    got = run(fused_layer, x, state, weights, np.float64)
    for key in want:
        err = rel_error(got[key], want[key])
        assert err < 1e-12, f"{cell} batch {batch} ({mode}): {key} differs by {err:.2e}"


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_an_empty_batch_gives_pytorchs_shapes_and_the_composed_result(cell, mode, monkeypatch):
    """torch.nn.LSTM/GRU/RNN take a batch of 0 (outputs (T, 0, H), states (L, 0, H)); the
    composed layer does too. The fused ops raised "cannot reshape array of size 0"."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(fused, "SMALL_STEP", MODES[mode])
    dims = (4, 0, 3, 5)
    options = {"num_layers": 2, "bias": True, "batch_first": False, "bidirectional": True}
    composed, fused_layer = build_pair(cell, dims, options, 0, np.float64)
    x, state, weights = case_data(cell, dims, options, True, 0)
    want = run(composed, x, state, weights, np.float64)
    got = run(fused_layer, x, state, weights, np.float64)
    for key in want:
        assert got[key].shape == want[key].shape, f"{cell}: {key} shape"
        np.testing.assert_array_equal(got[key], want[key], err_msg=f"{cell}: {key}")
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cell, torch.nn.RNN)
    ty, tfinal = cls(3, 5, num_layers=2, bidirectional=True)(torch.zeros(4, 0, 3))
    tfinals = tfinal if isinstance(tfinal, tuple) else (tfinal,)
    assert got["output"].shape == tuple(ty.shape)
    assert [got[f"final[{k}]"].shape for k in range(len(tfinals))] == [
        tuple(t.shape) for t in tfinals
    ]


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_a_read_only_upstream_gradient_is_taken(cell, mode, monkeypatch):
    """y.sum().backward() hands the op a read-only broadcast view; for T = B = H = 1 it is
    contiguous too, and the kernels, which take writeable arrays, refused it (TypeError)."""
    monkeypatch.setattr(fused, "SMALL_STEP", MODES[mode])
    grads = []
    for layer in build_pair(
        cell,
        (1, 1, 3, 1),
        {"num_layers": 1, "bias": True, "batch_first": False, "bidirectional": False},
        5,
        np.float64,
    ):
        y, _ = layer(tg.Tensor(np.ones((1, 1, 3))))
        y.sum().backward()
        grads.append({n: p.grad for n, p in layer.named_parameters()})
    for name in grads[0]:
        assert rel_error(grads[1][name], grads[0][name]) < 1e-12, name
