"""``tinygrad-lstm fuse``: the captured step, the partition and the generated kernels of
every registered cell; bad arguments fail with one line naming the flag."""

import numpy as np
import pytest
from tinygrad_lstm.tooling.cli import main

import tinygrad_lstm as tg


@pytest.mark.parametrize("cell", [c.name for c in tg.list_cells()])
def test_fuse_prints_the_step_the_partition_and_both_kernels(cell, capsys):
    assert main(["fuse", "--cell", cell, "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    for section in (
        f"captured step of '{cell}'",
        "== partition",
        "recurrence",
        "fused kernel writes",
        "generated kernels (float64)",
    ):
        assert section in out, f"{section!r} missing from:\n{out}"
    assert "_forward(t, tp, B, dims" in out and "_backward(t, tp, B, dims" in out
    assert "def pass_forward(" in out and "def pass_backward(" in out
    source = out.split("then its backward ")[1].split("\n", 1)[1]
    compile(source, "<generated>", "exec")  # the printed kernels are valid Python


def test_fuse_float32_kernels_call_the_fast_sigmoid(capsys):
    assert main(["fuse", "--cell", "lstm"]) == 0
    out = capsys.readouterr().out
    assert "sigmoid_fast(" in out and "np.float32(1.0)" in out
    assert "hoisted over all T steps (one batched op each): matmul" in out
    assert "BLAS per step  %5 = %3 @ %4" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cell", "nope"], "fuse: unknown cell 'nope'; registered cells:"),
        (["--hidden", "0"], "fuse: --hidden must be at least 1, got 0"),
    ],
)
def test_fuse_refuses_bad_arguments_in_one_line(argv, message, capsys):
    assert main(["fuse", *argv]) == 2
    assert message in capsys.readouterr().err


def test_fuse_target_torch_prints_runnable_pytorch_source(capsys):
    pytest.importorskip("torch")
    assert main(["fuse", "--cell", "gru", "--dtype", "float64", "--target", "torch"]) == 0
    out = capsys.readouterr().out
    for part in ("def gru_step(x, state", "class GRUCell(torch.nn.Module)", "class GRULayer("):
        assert part in out, f"{part!r} missing from:\n{out}"
    namespace: dict = {}
    exec(compile(out, "<fuse --target torch>", "exec"), namespace)
    layer = namespace["GRULayer"]()
    assert {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"} == {
        n for n, _ in layer.named_parameters()
    }


def test_fuse_names_why_a_cell_cannot_be_written_for_torch_in_one_line(scratch_registry, capsys):
    from tinygrad_lstm.layers.cells import RNNCell

    @tg.register_cell("peeking")
    class Peeking(RNNCell):
        def step(self, xw, state, prepared):
            out, new = super().step(xw, state, prepared)
            return (out, new) if out.sum().item() < 1e9 else (out * 2, new)

    assert main(["fuse", "--cell", "peeking", "--target", "torch"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("cannot write 'peeking' for PyTorch: the step reads a tensor's values")
    assert len(out.strip().splitlines()) == 1


def test_fuse_prints_a_cell_the_compiler_once_failed_on_and_a_refusal_in_one_line(
    scratch_registry, capsys
):
    """A Python number on the left of an op (JANET's 1 - f) and state parts of two widths
    once made `fuse` print a traceback; a cell the compiler refuses says why in one line."""
    from tinygrad_lstm.layers.cells import RNNCell

    @tg.register_cell("janet_like")
    class JanetLike(tg.Module):
        def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
            super().__init__()
            rng = rng or np.random.default_rng(0)
            self.w = tg.Parameter(rng.uniform(-1, 1, (input_size, hidden_size)).astype(dtype))
            self.u = tg.Parameter(rng.uniform(-1, 1, (hidden_size, hidden_size)).astype(dtype))
            self.hidden_size = hidden_size

        def init_state(self, batch, dtype=np.float32):
            width = self.hidden_size
            return (tg.zeros(batch, width, dtype=dtype), tg.zeros(batch, 1, dtype=dtype))

        def forward(self, x, state):
            h, s = state
            f = (x @ self.w + h @ self.u).sigmoid()
            h = f * h + (1 - f) * s.tanh()
            return h, (h, s * 0.5 + h[:, :1])

    @tg.register_cell("peeks")
    class Peeks(RNNCell):
        def step(self, xw, state, prepared):
            out, new = super().step(xw, state, prepared)
            return (out * 2.0 if out.data.max() > 9 else out), new

    assert main(["fuse", "--cell", "janet_like", "--dtype", "float64"]) == 0
    assert "def pass_backward(" in capsys.readouterr().out
    assert main(["fuse", "--cell", "peeks"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("not fusible: the step reads a tensor's values with .data at ")
    assert len(out.splitlines()[0]) > 40 and "Traceback" not in out
