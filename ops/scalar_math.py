"""Scalar sigmoid, exp and tanh that Numba kernels inline: the hand-written recurrent
kernels (ops/recurrent_kernels.py: the LSTM / GRU / RNN steps) and, as the float32 fast
variants of the sigmoid and tanh ops, the kernels generated from scalar rules.

``sigmoid`` is the stable libm formula, the same as the sigmoid op's rule (float64 uses it
everywhere). ``sigmoid_fast`` / ``tanh_fast`` are float32 arithmetic, so loops calling them
vectorize 8 lanes wide, a few ulps from libm (libm's exp is one call per element, much
slower). ops/rule_source.py ``FAST_FLOAT32`` names them as the ops' fast variants: the cell
compiler's float32 kernels and ops/rule_ufuncs.py (``fast=True``) call them in place of the
rule's forward.

The functions here are plain Python, and stay so; ``kernel_functions()`` (once, on first
use: importing tinygrad_lstm must not import numba) tells Numba to compile each into the
kernel that calls it, inlined, so a kernel can call them by name. A generated kernel module
calls it in its header (ops/rule_source.py ``header``).

Editing this file invalidates every cached kernel that inlines it (ops/lazy_numba.py and
ops/kernel_cache.py key their caches on it).
"""

import functools
import math
from types import SimpleNamespace

import numpy as np

_F32 = {
    name: np.float32(value)
    for name, value in {
        "one": 1.0,
        "half": 0.5,
        "two": 2.0,
        "quarter": 0.25,
        "y_max": 87.0,
        "log2e": 1.4426950408889634,
        "ln2_hi": 0.693359375,
        "ln2_lo": -2.12194440e-4,
        "c2": 1 / 2,
        "c3": 1 / 6,
        "c4": 1 / 24,
        "c5": 1 / 120,
        "c6": 1 / 720,
        "t3": -1 / 3,
        "t5": 2 / 15,
        "t7": -17 / 315,
        "t9": 62 / 2835,
        "t11": -1382 / 155925,
    }.items()
}
_ONE, _HALF, _TWO, _QUARTER, _Y_MAX = (_F32[k] for k in ("one", "half", "two", "quarter", "y_max"))
_LOG2E, _LN2_HI, _LN2_LO = _F32["log2e"], _F32["ln2_hi"], _F32["ln2_lo"]
_C2, _C3, _C4, _C5, _C6 = (_F32[f"c{k}"] for k in range(2, 7))
_T3, _T5, _T7, _T9, _T11 = (_F32[f"t{k}"] for k in (3, 5, 7, 9, 11))


def sigmoid(x):
    """y = 1 / (1 + exp(-x)), evaluated so that exp never overflows."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def exp_neg32(y):
    """exp(-y) for float32 y >= 0, in float32 arithmetic (8 lanes per AVX2 vector):
    -y = n ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 in two parts), exp(r) by Taylor to
    degree 6 (remainder < 2e-8 relative), 2^n made from its exponent bits. Past y = 87
    (where 2^n would leave the normal range) it returns 0: the true value is < 2e-38.
    About 3 float32 ulps of error."""
    t = -min(y, _Y_MAX)
    n = np.floor(t * _LOG2E + _HALF)
    r = t - n * _LN2_HI - n * _LN2_LO
    p = _ONE + r * (_ONE + r * (_C2 + r * (_C3 + r * (_C4 + r * (_C5 + r * _C6)))))
    scale = np.int32((np.int32(n) + np.int32(127)) << np.int32(23)).view(np.float32)
    return p * scale if y < _Y_MAX else p * np.float32(0.0)


def sigmoid_fast(x):
    """float32 sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) otherwise, e = exp(-|x|)."""
    e = exp_neg32(abs(x))
    s = _ONE / (_ONE + e)
    return s if x >= 0 else e * s


def tanh_fast(x):
    """float32 tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|); for |x| < 1/4, where
    1 - e would cancel, its odd Taylor series to x^11 (remainder < 1e-9 relative)."""
    e = exp_neg32(_TWO * abs(x))
    t = (_ONE - e) / (_ONE + e)
    big = t if x >= 0 else -t
    v2 = x * x
    small = x * (_ONE + v2 * (_T3 + v2 * (_T5 + v2 * (_T7 + v2 * (_T9 + v2 * _T11)))))
    return small if abs(x) < _QUARTER else big


FUNCTIONS = (sigmoid, exp_neg32, sigmoid_fast, tanh_fast)


@functools.cache
def kernel_functions() -> SimpleNamespace:
    """``FUNCTIONS`` made callable from Numba-compiled code, as the attributes of their
    names: each is registered with Numba (``register_jitable``), so a kernel that calls it
    compiles it in, and LLVM inlines it (``error_model="numpy"``: no per-division zero check
    to stop LLVM vectorizing; Numba's own ``inline="always"`` trips one of its IR checks
    here, a warning). They remain the same Python functions: called from Python they run as
    Python, as the kernels calling them do under NUMBA_DISABLE_JIT=1 (where a ufunc, which
    Numba compiles even then, calls none of them: ops/rule_ufuncs.py)."""
    from numba.extending import register_jitable

    for func in FUNCTIONS:
        register_jitable(error_model="numpy")(func)
    return SimpleNamespace(**{func.__name__: func for func in FUNCTIONS})
