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


# ---- recurrent step kernels (for ops/fused.py) ----------------------------------------------
# The elementwise half of one LSTM / GRU / RNN time step and of its backward, on (B, G*H)
# rows; ops/fused.py runs the time loop and the step's matmul (NumPy's BLAS) around them,
# or, for small LSTM steps, ``lstm_forward`` / ``lstm_backward`` run the whole loop.
# Plain @njit functions, built lazily like the ufuncs above, with explicit float32 and
# float64 signatures over C-contiguous arrays (argument codes: "1"/"2" an array of that many
# dims, "b" a bool). Loops run over contiguous rows so LLVM vectorizes them
# (error_model="numpy" drops the per-division zero checks that would stop it). float64
# evaluates sigmoid and tanh with libm, exactly as the composed ops do; float32 uses
# ``_sigmoid_fast`` / ``_tanh_fast``: float32 arithmetic that vectorizes 8 lanes wide, a few
# ulps from libm (libm's exp is one call per element, 5-10x slower here).
_JIT_ARGS: dict = {}
_JIT_HELPERS: list = []
_REASSOCIATED: list = []


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


def _reassociated(func):
    """A helper jitted with reassociated float sums (so its reductions vectorize), not
    inlined: the flag stays on its own instructions, away from the kernels' careful math."""
    _REASSOCIATED.append(func)
    return func


@_reassociated
def _matmul_rows(h, w, out):
    """out = h @ w^T for C-contiguous h (B, K) and w (N, K): each row of w is read once for
    four rows of h (register blocking); for small products this beats a BLAS call, whose
    fixed cost is paid at every time step."""
    batch, inner = h.shape
    zero = np.zeros(1, h.dtype)[0]  # a zero of the arrays' dtype, so sums stay in it
    b = 0
    while b + 4 <= batch:
        h0, h1, h2, h3 = h[b], h[b + 1], h[b + 2], h[b + 3]
        for j in range(w.shape[0]):
            wj = w[j]
            a0 = a1 = a2 = a3 = zero
            for k in range(inner):
                x = wj[k]
                a0 += h0[k] * x
                a1 += h1[k] * x
                a2 += h2[k] * x
                a3 += h3[k] * x
            out[b, j], out[b + 1, j], out[b + 2, j], out[b + 3, j] = a0, a1, a2, a3
        b += 4
    for r in range(b, batch):
        hr = h[r]
        for j in range(w.shape[0]):
            wj = w[j]
            acc = zero
            for k in range(inner):
                acc += hr[k] * wj[k]
            out[r, j] = acc


