"""Numba kernels of the elementwise ops (ops/elementwise.py), nothing else: forwards and
their fused backwards, and the float32 sigmoid fast path.

Each is a true NumPy ufunc made by ``numba.vectorize`` with float32 and float64 signatures
(so broadcasting and ``out=`` work, and float32 stays float32), cached on disk
(``cache=True``) so a second process loads instead of compiling. Kernels are built on first
use, not at import (ops/lazy_numba.py says why). ``compile_all()`` builds them all up front,
the recurrent ones of ops/recurrent_kernels.py included (benchmarks call it so no
compilation lands in a timed region).
"""

import numpy as np

from . import recurrent_kernels, scalar_math
from .lazy_numba import LazyKernels
from .scalar_math import sigmoid as _sig
from .scalar_math import sigmoid_fast as _sigmoid_fast

_KERNELS = LazyKernels(globals())
# y = 1 / (1 + exp(-x)) by the stable formula, the one the fused kernels inline too.
_KERNELS.vectorize(scalar_math.sigmoid)


@_KERNELS.vectorize
def sigmoid_grad(g, y):
    """dx = g * y * (1 - y), with y = sigmoid(x)."""
    return g * y * (1.0 - y)


@_KERNELS.vectorize
def tanh_grad(g, y):
    """dx = g * (1 - y**2), with y = tanh(x)."""
    return g * (1.0 - y * y)


@_KERNELS.vectorize
def relu(x):
    """y = max(x, 0)."""
    return x if x > 0 else 0.0


@_KERNELS.vectorize
def relu_grad(g, x):
    """dx = g where x > 0, else 0 (the derivative at 0 is taken as 0, as in PyTorch)."""
    return g if x > 0 else 0.0


@_KERNELS.vectorize
def pow_grad(g, x, p):
    """dx = g * p * x**(p - 1); 0 for p = 0 (x**0 is constant, even at x = 0, where
    x**(p - 1) is inf and 0 * inf would give NaN)."""
    return 0.0 * g if p == 0 else g * p * x ** (p - 1.0)


@_KERNELS.vectorize
def div_grad_denominator(g, a, b):
    """d(a/b)/db * g = -g * a / b**2."""
    return -g * a / (b * b)


@_KERNELS.jit("11")
def sigmoid_row(x, y):
    """y = sigmoid(x) over 1-D rows, by ``scalar_math.sigmoid_fast`` in float32 (vectorized)."""
    fast = x.itemsize == 4
    for j in range(x.shape[0]):
        y[j] = _sigmoid_fast(x[j]) if fast else _sig(x[j])


_KERNELS.seal()
__getattr__ = _KERNELS.build

# NumPy's own tanh loop is SIMD: faster in float32 than a numba ufunc calling libm's tanhf
# per element (benchmarks/README.md, "Figures behind design choices"), and as accurate.
tanh = np.tanh


def sigmoid_float32(x: np.ndarray) -> np.ndarray:
    """sigmoid of a float32 array of any shape through ``sigmoid_row``: the ``sigmoid``
    ufunc calls libm's exp per element, slower than this vectorized loop."""
    x = np.asarray(x)
    if not x.flags.c_contiguous:
        x = x.copy()
    y = np.empty_like(x)
    kernel = _KERNELS.get("sigmoid_row")
    kernel(x.reshape(-1), y.reshape(-1))
    return y


def compile_all() -> None:
    """Build (or load from the on-disk cache) every kernel now, the recurrent ones included."""
    _KERNELS.compile_all()
    recurrent_kernels.compile_all()
