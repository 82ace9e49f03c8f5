"""The Numba kernels of ``softsign``, built on first use.

Building (or loading from numba's on-disk cache) takes a noticeable fraction of a second, and
every plugin is imported by ``import tinygrad_lstm``; so nothing is compiled until an op
actually runs.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

_SIGNATURES = {
    1: ["float32(float32)", "float64(float64)"],
    2: ["float32(float32, float32)", "float64(float64, float64)"],
}


def _softsign(x):
    """y = x / (1 + |x|)."""
    return x / (1.0 + abs(x))


def _softsign_grad(g, x):
    """dx = g / (1 + |x|)**2."""
    d = 1.0 + abs(x)
    return g / (d * d)


@functools.cache
def kernels() -> SimpleNamespace:
    """``softsign(x)`` and ``softsign_grad(g, x)`` as float32/float64 NumPy ufuncs."""
    import numba

    def build(func):
        return numba.vectorize(_SIGNATURES[func.__code__.co_argcount], cache=True)(func)

    return SimpleNamespace(softsign=build(_softsign), softsign_grad=build(_softsign_grad))
