"""matmul, with NumPy's rules: 2-D, batched (leading dims broadcast) and 1-D vectors.

BLAS does the work (``a @ b``); the backward is two more products:
``da = g @ b^T``, ``db = a^T @ g``, batch dims summed back by the engine's unbroadcast.
"""

import numpy as np

from tinygrad_lstm import Function, ShapeError, register_op


def _matmul_shapes(dims, attrs):
    m, k, n, b = dims[0], dims[1], dims[2], dims[3]
    return [
        [(m, k), (k, n)],
        [(b, m, k), (k, n)],
        [(b, m, k), (b, k, n)],
        [(k,), (k, n)],
        [(m, k), (k,)],
        [(k,), (k,)],
        [(b, m, k), (k,)],
        [(k,), (b, k, n)],
    ][attrs["case"]]


@register_op(
    "matmul",
    arity=2,
    kind="linalg",
    shapes=_matmul_shapes,
    attrs={"case": [0, 1, 2, 3, 4, 5, 6, 7]},
)
class Matmul(Function):
    """y = a @ b;  da = g @ b^T,  db = a^T @ g."""

    @staticmethod
    def forward(ctx, a, b, case=None):  # ``case`` only selects test shapes
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ShapeError(
                f"matmul: shapes {a.shape} and {b.shape} do not align "
                "(the last dim of a must equal the second-to-last dim of b)"
            )
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        # A 1-D operand is a (1, k) row or a (k, 1) column; its gradient folds back to (k,).
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # b's axis first: for 1-D @ 1-D, g is 0-d and needs (1,) before it can take (1, 1).
        if b.ndim == 1:
            g = np.expand_dims(g, -1)
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        ga = g @ np.swapaxes(b2, -1, -2) if need_a else None
        gb = np.swapaxes(a2, -1, -2) @ g if need_b else None
        # Sum over the batch axes and the added unit axis by naming them: a reshape to
        # (-1, k) cannot infer -1 when k = 0 (an empty contraction, whose gradients are empty).
        if ga is not None and a.ndim == 1:
            ga = ga.sum(axis=tuple(range(ga.ndim - 1)))
        if gb is not None and b.ndim == 1:
            gb = gb.sum(axis=(*range(gb.ndim - 2), -1))
        return ga, gb
