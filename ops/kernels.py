"""``compile_all()``: build every Numba kernel the built-in ops run, before it is needed.

Kernels are built on first use, not at import (ops/lazy_numba.py says why): the ufuncs the
elementwise ops generate from their scalar rules (ops/rule_ufuncs.py) and the hand-written
recurrent kernels (ops/recurrent_kernels.py). A benchmark calls ``compile_all()`` first so
that no compilation (or loading from the on-disk cache) lands in a timed region.
"""

import numpy as np

from tinygrad_lstm import Tensor, list_ops

from . import elementwise, recurrent_kernels


def _run_elementwise_ops(dtype) -> None:
    """Each op of ops/elementwise.py once, forward and backward, on ``dtype`` inputs of 0.5
    (inside every op's domain): this builds exactly the rule ufuncs the ops call."""
    for info in list_ops():
        if info.fn.__module__ != elementwise.__name__:
            continue
        inputs = [Tensor(np.full(2, 0.5, dtype), requires_grad=True) for _ in range(info.arity)]
        attrs = {name: choices[0] for name, choices in info.attrs.items()}
        out = info.fn.apply(*inputs, **attrs)
        out.backward(np.ones(out.shape, dtype))


def compile_all() -> None:
    """Build (or load from the on-disk cache) every kernel of the built-in ops now: the rule
    ufuncs of the elementwise ops in float32 and float64, and the recurrent kernels."""
    for dtype in (np.float32, np.float64):
        _run_elementwise_ops(dtype)
    recurrent_kernels.compile_all()
