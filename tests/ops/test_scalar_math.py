"""ops/scalar_math.py: the float32 sigmoid/tanh the kernels inline are accurate to a few ulps
over the whole range, small |x| and saturation included; ``kernel_functions()`` makes them
callable from kernels once, and leaves them the module's plain functions."""

from types import SimpleNamespace

import numba
import numpy as np
from tinygrad_lstm.ops import scalar_math


def test_float32_kernels_sigmoid_and_tanh_are_accurate():
    """The float32 step kernels' own sigmoid/tanh (float32 arithmetic, so loops vectorize)
    stay within 3 float32 ulps of the exact values, small |x| and saturation included."""
    scalar = jitted_copies()  # test the functions the kernels inline, compiled
    xs = np.concatenate(
        [
            np.linspace(-120, 120, 2401),
            np.geomspace(1e-12, 30, 800),
            -np.geomspace(1e-12, 30, 800),
            [0.0],
        ]
    ).astype(np.float32)
    tanh = np.array([scalar.tanh_fast(x) for x in xs])
    sig = np.array([scalar.sigmoid_fast(x) for x in xs])
    exact = xs.astype(np.float64)
    e = np.exp(-np.abs(exact))
    want_sig = np.where(exact >= 0, 1 / (1 + e), e / (1 + e))
    ulps = 3 * np.finfo(np.float32).eps
    tanh_err = np.max(np.abs(tanh - np.tanh(exact)) / np.abs(np.tanh(exact)).clip(1e-300))
    assert tanh_err < ulps, f"tanh relative error {tanh_err:.1e}"
    live = exact > -87  # past it exp(-|x|) < 2e-38 is returned as 0
    sig_err = np.max(np.abs(sig - want_sig)[live] / want_sig[live])
    assert sig_err < ulps, f"sigmoid relative error {sig_err:.1e}"
    assert np.max(np.abs(sig - want_sig)[~live]) < 2e-38
    assert sig[0] == 0.0 and sig[-1] == 0.5 and sig[2400] == 1.0


def jitted_copies():
    """Each scalar function compiled alone, calling the others as a kernel does."""
    scalar_math.kernel_functions()
    return SimpleNamespace(
        **{f.__name__: numba.njit(lambda x, f=f: f(x)) for f in scalar_math.FUNCTIONS}
    )


def test_kernel_functions_registers_once_and_the_module_keeps_its_plain_functions():
    scalar = scalar_math.kernel_functions()
    assert scalar is scalar_math.kernel_functions()
    for func in scalar_math.FUNCTIONS:
        assert getattr(scalar, func.__name__) is func is getattr(scalar_math, func.__name__)
        assert not isinstance(func, numba.core.dispatcher.Dispatcher)
    compiled = jitted_copies().sigmoid_fast
    assert compiled(np.float32(0.25)) == scalar_math.sigmoid_fast(np.float32(0.25))
