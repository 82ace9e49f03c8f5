"""The BLAS product of the whole-pass drivers (compiler/blas.py, ``gemm_rows``), and the
``matmul_rows`` fallback the drivers keep where no BLAS is found."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tinygrad_lstm.compiler import blas, compiled_cell
from tinygrad_lstm.compiler.matmul import gemm_rows
from tinygrad_lstm.layers import Recurrent

import tinygrad_lstm as tg

DTYPES = (np.float32, np.float64)
needs_blas = pytest.mark.skipif(
    blas.gemm(np.float64) is None, reason="no BLAS found beside NumPy (drivers use matmul_rows)"
)


def _reference(left, matrix, out, add):
    product = left.astype(np.float64) @ matrix.astype(np.float64)
    return product + out if add else product


@needs_blas
@given(
    st.integers(0, 9),
    st.integers(0, 9),
    st.integers(0, 9),
    st.booleans(),
    st.sampled_from(DTYPES),
    st.integers(0, 2**32 - 1),
)
def test_gemm_rows_matches_numpy(batch, inner, width, add, dtype, seed):
    rng = np.random.default_rng(seed)
    left = rng.standard_normal((batch, inner)).astype(dtype)
    matrix = rng.standard_normal((inner, width)).astype(dtype)
    out = rng.standard_normal((batch, width)).astype(dtype)
    expected = _reference(left, matrix, out, add)
    gemm_rows(blas.gemm(dtype), left, matrix, out, add)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol * max(inner, 1))


@needs_blas
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_rows_on_views(dtype):
    """Row-strided views go to BLAS with their leading dimensions; column-strided ones
    take the loop. Both give the product, and write nothing outside ``out``."""
    rng = np.random.default_rng(0)
    big = rng.standard_normal((6, 11)).astype(dtype)
    left = big[1:5, 2:7]  # rows 11 apart: lda 11
    matrix = rng.standard_normal((5, 8)).astype(dtype)
    target = np.zeros((4, 20), dtype)
    out = target[:, 3:11]
    gemm_rows(blas.gemm(dtype), left, matrix, out, False)
    np.testing.assert_allclose(out, _reference(left, matrix, out, False), rtol=1e-5)
    assert not target[:, :3].any() and not target[:, 11:].any()
    strided = np.ascontiguousarray(matrix.T).T  # columns not contiguous: the loop
    out2 = np.ones((4, 8), dtype)
    gemm_rows(blas.gemm(dtype), left, strided, out2, True)
    np.testing.assert_allclose(out2, _reference(left, matrix, np.ones((4, 8)), True), rtol=1e-5)


@needs_blas
def test_gemm_rows_does_not_read_out_without_add():
    """beta = 0: NaN left in ``out`` by an earlier pass does not reach the product."""
    left, matrix = np.ones((3, 2)), np.ones((2, 4))
    out = np.full((3, 4), np.nan)
    gemm_rows(blas.gemm(np.float64), left, matrix, out, False)
    assert (out == 2).all()
    out[0, 0] = np.nan
    gemm_rows(blas.gemm(np.float64), left, matrix, out, True)
    assert np.isnan(out[0, 0]) and (out.ravel()[1:] == 4).all()


@needs_blas
def test_gemm_rows_refuses_shapes_that_do_not_align():
    with pytest.raises(ValueError, match="gemm_rows"):
        gemm_rows(blas.gemm(np.float64), np.ones((2, 3)), np.ones((4, 5)), np.ones((2, 5)), False)


def test_no_blas_for_other_dtypes():
    assert blas.gemm(np.float16) is None and blas.gemm(np.int64) is None


def test_without_blas_the_drivers_keep_matmul_rows(monkeypatch):
    """TINYGRAD_LSTM_BLAS=0: the drivers are generated with matmul_rows and no ``blas``
    argument, and give what the BLAS drivers give (float64, to 1e-12)."""
    rng = np.random.default_rng(3)
    x = tg.Tensor(rng.standard_normal((6, 2, 3)))
    results = []
    for setting in ("1", "0"):
        monkeypatch.setenv("TINYGRAD_LSTM_BLAS", setting)
        blas.gemm.cache_clear()
        layer = Recurrent(
            "lstm", 3, 5, dtype=np.float64, fused="compiled", rng=np.random.default_rng(1)
        )
        source = compiled_cell(layer._cells[0], 3, np.float64).step().source
        uses_blas = blas.gemm(np.float64) is not None
        assert source.blas == uses_blas
        assert ("gemm_rows(blas," in source.text) == uses_blas
        assert ("matmul_rows(" in source.text.split("def stage")[0]) != uses_blas
        y, _ = layer(x)
        y.sum().backward()
        results.append([y.data, *(p.grad for p in layer.parameters())])
    blas.gemm.cache_clear()
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
