"""Numba kernels, nothing else: elementwise forwards and their fused backwards.

Each is a true NumPy ufunc made by ``numba.vectorize`` with float32 and float64 signatures
(so broadcasting and ``out=`` work, and float32 stays float32), cached on disk
(``cache=True``) so a second process loads instead of compiling.

Kernels are built on first use, not at import: even from a warm cache, loading one costs
about 0.1 s and importing numba 0.25 s, which would put ``import tinygrad_lstm`` far past
half a second. ``compile_all()`` builds them all up front (benchmarks call it so no
compilation lands in a timed region).
"""

import math

_SIGNATURES = {
    1: ["float32(float32)", "float64(float64)"],
    2: ["float32(float32, float32)", "float64(float64, float64)"],
    3: ["float32(float32, float32, float32)", "float64(float64, float64, float64)"],
}
_PENDING: dict = {}


def _vectorize(func):
    """Mark ``func`` to become a float32/float64 numba ufunc of the same name on first use."""
    _PENDING[func.__name__] = func
    return func


@_vectorize
def sigmoid(x):
    """y = 1 / (1 + exp(-x)), evaluated so that exp never overflows."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@_vectorize
def sigmoid_grad(g, y):
    """dx = g * y * (1 - y), with y = sigmoid(x)."""
    return g * y * (1.0 - y)


@_vectorize
def tanh(x):
    """y = tanh(x)."""
    return math.tanh(x)


@_vectorize
def tanh_grad(g, y):
    """dx = g * (1 - y**2), with y = tanh(x)."""
    return g * (1.0 - y * y)


@_vectorize
def relu(x):
    """y = max(x, 0)."""
    return x if x > 0 else 0.0


@_vectorize
def relu_grad(g, x):
    """dx = g where x > 0, else 0 (the derivative at 0 is taken as 0, as in PyTorch)."""
    return g if x > 0 else 0.0


@_vectorize
def pow_grad(g, x, p):
    """dx = g * p * x**(p - 1)."""
    return g * p * x ** (p - 1.0)


@_vectorize
def div_grad_denominator(g, a, b):
    """d(a/b)/db * g = -g * a / b**2."""
    return -g * a / (b * b)


for _name in _PENDING:
    del globals()[_name]


def __getattr__(name):
    func = _PENDING.get(name)
    if func is None:
        raise AttributeError(f"module {__name__!r} has no kernel {name!r}")
    import numba

    built = numba.vectorize(_SIGNATURES[func.__code__.co_argcount], cache=True)(func)
    # A DUFunc wrapper costs ~0.8 us a call over the plain NumPy ufunc it holds.
    ufunc = getattr(built, "ufunc", built)
    globals()[name] = ufunc
    return ufunc


def compile_all() -> None:
    """Build (or load from the on-disk cache) every kernel now."""
    for name in _PENDING:
        if name not in globals():
            __getattr__(name)
