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

import numpy as np

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

# NumPy's own tanh loop is SIMD: about 6x faster in float32 than a numba ufunc calling
# libm's tanhf per element, and as accurate (float64: NumPy's is correctly rounded here).
tanh = np.tanh


def __getattr__(name):
    if name in _JIT_ARGS:
        return _build_jit(name)
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
    for name in (*_PENDING, *_JIT_ARGS):
        if name not in globals():
            __getattr__(name)


# ---- whole-sequence recurrent kernels (for ops/fused.py) ------------------------------------
# Plain @njit loops over time, built lazily like the ufuncs above, with explicit float32 and
# float64 signatures over C-contiguous arrays (argument codes: "1"/"2"/"3" an array of that
# many dims, "b" a bool). The recurrent product of each step goes to BLAS through np.dot
# (numba binds it to scipy's BLAS); everything elementwise of a step is one pass with no
# temporaries. Steps run t = 0..T-1, or T-1..0 when ``reverse``; the input projection
# gi = x @ W_ih^T (+ biases) of all steps is one matmul done by the caller.
_JIT_ARGS: dict = {}
_JIT_HELPERS: list = []


def _jit(args: str):
    """Mark a kernel to be jitted on first use, for the argument codes ``args``."""
    def mark(func):
        _JIT_ARGS[func.__name__] = (func, args)
        return func
    return mark


def _helper(func):
    """A scalar function the kernels call; jitted before the first kernel is built."""
    _JIT_HELPERS.append(func)
    return func


