"""The ``softsign`` op: forward and backward side by side, on NumPy arrays."""

from __future__ import annotations

from tinygrad_lstm import Function, Tensor, register_op

from .kernels import kernels


# Metadata is what lets tinygrad-lstm's generic property tests check this op with no test
# code here: an elementwise op of one input, defined on the whole real line. |x| has a kink
# at 0 but softsign's derivative does not, so no point needs to be avoided. The scalar rule
# (the math on one element, forward and derivative) is what lets the cell compiler fuse
# softsign into a cell's generated kernels; the generic tests check it against the class.
@register_op(
    "softsign",
    arity=1,
    kind="elementwise",
    scalar={"y": "x / (1 + abs(x))", "dx": "g / ((1 + abs(x)) * (1 + abs(x)))"},
)
class Softsign(Function):
    """y = x / (1 + |x|);  dx = g / (1 + |x|)**2.  Shapes: any, y like x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return kernels().softsign(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return kernels().softsign_grad(g, x)


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|), elementwise: a tanh-like squashing into (-1, 1) with polynomial tails."""
    return Softsign.apply(x)
