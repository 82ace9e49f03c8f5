"""Optimizers and clipping: the same gradients give the same steps as torch.optim, and
clipping follows torch.nn.utils semantics (docs/recurrent_equations.md §7)."""

import math
import warnings

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm.grad_clipping import clip_grad_norm_, clip_grad_value_
from tinygrad_lstm.optim import SGD, Adagrad, Adam

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (4,), (2, 3, 2)]


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def _grads(step, seed=1):
    rng = np.random.default_rng([seed, step])
    return [rng.standard_normal(s) for s in SHAPES]


CASES = [
    (SGD, torch.optim.SGD, {"lr": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adam, torch.optim.Adam, {"lr": 1e-2}),
    (Adam, torch.optim.Adam, {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    (Adagrad, torch.optim.Adagrad, {"lr": 0.1}),
    (Adagrad, torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.05}),
]


@pytest.mark.parametrize(
    "ours_cls, torch_cls, kwargs", CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)]
)
def test_steps_match_torch_over_several_steps(ours_cls, torch_cls, kwargs):
    ours = [tg.Tensor(p.copy(), requires_grad=True) for p in _params()]
    ref = [torch.tensor(p.copy(), requires_grad=True) for p in _params()]
    opt, topt = ours_cls(ours, **kwargs), torch_cls(ref, **kwargs)
    for step in range(6):
        for p, t, g in zip(ours, ref, _grads(step)):
            p.grad, t.grad = g.copy(), torch.tensor(g)
        opt.step()
        topt.step()
        for i, (p, t) in enumerate(zip(ours, ref)):
            np.testing.assert_allclose(
                p.data,
                t.detach().numpy(),
                rtol=1e-12,
                atol=1e-14,
                err_msg=f"parameter {i} after step {step + 1}",
            )


