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
# many dims, "b" a bool). Each step's recurrent product goes to BLAS through np.dot (numba
# binds it to scipy's BLAS) straight into the step's slice of ``acts``; the elementwise
# work is short loops over contiguous rows, which LLVM vectorizes (error_model="numpy"
# drops the per-division zero checks that would stop it). float64 evaluates sigmoid and
# tanh with libm, exactly as the composed ops do; float32 uses ``_sigmoid_fast`` and
# ``_tanh_fast``: plain arithmetic in float64, so it vectorizes, and rounds to the same
# float32 as libm's in all but rare ties (libm's exp is a call per element that no loop
# vectorizes: 5-10x slower). Steps run t = 0..T-1, or T-1..0 when ``reverse``.
_JIT_ARGS: dict = {}
_JIT_HELPERS: list = []


def _jit(args: str):
    """Mark a kernel to be jitted on first use, for the argument codes ``args``."""
    def mark(func):
        _JIT_ARGS[func.__name__] = (func, args)
        return func
    return mark


def _helper(func):
    """A scalar function the kernels call; jitted (inlined) before a kernel is built."""
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
def _exp_pair(y):
    """(exp(-y), exp(-y) - 1) for y >= 0 (clamped at 80), to ~1e-15 relative, in plain
    arithmetic: u = -y/256; exp(u) - 1 by Taylor to degree 12 (|u| <= 0.3125, remainder
    < 1e-16); then 8 doublings, exp(2u) = exp(u)^2 and exp(2u) - 1 = q (2 + q), so both
    keep full relative precision (the second without cancelling for small y)."""
    u = -min(y, 80.0) * (1.0 / 256.0)
    q = u * (1.0 + u * (1.0 / 2 + u * (1.0 / 6 + u * (1.0 / 24 + u * (
        1.0 / 120 + u * (1.0 / 720 + u * (1.0 / 5040 + u * (1.0 / 40320 + u * (
            1.0 / 362880 + u * (1.0 / 3628800 + u * (1.0 / 39916800 + u * (
                1.0 / 479001600))))))))))))
    p = 1.0 + q
    for _ in range(8):
        p = p * p
        q = q * (2.0 + q)
    return p, q


@_helper
def _sigmoid_fast(x):
    """sigmoid(x) = 1 / (2 + q) for x >= 0, e / (1 + e) otherwise (e = exp(-|x|),
    q = e - 1); float64 arithmetic."""
    e, q = _exp_pair(abs(float(x)))
    return 1.0 / (2.0 + q) if x >= 0 else e / (1.0 + e)


@_helper
def _tanh_fast(x):
    """tanh(x) = sign(x) (1 - e) / (1 + e) = sign(x) (-q) / (2 + q), e = exp(-2|x|)."""
    _, q = _exp_pair(2.0 * abs(float(x)))
    t = -q / (2.0 + q)
    return t if x >= 0 else -t


@_helper
def _sigmoid_rows(v, lo, hi, fast):
    """v[lo:hi] = sigmoid(v[lo:hi]) in place."""
    if fast:
        for j in range(lo, hi):
            v[j] = _sigmoid_fast(v[j])
    else:
        for j in range(lo, hi):
            v[j] = _sig(v[j])


@_helper
def _tanh_rows(v, lo, hi, fast):
    """v[lo:hi] = tanh(v[lo:hi]) in place."""
    if fast:
        for j in range(lo, hi):
            v[j] = _tanh_fast(v[j])
    else:
        for j in range(lo, hi):
            v[j] = math.tanh(v[j])


@_helper
def _add_rows(v, w):
    """v += w for 1-D rows of equal length."""
    for j in range(v.shape[0]):
        v[j] += w[j]


@_helper
def _step(s, n, reverse):
    """The time index of the s-th step of a pass over n steps."""
    return n - 1 - s if reverse else s


@_helper
def _prev(t, reverse):
    """The time index whose state step t starts from (-1 or n: the initial state)."""
    return t + 1 if reverse else t - 1


