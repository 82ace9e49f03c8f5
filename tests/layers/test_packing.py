"""Masks for variable-length batches: which steps need one, and that holding a finished
sequence's state is exact (not merely close)."""

import numpy as np
import pytest
from tinygrad_lstm.layers.packing import check_lengths, hold_finished, step_masks

import tinygrad_lstm as tg


def test_steps_where_every_sequence_runs_need_no_mask():
    masks = step_masks(np.array([4, 2, 3]), 5, np.float64)
    assert [m is None for m in masks] == [True, True, False, False, False]
    np.testing.assert_array_equal(masks[2].keep.data[:, 0], [1, 0, 1])
    np.testing.assert_array_equal(masks[4].keep.data[:, 0], [0, 0, 0])
    np.testing.assert_array_equal(masks[3].keep.data[:, 0], [1, 0, 0])


def test_holding_is_exact_for_tensors_and_tuples():
    mask = step_masks(np.array([1, 2]), 2, np.float32)[1]
    new = tg.Tensor(np.array([[1e30, 3.3], [0.1, -7.0]], np.float32))
    old = tg.Tensor(np.array([[2.5, -1e-30], [9.0, 1.0 / 3]], np.float32))
    held = hold_finished(new, old, mask)
    # sequence 0 has ended (keeps old), sequence 1 runs (takes new): bit for bit
    np.testing.assert_array_equal(held.data, [old.data[0], new.data[1]])
    _, c = hold_finished((new, new * 2), (old, old * 2), mask)
    np.testing.assert_array_equal(c.data, [old.data[0] * 2, new.data[1] * 2])
    assert held.dtype == np.float32


def test_check_lengths_accepts_lists_arrays_and_tensors():
    for lengths in ([3, 1], np.array([3, 1], np.int32), tg.Tensor(np.array([3, 1]))):
        np.testing.assert_array_equal(check_lengths("RNN", lengths, 3, 2), [3, 1])
    with pytest.raises(ValueError, match=r"RNN: every length must lie in \[1, T=3\]"):
        check_lengths("RNN", [3, 4], 3, 2)


# ---- NaN in the padding: never read, as torch's packed sequences -------------------------
# Past a sequence's length its input is padding, which may hold anything: NaN, inf. Selecting
# (not multiplying by a 0/1 mask, as NaN * 0 is NaN) keeps it out of every output and every
# gradient. The compiled path is parametrized in as well; it is not this file's to fix.
FUSED = [False, True]
# Finite padding, even huge, already gave finite results; the compiled case runs NaN only.
PADDINGS = [
    pytest.param(np.nan, False, id="nan"),
    pytest.param(np.inf, False, id="inf"),
    pytest.param(1e300, False, id="1e300"),
    pytest.param(np.nan, True, id="nan-fused"),
]
LENGTHS = [5, 2, 3]


class PlainCell(tg.Module):
    """A cell with only ``forward`` (no split-step protocol): the runner calls it per step."""

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        rng = rng or np.random.default_rng(0)
        self.weight_ih = tg.Parameter(
            rng.uniform(-0.5, 0.5, (hidden_size, input_size)).astype(dtype)
        )
        self.weight_hh = tg.Parameter(
            rng.uniform(-0.5, 0.5, (hidden_size, hidden_size)).astype(dtype)
        )
        self.hidden_size = hidden_size

    def init_state(self, batch_size, dtype=np.float32):
        return tg.zeros(batch_size, self.hidden_size, dtype=dtype)

    def forward(self, x, h):
        h = (x @ self.weight_ih.T + h @ self.weight_hh.T).tanh()
        return h, h


def _padded_input(padding: float) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((5, len(LENGTHS), 3))
    for b, length in enumerate(LENGTHS):
        x[length:, b] = padding
    return x


def _layer(cell, fused):
    return tg.layers.Recurrent(
        cell,
        3,
        4,
        num_layers=2,
        bidirectional=True,
        dtype=np.float64,
        rng=np.random.default_rng(1),
        fused=fused,
    )


# The loss weights every output (T, N, 2H) and each final state part: fixed numbers, so a
# sequence run alone gets its own slice of them and the batch's loss is the sum of those.
WEIGHTS = np.random.default_rng(2).standard_normal((5, len(LENGTHS), 8))


def _run(layer, x: np.ndarray, lengths, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs, final states, and the gradients of sum(out * weights) + sum_k (k+1) final_k."""
    layer.zero_grad()
    leaf = tg.Tensor(x, requires_grad=True)
    out, final = layer(leaf, lengths=lengths)
    parts = final if isinstance(final, tuple) else (final,)
    loss = (out * tg.Tensor(weights)).sum()
    for k, part in enumerate(parts):
        loss = loss + part.sum() * (k + 1)
    loss.backward()
    result = {"out": out.data, "dx": leaf.grad}
    result.update({f"final{k}": p.data for k, p in enumerate(parts)})
    result.update({n: p.grad.copy() for n, p in layer.named_parameters()})
    return result


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", PlainCell])
@pytest.mark.parametrize("padding, fused", PADDINGS)
def test_padding_is_never_read_and_equals_each_sequence_alone(cell, padding, fused):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a cell that does not compile runs composed: a warning
        layer = _layer(cell, fused)
    x = _padded_input(padding)
    got = _run(layer, x, LENGTHS, WEIGHTS)
    for name, value in got.items():
        assert np.all(np.isfinite(value)), f"{name} is not finite: the padding leaked"
    for b, length in enumerate(LENGTHS):
        np.testing.assert_array_equal(got["out"][length:, b], 0.0)
        np.testing.assert_array_equal(got["dx"][length:, b], 0.0)
    alone = [
        _run(layer, x[:length, b : b + 1], None, WEIGHTS[:length, b : b + 1])
        for b, length in enumerate(LENGTHS)
    ]
    for b, (length, one) in enumerate(zip(LENGTHS, alone)):
        np.testing.assert_allclose(got["out"][:length, b], one["out"][:, 0], rtol=1e-12, atol=1e-14)
        for key in [k for k in got if k.startswith("final")]:
            np.testing.assert_allclose(got[key][:, b], one[key][:, 0], rtol=1e-12, atol=1e-14)
    for name, _ in layer.named_parameters():
        summed = sum(one[name] for one in alone)
        np.testing.assert_allclose(got[name], summed, rtol=1e-10, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_nan_padding_matches_torch_packed_sequences(cell, fused):
    """PyTorch is the reference: pack_padded_sequence drops the padding before the layer
    runs, so its outputs and weight gradients never see it."""
    torch = pytest.importorskip("torch")
    layer = _layer(cell, fused)
    x = _padded_input(np.nan)
    ours = _run(layer, x, LENGTHS, WEIGHTS)
    ref = getattr(torch.nn, cell.upper())(
        3, 4, num_layers=2, bidirectional=True, dtype=torch.float64
    )
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    leaf = torch.tensor(x, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(leaf, LENGTHS, enforce_sorted=False)
    out, final = ref(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=5)
    parts = final if isinstance(final, tuple) else (final,)
    loss = (out * torch.from_numpy(WEIGHTS)).sum()
    for k, part in enumerate(parts):
        loss = loss + part.sum() * (k + 1)
    loss.backward()
    np.testing.assert_allclose(ours["out"], out.detach().numpy(), rtol=1e-12, atol=1e-14)
    for k, part in enumerate(parts):
        np.testing.assert_allclose(ours[f"final{k}"], part.detach().numpy(), rtol=1e-12, atol=1e-14)
    for name, param in ref.named_parameters():
        np.testing.assert_allclose(
            ours[name], param.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name
        )