@_helper
def _sig(x):
    """sigmoid(x), by the same stable formula as the ``sigmoid`` ufunc."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@_helper
def _step(s, n, reverse):
    """The time index of the s-th step of a pass over n steps."""
    return n - 1 - s if reverse else s


@_helper
def _first(t, n, reverse):
    """True when step t is the first of its pass (its previous state is the initial one)."""
    return t == n - 1 if reverse else t == 0


@_jit("3222b3333")
def lstm_forward(gi, w_hh_t, h0, c0, reverse, hs, cs, tcs, acts):
    """LSTM pass; gi = x @ W_ih^T + b_ih + b_hh, (T, B, 4H); w_hh_t = W_hh^T, (H, 4H).

    a = gi[t] + h @ W_hh^T; i, f, o = sigmoid(a_i, a_f, a_o); g = tanh(a_g);
    c' = f * c + i * g; h' = o * tanh(c'). Writes hs[t] = h', cs[t] = c',
    tcs[t] = tanh(c') (each (T, B, H)) and acts[t] = [i | f | g | o] (T, B, 4H).
    """
    n, batch, width = gi.shape
    hid = width // 4
    a = np.empty((batch, width), gi.dtype)
    h, c = h0, c0
    for s in range(n):
        t = _step(s, n, reverse)
        np.dot(h, w_hh_t, a)
        for b in range(batch):
            for j in range(hid):
                i = _sig(a[b, j] + gi[t, b, j])
                f = _sig(a[b, hid + j] + gi[t, b, hid + j])
                g = math.tanh(a[b, 2 * hid + j] + gi[t, b, 2 * hid + j])
                o = _sig(a[b, 3 * hid + j] + gi[t, b, 3 * hid + j])
                cn = f * c[b, j] + i * g
                tc = math.tanh(cn)
                cs[t, b, j] = cn
                tcs[t, b, j] = tc
                hs[t, b, j] = o * tc
                acts[t, b, j] = i
                acts[t, b, hid + j] = f
                acts[t, b, 2 * hid + j] = g
                acts[t, b, 3 * hid + j] = o
        h, c = hs[t], cs[t]


@_jit("32222b333322")
def lstm_backward(dy, dhn, dcn, w_hh, c0, reverse, cs, tcs, acts, da, dh0, dc0):
    """BPTT through ``lstm_forward``: da[t] = dL/da of each step, (T, B, 4H).

    With dh = dy[t] + (gradient from step t+1) and C = dc + dh * o * (1 - tanh(c')^2):
    da_i = C g i(1-i), da_f = C c f(1-f), da_g = C i (1-g^2), da_o = dh tanh(c') o(1-o);
    the previous step gets dc = C f and dh = da @ W_hh. dh0, dc0 receive the last ones.
    """
    n, batch, width = acts.shape
    hid = width // 4
    dh = dhn.copy()
    dc = dcn.copy()
    for s in range(n):
        t = _step(n - 1 - s, n, reverse)
        cp = c0 if _first(t, n, reverse) else cs[t + 1 if reverse else t - 1]
        for b in range(batch):
            for j in range(hid):
                i = acts[t, b, j]
                f = acts[t, b, hid + j]
                g = acts[t, b, 2 * hid + j]
                o = acts[t, b, 3 * hid + j]
                tc = tcs[t, b, j]
                d = dh[b, j] + dy[t, b, j]
                cc = dc[b, j] + d * o * (1.0 - tc * tc)
                da[t, b, j] = cc * g * i * (1.0 - i)
                da[t, b, hid + j] = cc * cp[b, j] * f * (1.0 - f)
                da[t, b, 2 * hid + j] = cc * i * (1.0 - g * g)
                da[t, b, 3 * hid + j] = d * tc * o * (1.0 - o)
                dc[b, j] = cc * f
        np.dot(da[t], w_hh, dh)
    dh0[:] = dh
    dc0[:] = dc


@_jit("3212b333")
def gru_forward(gi, w_hh_t, b_hh, h0, reverse, hs, acts, ghn):
    """GRU pass; gi = x @ W_ih^T + b_ih, (T, B, 3H); w_hh_t = W_hh^T, (H, 3H).

    gh = h @ W_hh^T + b_hh; r = sigmoid(gi_r + gh_r); z = sigmoid(gi_z + gh_z);
    n = tanh(gi_n + r * gh_n); h' = (1 - z) * n + z * h. Writes hs[t] = h',
    acts[t] = [r | z | n] (T, B, 3H) and ghn[t] = gh_n (T, B, H).
    """
    n_steps, batch, width = gi.shape
    hid = width // 3
    a = np.empty((batch, width), gi.dtype)
    h = h0
    for s in range(n_steps):
        t = _step(s, n_steps, reverse)
        np.dot(h, w_hh_t, a)
        for b in range(batch):
            for j in range(hid):
                r = _sig(gi[t, b, j] + (a[b, j] + b_hh[j]))
                z = _sig(gi[t, b, hid + j] + (a[b, hid + j] + b_hh[hid + j]))
                hn = a[b, 2 * hid + j] + b_hh[2 * hid + j]
                nn = math.tanh(gi[t, b, 2 * hid + j] + r * hn)
                hs[t, b, j] = (1.0 - z) * nn + z * h[b, j]
                acts[t, b, j] = r
                acts[t, b, hid + j] = z
                acts[t, b, 2 * hid + j] = nn
                ghn[t, b, j] = hn
        h = hs[t]


@_jit("3222b333332")
def gru_backward(dy, dhn, w_hh, h0, reverse, hs, acts, ghn, dgi, dgh, dh0):
    """BPTT through ``gru_forward``: dgi[t] = dL/dgi, dgh[t] = dL/dgh, (T, B, 3H).

    With dh = dy[t] + (gradient from step t+1): dn = dh (1-z)(1-n^2),
    dz = dh (h - n) z(1-z), dr = dn gh_n r(1-r); dgi = [dr | dz | dn],
    dgh = [dr | dz | dn r]; the previous step gets dh z + dgh @ W_hh.
    """
    n_steps, batch, width = acts.shape
    hid = width // 3
    dh = dhn.copy()
    direct = np.empty_like(dh)
    for s in range(n_steps):
        t = _step(n_steps - 1 - s, n_steps, reverse)
        hp = h0 if _first(t, n_steps, reverse) else hs[t + 1 if reverse else t - 1]
        for b in range(batch):
            for j in range(hid):
                r = acts[t, b, j]
                z = acts[t, b, hid + j]
                nn = acts[t, b, 2 * hid + j]
                d = dh[b, j] + dy[t, b, j]
                dn = d * (1.0 - z) * (1.0 - nn * nn)
                dz = d * (hp[b, j] - nn) * z * (1.0 - z)
                dr = dn * ghn[t, b, j] * r * (1.0 - r)
                dgi[t, b, j] = dr
                dgi[t, b, hid + j] = dz
                dgi[t, b, 2 * hid + j] = dn
                dgh[t, b, j] = dr
                dgh[t, b, hid + j] = dz
                dgh[t, b, 2 * hid + j] = dn * r
                direct[b, j] = d * z
        np.dot(dgh[t], w_hh, dh)
        dh += direct
    dh0[:] = dh


@_jit("322bb3")
def rnn_forward(gi, w_hh_t, h0, reverse, relu, hs):
    """Elman RNN pass; gi = x @ W_ih^T + b_ih + b_hh, (T, B, H); w_hh_t = W_hh^T, (H, H).

    h' = act(gi[t] + h @ W_hh^T) with act = relu if ``relu`` else tanh; hs[t] = h'.
    """
    n, batch, hid = gi.shape
    a = np.empty((batch, hid), gi.dtype)
    h = h0
    for s in range(n):
        t = _step(s, n, reverse)
        np.dot(h, w_hh_t, a)
        for b in range(batch):
            for j in range(hid):
                v = a[b, j] + gi[t, b, j]
                if relu:
                    hs[t, b, j] = v if v > 0 else 0.0
                else:
                    hs[t, b, j] = math.tanh(v)
        h = hs[t]


@_jit("322bb332")
def rnn_backward(dy, dhn, w_hh, reverse, relu, hs, da, dh0):
    """BPTT through ``rnn_forward``: da[t] = dL/da of each step, (T, B, H).

    da = dh (1 - h'^2) for tanh, dh [h' > 0] for relu (0 at 0, as in PyTorch);
    the previous step gets da @ W_hh.
    """
    n, batch, hid = hs.shape
    dh = dhn.copy()
    for s in range(n):
        t = _step(n - 1 - s, n, reverse)
        for b in range(batch):
            for j in range(hid):
                d = dh[b, j] + dy[t, b, j]
                y = hs[t, b, j]
                if relu:
                    da[t, b, j] = d if y > 0 else 0.0
                else:
                    da[t, b, j] = d * (1.0 - y * y)
        np.dot(da[t], w_hh, dh)
    dh0[:] = dh


for _name in _JIT_ARGS:
    del globals()[_name]


def _build_jit(name: str):
    """Jit kernel ``name`` (loading it from the on-disk cache when there) for both dtypes."""
    import numba

    for helper in _JIT_HELPERS:
        if globals()[helper.__name__] is helper:
            globals()[helper.__name__] = numba.njit(cache=True)(helper)
    func, codes = _JIT_ARGS[name]
    signatures = []
    for dtype in (numba.float32, numba.float64):
        args = [numba.boolean if code == "b" else numba.types.Array(dtype, int(code), "C")
                for code in codes]
        signatures.append(numba.void(*args))
    built = numba.njit(signatures, cache=True)(func)
    globals()[name] = built
    return built
