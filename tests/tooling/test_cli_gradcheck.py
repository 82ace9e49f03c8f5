"""``tinygrad-lstm gradcheck``: the table, the exit codes, and a failure that names its case.

Broken ops and cells are registered in a subprocess, so the registry of this test session
never sees them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from tinygrad_lstm.tooling.cli import main

BROKEN = textwrap.dedent("""
    import sys
    import numpy as np
    import tinygrad_lstm as tg
    from tinygrad_lstm import Function, Module, Parameter, Tensor, register_cell, register_op
    from tinygrad_lstm.tooling.cli import main

    @register_op("broken_square", arity=1)
    class BrokenSquare(Function):
        '''y = x**2 with the factor 2 forgotten in backward.'''
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved
            return g * x

    @register_cell("leaky_broken")
    class LeakyBroken(Module):
        '''h' = tanh(x W^T) + h / 2, but the state is read through .data: no gradient to h.'''
        def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
            super().__init__()
            rng = rng or np.random.default_rng(0)
            self.weight = Parameter(rng.uniform(-0.5, 0.5, (hidden_size, input_size)), dtype=dtype)
            self.hidden_size = hidden_size
        def init_state(self, batch, dtype=None):
            return tg.zeros(batch, self.hidden_size, dtype=dtype or self.weight.dtype)
        def forward(self, x_t, h):
            h = (x_t @ self.weight.T).tanh() + Tensor(h.data / 2)
            return h, h

    @register_op(
        "softsign_wrong_rule",
        arity=1,
        scalar={"y": "x / (1 + abs(x))", "dx": "g / (1 + abs(x))"},
    )
    class Softsign(Function):
        '''y = x / (1 + |x|), forward and backward right; the rule's derivative is not.'''
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x / (1 + np.abs(x))
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved
            return g / ((1 + np.abs(x)) * (1 + np.abs(x)))

    @register_cell("softsign_rnn")
    class SoftsignRNN(LeakyBroken):
        '''h' = softsign(x W^T + h): right composed, wrong compiled (from the rule).'''
        def forward(self, x_t, h):
            h = Softsign.apply(x_t @ self.weight.T + h)
            return h, h

    sys.exit(main(["gradcheck"] + sys.argv[1:]))