def test_parameter_without_grad_is_skipped():
    a, b = tg.Tensor(np.ones(3), requires_grad=True), tg.Tensor(np.ones(2), requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    a.grad = np.ones(3)
    opt.step()
    assert np.all(a.data < 1) and np.all(b.data == 1)
    assert opt.state[1] == {}


def test_zero_grad_clears_grads():
    p = tg.Tensor(np.ones(3), requires_grad=True)
    p.grad = np.ones(3)
    SGD([p], lr=1.0).zero_grad()
    assert p.grad is None


def test_state_dict_round_trip_continues_identically():
    def run(split):
        ps = [tg.Tensor(p.copy(), requires_grad=True) for p in _params()]
        opt = Adam(ps, lr=1e-2)
        for step in range(6):
            if step == split:
                saved = opt.state_dict()
                ps = [tg.Tensor(p.data.copy(), requires_grad=True) for p in ps]
                opt = Adam(ps, lr=0.5)  # the loaded state restores lr too
                opt.load_state_dict(saved)
            for p, g in zip(ps, _grads(step)):
                p.grad = g
            opt.step()
        return [p.data for p in ps]

    for a, b in zip(run(split=None), run(split=3)):
        np.testing.assert_array_equal(a, b)


def test_state_dict_holds_only_arrays_and_numbers():
    p = tg.Tensor(np.ones(3), requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(3)
    opt.step()
    sd = opt.state_dict()
    assert sd["name"] == "sgd"
    for value in list(sd["defaults"].values()) + list(sd["state"][0].values()):
        assert isinstance(value, (np.ndarray, int, float, bool, tuple)), type(value)


def test_load_state_dict_rejects_mismatches_before_changing_anything():
    p = tg.Tensor(np.ones(3), requires_grad=True)
    opt = Adam([p], lr=0.1)
    p.grad = np.ones(3)
    opt.step()
    good = opt.state_dict()
    with pytest.raises(ValueError, match="optimizer 'adam', not 'sgd'"):
        SGD([p], lr=0.1).load_state_dict(good)
    other = Adam([tg.Tensor(np.ones(4), requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=r"shape \(3,\), the parameter has \(4,\)"):
        other.load_state_dict(good)
    assert other.state == [{}] and other.lr == 0.1
    with pytest.raises(ValueError, match="1 parameter entries, this optimizer holds 2"):
        Adam([p, p], lr=0.1).load_state_dict(good)


def test_bad_hyperparameters_are_refused():
    p = tg.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        SGD([p], lr=-1)
    with pytest.raises(ValueError, match=r"betas must lie in \[0, 1\)"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="nesterov"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([])


# ---- clipping ---------------------------------------------------------------------------


def _with_grads(grads):
    out = []
    for g in grads:
        t = tg.Tensor(np.zeros_like(g), requires_grad=True)
        t.grad = np.array(g, dtype=np.float64)
        out.append(t)
    return out


def test_clip_grad_norm_spec_figures():
    ps = _with_grads([np.array([3.0, 4.0, 0.0]), np.array([[1.0, 2.0], [2.0, 4.0]])])
    total = clip_grad_norm_(ps, max_norm=1.0)
    assert total == pytest.approx(math.sqrt(50), rel=1e-15)
    coef = 1.0 / (math.sqrt(50) + 1e-6)
    np.testing.assert_allclose(ps[0].grad, np.array([3.0, 4.0, 0.0]) * coef, rtol=1e-15)
    new_norm = math.sqrt(sum(float(np.sum(p.grad**2)) for p in ps))
    assert new_norm == pytest.approx(math.sqrt(50) / (math.sqrt(50) + 1e-6), rel=1e-12)
    assert new_norm < 1.0


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    grads = _grads(0)
    ps = _with_grads(grads)
    ts = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(ts, grads):
        t.grad = torch.tensor(g)
    total = clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type=norm_type)
    assert total == pytest.approx(ttotal.item(), rel=1e-13)
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-13, atol=0)


def test_clip_grad_norm_float32_matches_torch():
    grads = [g.astype(np.float32) * 10 for g in _grads(2)]
    ps = [tg.Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    for p, g in zip(ps, grads):
        p.grad = g.copy()
    ts = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for t, g in zip(ts, grads):
        t.grad = torch.tensor(g)
    total = clip_grad_norm_(ps, 1.0)
    assert total == pytest.approx(torch.nn.utils.clip_grad_norm_(ts, 1.0).item(), rel=1e-6)
    for p, t in zip(ps, ts):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1.3e-6, atol=1e-7)


def test_clip_grad_norm_edge_cases():
    assert clip_grad_norm_([tg.Tensor(np.ones(2), requires_grad=True)], 1.0) == 0.0
    ps = _with_grads([np.array([np.inf, 1.0])])
    assert clip_grad_norm_(ps, 1.0) == math.inf
    assert np.isnan(ps[0].grad[0]) and ps[0].grad[1] == 0.0  # inf * 0 and 1 * 0, as in torch
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        clip_grad_norm_(_with_grads([np.array([np.nan])]), 1.0, error_if_nonfinite=True)
    single = _with_grads([np.array([0.3, 0.4])])[0]
    assert clip_grad_norm_(single, 1.0) == pytest.approx(0.5)  # a lone tensor is accepted


def test_clip_grad_value_matches_torch():
    grads = _grads(3)
    ps = _with_grads(grads)
    ts = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(ts, grads):
        t.grad = torch.tensor(g)
    assert clip_grad_value_(ps, 0.5) is None
    torch.nn.utils.clip_grad_value_(ts, 0.5)
    for p, t in zip(ps, ts):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())
    assert max(np.abs(p.grad).max() for p in ps) == 0.5


# ---- hyperparameters: non-finite or out-of-range values are refused, naming all three ---------
BAD = [float("nan"), float("inf"), -float("inf")]
BAD_HYPERPARAMETERS = (  # (optimizer, keyword arguments, the parameter, the bad value)
    [(SGD, {"lr": v}, "lr", v) for v in BAD + [-0.1]]
    + [(SGD, {"lr": 0.1, "momentum": v}, "momentum", v) for v in BAD + [-0.5]]
    + [(SGD, {"lr": 0.1, "weight_decay": v}, "weight_decay", v) for v in BAD + [-1e-3]]
    + [(Adam, {"lr": v}, "lr", v) for v in BAD + [-1e-3, "abc"]]
    + [(Adam, {"betas": (v, 0.999)}, "betas", v) for v in BAD + [-0.1, 1.0]]
    + [(Adam, {"betas": (0.9, v)}, "betas", v) for v in BAD]
    + [(Adam, {"eps": v}, "eps", v) for v in BAD + [-1e-8]]
    + [(Adam, {"weight_decay": v}, "weight_decay", v) for v in BAD]
    + [(Adagrad, {"lr": v}, "lr", v) for v in BAD]
    + [(Adagrad, {"lr_decay": v}, "lr_decay", v) for v in BAD + [-0.1]]
    + [(Adagrad, {"eps": v}, "eps", v) for v in BAD]
    + [(Adagrad, {"weight_decay": v}, "weight_decay", v) for v in BAD]
)


@pytest.mark.parametrize(
    ("cls", "kwargs", "name", "bad"),
    BAD_HYPERPARAMETERS,
    ids=[f"{c.__name__}-{n}-{v}" for c, _, n, v in BAD_HYPERPARAMETERS],
)
def test_non_finite_and_out_of_range_hyperparameters_are_refused(cls, kwargs, name, bad):
    p = tg.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError) as info:
        cls([p], **kwargs)
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}: {name} must"), message
    assert message.endswith(f"got {float(bad) if bad != 'abc' else bad!r}"), message


