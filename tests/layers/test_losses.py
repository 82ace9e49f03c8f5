"""Losses: values and gradients against closed forms and torch.nn.functional, gradients by
central differences, stability for huge logits, and clear errors for bad input."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from tinygrad_lstm.layers.losses import cross_entropy, mse_loss, nll_loss

import tinygrad_lstm as tg
from tinygrad_lstm.gradcheck import gradcheck

REDUCTIONS = ["mean", "sum", "none"]


def _logits_and_targets(seed, shape=(5, 4)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.integers(0, shape[-1], size=shape[:-1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_closed_form(reduction):
    logits, targets = _logits_and_targets(0)
    per_example = (
        np.log(np.exp(logits).sum(-1)) - np.take_along_axis(logits, targets[:, None], -1)[:, 0]
    )
    expected = {"mean": per_example.mean(), "sum": per_example.sum(), "none": per_example}
    got = cross_entropy(tg.Tensor(logits), targets, reduction=reduction).data
    np.testing.assert_allclose(got, expected[reduction], rtol=1e-14)


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    logits, targets = _logits_and_targets(1)
    x = tg.Tensor(logits, requires_grad=True)
    cross_entropy(x, targets, reduction="sum").backward()
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    one_hot = np.eye(4)[targets]
    np.testing.assert_allclose(x.grad, softmax - one_hot, rtol=1e-13, atol=1e-15)


@given(
    arrays(np.float64, (3, 2, 5), elements=st.floats(-5, 5)),
    arrays(np.int64, (3, 2), elements=st.integers(0, 4)),
    st.sampled_from(REDUCTIONS),
)
def test_cross_entropy_gradcheck_with_classes_last(logits, targets, reduction):
    gradcheck(
        lambda x: cross_entropy(x, targets, reduction=reduction),
        tg.Tensor(logits, requires_grad=True),
        rtol=1e-6,
        atol=1e-9,
    )


@given(
    arrays(np.float64, (4, 3), elements=st.floats(-3, 3)),
    arrays(np.float64, (4, 3), elements=st.floats(-3, 3)),
    st.sampled_from(REDUCTIONS),
)
def test_mse_loss_gradcheck_both_inputs(a, b, reduction):
    gradcheck(
        lambda x, y: mse_loss(x, y, reduction=reduction),
        tg.Tensor(a, requires_grad=True),
        tg.Tensor(b, requires_grad=True),
        rtol=1e-6,
        atol=1e-9,
    )


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=np.float32)
    x = tg.Tensor(logits, requires_grad=True)
    loss = cross_entropy(x, np.array([1, 2]), reduction="none")
    np.testing.assert_allclose(loss.data, [2e4, np.log(3.0)], rtol=1e-6)
    loss.sum().backward()
    assert np.all(np.isfinite(x.grad))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("logits", "targets"),
    [
        ([[1.0, -np.inf, 0.5], [2.0, 0.0, -np.inf]], [0, 1]),  # a ruled-out wrong class
        ([[1e4, -np.inf, -1e4]], [2]),  # beside huge logits
        ([[1.0, -np.inf, 0.5]], [1]),  # the target ruled out: inf
    ],
    ids=["wrong_class", "huge", "target"],
)
def test_cross_entropy_with_a_minus_inf_logit_matches_pytorch(logits, targets, reduction):
    """PyTorch is the reference: a -inf logit for a wrong class gives a finite loss and
    gradient (0 for that class); for the target class the loss is inf, the gradient finite.
    (Picking the target by a product with a one-hot mask made -inf * 0 = NaN.)"""
    torch = pytest.importorskip("torch")
    logits, targets = np.array(logits), np.array(targets)
    ours, ref = tg.Tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from an inf - inf or 0 * inf
        out = cross_entropy(ours, targets, reduction=reduction)
        out.backward(np.ones(out.shape))
    tout = torch.nn.functional.cross_entropy(ref, torch.tensor(targets), reduction=reduction)
    tout.backward(torch.ones(tout.shape, dtype=torch.float64))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-14)
    assert np.all(np.isfinite(ours.grad)), ours.grad
    np.testing.assert_allclose(ours.grad, ref.grad.numpy(), rtol=1e-14, atol=1e-16)


def test_nll_loss_ignores_minus_inf_of_other_classes():
    log_probs = tg.Tensor(np.array([[0.0, -np.inf], [-np.inf, np.log(0.5)]]), requires_grad=True)
    loss = nll_loss(log_probs, np.array([0, 1]), reduction="none")
    np.testing.assert_array_equal(loss.data, [0.0, np.log(2.0)])
    loss.sum().backward()
    np.testing.assert_array_equal(log_probs.grad, [[-1.0, 0.0], [0.0, -1.0]])


def test_losses_keep_float32():
    logits, targets = _logits_and_targets(2)
    assert cross_entropy(tg.Tensor(logits.astype(np.float32)), targets).dtype == np.float32
    a = tg.Tensor(np.ones(3, np.float32))
    assert mse_loss(a, np.zeros(3, np.float32)).dtype == np.float32


def test_nll_loss_picks_the_target_entry():
    log_probs = np.log(np.array([[0.2, 0.8], [0.6, 0.4]]))
    got = nll_loss(tg.Tensor(log_probs), np.array([1, 0]), reduction="none").data
    np.testing.assert_allclose(got, -np.log([0.8, 0.6]), rtol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_match_torch_values_and_gradients(reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits, targets = _logits_and_targets(3, shape=(6, 5))
    pred, target = _logits_and_targets(4, shape=(6, 5))[0], _logits_and_targets(5, (6, 5))[0]
    cases = [
        (cross_entropy, F.cross_entropy, logits, targets),
        (nll_loss, F.nll_loss, logits, targets),
        (mse_loss, F.mse_loss, pred, target),
    ]
    for ours_fn, torch_fn, x, y in cases:
        ours = tg.Tensor(x, requires_grad=True)
        ref = torch.tensor(x, requires_grad=True)
        out = ours_fn(ours, y, reduction=reduction)
        tout = torch_fn(ref, torch.tensor(y), reduction=reduction)
        np.testing.assert_allclose(
            out.data, tout.detach().numpy(), rtol=1e-13, err_msg=ours_fn.__name__
        )
        upstream = np.random.default_rng(6).standard_normal(out.shape)
        out.backward(upstream)
        tout.backward(torch.tensor(upstream))
        np.testing.assert_allclose(
            ours.grad, ref.grad.numpy(), rtol=1e-13, atol=1e-15, err_msg=ours_fn.__name__
        )


def test_bad_input_gives_clear_errors():
    x = tg.Tensor(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"needs targets of shape \(4,\), got \(3,\)"):
        cross_entropy(x, np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="targets must be integer class indices, got dtype float64"):
        cross_entropy(x, np.zeros(4))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\), got values from 0 to 3"):
        nll_loss(x, np.array([0, 1, 2, 3]))
    with pytest.raises(
        ValueError,
        match=r"mse_loss: input has shape \(4, 3\) but target has "
        r"shape \(4,\)",
    ):
        mse_loss(x, np.zeros(4))
    with pytest.raises(TypeError, match="share a floating dtype, got float64 and float32"):
        mse_loss(x, np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="reduction must be one of"):
        mse_loss(x, np.zeros((4, 3)), reduction="avg")
