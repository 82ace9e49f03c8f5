"""The BPTT ledger (``tinygrad_lstm.tooling.explain``, ``tinygrad-lstm explain``): the hand-written
derivation, the recorded graph, autograd and central differences all give the same gradients,
step by step and summed, and a wrong derivation is caught."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from tinygrad_lstm.layers import Recurrent
from tinygrad_lstm.tooling import bptt_derivations
from tinygrad_lstm.tooling.cli import main
from tinygrad_lstm.tooling.explain import SOURCES, TOLERANCE, explain, ledger

from tinygrad_lstm import registry
from tinygrad_lstm.tensor import Tensor

CUSTOM_CELL = Path(__file__).resolve().parents[2] / "examples" / "custom_cell.py"


@pytest.fixture
def mgu():
    """The MGU cell of examples/custom_cell.py, registered for one test (its training runs
    only under ``__main__``, so importing it is cheap)."""
    saved = dict(registry._CELLS)
    spec = importlib.util.spec_from_file_location("custom_cell_for_test", CUSTOM_CELL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield "mgu"
    registry._CELLS.clear()
    registry._CELLS.update(saved)


def assert_three_sources_agree(result, cell: str) -> None:
    assert set(result.grads) == set(SOURCES)
    by_pair = {pair: max(per.values()) for pair, per in result.disagreements.items()}
    # Ledger and autograd do the same arithmetic in another order: rounding only.
    assert by_pair["ledger vs autograd"] < 1e-13, (cell, by_pair)
    # Fourth-order central differences in float64 are good to about 1e-11 here.
    assert result.worst < 1e-9, (cell, by_pair)
    assert result.agrees()


@pytest.mark.parametrize("loss", ["last", "all"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_hand_derivation_autograd_and_central_differences_agree(cell, loss):
    result = explain(cell, loss=loss, seed=1)
    assert result.derivation.startswith("hand-written BPTT"), result.derivation
    assert_three_sources_agree(result, cell)


@pytest.mark.parametrize("loss", ["last", "all"])
def test_custom_cell_ledger_comes_from_the_graph_and_agrees(mgu, loss):
    result = explain(mgu, loss=loss, seq_len=5, hidden=4)
    assert result.derivation.startswith("read off the recorded graph")
    assert [s.t for s in result.steps] == [4, 3, 2, 1, 0]
    assert set(result.steps[0].arriving) == {"dh←loss", "dh←t+1", "dh"}
    assert_three_sources_agree(result, mgu)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_every_step_of_the_hand_derivation_matches_the_recorded_graph(cell):
    """Not just the sums: each step's contribution to each weight, and the full gradient
    reaching h_t (and c_t), agree between the hand derivation and the graph's hooks."""
    hand, graph = (
        explain(cell, seq_len=6, loss="all", seed=2, from_graph=g) for g in (False, True)
    )
    for a, b in zip(hand.steps, graph.steps):
        assert a.t == b.t
        for name in a.contributions:
            np.testing.assert_allclose(
                a.contributions[name],
                b.contributions[name],
                rtol=1e-12,
                atol=1e-15,
                err_msg=f"{cell} t={a.t} {name}",
            )
        for key in ("dh", "dc") if cell == "lstm" else ("dh",):
            np.testing.assert_allclose(
                a.arriving[key],
                b.arriving[key],
                rtol=1e-12,
                atol=1e-15,
                err_msg=f"{cell} t={a.t} {key}",
            )
        np.testing.assert_allclose(a.arriving["dh←loss"], b.arriving["dh←loss"], atol=1e-14)


