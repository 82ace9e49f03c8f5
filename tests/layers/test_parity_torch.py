"""Parity with torch.nn.RNN / LSTM / GRU (and the cells): weights loaded from torch give the
same outputs, final states and gradients (every parameter, the input, the initial state).

float64: every compared tensor agrees to 1e-10 *relative*, measured as
``max|ours - torch| / max|torch|`` per tensor (``PARITY_RTOL``). float32: within
``torch.testing.assert_close``'s defaults. Skipped when torch is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from tinygrad_lstm.layers import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

import tinygrad_lstm as tg

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PARITY_RTOL = 1e-10
T, N, I, H = 5, 3, 4, 5

# kind -> (torch class, our class, constructor options)
KINDS = {
    "rnn_tanh": (torch.nn.RNN, RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (torch.nn.RNN, RNN, {"nonlinearity": "relu"}),
    "lstm": (torch.nn.LSTM, LSTM, {}),
    "lstm_proj": (torch.nn.LSTM, LSTM, {"proj_size": 3}),
    "gru": (torch.nn.GRU, GRU, {}),
}


@dataclass(frozen=True)
class Config:
    num_layers: int
    bidirectional: bool
    batch_first: bool
    bias: bool
    given_state: bool
    lengths: tuple[int, ...] | None
    unbatched: bool = False

    def __str__(self) -> str:
        return (
            f"L{self.num_layers}{'-bi' if self.bidirectional else ''}"
            f"{'-bf' if self.batch_first else ''}{'' if self.bias else '-nobias'}"
            f"{'-h0' if self.given_state else ''}"
            f"{'-len' + ''.join(map(str, self.lengths)) if self.lengths else ''}"
            f"{'-unbatched' if self.unbatched else ''}"
        )


# Every pair of option values appears in some row (lengths and unbatched exclude each
# other: torch cannot pack an unbatched sequence). Lengths are unsorted; 413 has max < T.
CONFIGS = [
    Config(1, False, False, True, False, None),
    Config(2, True, False, True, True, None),
    Config(3, True, True, False, False, (5, 2, 3)),
    Config(1, True, True, True, True, (4, 1, 3)),
    Config(2, False, True, False, True, None, unbatched=True),
    Config(3, False, False, True, True, (2, 5, 4)),
    Config(2, True, False, False, False, None, unbatched=True),
    Config(1, False, True, False, False, (3, 5, 1)),
    Config(3, True, False, True, True, None, unbatched=True),
    Config(2, True, True, True, False, (5, 5, 2)),
]


def rel_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max|ours - theirs| / max|theirs| (0 when both are all zeros)."""
    assert ours.shape == theirs.shape, f"shape {ours.shape} != torch's {theirs.shape}"
    scale = np.abs(theirs).max() if theirs.size else 0.0
    diff = np.abs(ours - theirs).max() if theirs.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


