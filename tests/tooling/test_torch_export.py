"""A custom cell goes to PyTorch: its captured step written as PyTorch source.

For every registered cell (built-ins, the example cells, installed plugins such as the
example package's indrnn), the generated ``<Cell>Layer`` gives the outputs, final states and
every gradient (x, initial state, each parameter) of ``Recurrent`` to 1e-12 in float64, with
torch's autograd differentiating the generated step. PyTorch is the reference here only in
that it runs the exported code; the oracle is our composed layer.
"""

import numpy as np
import pytest
from example_cells import CELLS, register_example_cells
from hypothesis import given, settings
from hypothesis import strategies as st
from tinygrad_lstm.layers import Recurrent
from tinygrad_lstm.tooling.interop import from_torch, to_torch
from tinygrad_lstm.tooling.torch_export import export_layer, torch_source

import tinygrad_lstm as tg
from tinygrad_lstm import Function, Module, Parameter, register_cell, register_op

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def example_cells(monkeypatch):
    """The example cells registered for the test."""
    register_example_cells(monkeypatch)


def _run(module, ours, x, h0, lengths, seed):
    """Outputs, final states and gradients of ``module`` (ours or torch's) on the data."""
    make = (
        (lambda a: tg.Tensor(a, requires_grad=True))
        if ours
        else (lambda a: torch.tensor(a, requires_grad=True))
    )
    wrap = tg.Tensor if ours else torch.tensor
    xt = make(x)
    states = None if h0 is None else [make(s) for s in h0]
    given_state = None if states is None else (tuple(states) if len(states) > 1 else states[0])
    y, final = module(xt, given_state, lengths=lengths)
    finals = final if isinstance(final, tuple) else (final,)
    weights = np.random.default_rng(seed)
    loss = (y * wrap(weights.standard_normal(tuple(y.shape)))).sum()
    for f in finals:
        loss = loss + (f * wrap(weights.standard_normal(tuple(f.shape)))).sum()
    loss.backward()
    value = (lambda t: t.data) if ours else (lambda t: t.detach().numpy())
    grad = (lambda t: t.grad) if ours else (lambda t: t.grad.numpy())
    out = {"y": value(y), "dx": grad(xt), **{f"h{k}": value(f) for k, f in enumerate(finals)}}
    out.update({f"d{n}": grad(p) for n, p in module.named_parameters()})
    out.update({f"dh0_{k}": grad(s) for k, s in enumerate(states or ())})
    return out


def _both(layer, exported, config, seed):
    """The same data through our layer and through the exported one."""
    rng = np.random.default_rng(seed)
    steps, batch = config["steps"], config["batch"]
    shape = (batch, steps) if layer.batch_first else (steps, batch)
    x = rng.uniform(-1, 1, (*shape, layer.input_size))
    zeros = layer.init_state(batch)
    parts = zeros if isinstance(zeros, tuple) else (zeros,)
    h0 = [rng.uniform(-1, 1, p.shape) for p in parts] if config["with_state"] else None
    lengths = rng.integers(1, steps + 1, batch) if config["with_lengths"] else None
    return [_run(m, m is layer, x, h0, lengths, seed + 1) for m in (layer, exported)]


@st.composite
def configs(draw):
    return {
        "steps": draw(st.integers(1, 4)),
        "batch": draw(st.integers(1, 3)),
        "num_layers": draw(st.integers(1, 2)),
        "bidirectional": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "with_state": draw(st.booleans()),
        "with_lengths": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


@pytest.mark.parametrize("name", CELLS)
@settings(max_examples=4)
@given(config=configs())
def test_the_exported_layer_equals_ours_in_float64(name, config):
    layer = Recurrent(
        name,
        3,
        4,
        num_layers=config["num_layers"],
        bidirectional=config["bidirectional"],
        batch_first=config["batch_first"],
        dtype=np.float64,
        rng=np.random.default_rng(config["seed"]),
    )
    ours, theirs = _both(layer, export_layer(layer), config, config["seed"])
    assert ours.keys() == theirs.keys()
    for key, want in ours.items():
        scale = max(1.0, float(np.max(np.abs(want))))
        assert np.max(np.abs(theirs[key] - want)) / scale <= 1e-12, (name, key)


def test_to_torch_exports_a_custom_cell_and_from_torch_brings_it_back():
    model = tg.Module()
    model.rnn = Recurrent("mgu", 3, 5, num_layers=2, dtype=np.float64)
    model.rnn.eval()
    exported = to_torch(model)
    assert type(exported.rnn).__name__ == "MGULayer"
    assert set(exported.state_dict()) == set(model.state_dict())
    back = from_torch(exported)
    assert isinstance(back.rnn, Recurrent) and back.rnn.cell_class is model.rnn.cell_class
    assert not back.rnn.training
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key], value)


def test_the_exported_layer_trains_with_a_torch_optimizer():
    layer = Recurrent("mgu", 2, 8, dtype=np.float32, rng=np.random.default_rng(0))
    net = to_torch(layer)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.uniform(-1, 1, (6, 16, 2)), dtype=torch.float32)
    target = x.sum(dim=2, keepdim=True).cumsum(dim=0)[..., 0] / 4
    losses = []
    for _ in range(30):
        y, _ = net(x)
        loss = ((y[..., 0] - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 3, losses


def test_an_op_without_a_torch_counterpart_is_written_from_its_scalar_rule(scratch_registry):
    @register_op(
        "softsign_rule", arity=1, scalar={"y": "x / (1 + abs(x))", "dx": "g / (1 + abs(x)) ** 2"}
    )
    class Softsign(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x / (1 + np.abs(x))

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved
            return g / (1 + np.abs(x)) ** 2

    @register_cell("softsign_cell")
    class SoftsignCell(Module):
        def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
            super().__init__()
            rng = rng or np.random.default_rng(0)
            self.w = Parameter(rng.uniform(-1, 1, (input_size, hidden_size)).astype(dtype))
            self.u = Parameter(rng.uniform(-1, 1, (hidden_size, hidden_size)).astype(dtype))
            self.hidden_size = hidden_size

        def init_state(self, batch, dtype=np.float32):
            return tg.zeros(batch, self.hidden_size, dtype=dtype)

        def forward(self, x, h):
            h = tg.op("softsign_rule").apply(x @ self.w + h @ self.u) * (1 - 0.5 * h)
            return h, h

    layer = Recurrent("softsign_cell", 3, 4, dtype=np.float64, bidirectional=True)
    assert "/ (1 + torch.abs(" in torch_source(layer)
    config = {"steps": 3, "batch": 2, "with_state": True, "with_lengths": True}
    ours, theirs = _both(layer, export_layer(layer), config, 0)
    for key, want in ours.items():
        np.testing.assert_allclose(theirs[key], want, rtol=1e-12, atol=1e-13, err_msg=key)
