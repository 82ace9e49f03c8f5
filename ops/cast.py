"""cast: a tensor converted to another floating-point dtype, with its gradient cast back.

``Tensor.to(dtype)``, ``.float()``, ``.double()`` and ``.clone()`` run it (clone is a cast to
the tensor's own dtype: a copy on the graph).
"""

import numpy as np

from tinygrad_lstm import Function, register_op


@register_op(
    "cast",
    arity=1,
    kind="other",
    shapes=lambda dims, attrs: [(dims[0], dims[1])],
    attrs={"dtype": [None]},
)
class Cast(Function):
    """y = x as ``dtype`` (a copy; None keeps x's dtype);  dx = g as x's dtype."""

    @staticmethod
    def forward(ctx, x, dtype=None):
        ctx.dtype = x.dtype
        return x.astype(x.dtype if dtype is None else np.dtype(dtype))

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)
