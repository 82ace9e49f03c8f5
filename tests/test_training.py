"""Trainer and truncated BPTT: full BPTT when bptt >= T, no gradient across a chunk
boundary when bptt < T, state values carried on; detach_state for tensors and tuples.

The model here is built from engine primitives only (a two-part state like LSTM's (h, c)),
so these tests exercise the engine's Trainer without depending on any layer.
"""

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm.optim import SGD
from tinygrad_lstm.training import Trainer, chunk_bounds, detach_state

T, B, I, H = 6, 3, 2, 4


class TwoStateRNN(tg.Module):
    """h' = tanh(x W^T + h U^T + c / 2), c' = c + h'; prediction h' V^T per step or at the end."""

    def __init__(self, per_step=True, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.W = tg.Parameter(rng.standard_normal((H, I)) * 0.5)
        self.U = tg.Parameter(rng.standard_normal((H, H)) * 0.5)
        self.V = tg.Parameter(rng.standard_normal((1, H)) * 0.5)
        self.per_step = per_step

    def forward(self, x, state=None):
        x = x if isinstance(x, tg.Tensor) else tg.Tensor(x)
        h, c = state if state is not None else (tg.zeros(B, H, dtype=np.float64),) * 2
        outs = []
        for x_t in tg.op("unstack").apply(x, axis=0):
            h = tg.tanh(x_t @ self.W.T + h @ self.U.T + c * 0.5)
            c = c + h
            outs.append(h @ self.V.T)
        return (tg.stack(outs) if self.per_step else outs[-1]), (h, c)


def _mse(pred, target):
    diff = pred - tg.Tensor(target)
    return (diff * diff).mean()


def _data(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, B, I)), rng.standard_normal((T, B, 1))


def _grads(model):
    return {n: p.grad.copy() for n, p in model.named_parameters()}


def _frozen_trainer(model, **kwargs):
    """lr = 0: parameters stay put, so every chunk sees the same weights and the grads left
    on the parameters are those of the last chunk."""
    return Trainer(model, SGD(model.parameters(), lr=0.0), _mse, **kwargs)


def _manual_grads(model, x, y, state=None):
    model.zero_grad()
    pred, _ = model(x, state)
    _mse(pred, y).backward()
    return _grads(model)


@pytest.mark.parametrize("bptt", [None, T, T + 5])
def test_bptt_at_least_T_equals_full_bptt(bptt):
    x, y = _data()
    model = TwoStateRNN()
    expected = _manual_grads(model, x, y)
    result = _frozen_trainer(model, bptt=bptt).step(x, y)
    assert result.updates == 1
    for name, g in _grads(model).items():
        np.testing.assert_array_equal(g, expected[name], err_msg=name)


def test_truncated_chunks_carry_values_but_no_gradient():
    x, y = _data()
    k = 4
    model = TwoStateRNN()
    trainer = _frozen_trainer(model, bptt=k)
    result = trainer.step(x, y)
    assert result.updates == 2
    got = _grads(model)  # grads of the second chunk's loss

    with tg.no_grad():  # the state values after chunk 1
        _, state = model(x[:k])
    cut = _manual_grads(model, x[k:], y[k:], detach_state(state))
    for name in got:
        np.testing.assert_allclose(got[name], cut[name], rtol=1e-12, atol=1e-15, err_msg=name)

    model.zero_grad()  # the same loss through an uncut graph differs
    _, state = model(x[:k])
    pred, _ = model(x[k:], state)
    _mse(pred, y[k:]).backward()
    assert not np.allclose(model.U.grad, got["U"]), "the control gradient should cross chunks"


def test_no_gradient_reaches_an_earlier_chunks_inputs():
    x_np, y = _data()
    k = 3
    model = TwoStateRNN()
    x = tg.Tensor(x_np, requires_grad=True)
    _frozen_trainer(model, bptt=k).step(x, y)
    # x[:k] got gradient only from chunk 1's own loss
    x1 = tg.Tensor(x_np[:k], requires_grad=True)
    pred, _ = model(x1)
    _mse(pred, y[:k]).backward()
    np.testing.assert_allclose(x.grad[:k], x1.grad, rtol=1e-12, atol=1e-15)


def test_final_target_truncation_scores_only_the_last_k_steps():
    x, _ = _data()
    y = np.random.default_rng(2).standard_normal((B, 1))
    k = 4
    model = TwoStateRNN(per_step=False)
    result = _frozen_trainer(model, bptt=k, per_step_targets=False).step(x, y)
    assert result.updates == 1
    with tg.no_grad():
        _, state = model(x[: T - k])
    expected = _manual_grads(model, x[T - k :], y, state)
    for name, g in _grads(model).items():
        np.testing.assert_allclose(g, expected[name], rtol=1e-12, atol=1e-15, err_msg=name)


def test_step_returns_detached_state_and_learns():
    x, y = _data()
    model = TwoStateRNN()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), _mse, clip=1.0, bptt=3)
    first = trainer.step(x, y)
    assert all(s.is_leaf for s in first.state)
    for _ in range(40):
        last = trainer.step(x, y)
    assert last.loss < 0.75 * first.loss
    assert trainer.step_count == 41


def test_clip_bounds_the_update():
    x, y = _data()
    model = TwoStateRNN()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.0), _mse, clip=1e-3)
    result = trainer.step(x, y)
    assert result.grad_norm > 1e-3
    total = np.sqrt(sum(np.sum(p.grad**2) for p in model.parameters()))
    assert total <= 1e-3


def test_detach_state_handles_tensors_tuples_and_none():
    a = tg.Tensor(np.ones(2), requires_grad=True)
    h, c = a * 2, a * 3
    assert detach_state(None) is None
    d = detach_state(h)
    assert d.is_leaf and not d.requires_grad and np.array_equal(d.data, h.data)
    pair = detach_state((h, (c, h)))
    assert isinstance(pair, tuple) and all(t.is_leaf for t in (pair[0], *pair[1]))
    with pytest.raises(TypeError, match="expected a Tensor, a tuple of Tensors or None"):
        detach_state(np.ones(2))


def test_chunk_bounds():
    assert chunk_bounds(10, None) == [(0, 10)]
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(10, 4, from_end=True) == [(0, 2), (2, 6), (6, 10)]
    assert chunk_bounds(5, 5) == [(0, 5)]


def test_bad_arguments():
    model = TwoStateRNN()
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="bptt must be a positive number"):
        Trainer(model, opt, _mse, bptt=0)
    for clip in (-1.0, 0.0, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="clip must be a finite number > 0 or None"):
            Trainer(model, opt, _mse, clip=clip)
    for bptt in (2.5, True, "4"):
        with pytest.raises(ValueError, match="bptt must be a positive number"):
            Trainer(model, opt, _mse, bptt=bptt)
    x, y = _data()
    with pytest.raises(ValueError, match="per-step targets need 6 time steps"):
        Trainer(model, opt, _mse).step(x, y[:4])
