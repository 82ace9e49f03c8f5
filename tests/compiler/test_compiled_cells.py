"""The cell compiler against its oracle, the composed layer.

For every registered cell (the built-ins, installed plugins such as the example package's
indrnn, and the cells of examples/custom_cell.py and examples/lstm_variants.py, loaded
here so that they register), with no code of its own: outputs, final states and every
gradient of ``Recurrent(cell, fused="compiled")`` agree with the composed layer to 1e-12
(relative to each array's scale) in float64 over hypothesis-drawn configurations, and
closely in float32. A generated backward 0.05% off fails the same check.
"""

import dataclasses

import numpy as np
import pytest
from example_cells import CELLS, register_example_cells
from hypothesis import given
from hypothesis import strategies as st
from tinygrad_lstm.compiler import rows as rows_module
from tinygrad_lstm.compiler import runtime
from tinygrad_lstm.layers import Recurrent

import tinygrad_lstm as tg
from tinygrad_lstm import registry
from tinygrad_lstm.registry import ScalarRule


@pytest.fixture(autouse=True)
def example_cells(monkeypatch):
    """The example cells registered for the test."""
    register_example_cells(monkeypatch)


F64_TOL = 1e-12


@st.composite
def configs(draw):
    return {
        "steps": draw(st.integers(1, 5)),
        "batch": draw(st.integers(1, 4)),
        "input_size": draw(st.integers(1, 4)),
        "hidden": draw(st.integers(1, 4)),
        "num_layers": draw(st.integers(1, 2)),
        "bidirectional": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "with_state": draw(st.booleans()),
        "with_lengths": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


def run_layer(name: str, config: dict, dtype, fused) -> dict[str, np.ndarray]:
    """Outputs, final states and every gradient of sum(w * output) + sum(v * final state)."""
    rng = np.random.default_rng(config["seed"])
    layer = Recurrent(
        name,
        config["input_size"],
        config["hidden"],
        num_layers=config["num_layers"],
        bias=config["bias"],
        batch_first=config["batch_first"],
        bidirectional=config["bidirectional"],
        dtype=dtype,
        rng=np.random.default_rng(config["seed"]),
        fused=fused,
    )
    if fused == "compiled":
        assert set(layer._runners) == {"compiled"}, f"{name} did not compile: {layer._runners}"
    steps, batch = config["steps"], config["batch"]
    shape = (batch, steps) if config["batch_first"] else (steps, batch)
    x = tg.Tensor(
        rng.uniform(-1, 1, (*shape, config["input_size"])).astype(dtype), requires_grad=True
    )
    zeros = layer.init_state(batch)
    parts = zeros if isinstance(zeros, tuple) else (zeros,)
    state = None
    if config["with_state"]:
        state = [
            tg.Tensor(rng.uniform(-1, 1, p.shape).astype(dtype), requires_grad=True) for p in parts
        ]
    lengths = None
    if config["with_lengths"]:
        lengths = rng.integers(1, steps + 1, batch)
    given_state = None if state is None else (tuple(state) if len(state) > 1 else state[0])
    y, final = layer(x, given_state, lengths=lengths)
    finals = final if isinstance(final, tuple) else (final,)
    loss = (y * tg.Tensor(rng.standard_normal(y.shape).astype(dtype))).sum()
    for f in finals:
        loss = loss + (f * tg.Tensor(rng.standard_normal(f.shape).astype(dtype))).sum()
    loss.backward()
    arrays = {"output": y.data, "grad x": x.grad}
    arrays.update({f"final state {k}": f.data for k, f in enumerate(finals)})
    arrays.update({f"grad {n}": p.grad for n, p in layer.named_parameters()})
    arrays.update({f"grad initial state {k}": s.grad for k, s in enumerate(state or ())})
    return arrays


def assert_matches_composed(name: str, config: dict, dtype, tol: float) -> float:
    """The largest relative disagreement (to each array's scale) between the compiled and
    the composed layer; AssertionError naming the array past ``tol``."""
    want = run_layer(name, config, dtype, False)
    got = run_layer(name, config, dtype, "compiled")
    assert sorted(got) == sorted(want)
    worst = 0.0
    for key, expected in want.items():
        scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
        error = float(np.max(np.abs(got[key] - expected), initial=0.0)) / scale
        assert error <= tol, (
            f"cell {name!r}, {key}: compiled differs from composed by "
            f"{error:.2e} (relative, tolerance {tol:g}); config {config}"
        )
        worst = max(worst, error)
    return worst


@pytest.mark.parametrize("name", CELLS)
@given(config=configs())
def test_compiled_layer_equals_composed_in_float64(name, config):
    assert_matches_composed(name, config, np.float64, F64_TOL)


FIXED = {
    "steps": 6,
    "batch": 5,
    "input_size": 3,
    "hidden": 7,
    "num_layers": 2,
    "bidirectional": True,
    "bias": True,
    "batch_first": False,
    "with_state": True,
    "with_lengths": True,
    "seed": 3,
}


@pytest.mark.parametrize("name", CELLS)
def test_compiled_layer_equals_composed_in_float32(name):
    """float32 kernels use the fast sigmoid/tanh (a few ulps from libm): agreement to
    about a thousand float32 ulps after 6 steps, 2 layers and backward."""
    assert_matches_composed(name, FIXED, np.float32, 1e-4)


def test_a_generated_backward_off_by_five_hundredths_of_a_percent_fails(monkeypatch):
    """The oracle check catches a generated backward 0.05% off: the compiler is handed a
    sigmoid derivative rule multiplied by 1.0005 (the forward, and so the outputs,
    unchanged; the composed op, which runs the registered rule, keeps the right one)."""
    info = registry.op_info("sigmoid")
    rule = info.scalar
    wrong = ScalarRule(rule.inputs, rule.forward, (f"({rule.grads[0]}) * 1.0005",))
    patched = dataclasses.replace(info, scalar=wrong)
    monkeypatch.setattr(
        rows_module,
        "op_info",
        lambda name: patched if name == "sigmoid" else registry.op_info(name),
    )
    config = dict(FIXED, with_lengths=False)
    with pytest.raises(AssertionError, match="grad .*compiled differs from composed"):
        assert_matches_composed("lstm", config, np.float64, F64_TOL)
    monkeypatch.undo()
    assert assert_matches_composed("lstm", config, np.float64, F64_TOL) <= F64_TOL


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_compiled_builtins_equal_their_handwritten_kernels(name):
    """Side by side: the compiled step of a built-in cell and its hand-written kernel."""
    config = dict(FIXED, with_lengths=False)
    handwritten = run_layer(name, config, np.float64, True)
    compiled = run_layer(name, config, np.float64, "compiled")
    for key, want in handwritten.items():
        scale = max(float(np.max(np.abs(want))), 1.0)
        assert np.max(np.abs(compiled[key] - want)) / scale <= F64_TOL, key


@pytest.mark.parametrize("name", CELLS)
def test_per_step_blas_path_equals_composed(name, monkeypatch):
    """Small steps (every case above without lengths) run the whole pass in one Numba call;
    larger ones a Python loop of BLAS matmuls and stage kernels: that path too, forced."""
    monkeypatch.setattr(runtime, "SMALL_STEP", -1)
    assert_matches_composed(name, dict(FIXED, with_lengths=False), np.float64, F64_TOL)


def test_a_replaced_parameter_is_what_the_compiled_pass_uses():
    """The compiled step reads the cell's parameters by name at every forward, so a
    parameter assigned after the first forward (same shape or not) takes effect."""
    x = np.random.default_rng(1).standard_normal((4, 2, 3))
    layers = [
        Recurrent("gru", 3, 4, dtype=np.float64, fused=fused, rng=np.random.default_rng(0))
        for fused in (False, "compiled")
    ]
    layers[1](x)
    for layer in layers:
        layer.weight_hh_l0 = tg.Parameter(layer.weight_hh_l0.data * 2)
    want, got = (layer(x)[0].data for layer in layers)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