@_jit("3222b3333")
def lstm_forward(gi, w_hh_t, h0, c0, reverse, hs, cs, tcs, acts):
    """LSTM pass; gi = x @ W_ih^T + b_ih + b_hh, (T, B, 4H); w_hh_t = W_hh^T, (H, 4H).

    a = gi[t] + h @ W_hh^T; i, f, o = sigmoid(a_i, a_f, a_o); g = tanh(a_g);
    c' = f * c + i * g; h' = o * tanh(c'). Writes hs[t] = h', cs[t] = c',
    tcs[t] = tanh(c') (each (T, B, H)) and acts[t] = [i | f | g | o] (T, B, 4H).
    """
    n, batch, width = gi.shape
    hid = width // 4
    fast = gi.itemsize == 4
    h, c = h0, c0
    for s in range(n):
        t = _step(s, n, reverse)
        np.dot(h, w_hh_t, acts[t])
        for b in range(batch):
            a = acts[t, b]
            _add_rows(a, gi[t, b])
            _sigmoid_rows(a, 0, 2 * hid, fast)
            _tanh_rows(a, 2 * hid, 3 * hid, fast)
            _sigmoid_rows(a, 3 * hid, width, fast)
            cb, cn = c[b], cs[t, b]
            for j in range(hid):
                cn[j] = a[hid + j] * cb[j] + a[j] * a[2 * hid + j]
            tc = tcs[t, b]
            tc[:] = cn
            _tanh_rows(tc, 0, hid, fast)
            hb = hs[t, b]
            for j in range(hid):
                hb[j] = a[3 * hid + j] * tc[j]
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
        p = _prev(t, reverse)
        cp = c0 if p < 0 or p >= n else cs[p]
        for b in range(batch):
            a, d, tc, cpb = acts[t, b], da[t, b], tcs[t, b], cp[b]
            dhb, dcb, dyb = dh[b], dc[b], dy[t, b]
            for j in range(hid):
                i, f, g, o = a[j], a[hid + j], a[2 * hid + j], a[3 * hid + j]
                dht = dhb[j] + dyb[j]
                cc = dcb[j] + dht * o * (1.0 - tc[j] * tc[j])
                d[j] = cc * g * i * (1.0 - i)
                d[hid + j] = cc * cpb[j] * f * (1.0 - f)
                d[2 * hid + j] = cc * i * (1.0 - g * g)
                d[3 * hid + j] = dht * tc[j] * o * (1.0 - o)
                dcb[j] = cc * f
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
    fast = gi.itemsize == 4
    h = h0
    for s in range(n_steps):
        t = _step(s, n_steps, reverse)
        np.dot(h, w_hh_t, acts[t])
        for b in range(batch):
            a, g, hn, hb, hp = acts[t, b], gi[t, b], ghn[t, b], hs[t, b], h[b]
            _add_rows(a, b_hh)
            for j in range(hid):
                hn[j] = a[2 * hid + j]
            for j in range(2 * hid):
                a[j] += g[j]
            _sigmoid_rows(a, 0, 2 * hid, fast)
            for j in range(hid):
                a[2 * hid + j] = g[2 * hid + j] + a[j] * hn[j]
            _tanh_rows(a, 2 * hid, width, fast)
            for j in range(hid):
                z, nn = a[hid + j], a[2 * hid + j]
                hb[j] = (1.0 - z) * nn + z * hp[j]
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
        p = _prev(t, reverse)
        hp = h0 if p < 0 or p >= n_steps else hs[p]
        for b in range(batch):
            a, hn, di, dg = acts[t, b], ghn[t, b], dgi[t, b], dgh[t, b]
            dhb, dyb, hpb, dirb = dh[b], dy[t, b], hp[b], direct[b]
            for j in range(hid):
                r, z, nn = a[j], a[hid + j], a[2 * hid + j]
                d = dhb[j] + dyb[j]
                dn = d * (1.0 - z) * (1.0 - nn * nn)
                dz = d * (hpb[j] - nn) * z * (1.0 - z)
                dr = dn * hn[j] * r * (1.0 - r)
                di[j] = dr
                di[hid + j] = dz
                di[2 * hid + j] = dn
                dg[j] = dr
                dg[hid + j] = dz
                dg[2 * hid + j] = dn * r
                dirb[j] = d * z
        np.dot(dgh[t], w_hh, dh)
        dh += direct
    dh0[:] = dh


@_jit("322bb3")
def rnn_forward(gi, w_hh_t, h0, reverse, relu, hs):
    """Elman RNN pass; gi = x @ W_ih^T + b_ih + b_hh, (T, B, H); w_hh_t = W_hh^T, (H, H).

    h' = act(gi[t] + h @ W_hh^T) with act = relu if ``relu`` else tanh; hs[t] = h'.
    """
    n, batch, hid = gi.shape
    fast = gi.itemsize == 4
    h = h0
    for s in range(n):
        t = _step(s, n, reverse)
        np.dot(h, w_hh_t, hs[t])
        for b in range(batch):
            a = hs[t, b]
            _add_rows(a, gi[t, b])
            if relu:
                for j in range(hid):
                    a[j] = max(a[j], 0.0)
            else:
                _tanh_rows(a, 0, hid, fast)
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
            d, y, dhb, dyb = da[t, b], hs[t, b], dh[b], dy[t, b]
            if relu:
                for j in range(hid):
                    d[j] = dhb[j] + dyb[j] if y[j] > 0 else 0.0
            else:
                for j in range(hid):
                    d[j] = (dhb[j] + dyb[j]) * (1.0 - y[j] * y[j])
        np.dot(da[t], w_hh, dh)
    dh0[:] = dh


for _name in _JIT_ARGS:
    del globals()[_name]


def _build_jit(name: str):
    """Jit kernel ``name`` (loading it from the on-disk cache when there) for both dtypes."""
    import numba

    for helper in _JIT_HELPERS:
        if globals()[helper.__name__] is helper:
            globals()[helper.__name__] = numba.njit(inline="always", error_model="numpy")(
                helper)
    func, codes = _JIT_ARGS[name]
    signatures = []
    for dtype in (numba.float32, numba.float64):
        args = [numba.boolean if code == "b" else numba.types.Array(dtype, int(code), "C")
                for code in codes]
        signatures.append(numba.void(*args))
    built = numba.njit(signatures, cache=True, error_model="numpy")(func)
    globals()[name] = built
    return built
