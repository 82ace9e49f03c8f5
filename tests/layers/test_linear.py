"""Linear, Embedding, Dropout: values against NumPy, gradients, init ranges, errors."""

import numpy as np
import pytest
from tinygrad_lstm.layers import Dropout, Embedding, Linear

import tinygrad_lstm as tg
from tinygrad_lstm.gradcheck import gradcheck

RTOL, ATOL = 1e-7, 1e-9


def test_linear_parameters_shapes_and_init_range():
    layer = Linear(9, 4, rng=np.random.default_rng(0))
    assert [(n, p.shape, p.dtype) for n, p in layer.named_parameters()] == [
        ("weight", (4, 9), np.float32),
        ("bias", (4,), np.float32),
    ]
    bound = 1 / np.sqrt(9)
    for p in layer.parameters():
        assert np.all(np.abs(p.data) <= bound)
    big = Linear(16, 400, rng=np.random.default_rng(1))
    # U(-b, b) fills its range: the extremes come within 1% of the bound
    assert np.abs(big.weight.data).max() > 0.99 * 0.25


def test_linear_forward_matches_numpy_for_any_leading_dims():
    rng = np.random.default_rng(2)
    layer = Linear(3, 5, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 4, 3))
    y = layer(tg.Tensor(x))
    assert y.shape == (2, 4, 5) and y.dtype == np.float64
    np.testing.assert_allclose(y.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-14)
    no_bias = Linear(3, 5, bias=False, dtype=np.float64, rng=rng)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    np.testing.assert_allclose(no_bias(tg.Tensor(x)).data, x @ no_bias.weight.data.T, rtol=1e-14)


def test_linear_gradients():
    rng = np.random.default_rng(3)
    layer = Linear(3, 2, dtype=np.float64, rng=rng)
    x = tg.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    gradcheck(lambda x, w, b: layer(x), x, layer.weight, layer.bias, rtol=RTOL, atol=ATOL)


def test_linear_errors():
    layer = Linear(3, 2)
    with pytest.raises(
        tg.ShapeError, match=r"Linear expected input of shape \(\.\.\., 3\), got \(4, 5\)"
    ):
        layer(tg.Tensor(np.zeros((4, 5), np.float32)))
    with pytest.raises(
        ValueError, match="input dtype float64 does not match the weights' dtype float32"
    ):
        layer(tg.Tensor(np.zeros((4, 3))))
    with pytest.raises(ValueError, match="out_features must be an integer >= 1, got 0"):
        Linear(3, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        Linear(3, 2, dtype=np.int32)
    assert repr(layer) == "Linear(in_features=3, out_features=2, bias=True)"


def test_embedding_looks_up_rows_and_sums_repeated_gradients():
    emb = Embedding(6, 3, dtype=np.float64, rng=np.random.default_rng(4))
    idx = np.array([[1, 4, 1], [0, 1, 5]])
    out = emb(idx)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.data, emb.weight.data[idx])
    upstream = np.random.default_rng(5).standard_normal(out.shape)
    out.backward(upstream)
    expected = np.zeros((6, 3))
    for (i, j), row in np.ndenumerate(idx):
        expected[row] += upstream[i, j]
    np.testing.assert_allclose(emb.weight.grad, expected, rtol=1e-14)
    assert not emb.weight.grad[[2, 3]].any()


def test_embedding_errors():
    emb = Embedding(4, 2)
    with pytest.raises(IndexError, match=r"must lie in \[0, 4\), got values from 0 to 4"):
        emb(np.array([0, 4]))
    with pytest.raises(TypeError, match="integer indices"):
        emb(np.array([0.0, 1.0]))


def test_dropout_is_identity_in_eval_mode_and_with_p_zero():
    x = tg.Tensor(np.random.default_rng(6).standard_normal((5, 7)))
    drop = Dropout(0.5)
    drop.eval()
    np.testing.assert_array_equal(drop(x).data, x.data)
    np.testing.assert_array_equal(Dropout(0.0)(x).data, x.data)
    assert not Dropout(1.0)(x).data.any()


def test_dropout_is_inverted_and_its_gradient_is_the_mask():
    rng = np.random.default_rng(7)
    x = tg.Tensor(rng.uniform(1.0, 2.0, (200, 100)), requires_grad=True)
    p = 0.3
    y = Dropout(p, rng=np.random.default_rng(8))(x)
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], x.data[kept] / (1 - p), rtol=1e-15)
    # 20,000 Bernoulli(0.7) draws: the kept fraction is within 5 standard deviations of 0.7
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / kept.size)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / (1 - p), rtol=1e-15)


def test_dropout_masks_come_from_the_given_rng():
    x = tg.Tensor(np.ones((10, 10), np.float32))
    a = Dropout(0.5, rng=np.random.default_rng(9))(x).data
    b = Dropout(0.5, rng=np.random.default_rng(9))(x).data
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32


@pytest.mark.parametrize("p", [-0.1, 1.5, True, "0.5"])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match="p must be a number in"):
        Dropout(p)
