"""Tied weights through tinygrad_lstm.tooling.interop: a language model whose output layer
reuses the embedding matrix stays tied both ways, into a user's class too. PyTorch is the
reference: torch lists a tied Parameter under both names in state_dict(), this library lists
it once, and on either side it is one parameter, whose gradient sums both uses."""

from __future__ import annotations

import numpy as np
import pytest
from tinygrad_lstm.layers import LSTM, Embedding, Linear
from tinygrad_lstm.tooling.interop import from_torch, to_torch

import tinygrad_lstm as tg
from tinygrad_lstm.module import StateDictError

V, D = 7, 5


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


class TiedLM(tg.Module):
    def __init__(self, tie: bool = True, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.embed = Embedding(V, D, dtype=np.float64, rng=rng)
        self.lstm = LSTM(D, D, batch_first=True, dtype=np.float64, rng=rng)
        self.head = Linear(D, V, dtype=np.float64, rng=rng)
        if tie:
            self.head.weight = self.embed.weight


def torch_tied_lm(torch, tie: bool = True, seed: int = 0):
    class TorchTiedLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(V, D, dtype=torch.float64)
            self.lstm = torch.nn.LSTM(D, D, batch_first=True, dtype=torch.float64)
            self.head = torch.nn.Linear(D, V, dtype=torch.float64)
            if tie:
                self.head.weight = self.embed.weight

    torch.manual_seed(seed)
    return TorchTiedLM()


IDX = np.random.default_rng(1).integers(0, V, size=(3, 4))


def ours_loss_and_grad(model) -> tuple[float, np.ndarray]:
    model.zero_grad()
    out, _ = model.lstm(model.embed(tg.Tensor(IDX)))
    loss = (model.head(out) ** 2).mean()
    loss.backward()
    return float(loss.data), model.embed.weight.grad.copy()


def torch_loss_and_grad(torch, model) -> tuple[float, np.ndarray]:
    model.zero_grad()
    out, _ = model.lstm(model.embed(torch.from_numpy(IDX)))
    loss = (model.head(out) ** 2).mean()
    loss.backward()
    return loss.item(), model.embed.weight.grad.numpy().copy()


def assert_same(ours: tuple, theirs: tuple) -> None:
    assert ours[0] == pytest.approx(theirs[0], rel=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12, atol=1e-15)


def test_to_torch_keeps_the_tie(torch):
    ours = TiedLM()
    there = to_torch(ours)
    assert there.head.weight is there.embed.weight
    assert len(list(there.parameters())) == len(list(ours.parameters()))
    assert_same(torch_loss_and_grad(torch, there), ours_loss_and_grad(ours))


def test_from_torch_keeps_the_tie(torch):
    theirs = torch_tied_lm(torch)
    here = from_torch(theirs)
    assert here.head.weight is here.embed.weight
    assert "head.weight" not in dict(here.named_parameters())  # listed once, as ours are
    assert_same(ours_loss_and_grad(here), torch_loss_and_grad(torch, theirs))
    back = to_torch(here)
    assert back.head.weight is back.embed.weight


def test_into_a_tied_model_both_ways(torch):
    ours, target = TiedLM(seed=3), torch_tied_lm(torch, seed=4)
    assert to_torch(ours, into=target) is target
    assert target.head.weight is target.embed.weight
    assert_same(torch_loss_and_grad(torch, target), ours_loss_and_grad(ours))
    theirs, here = torch_tied_lm(torch, seed=5), TiedLM(seed=6)
    assert from_torch(theirs, into=here) is here
    assert here.head.weight is here.embed.weight
    assert_same(ours_loss_and_grad(here), torch_loss_and_grad(torch, theirs))


@pytest.mark.parametrize("tied_side", ["ours", "torch"])
def test_into_a_model_tied_differently_is_refused_and_copies_nothing(torch, tied_side):
    ours = TiedLM(tie=tied_side == "ours", seed=7)
    theirs = torch_tied_lm(torch, tie=tied_side == "torch", seed=8)
    before = {k: v.clone() for k, v in theirs.state_dict().items()}
    with pytest.raises(StateDictError, match=r"tie different weights together.*embed\.weight"):
        to_torch(ours, into=theirs)
    assert all(torch.equal(before[k], v) for k, v in theirs.state_dict().items())
    before_ours = ours.state_dict()
    with pytest.raises(StateDictError, match="tie different weights together"):
        from_torch(theirs, into=ours)
    assert all(np.array_equal(before_ours[k], v) for k, v in ours.state_dict().items())


def test_a_shared_layer_goes_into_the_users_class(torch):
    ours = tg.Module()
    ours.first = ours.second = Linear(3, 3, dtype=np.float64)

    class Shared(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.first = self.second = torch.nn.Linear(3, 3, dtype=torch.float64)

    target = to_torch(ours, into=Shared())
    np.testing.assert_array_equal(target.second.weight.detach().numpy(), ours.first.weight.data)
    back = from_torch(target, into=ours)
    assert back.first is back.second