def test_lstm_ledger_matches_torch():
    """PyTorch is the reference: its autograd's per-step dL/dh_t, dL/dc_t (retain_grad) and
    weight gradients against the hand derivation, for the same weights and data."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    layer = Recurrent("lstm", 2, 3, dtype=np.float64, rng=rng)
    x, y = rng.standard_normal((5, 1, 2)), rng.uniform(-0.5, 0.5, (5, 1, 3))
    result = ledger(layer, x, y, range(5))
    ref = torch.nn.LSTMCell(2, 3).double()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.cell_l0.state_dict().items()})
    h = c = torch.zeros(1, 3, dtype=torch.float64)
    states, loss = [], 0
    for t in range(5):
        h, c = ref(torch.from_numpy(x[t]), (h, c))
        h.retain_grad()
        c.retain_grad()
        states.append((h, c))
        loss = loss + 0.5 * ((h - torch.from_numpy(y[t])) ** 2).sum()
    loss.backward()
    for step in result.steps:
        h_t, c_t = states[step.t]
        np.testing.assert_allclose(step.arriving["dh"], h_t.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(step.arriving["dc"], c_t.grad.numpy(), rtol=1e-12)
    for name, param in ref.named_parameters():
        np.testing.assert_allclose(
            result.grads["ledger"][name], param.grad.numpy(), rtol=1e-12, err_msg=name
        )


def test_the_classic_missing_tanh_on_the_cell_state_is_caught(monkeypatch, capsys):
    # The well-known numpy LSTM tutorial's bug: dL/dc from h = o * tanh(c) taken as dh * o,
    # the derivative of h = o * c. Autograd and central differences must outvote it.
    monkeypatch.setattr(bptt_derivations, "lstm_dc_from_h", lambda dh, o, c: dh * o)
    result = explain("lstm")
    by_pair = {pair: max(per.values()) for pair, per in result.disagreements.items()}
    assert by_pair["ledger vs central differences"] > 1e-3, by_pair
    assert by_pair["autograd vs central differences"] < 1e-9, by_pair
    assert not result.agrees()
    assert main(["explain"]) == 1
    assert "DISAGREE" in capsys.readouterr().out


def test_path_factors_are_what_their_labels_say():
    # LSTM: the product of forget gates from t+1 to T-1; an empty product at the last step.
    lstm = explain("lstm", seq_len=5)
    assert lstm.steps[0].path == 1.0
    assert all(0 < b.path < a.path for a, b in zip(lstm.steps, lstm.steps[1:]))
    # RNN: ||diag(1 - h_{T-1}^2) W_hh||_2 one step back, from the layer's own outputs.
    rng = np.random.default_rng(0)
    layer = Recurrent("rnn", 2, 3, dtype=np.float64, rng=rng)
    x = rng.standard_normal((4, 1, 2))
    result = ledger(layer, x, np.zeros((4, 1, 3)), [3])
    out, _ = layer(Tensor(x))
    h_last = out.data[3, 0]
    expected = np.linalg.norm((1 - h_last**2)[:, None] * layer.cell_l0.weight_hh.data, 2)
    assert result.steps[1].path == pytest.approx(expected, rel=1e-12)


def test_bad_models_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="needs a float64 model"):
        ledger(Recurrent("lstm", 2, 3, rng=rng), np.ones((2, 1, 2)), np.ones((2, 1, 3)), [1])
    with pytest.raises(ValueError, match="one-layer, unidirectional, composed"):
        ledger(
            Recurrent("gru", 2, 3, num_layers=2, dtype=np.float64),
            np.ones((2, 1, 2)),
            np.ones((2, 1, 3)),
            [1],
        )
    with pytest.raises(ValueError, match="loss must be one of"):
        explain("lstm", loss="first")
    layer = Recurrent("rnn", 2, 3, dtype=np.float64, rng=rng)
    with pytest.raises(ValueError, match=r"x \(2, 1, 2\) and targets \(3, 1, 3\)"):
        ledger(layer, np.ones((2, 1, 2)), np.ones((3, 1, 3)), [1])
    with pytest.raises(ValueError, match=r"loss_steps \[5\] out of range for 2 steps"):
        ledger(layer, np.ones((2, 1, 2)), np.ones((2, 1, 3)), [5])


# ---- the command -------------------------------------------------------------------------
def test_default_command_prints_the_three_tables(capsys):
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    for text in (
        "BPTT ledger: lstm, T=10, hidden 3",
        "‖dc←f·dc(t+1)‖",
        "‖δf‖",
        "∏f",
        "running sum",
        "‖central differences‖",
        "the three agree",
    ):
        assert text in out, text
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("t  ‖dh←loss‖"))
    rows = [line.split()[0] for line in lines[first + 1 : first + 11]]
    assert rows == [str(t) for t in range(9, -1, -1)], out


def test_json_and_verbose(capsys):
    assert main(["explain", "--cell", "gru", "--seq-len", "3", "--loss", "all", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["t"] for s in data["steps"]] == [2, 1, 0]
    assert set(data["steps"][0]["local"]) == {"δr", "δz", "δn"}
    assert data["worst"] <= data["tolerance"] == TOLERANCE
    summed = np.sum([s["contribution"]["weight_hh"] for s in data["steps"]], axis=0)
    np.testing.assert_allclose(summed, data["grads"]["autograd"]["weight_hh"], rtol=1e-12)
    assert main(["explain", "--cell", "rnn", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "C_t[weight_hh]" in out and "weight_hh, central differences:" in out


def test_custom_cell_from_a_script(capsys):
    saved = dict(registry._CELLS)
    try:
        assert main(["explain", "--import", str(CUSTOM_CELL), "--cell", "mgu"]) == 0
    finally:
        registry._CELLS.clear()
        registry._CELLS.update(saved)
        sys.modules.pop("custom_cell", None)
        from tinygrad_lstm.tooling import cli

        cli._imported_files.clear()
    out = capsys.readouterr().out
    assert "read off the recorded graph" in out and "the three agree" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seq-len", "0"], "--seq-len must be at least 1"),
        (["--cell", "janet"], "unknown cell 'janet'"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    assert main(["explain", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