def build_pair(kind: str, cfg: Config, dtype, seed: int = 0):
    """(torch module, our module with torch's weights loaded)."""
    torch_cls, ours_cls, options = KINDS[kind]
    torch.manual_seed(seed)
    theirs = torch_cls(
        I,
        H,
        num_layers=cfg.num_layers,
        bias=cfg.bias,
        batch_first=cfg.batch_first,
        bidirectional=cfg.bidirectional,
        **options,
    )
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = ours_cls(
        I,
        H,
        num_layers=cfg.num_layers,
        bias=cfg.bias,
        batch_first=cfg.batch_first,
        bidirectional=cfg.bidirectional,
        dtype=dtype,
        **options,
    )
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def run_both(kind: str, cfg: Config, dtype, seed: int = 0) -> dict[str, tuple]:
    """Run torch and ours on the same data; {tensor name: (ours, torch's)} as NumPy arrays."""
    theirs, ours = build_pair(kind, cfg, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    D = 2 if cfg.bidirectional else 1
    h_out = KINDS[kind][2].get("proj_size", 0) or H
    batch_shape = () if cfg.unbatched else (N,)
    x_shape = (T, I) if cfg.unbatched else ((N, T, I) if cfg.batch_first else (T, N, I))
    x = rng.standard_normal(x_shape).astype(dtype)
    state_shapes = [(D * cfg.num_layers, *batch_shape, h_out)]
    if kind.startswith("lstm"):
        state_shapes.append((D * cfg.num_layers, *batch_shape, H))
    states = [rng.standard_normal(s).astype(dtype) for s in state_shapes]
    out_shape = x_shape[:-1] + (D * h_out,)
    weights = [rng.standard_normal(out_shape).astype(dtype)] + [
        rng.standard_normal(s).astype(dtype) for s in state_shapes
    ]

    # torch
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    hx = None if not cfg.given_state else (tuple(st) if len(st) == 2 else st[0])
    if cfg.lengths is None:
        out_t, fin_t = theirs(xt, hx)
    else:
        packed = pack_padded_sequence(
            xt, list(cfg.lengths), batch_first=cfg.batch_first, enforce_sorted=False
        )
        out_t, fin_t = theirs(packed, hx)
        out_t, _ = pad_packed_sequence(out_t, batch_first=cfg.batch_first, total_length=T)
    fin_t = fin_t if isinstance(fin_t, tuple) else (fin_t,)
    loss_t = sum(((a * torch.from_numpy(w)).sum() for a, w in zip((out_t, *fin_t), weights)))
    loss_t.backward()

    # ours
    xo = tg.Tensor(x, requires_grad=True)
    so = [tg.Tensor(s, requires_grad=True) for s in states]
    state = None if not cfg.given_state else (tuple(so) if len(so) == 2 else so[0])
    out_o, fin_o = ours(xo, state, lengths=None if cfg.lengths is None else list(cfg.lengths))
    fin_o = fin_o if isinstance(fin_o, tuple) else (fin_o,)
    loss_o = None
    for a, w in zip((out_o, *fin_o), weights):
        term = (a * tg.Tensor(w)).sum()
        loss_o = term if loss_o is None else loss_o + term
    loss_o.backward()

    pairs = {"output": (out_o.data, out_t.detach().numpy())}
    for j, (a, b) in enumerate(zip(fin_o, fin_t)):
        pairs[f"final state {j}"] = (a.data, b.detach().numpy())
    pairs["grad input"] = (xo.grad, xt.grad.numpy())
    if cfg.given_state:
        for j, (a, b) in enumerate(zip(so, st)):
            pairs[f"grad initial state {j}"] = (a.grad, b.grad.numpy())
    torch_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(torch_params)
    for name, p in ours.named_parameters():
        pairs[f"grad {name}"] = (p.grad, torch_params[name].grad.numpy())
    return pairs


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
@pytest.mark.parametrize("kind", list(KINDS))
def test_float64_parity(kind, cfg):
    errors = {name: rel_error(*pair) for name, pair in run_both(kind, cfg, np.float64).items()}
    bad = {name: e for name, e in errors.items() if not e <= PARITY_RTOL}
    assert not bad, f"{kind} {cfg}: relative errors above {PARITY_RTOL:g}: {bad}"


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("cfg", [CONFIGS[1], CONFIGS[3], CONFIGS[6]], ids=str)
@pytest.mark.parametrize("kind", list(KINDS))
def test_float32_parity(kind, cfg):
    for name, (ours, theirs) in run_both(kind, cfg, np.float32).items():
        assert ours.dtype == np.float32, name
        torch.testing.assert_close(
            torch.from_numpy(ours),
            torch.from_numpy(theirs),
            msg=lambda m, name=name: f"{kind} {cfg} {name}: {m}",
        )


@pytest.mark.parametrize("kind", list(KINDS))
def test_weights_move_from_ours_to_torch(kind):
    """The reverse direction: our init, loaded into torch, gives torch our results."""
    torch_cls, ours_cls, options = KINDS[kind]
    ours = ours_cls(
        I,
        H,
        num_layers=2,
        bidirectional=True,
        dtype=np.float64,
        rng=np.random.default_rng(7),
        **options,
    )
    theirs = torch_cls(I, H, num_layers=2, bidirectional=True, **options).double()
    missing, unexpected = theirs.load_state_dict(
        {k: torch.from_numpy(v) for k, v in ours.state_dict().items()}, strict=True
    )
    assert not missing and not unexpected
    x = np.random.default_rng(8).standard_normal((T, N, I))
    out_o, _ = ours(tg.Tensor(x))
    out_t, _ = theirs(torch.from_numpy(x))
    assert rel_error(out_o.data, out_t.detach().numpy()) <= PARITY_RTOL


@pytest.mark.parametrize(
    ("ours_cls", "torch_cls", "options"),
    [
        (RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
        (LSTMCell, torch.nn.LSTMCell, {}),
        (GRUCell, torch.nn.GRUCell, {}),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_torch_cells(ours_cls, torch_cls, options, bias):
    torch.manual_seed(0)
    theirs = torch_cls(I, H, bias=bias, **options).double()
    ours = ours_cls(I, H, bias, dtype=np.float64, **options)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, I))
    states = (
        [rng.standard_normal((N, H)) for _ in ours.init_state(1, np.float64)]
        if ours_cls is LSTMCell
        else [rng.standard_normal((N, H))]
    )
    xt, st = torch.tensor(x, requires_grad=True), [torch.tensor(s) for s in states]
    res_t = theirs(xt, tuple(st) if len(st) == 2 else st[0])
    res_t = res_t if isinstance(res_t, tuple) else (res_t,)
    xo = tg.Tensor(x, requires_grad=True)
    _, res_o = ours(
        xo, tuple(tg.Tensor(s) for s in states) if len(states) == 2 else tg.Tensor(states[0])
    )
    res_o = res_o if isinstance(res_o, tuple) else (res_o,)
    sum(r.sum() for r in res_t).backward()
    loss = res_o[0].sum() if len(res_o) == 1 else res_o[0].sum() + res_o[1].sum()
    loss.backward()
    for a, b in zip(res_o, res_t):
        assert rel_error(a.data, b.detach().numpy()) <= PARITY_RTOL
    assert rel_error(xo.grad, xt.grad.numpy()) <= PARITY_RTOL
    torch_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert rel_error(p.grad, torch_params[name].grad.numpy()) <= PARITY_RTOL, name
