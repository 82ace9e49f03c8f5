"""The matrix products of the generated whole-pass drivers, jitted on import: ``gemm_rows``
calls BLAS (the ``gemm`` blas.py finds, passed in by the driver); ``matmul_rows``, a
register-blocked loop, stands in where no BLAS was found.

Only generated kernel modules import this (they import Numba anyway), so importing the
library does not.
"""

from collections.abc import Callable

import numba
import numpy as np

__all__ = ["gemm_rows", "matmul_rows"]


def _matmul_rows(h: np.ndarray, w: np.ndarray, out: np.ndarray, add: bool) -> None:
    """out = h @ w^T (out += with ``add``) for C-contiguous h (B, K) and w (N, K): each row
    of w is read once for four rows of h (register blocking); for small products this beats
    a BLAS call, whose fixed cost is paid at every time step."""
    batch, inner = h.shape
    zero = np.zeros(1, h.dtype)[0]  # a zero of the arrays' dtype, so sums stay in it
    b = 0
    while b + 4 <= batch:
        h0, h1, h2, h3 = h[b], h[b + 1], h[b + 2], h[b + 3]
        for j in range(w.shape[0]):
            wj = w[j]
            a0 = a1 = a2 = a3 = zero
            for k in range(inner):
                x = wj[k]
                a0 += h0[k] * x
                a1 += h1[k] * x
                a2 += h2[k] * x
                a3 += h3[k] * x
            if add:
                a0, a1, a2, a3 = (
                    a0 + out[b, j],
                    a1 + out[b + 1, j],
                    a2 + out[b + 2, j],
                    a3 + out[b + 3, j],
                )
            out[b, j], out[b + 1, j], out[b + 2, j], out[b + 3, j] = a0, a1, a2, a3
        b += 4
    for r in range(b, batch):
        hr = h[r]
        for j in range(w.shape[0]):
            wj = w[j]
            acc = zero
            for k in range(inner):
                acc += hr[k] * wj[k]
            out[r, j] = acc + out[r, j] if add else acc


# Reassociated sums, so the inner products vectorize; the flag stays on this function's own
# instructions, away from the kernels' careful math.
matmul_rows = numba.njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")(
    _matmul_rows
)


def _leading(array: np.ndarray) -> int:
    """BLAS's leading dimension of a 2-D ``array`` (its row stride in elements), or -1 when
    BLAS cannot read it: elements not contiguous along a row, or rows that overlap."""
    rows, columns = array.shape
    size = array.itemsize
    if columns > 1 and array.strides[1] != size:
        return -1
    if rows <= 1:
        return max(columns, 1)
    leading = array.strides[0] // size
    return leading if leading >= max(columns, 1) else -1


def _loop_product(left: np.ndarray, matrix: np.ndarray, out: np.ndarray, add: bool) -> None:
    """out = left @ matrix (out += with ``add``) in plain loops, for any strides."""
    zero = np.zeros(1, out.dtype)[0]
    for b in range(left.shape[0]):
        for j in range(matrix.shape[1]):
            acc = zero
            for k in range(left.shape[1]):
                acc += left[b, k] * matrix[k, j]
            out[b, j] = acc + out[b, j] if add else acc


def _gemm_rows(
    gemm: Callable[..., None], left: np.ndarray, matrix: np.ndarray, out: np.ndarray, add: bool
) -> None:
    """out = left @ matrix (out += with ``add``) by BLAS ``gemm`` (blas.py), for left (B, K),
    matrix (K, N) and out (B, N) whose elements are contiguous along their rows; anything
    else (a strided view, an empty inner dimension) takes a plain loop."""
    batch, inner = left.shape
    width = matrix.shape[1]
    if matrix.shape[0] != inner or out.shape[0] != batch or out.shape[1] != width:
        raise ValueError("gemm_rows: shapes do not align")
    if batch == 0 or width == 0:
        return
    lda, ldb, ldc = leading(left), leading(matrix), leading(out)
    if inner == 0 or lda < 0 or ldb < 0 or ldc < 0:
        loop_product(left, matrix, out, add)
        return
    one = np.ones(1, out.dtype)[0]
    beta = one if add else one - one
    # Row-major (101), no transposes (111): C = A B + beta C; with beta 0, C is not read.
    a, b, c = left.ctypes.data, matrix.ctypes.data, out.ctypes.data
    gemm(101, 111, 111, batch, width, inner, one, a, lda, b, ldb, beta, c, ldc)


_jit = numba.njit(cache=True, error_model="numpy")
leading, loop_product = _jit(_leading), _jit(_loop_product)
gemm_rows = _jit(_gemm_rows)