@_helper
def _sig(x):
    """sigmoid(x), by the same stable formula as the ``sigmoid`` ufunc."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


_F32 = {name: np.float32(value) for name, value in {
    "one": 1.0, "half": 0.5, "two": 2.0, "quarter": 0.25, "y_max": 87.0,
    "log2e": 1.4426950408889634, "ln2_hi": 0.693359375, "ln2_lo": -2.12194440e-4,
    "c2": 1 / 2, "c3": 1 / 6, "c4": 1 / 24, "c5": 1 / 120, "c6": 1 / 720,
    "t3": -1 / 3, "t5": 2 / 15, "t7": -17 / 315, "t9": 62 / 2835, "t11": -1382 / 155925,
}.items()}
_ONE, _HALF, _TWO, _QUARTER, _Y_MAX = (_F32[k] for k in ("one", "half", "two", "quarter",
                                                         "y_max"))
_LOG2E, _LN2_HI, _LN2_LO = _F32["log2e"], _F32["ln2_hi"], _F32["ln2_lo"]
_C2, _C3, _C4, _C5, _C6 = (_F32[f"c{k}"] for k in range(2, 7))
_T3, _T5, _T7, _T9, _T11 = (_F32[f"t{k}"] for k in (3, 5, 7, 9, 11))


@_helper
def _exp_neg32(y):
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


@_helper
def _sigmoid_fast(x):
    """float32 sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) otherwise, e = exp(-|x|)."""
    e = _exp_neg32(abs(x))
    s = _ONE / (_ONE + e)
    return s if x >= 0 else e * s


@_helper
def _tanh_fast(x):
    """float32 tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|); for |x| < 1/4, where
    1 - e would cancel, its odd Taylor series to x^11 (remainder < 1e-9 relative)."""
    e = _exp_neg32(_TWO * abs(x))
    t = (_ONE - e) / (_ONE + e)
    big = t if x >= 0 else -t
    v2 = x * x
    small = x * (_ONE + v2 * (_T3 + v2 * (_T5 + v2 * (_T7 + v2 * (_T9 + v2 * _T11)))))
    return small if abs(x) < _QUARTER else big


@_helper
def _sigmoid_row(v, fast):
    """v = sigmoid(v) in place (v a 1-D row)."""
    if fast:
        for j in range(v.shape[0]):
            v[j] = _sigmoid_fast(v[j])
    else:
        for j in range(v.shape[0]):
            v[j] = _sig(v[j])


@_helper
def _tanh_row(v, fast):
    """v = tanh(v) in place (v a 1-D row)."""
    if fast:
        for j in range(v.shape[0]):
            v[j] = _tanh_fast(v[j])
    else:
        for j in range(v.shape[0]):
            v[j] = math.tanh(v[j])


@_jit("2212222")
def lstm_step(a, gi, bias, c, c_new, tc_new, h_new):
    """One LSTM step, given a = h @ W_hh^T (B, 4H), gi = x_t W_ih^T and bias = b_ih + b_hh:
    a becomes [i | f | g | o] = [sigmoid | sigmoid | tanh | sigmoid](a + gi + bias);
    c_new = f c + i g, tc_new = tanh(c_new), h_new = o tc_new (each (B, H))."""
    hid = a.shape[1] // 4
    fast = a.itemsize == 4
    for b in range(a.shape[0]):
        row, g_row = a[b], gi[b]
        for j in range(row.shape[0]):
            row[j] += g_row[j] + bias[j]
        i, f, g, o = row[:hid], row[hid:2 * hid], row[2 * hid:3 * hid], row[3 * hid:]
        _sigmoid_row(row[:2 * hid], fast)
        _tanh_row(g, fast)
        _sigmoid_row(o, fast)
        cb, cn, tc, hb = c[b], c_new[b], tc_new[b], h_new[b]
        for j in range(hid):
            cn[j] = f[j] * cb[j] + i[j] * g[j]
            tc[j] = cn[j]
        _tanh_row(tc, fast)
        for j in range(hid):
            hb[j] = o[j] * tc[j]


@_jit("2222222")
def lstm_step_back(a, tc, c_prev, dh, dc, dy, da):
    """Backward of ``lstm_step``: with d = dh + dy (the gradient reaching h') and
    C = dc + d o (1 - tanh(c')^2): da = [C g i(1-i) | C c f(1-f) | C i (1-g^2) |
    d tanh(c') o(1-o)], and dc becomes C f (the caller does dh = da @ W_hh)."""
    hid = a.shape[1] // 4
    for b in range(a.shape[0]):
        row, drow, tcb, cpb, dhb, dcb, dyb = a[b], da[b], tc[b], c_prev[b], dh[b], dc[b], dy[b]
        i, f, g, o = row[:hid], row[hid:2 * hid], row[2 * hid:3 * hid], row[3 * hid:]
        di, df, dg, do = drow[:hid], drow[hid:2 * hid], drow[2 * hid:3 * hid], drow[3 * hid:]
        for j in range(hid):
            d = dhb[j] + dyb[j]
            cc = dcb[j] + d * o[j] * (1.0 - tcb[j] * tcb[j])
            di[j] = cc * g[j] * i[j] * (1.0 - i[j])
            df[j] = cc * cpb[j] * f[j] * (1.0 - f[j])
            dg[j] = cc * i[j] * (1.0 - g[j] * g[j])
            do[j] = d * tcb[j] * o[j] * (1.0 - o[j])
            dcb[j] = cc * f[j]


@_jit("2211222")
def gru_step(a, gi, b_ih, b_hh, h, gh_n, h_new):
    """One GRU step, given a = h @ W_hh^T (B, 3H) and gi = x_t W_ih^T (+ b_ih, added here):
    with gh = a + b_hh, a becomes [r | z | n] = [sigmoid(gi_r + gh_r) | sigmoid(gi_z + gh_z) |
    tanh(gi_n + r gh_n)]; gh_n is kept, h_new = (1 - z) n + z h."""
    hid = a.shape[1] // 3
    fast = a.itemsize == 4
    for b in range(a.shape[0]):
        row, g_row, hn = a[b], gi[b], gh_n[b]
        for j in range(row.shape[0]):
            row[j] += b_hh[j]
        r, z, n = row[:hid], row[hid:2 * hid], row[2 * hid:]
        for j in range(hid):
            hn[j] = n[j]
        for j in range(2 * hid):
            row[j] += g_row[j] + b_ih[j]
        _sigmoid_row(row[:2 * hid], fast)
        gn, bn = g_row[2 * hid:], b_ih[2 * hid:]
        for j in range(hid):
            n[j] = (gn[j] + bn[j]) + r[j] * hn[j]
        _tanh_row(n, fast)
        hb, hp = h_new[b], h[b]
        for j in range(hid):
            hb[j] = (1.0 - z[j]) * n[j] + z[j] * hp[j]


@_jit("22222222")
def gru_step_back(a, gh_n, h, dh, dy, dgi, dgh, direct):
    """Backward of ``gru_step``: with d = dh + dy, dn = d (1-z)(1-n^2),
    dz = d (h - n) z(1-z), dr = dn gh_n r(1-r): dgi = [dr | dz | dn], dgh = [dr | dz | dn r],
    direct = d z (the caller does dh = direct + dgh @ W_hh)."""
    hid = a.shape[1] // 3
    for b in range(a.shape[0]):
        row, hn, hp, dhb, dyb, dirb = a[b], gh_n[b], h[b], dh[b], dy[b], direct[b]
        r, z, n = row[:hid], row[hid:2 * hid], row[2 * hid:]
        gi_r, gi_z, gi_n = dgi[b, :hid], dgi[b, hid:2 * hid], dgi[b, 2 * hid:]
        gh_r, gh_z, gh_nb = dgh[b, :hid], dgh[b, hid:2 * hid], dgh[b, 2 * hid:]
        for j in range(hid):
            d = dhb[j] + dyb[j]
            dn = d * (1.0 - z[j]) * (1.0 - n[j] * n[j])
            dz = d * (hp[j] - n[j]) * z[j] * (1.0 - z[j])
            dr = dn * hn[j] * r[j] * (1.0 - r[j])
            gi_r[j], gi_z[j], gi_n[j] = dr, dz, dn
            gh_r[j], gh_z[j], gh_nb[j] = dr, dz, dn * r[j]
            dirb[j] = d * z[j]


@_jit("221b")
def rnn_step(a, gi, bias, relu):
    """One Elman step, given a = h @ W_hh^T (B, H): a becomes act(a + gi + bias),
    act = relu or tanh, with gi = x_t W_ih^T and bias = b_ih + b_hh."""
    fast = a.itemsize == 4
    for b in range(a.shape[0]):
        row, g_row = a[b], gi[b]
        for j in range(row.shape[0]):
            row[j] += g_row[j] + bias[j]
        if relu:
            for j in range(row.shape[0]):
                row[j] = max(row[j], 0.0)
        else:
            _tanh_row(row, fast)


@_jit("222b2")
def rnn_step_back(y, dh, dy, relu, da):
    """Backward of ``rnn_step`` (y = its output): da = (dh + dy) (1 - y^2) for tanh,
    (dh + dy) [y > 0] for relu (0 at 0, as in PyTorch); the caller does dh = da @ W_hh."""
    for b in range(y.shape[0]):
        yb, dhb, dyb, db = y[b], dh[b], dy[b], da[b]
        if relu:
            for j in range(yb.shape[0]):
                db[j] = dhb[j] + dyb[j] if yb[j] > 0 else 0.0
        else:
            for j in range(yb.shape[0]):
                db[j] = (dhb[j] + dyb[j]) * (1.0 - yb[j] * yb[j])


@_jit("11")
def sigmoid_row(x, y):
    """y = sigmoid(x) over 1-D rows, by ``_sigmoid_fast`` in float32 (vectorized)."""
    fast = x.itemsize == 4
    for j in range(x.shape[0]):
        y[j] = _sigmoid_fast(x[j]) if fast else _sig(x[j])


def sigmoid_float32(x: np.ndarray) -> np.ndarray:
    """sigmoid of a float32 array of any shape through ``sigmoid_row``: the ``sigmoid``
    ufunc calls libm's exp per element, 3-5x slower than this vectorized loop."""
    x = np.asarray(x)
    if not x.flags.c_contiguous:
        x = x.copy()
    y = np.empty_like(x)
    kernel = globals().get("sigmoid_row") or _build_jit("sigmoid_row")
    kernel(x.reshape(-1), y.reshape(-1))
    return y


@_jit("31222b3333")
def lstm_forward(gi, bias, w_hh, h0, c0, reverse, hs, cs, tcs, acts):
    """A whole LSTM pass in one call (for small steps, where a BLAS call and a kernel call
    per step cost more than the work): ``lstm_step`` after a = h @ W_hh^T at each step;
    w_hh is (4H, H). Steps run t = 0..T-1, or T-1..0 when ``reverse``."""
    n = gi.shape[0]
    h, c = h0, c0
    for s in range(n):
        t = n - 1 - s if reverse else s
        _matmul_rows(h, w_hh, acts[t])
        lstm_step(acts[t], gi[t], bias, c, cs[t], tcs[t], hs[t])
        h, c = hs[t], cs[t]


@_jit("32222b333322")
def lstm_backward(dy, dhn, dcn, w_hh_t, c0, reverse, cs, tcs, acts, da, dh0, dc0):
    """BPTT through ``lstm_forward`` in one call: ``lstm_step_back`` then dh = da @ W_hh
    at each step, latest first; w_hh_t is W_hh^T (H, 4H). dh0, dc0 receive the last ones."""
    n = acts.shape[0]
    dh, dc = dhn.copy(), dcn.copy()
    for s in range(n):
        t = s if reverse else n - 1 - s
        p = t + 1 if reverse else t - 1
        c_prev = c0 if p < 0 or p >= n else cs[p]
        lstm_step_back(acts[t], tcs[t], c_prev, dh, dc, dy[t], da[t])
        _matmul_rows(da[t], w_hh_t, dh)
    dh0[:] = dh
    dc0[:] = dc


@_jit("3122bb3")
def rnn_forward(gi, bias, w_hh, h0, reverse, relu, hs):
    """A whole Elman pass in one call (small steps): ``rnn_step`` after h @ W_hh^T."""
    n = gi.shape[0]
    h = h0
    for s in range(n):
        t = n - 1 - s if reverse else s
        _matmul_rows(h, w_hh, hs[t])
        rnn_step(hs[t], gi[t], bias, relu)
        h = hs[t]


@_jit("322bb332")
def rnn_backward(dy, dhn, w_hh_t, reverse, relu, hs, da, dh0):
    """BPTT through ``rnn_forward`` in one call: ``rnn_step_back`` then dh = da @ W_hh."""
    n = hs.shape[0]
    dh = dhn.copy()
    for s in range(n):
        t = s if reverse else n - 1 - s
        rnn_step_back(hs[t], dh, dy[t], relu, da[t])
        _matmul_rows(da[t], w_hh_t, dh)
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
    for helper in _REASSOCIATED:
        if globals()[helper.__name__] is helper:
            globals()[helper.__name__] = numba.njit(
                fastmath={"reassoc", "contract"}, error_model="numpy")(helper)
    func, codes = _JIT_ARGS[name]
    for callee in func.__code__.co_names:  # kernels it calls must be built first
        if callee in _JIT_ARGS and callee not in globals():
            _build_jit(callee)
    signatures = []
    for dtype in (numba.float32, numba.float64):
        args = [numba.boolean if code == "b" else numba.types.Array(dtype, int(code), "C")
                for code in codes]
        signatures.append(numba.void(*args))
    built = numba.njit(signatures, cache=True, error_model="numpy")(func)
    globals()[name] = built
    return built