""")


def run_broken(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BROKEN, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def table_rows(out: str) -> dict[str, list[str]]:
    lines = out.split("\n\n")[0].splitlines()
    assert lines[0].split()[:3] == ["name", "kind", "origin"], out
    return {line.split()[0]: line.split() for line in lines[1:]}


def test_selected_ops_pass_and_are_tabulated(capsys):
    assert main(["gradcheck", "--ops", "add,sigmoid", "--max-examples", "3"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert set(rows) == {"add", "sigmoid"}, out
    for row in rows.values():
        assert row[1:4] == ["op", "tinygrad-lstm", "3"] and row[-1] == "ok", row
        assert float(row[4]) < 1e-6, row
    assert "2 passed, 0 failed (2 ops, 0 cells" in out


def test_a_cell_alone(capsys):
    assert main(["gradcheck", "--cells", "rnn"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert list(rows) == ["rnn"] and rows["rnn"][1] == "cell" and rows["rnn"][-1] == "ok"


def test_user_errors_exit_2_with_one_line(capsys):
    assert main(["gradcheck", "--ops", "add,no_such_op"]) == 2
    err = capsys.readouterr().err
    assert "unknown op 'no_such_op'" in err and "registered ops: " in err and " add," in err
    assert main(["gradcheck", "--cells", "nope"]) == 2
    assert "unknown cell 'nope'" in capsys.readouterr().err
    assert main(["gradcheck", "--max-examples", "0"]) == 2
    assert "argument --max-examples: must be an integer >= 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ops", ""], "--ops '' names no op; checking nothing is not a pass"),
        (["--ops", " , "], "--ops ' , ' names no op"),
        (["--cells", ""], "--cells '' names no cell"),
        (["--ops", "", "--cells", "rnn"], "--ops '' names no op"),
        (["--seed", "-1"], "argument --seed: must be an integer in [0, "),
        (["--seed", "x"], "argument --seed: must be an integer in [0, "),
    ],
)
def test_checking_nothing_or_a_bad_number_is_a_named_error(argv, message, capsys):
    assert main(["gradcheck", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_broken_op_fails_and_names_a_reproducible_case():
    proc = run_broken("--ops", "broken_square,mul", "--max-examples", "5", "--seed", "3")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = table_rows(proc.stdout)
    assert rows["broken_square"][-1] == "FAIL" and rows["mul"][-1] == "ok", proc.stdout
    # The FAIL row shows the error that failed: the backward gives g*x for 2*g*x, half the
    # true gradient, so the relative error is 0.5 (up to the floor of tiny gradients).
    assert 0.4 <= float(rows["broken_square"][4]) <= 1.0, proc.stdout
    assert "1 passed, 1 failed" in proc.stdout
    failure = proc.stdout.split("FAILED op broken_square:")[1]
    assert "gradient mismatch" in failure and "seed 3" in failure and "input shapes" in failure
    assert (
        "reproduce: tinygrad-lstm gradcheck --ops broken_square --max-examples 5 --seed 3"
        in failure
    )


def test_broken_cell_fails_and_names_the_wrong_gradient():
    proc = run_broken("--cells", "leaky_broken,rnn")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = table_rows(proc.stdout)
    assert rows["leaky_broken"][-1] == "FAIL" and rows["rnn"][-1] == "ok", proc.stdout
    assert float(rows["leaky_broken"][4]) > 1e-2, proc.stdout  # the failing error, not 0
    failure = proc.stdout.split("FAILED cell leaky_broken:")[1]
    assert "gradient mismatch for input x" in failure, failure
    assert "reproduce: tinygrad-lstm gradcheck --cells leaky_broken" in failure


def test_the_reproduce_line_keeps_import_and_runs_as_pasted(tmp_path, capsys, registry_restored):
    """Without --import, the pasted line said "unknown op"."""
    import shlex

    script = tmp_path / "my broken op.py"  # a space: the line must quote it
    script.write_text(
        BROKEN.split("@register_cell")[0].replace("from tinygrad_lstm.tooling.cli import main", "")
    )
    argv = ["gradcheck", "--import", str(script), "--ops", "broken_square", "--max-examples", "3"]
    assert main(argv) == 1
    line = capsys.readouterr().out.split("reproduce: ")[1].splitlines()[0]
    assert line.startswith(f"tinygrad-lstm gradcheck --import {shlex.quote(str(script))} --ops")
    words = shlex.split(line)
    proc = subprocess.run(
        [sys.executable, "-m", "tinygrad_lstm", *words[1:]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1 and "FAILED op broken_square" in proc.stdout, proc.stderr


def test_an_op_whose_scalar_rule_is_wrong_fails(capsys):
    """Before, a plugin op with a right backward and a wrong rule passed ``--ops``."""
    proc = run_broken("--ops", "softsign_wrong_rule", "--max-examples", "3")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert table_rows(proc.stdout)["softsign_wrong_rule"][-1] == "FAIL", proc.stdout
    assert "scalar rule dx = g / (1 + abs(x))" in proc.stdout


def test_a_cell_whose_compiled_layer_differs_from_composed_fails(capsys):
    """Before, ``--cells`` never looked at the compiled layer: a cell of that op passed, and
    ``fused=True`` trained on the rule's gradients."""
    proc = run_broken("--cells", "softsign_rnn", "--cell-examples", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert table_rows(proc.stdout)["softsign_rnn"][-1] == "FAIL", proc.stdout
    failure = proc.stdout.split("FAILED cell softsign_rnn:")[1]
    assert "fused differs from composed" in failure, failure
    assert "reproduce: tinygrad-lstm gradcheck --cells softsign_rnn --cell-examples 2" in failure