@pytest.mark.parametrize("value", BAD + [-1.0])
def test_a_learning_rate_schedule_cannot_set_a_bad_lr(value):
    p = tg.Tensor(np.ones(3), requires_grad=True)
    opt = Adam([p], lr=0.1)
    with pytest.raises(ValueError, match=f"Adam: lr must be >= 0 and finite, got {value}"):
        opt.lr = value
    assert opt.lr == 0.1


@pytest.mark.parametrize("lr", [float("nan"), -0.5, "abc", float("inf")])
def test_load_state_dict_refuses_bad_hyperparameters_before_changing_anything(lr):
    p = tg.Tensor(np.ones(3), requires_grad=True)
    source = Adam([p], lr=0.1)
    p.grad = np.ones(3)
    source.step()
    state = source.state_dict()
    state["defaults"]["lr"] = lr
    target = Adam([tg.Tensor(np.ones(3), requires_grad=True)], lr=0.2)
    with pytest.raises(ValueError, match="Adam: lr must be >= 0 and finite"):
        target.load_state_dict(state)
    assert target.lr == 0.2 and target.state == [{}]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ps: clip_grad_norm_(ps, float("nan")), "clip_grad_norm_: max_norm must be"),
        (lambda ps: clip_grad_norm_(ps, float("inf")), "clip_grad_norm_: max_norm must be"),
        (lambda ps: clip_grad_norm_(ps, -1.0), "clip_grad_norm_: max_norm must be"),
        (
            lambda ps: clip_grad_norm_(ps, 1.0, norm_type=float("nan")),
            "clip_grad_norm_: norm_type must be",
        ),
        (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=0.0), "clip_grad_norm_: norm_type must be"),
        (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=-2.0), "clip_grad_norm_: norm_type must be"),
        (lambda ps: clip_grad_value_(ps, float("nan")), "clip_grad_value_: clip_value must be"),
        (lambda ps: clip_grad_value_(ps, float("inf")), "clip_grad_value_: clip_value must be"),
        (lambda ps: clip_grad_value_(ps, -0.5), "clip_grad_value_: clip_value must be"),
    ],
)
def test_clipping_refuses_bad_arguments_before_touching_the_grads(call, message):
    ps = _with_grads([np.array([3.0, 4.0])])
    with pytest.raises(ValueError, match=message):
        call(ps)
    np.testing.assert_array_equal(ps[0].grad, [3.0, 4.0])


# ---- norms of float32 gradients are computed in float64 -----------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0])
def test_huge_float32_gradients_have_a_finite_norm(norm_type):
    """1e20 squared overflows float32 (torch's float32 norm is inf there); the reference is
    torch on the same gradients in float64, where the norm is finite and exact."""
    grads = [np.full((3, 4), 1e20, np.float32), np.full(5, -2e20, np.float32)]
    ps = [tg.Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    for p, g in zip(ps, grads):
        p.grad = g.copy()
    ts = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(ts, grads):
        t.grad = torch.tensor(g, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "overflow encountered in power"
        total = clip_grad_norm_(ps, 1.0, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(ts, 1.0, norm_type=norm_type).item()
    assert math.isfinite(total) and total == pytest.approx(expected, rel=1e-12)
    for p, t in zip(ps, ts):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad, t.grad.numpy().astype(np.float32), rtol=1e-6)
