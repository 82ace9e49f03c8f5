"""The in-kernel matrix product of the generated whole-pass drivers, jitted on import.

Only generated kernel modules import this (they import Numba anyway), so importing the
library does not.
"""

import numba
import numpy as np

__all__ = ["matmul_rows"]


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
