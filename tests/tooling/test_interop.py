"""tinygrad_lstm.tooling.interop: to_torch / from_torch move a model to PyTorch and back.

PyTorch is the reference: a converted model must compute what the original computes. In
float64, every output, the gradient of every input and of every parameter agree to 1e-12
relative (``max|a - b| / max|b|`` per tensor), in both directions; state dicts round-trip
bit for bit, in float32 and float64. Skipped without torch, except the missing-torch message.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from tinygrad_lstm.layers import (
    GRU,
    LSTM,
    RNN,
    Dropout,
    Embedding,
    GRUCell,
    Linear,
    LSTMCell,
    Recurrent,
    RNNCell,
)
from tinygrad_lstm.tooling.interop import from_torch, to_torch

import tinygrad_lstm as tg
from tinygrad_lstm.module import StateDictError

RTOL = 1e-12
T, N, I, H = 4, 3, 5, 6


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# name -> (family, our class, torch.nn class name, options both constructors take)
CASES = {
    "rnn-tanh-L2-bi-bf": (
        "sequence",
        RNN,
        "RNN",
        {"num_layers": 2, "bidirectional": True, "batch_first": True},
    ),
    "rnn-relu-nobias": ("sequence", RNN, "RNN", {"nonlinearity": "relu", "bias": False}),
    "lstm-L2-bi-proj-dropout": (
        "sequence",
        LSTM,
        "LSTM",
        {"num_layers": 2, "proj_size": 2, "bidirectional": True, "dropout": 0.3},
    ),
    "lstm-bf-nobias": ("sequence", LSTM, "LSTM", {"batch_first": True, "bias": False}),
    "gru-L3-bi-nobias-dropout": (
        "sequence",
        GRU,
        "GRU",
        {"num_layers": 3, "bias": False, "bidirectional": True, "dropout": 0.5},
    ),
    "gru-bf": ("sequence", GRU, "GRU", {"batch_first": True}),
    "rnncell-relu": ("cell", RNNCell, "RNNCell", {"nonlinearity": "relu"}),
    "lstmcell": ("cell", LSTMCell, "LSTMCell", {}),
    "grucell-nobias": ("cell", GRUCell, "GRUCell", {"bias": False}),
    "linear": ("linear", Linear, "Linear", {}),
    "linear-nobias": ("linear", Linear, "Linear", {"bias": False}),
    "embedding": ("embedding", Embedding, "Embedding", {}),
}


def sizes(family: str) -> tuple[int, int]:
    return (10, 4) if family == "embedding" else (I, H)


def build_ours(case: str, dtype=np.float64, seed: int = 0):
    family, ours, _, options = CASES[case]
    return ours(*sizes(family), **options, dtype=dtype, rng=np.random.default_rng(seed))


def build_torch(torch, case: str, dtype=np.float64, seed: int = 0):
    family, _, name, options = CASES[case]
    torch.manual_seed(seed)
    return getattr(torch.nn, name)(*sizes(family), **options, dtype=getattr(torch, dtype.__name__))


def inputs(case: str, rng: np.random.Generator) -> list:
    """The forward's arguments as NumPy arrays (a tuple for LSTM's state)."""
    family, _, _, options = CASES[case]
    if family == "embedding":
        return [rng.integers(0, 10, size=(N, T))]
    if family == "linear":
        return [rng.standard_normal((N, 2, I))]
    if family == "cell":
        x, h = rng.standard_normal((N, I)), rng.standard_normal((N, H))
        return [x, (h, rng.standard_normal((N, H)))] if CASES[case][1] is LSTMCell else [x, h]
    stacked = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
    x = rng.standard_normal((N, T, I) if options.get("batch_first") else (T, N, I))
    h0 = rng.standard_normal((stacked, N, options.get("proj_size") or H))
    if CASES[case][1] is LSTM:
        return [x, (h0, rng.standard_normal((stacked, N, H)))]
    return [x, h0]


def flat(values) -> list:
    out = []
    for v in values:
        out.extend(flat(v) if isinstance(v, (tuple, list)) else [v])
    return out


def run(module, args: list, lib: str, torch=None) -> dict[str, np.ndarray]:
    """Forward ``args`` through ``module`` (ours or torch's), backpropagate sum(out * w) with
    fixed random w, and return {name: array} for the outputs and every gradient."""
    integer = args[0].dtype.kind == "i"
    if lib == "torch":
        make = (
            (lambda a: torch.tensor(a))
            if integer
            else (lambda a: torch.tensor(a, requires_grad=True))
        )
    else:
        make = (lambda a: tg.Tensor(a)) if integer else (lambda a: tg.Tensor(a, requires_grad=True))
    leaves = [make(a) if not isinstance(a, tuple) else tuple(make(b) for b in a) for a in args]
    result = module(*leaves)
    if lib == "ours" and isinstance(module, (RNNCell, LSTMCell, GRUCell)):
        result = result[1]  # our cells return (output, new state); torch's the new state
    outputs = flat(result if isinstance(result, (tuple, list)) else [result])
    rng = np.random.default_rng(99)
    loss = None
    for out in outputs:
        w = rng.standard_normal(tuple(out.shape))
        term = (out * (torch.from_numpy(w) if lib == "torch" else tg.Tensor(w))).sum()
        loss = term if loss is None else loss + term
    loss.backward()

    def array(t):
        return t.detach().numpy() if lib == "torch" else t.data

    def grad(t):
        return t.grad.numpy() if lib == "torch" else t.grad

    found = {f"output {j}": array(o) for j, o in enumerate(outputs)}
    if not integer:
        found.update({f"grad input {j}": grad(t) for j, t in enumerate(flat(leaves))})
    found.update({f"grad {k}": grad(p) for k, p in module.named_parameters()})
    return found


def assert_same_results(ours: dict, theirs: dict, what: str) -> None:
    assert ours.keys() == theirs.keys(), f"{what}: {sorted(ours)} != {sorted(theirs)}"
    errors = {}
    for name, reference in theirs.items():
        assert ours[name].shape == reference.shape, f"{what}: {name} shape"
        scale = np.abs(reference).max()
        errors[name] = float(np.abs(ours[name] - reference).max() / (scale or 1.0))
    bad = {k: e for k, e in errors.items() if not e <= RTOL}
    assert not bad, f"{what}: relative errors above {RTOL:g}: {bad}"


def assert_same_weights(ours: dict, theirs: dict, what: str) -> None:
    """Bit for bit, same dtype, same keys in the same order."""
    assert list(ours) == list(theirs), f"{what}: keys {list(ours)} != {list(theirs)}"
    for k, v in theirs.items():
        assert ours[k].dtype == v.dtype, f"{what}: {k} dtype {ours[k].dtype} != {v.dtype}"
        assert np.array_equal(ours[k], v), f"{what}: {k} differs"


def torch_weights(module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("case", list(CASES))
def test_to_torch_computes_what_ours_computes(torch, case):
    ours = build_ours(case).eval()  # eval: dropout between layers is random in training
    theirs = to_torch(ours)
    assert type(theirs) is getattr(torch.nn, CASES[case][2]) and not theirs.training
    args = inputs(case, np.random.default_rng(1))
    assert_same_results(run(theirs, args, "torch", torch), run(ours, args, "ours"), case)


@pytest.mark.parametrize("case", list(CASES))
def test_from_torch_computes_what_torch_computes(torch, case):
    theirs = build_torch(torch, case).eval()
    ours = from_torch(theirs)
    assert type(ours) is CASES[case][1] and not ours.training
    args = inputs(case, np.random.default_rng(2))
    assert_same_results(run(ours, args, "ours"), run(theirs, args, "torch", torch), case)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_state_dicts_round_trip_exactly(torch, case, dtype):
    ours = build_ours(case, dtype)
    there = to_torch(ours)
    assert_same_weights(torch_weights(there), ours.state_dict(), f"{case} to torch")
    assert_same_weights(from_torch(there).state_dict(), ours.state_dict(), f"{case} and back")
    theirs = build_torch(torch, case, dtype)
    here = from_torch(theirs)
    assert_same_weights(here.state_dict(), torch_weights(theirs), f"{case} from torch")
    assert_same_weights(torch_weights(to_torch(here)), torch_weights(theirs), f"{case} back")


@pytest.mark.parametrize("family", ["sequence", "cell", "dropout"])
def test_options_that_only_act_in_training_carry_over(torch, family):
    """dropout (between layers, or the Dropout layer), the training flag, requires_grad."""
    ours = (
        LSTM(I, H, num_layers=2, dropout=0.25, dtype=np.float64)
        if family == "sequence"
        else GRUCell(I, H)
        if family == "cell"
        else Dropout(0.4)
    )
    for param in ours.parameters():
        param.requires_grad = False
        break
    there = to_torch(ours)
    assert there.training and ours.training
    assert getattr(there, "dropout", getattr(there, "p", None)) == getattr(
        ours, "dropout", getattr(ours, "p", None)
    )
    assert [p.requires_grad for p in there.parameters()] == [
        p.requires_grad for p in ours.parameters()
    ]
    back = from_torch(there.eval())
    assert not back.training and all(not m.training for m in back.modules())
    assert [p.requires_grad for p in back.parameters()] == [
        p.requires_grad for p in ours.parameters()
    ]


# ---- a model built of layers: a container each way, or the user's class via into= ---------
class CharModel(tg.Module):
    """Embedding -> LSTM -> Dropout -> Linear, as a user writes it."""

    def __init__(self, dtype=np.float64, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.embed = Embedding(10, I, dtype=dtype, rng=rng)
        self.lstm = LSTM(I, H, num_layers=2, batch_first=True, dropout=0.2, dtype=dtype, rng=rng)
        self.drop = Dropout(0.1)
        self.head = Linear(H, 10, dtype=dtype, rng=rng)

    def forward(self, idx):
        return char_forward(self, idx)


def char_forward(model, idx):
    """The forward of CharModel, written once for either library (same attribute names)."""
    out, _ = model.lstm(model.embed(idx))
    return model.head(model.drop(out))


def torch_char_model(torch, seed: int = 0):
    class TorchCharModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, I, dtype=torch.float64)
            self.lstm = torch.nn.LSTM(
                I, H, num_layers=2, batch_first=True, dropout=0.2, dtype=torch.float64
            )
            self.drop = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(H, 10, dtype=torch.float64)

        def forward(self, idx):
            return char_forward(self, idx)

    torch.manual_seed(seed)
    return TorchCharModel()


def check_model_parity(ours, theirs, torch, what: str) -> None:
    idx = np.random.default_rng(3).integers(0, 10, size=(N, T))
    assert_same_results(
        run(ours.eval(), [idx], "ours"), run(theirs.eval(), [idx], "torch", torch), what
    )


def test_a_model_goes_to_torch_as_a_container_of_converted_layers(torch):
    ours = CharModel()
    there = to_torch(ours)
    assert type(there) is torch.nn.Module
    assert [(n, type(m).__name__) for n, m in there.named_children()] == [
        ("embed", "Embedding"),
        ("lstm", "LSTM"),
        ("drop", "Dropout"),
        ("head", "Linear"),
    ]
    assert_same_weights(torch_weights(there), ours.state_dict(), "container")
    there.forward = lambda idx: char_forward(there, idx)  # a container's forward is the user's
    check_model_parity(ours, there, torch, "CharModel to a torch container")


def test_a_model_goes_into_the_users_torch_class(torch):
    ours, target = CharModel(seed=5), torch_char_model(torch)
    assert to_torch(ours, into=target) is target
    assert_same_weights(torch_weights(target), ours.state_dict(), "into")
    check_model_parity(ours, target, torch, "CharModel into TorchCharModel")


def test_a_torch_model_comes_back_as_a_container_or_into_the_users_class(torch):
    theirs = torch_char_model(torch, seed=4)
    here = from_torch(theirs)
    assert type(here) is tg.Module and isinstance(here.lstm, LSTM)
    assert_same_weights(here.state_dict(), torch_weights(theirs), "container")
    target = CharModel(seed=6)
    assert from_torch(theirs, into=target) is target
    check_model_parity(target, theirs, torch, "TorchCharModel into CharModel")


def test_a_shared_layer_stays_shared(torch):
    ours = tg.Module()
    ours.first = ours.second = Linear(3, 3)
    there = to_torch(ours)
    assert there.first is there.second
    back = from_torch(there)
    assert back.first is back.second


def test_converting_leaves_both_random_generators_alone(torch):
    """The new layer's random init is overwritten, so it must not consume the user's seed."""
    torch.manual_seed(11)
    expected = torch.rand(3)
    tg.manual_seed(12)
    expected_ours = tg.default_rng().random(3)
    torch.manual_seed(11)
    tg.manual_seed(12)
    from_torch(to_torch(CharModel()))
    assert torch.equal(torch.rand(3), expected)
    assert np.array_equal(tg.default_rng().random(3), expected_ours)


# ---- what does not convert, and says so ---------------------------------------------------
class Scaled(tg.Module):
    def __init__(self):
        super().__init__()
        self.scale = tg.Parameter(np.ones(3))


class MyLinear(Linear):
    pass


class PeekingCell(RNNCell):
    """Reads a value from Python: its step cannot be captured, so not written for torch."""

    def step(self, xw, state, prepared):
        out, new = super().step(xw, state, prepared)
        return (out * 2, new) if float(out.sum()) > 1e9 else (out, new)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: Scaled(), "Scaled at 'inner': it holds parameters of its own (scale)"),
        (lambda: MyLinear(2, 2), "MyLinear at 'inner': a subclass of a supported layer"),
        (
            lambda: Recurrent(PeekingCell, 2, 3),
            "Recurrent at 'inner': its cell PeekingCell cannot be written as PyTorch source",
        ),
        (lambda: LSTMCell(2, 3, proj_size=1), "LSTMCell at 'inner': proj_size > 0"),
    ],
)
def test_to_torch_names_what_it_cannot_convert_and_where(torch, make, expected):
    model = tg.Module()
    model.inner = make()
    with pytest.raises(TypeError, match="to_torch: cannot convert") as info:
        to_torch(model)
    assert expected in str(info.value) and "supported: RNN, LSTM" in str(info.value)
    with pytest.raises(TypeError, match=f"{type(model.inner).__name__} at the top"):
        to_torch(model.inner)


def test_from_torch_names_what_it_cannot_convert(torch):
    nested = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    with pytest.raises(TypeError, match=r"BatchNorm1d at '1': it holds parameters or buffers"):
        from_torch(nested)
    with pytest.raises(ValueError, match=r"Embedding at the top has padding_idx=0"):
        from_torch(torch.nn.Embedding(4, 2, padding_idx=0))
    with pytest.raises(TypeError, match=r"Linear at the top: parameters of dtype float16"):
        from_torch(torch.nn.Linear(2, 2).half())
    with pytest.raises(TypeError, match="expected a torch.nn.Module, got LSTM"):
        from_torch(LSTM(2, 2))


def test_into_a_model_that_does_not_fit_lists_every_problem_and_copies_nothing(torch):
    ours, target = CharModel(), torch_char_model(torch)
    target.head = torch.nn.Linear(H, 9, dtype=torch.float64)
    target.embed = target.embed.float()
    before = torch_weights(target)
    with pytest.raises(StateDictError) as info:
        to_torch(ours, into=target)
    message = str(info.value)
    assert "head.weight: source (10, 6) float64, target (9, 6) float64" in message
    assert "embed.weight: source (10, 5) float64, target (10, 5) float32" in message
    assert_same_weights(torch_weights(target), before, "target after a refused copy")
    mine = CharModel(dtype=np.float32)
    saved = mine.state_dict()
    with pytest.raises(
        StateDictError, match="lstm.weight_ih_l0: source .* float64, target .* float32"
    ):
        from_torch(torch_char_model(torch), into=mine)
    assert_same_weights(mine.state_dict(), saved, "our model after a refused load")


def test_without_torch_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    for convert, argument in ((to_torch, Linear(2, 2)), (from_torch, object())):
        with pytest.raises(ImportError, match=r"needs PyTorch.*pip install torch"):
            convert(argument)
