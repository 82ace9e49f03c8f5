"""``explain`` (and the commands beside it) under faults and bad input: a NaN gradient is a
disagreement that names its source, ``--json`` is strict JSON, a wrong backward is traced to
its op, a graph-read ledger says what holds by construction, and bad sizes or seeds are one
line before anything is built."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from tinygrad_lstm.tooling.cli import main
from tinygrad_lstm.tooling.explain import explain
from tinygrad_lstm.tooling.ledger_record import Ledger

# A plain tanh RNN cell over an op of the script's own: forward tanh, and a backward that is
# NaN ("nan") or drops a factor ("wrong": g * (1 - y) for g * (1 - y^2)).
_CELL_SCRIPT = """
import numpy as np
import tinygrad_lstm as tg


def backward_nan(y, g):
    return g * (1 - y * y) * np.nan


def backward_wrong(y, g):
    return g * (1 - y)


for kind, rule in (("nan", backward_nan), ("wrong", backward_wrong)):

    class Tanh(tg.Function):
        @staticmethod
        def forward(ctx, x):
            y = np.tanh(x)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g, rule=rule):
            (y,) = ctx.saved
            return (rule(y, g),)

    tg.register_op(f"tanh_{kind}_grad", arity=1)(Tanh)

    class Cell(tg.Module):
        op_name = f"tanh_{kind}_grad"

        def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
            super().__init__()
            rng = rng or np.random.default_rng(0)
            draw = lambda *shape: tg.Parameter(rng.uniform(-1, 1, shape).astype(dtype))
            self.weight_ih = draw(hidden_size, input_size)
            self.weight_hh = draw(hidden_size, hidden_size)
            self.hidden_size = hidden_size

        def init_state(self, batch_size, dtype=np.float32):
            return tg.zeros(batch_size, self.hidden_size, dtype=dtype)

        def forward(self, x, h):
            h = tg.op(self.op_name).apply(x @ self.weight_ih.T + h @ self.weight_hh.T)
            return h, h

    tg.register_cell(f"rnn_{kind}_grad")(Cell)
"""


@pytest.fixture
def cell_script(tmp_path, registry_restored):
    path = tmp_path / "faulty_cells.py"
    path.write_text(_CELL_SCRIPT)
    return str(path)


def _grads(value: float) -> dict[str, np.ndarray]:
    return {"weight_hh": np.full((2, 2), value)}


def test_nan_against_a_number_is_a_disagreement_that_names_the_source():
    """A NaN scale made the relative error 0 and the three "agreed"."""
    grads = {"ledger": _grads(math.nan), "autograd": _grads(math.nan)}
    grads["central differences"] = _grads(0.5)
    record = Ledger("t", "read off the recorded graph", None, [], [], grads, 0.1, True)
    assert not record.agrees()
    assert record.worst == math.inf
    assert record.non_finite == {"ledger": ["weight_hh"], "autograd": ["weight_hh"]}
    verdict = record.verdict()
    assert verdict.startswith("DISAGREE: not finite in ledger (weight_hh); autograd (weight_hh)")
    assert "central differences finite" in verdict
    text = json.dumps(record.to_dict(), allow_nan=False)
    assert json.loads(text)["grads"]["autograd"]["weight_hh"] == [[None, None], [None, None]]


def _strict_loads(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_a_nan_backward_exits_1_names_the_op_and_json_stays_strict(cell_script, capsys):
    argv = ["explain", "--import", cell_script, "--cell", "rnn_nan_grad", "--seq-len", "4"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert "DISAGREE: not finite in ledger (weight_ih, weight_hh); autograd (" in last, out
    assert "central differences finite" in last and "'tanh_nan_grad'" in last, last
    assert main([*argv, "--json"]) == 1
    data = _strict_loads(capsys.readouterr().out)
    assert data["worst"] is None and data["wrong_ops"] == ["tanh_nan_grad"]
    assert set(data["non_finite"]) == {"ledger", "autograd"}


def test_a_wrong_backward_is_traced_to_its_op(cell_script, capsys):
    argv = ["explain", "--import", cell_script, "--cell", "rnn_wrong_grad", "--seq-len", "3"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "the backward of op 'tanh_wrong_grad' is wrong" in out, out
    assert "by construction" in out


def test_a_graph_read_ledger_says_ledger_vs_autograd_holds_by_construction(capsys):
    assert main(["explain", "--from-graph", "--seq-len", "3"]) == 0
    out = capsys.readouterr().out
    assert "ledger vs autograd holds by construction" in out and "the three agree" in out
    assert main(["explain", "--seq-len", "3"]) == 0
    assert "by construction" not in capsys.readouterr().out


def test_the_graph_read_ledger_labels_what_reaches_c_from_its_own_step():
    """At t < T-1 nothing reaches c_t from the loss (it reads h at T-1 only); what the graph
    shows there comes through h_t, the hand ledger's dc<-h."""
    hand, graph = (explain("lstm", seq_len=4, from_graph=g) for g in (False, True))
    for a, b in zip(hand.steps, graph.steps):
        assert "dc←loss" not in b.arriving
        np.testing.assert_allclose(b.arriving["dc←step t"], a.arriving["dc←h"], rtol=1e-12)
        np.testing.assert_allclose(b.arriving["dh←loss"], a.arriving["dh←loss"], atol=1e-15)


def test_the_default_shows_vanishing_and_forget_bias_keeps_more():
    default = explain("lstm")
    biased = explain("lstm", forget_bias=1.0)
    assert default.steps[-1].path < 1e-2, "the path factor at t=0 should show vanishing"
    assert biased.steps[-1].path > 5 * default.steps[-1].path
    assert biased.agrees() and "forget-gate bias 1" in biased.title
    with pytest.raises(ValueError, match="forget_bias sets the LSTM's forget-gate bias"):
        explain("gru", forget_bias=1.0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["explain", "--seed", "-1"], "argument --seed: must be an integer in [0,"),
        (["bptt", "--seed", "-1"], "argument --seed: must be an integer in [0,"),
        (["explain", "--forget-bias", "nan"], "argument --forget-bias: must be a finite number"),
        (["explain", "--cell", "gru", "--forget-bias", "1"], "explain: --forget-bias sets the"),
        (["explain", "--hidden", "100000"], "explain: --hidden 100000 (--input-size 2, --seq-len"),
        (["explain", "--seq-len", "1000000000"], "explain: --hidden 3 (--input-size 2, --seq-len"),
        (
            ["bptt", "--seq-len", "1000000000"],
            "bptt: --hidden 32 (--layers 1, --seq-len 1000000000",
        ),
        (["bptt", "--hidden", "10000000"], "bptt: --hidden 10000000"),
        (["graph", "--seq-len", "1000000000"], "graph: --hidden 3 (--input-size 2, --seq-len"),
        (["fuse", "--hidden", "10000000"], "fuse: --hidden 10000000 (--input-size 3)"),
    ],
)
def test_bad_seeds_and_huge_sizes_are_one_line_before_anything_is_built(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    if "--seed" not in argv and "--forget-bias" not in argv:
        assert "more than the" in err and "of memory here" in err, err


def test_a_long_explain_is_announced(capsys, monkeypatch):
    from tinygrad_lstm.tooling.commands import explain as command

    monkeypatch.setattr(command, "LONG_RUN_CELL_STEPS", 10)
    assert main(["explain", "--seq-len", "2"]) == 0
    err = capsys.readouterr().err
    assert "explain: central differences run the model 4 x 84 times over 2 steps" in err, err
