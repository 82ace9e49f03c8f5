"""Numba kernels of the fused recurrent ops (ops/fused.py), nothing else.

The elementwise half of one LSTM / GRU / RNN time step and of its backward, on (B, G*H)
rows; ops/fused.py runs the time loop and the step's matmul (NumPy's BLAS) around them,
or, for small LSTM and RNN steps, ``lstm_forward`` / ``lstm_backward`` / ``rnn_forward`` /
``rnn_backward`` run the whole loop. Plain @njit functions with explicit float32 and
float64 signatures over C-contiguous arrays, built on first use by ops/lazy_numba.py and
cached on disk. Loops run over contiguous rows so LLVM vectorizes them. float64 evaluates
sigmoid and tanh with libm, exactly as the composed ops do; float32 uses
``sigmoid_fast`` / ``tanh_fast`` from ops/scalar_math.py.
"""

import math

import numpy as np

from .lazy_numba import LazyKernels, helper, reassociated
from .scalar_math import sigmoid as _sig
from .scalar_math import sigmoid_fast as _sigmoid_fast
from .scalar_math import tanh_fast as _tanh_fast

_KERNELS = LazyKernels(globals())


@reassociated
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


@helper
def _sigmoid_row(v, fast):
    """v = sigmoid(v) in place (v a 1-D row)."""
    if fast:
        for j in range(v.shape[0]):
            v[j] = _sigmoid_fast(v[j])
    else:
        for j in range(v.shape[0]):
            v[j] = _sig(v[j])


@helper
def _tanh_row(v, fast):
    """v = tanh(v) in place (v a 1-D row)."""
    if fast:
        for j in range(v.shape[0]):
            v[j] = _tanh_fast(v[j])
    else:
        for j in range(v.shape[0]):
            v[j] = math.tanh(v[j])


@_KERNELS.jit("2212222")
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
        i, f, g, o = row[:hid], row[hid : 2 * hid], row[2 * hid : 3 * hid], row[3 * hid :]
        _sigmoid_row(row[: 2 * hid], fast)
        _tanh_row(g, fast)
        _sigmoid_row(o, fast)
        cb, cn, tc, hb = c[b], c_new[b], tc_new[b], h_new[b]
        for j in range(hid):
            cn[j] = f[j] * cb[j] + i[j] * g[j]
            tc[j] = cn[j]
        _tanh_row(tc, fast)
        for j in range(hid):
            hb[j] = o[j] * tc[j]


@_KERNELS.jit("2222222")
def lstm_step_back(a, tc, c_prev, dh, dc, dy, da):
    """Backward of ``lstm_step``: with d = dh + dy (the gradient reaching h') and
    C = dc + d o (1 - tanh(c')^2): da = [C g i(1-i) | C c f(1-f) | C i (1-g^2) |
    d tanh(c') o(1-o)], and dc becomes C f (the caller does dh = da @ W_hh)."""
    hid = a.shape[1] // 4
    for b in range(a.shape[0]):
        row, drow, tcb, cpb, dhb, dcb, dyb = a[b], da[b], tc[b], c_prev[b], dh[b], dc[b], dy[b]
        i, f, g, o = row[:hid], row[hid : 2 * hid], row[2 * hid : 3 * hid], row[3 * hid :]
        di, df, dg, do = drow[:hid], drow[hid : 2 * hid], drow[2 * hid : 3 * hid], drow[3 * hid :]
        for j in range(hid):
            d = dhb[j] + dyb[j]
            cc = dcb[j] + d * o[j] * (1.0 - tcb[j] * tcb[j])
            di[j] = cc * g[j] * i[j] * (1.0 - i[j])
            df[j] = cc * cpb[j] * f[j] * (1.0 - f[j])
            dg[j] = cc * i[j] * (1.0 - g[j] * g[j])
            do[j] = d * tcb[j] * o[j] * (1.0 - o[j])
            dcb[j] = cc * f[j]


@_KERNELS.jit("2211222")
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
        r, z, n = row[:hid], row[hid : 2 * hid], row[2 * hid :]
        for j in range(hid):
            hn[j] = n[j]
        for j in range(2 * hid):
            row[j] += g_row[j] + b_ih[j]
        _sigmoid_row(row[: 2 * hid], fast)
        gn, bn = g_row[2 * hid :], b_ih[2 * hid :]
        for j in range(hid):
            n[j] = (gn[j] + bn[j]) + r[j] * hn[j]
        _tanh_row(n, fast)
        hb, hp = h_new[b], h[b]
        for j in range(hid):
            hb[j] = (1.0 - z[j]) * n[j] + z[j] * hp[j]


@_KERNELS.jit("22222222")
def gru_step_back(a, gh_n, h, dh, dy, dgi, dgh, direct):
    """Backward of ``gru_step``: with d = dh + dy, dn = d (1-z)(1-n^2),
    dz = d (h - n) z(1-z), dr = dn gh_n r(1-r): dgi = [dr | dz | dn], dgh = [dr | dz | dn r],
    direct = d z (the caller does dh = direct + dgh @ W_hh)."""
    hid = a.shape[1] // 3
    for b in range(a.shape[0]):
        row, hn, hp, dhb, dyb, dirb = a[b], gh_n[b], h[b], dh[b], dy[b], direct[b]
        r, z, n = row[:hid], row[hid : 2 * hid], row[2 * hid :]
        gi_r, gi_z, gi_n = dgi[b, :hid], dgi[b, hid : 2 * hid], dgi[b, 2 * hid :]
        gh_r, gh_z, gh_nb = dgh[b, :hid], dgh[b, hid : 2 * hid], dgh[b, 2 * hid :]
        for j in range(hid):
            d = dhb[j] + dyb[j]
            dn = d * (1.0 - z[j]) * (1.0 - n[j] * n[j])
            dz = d * (hp[j] - n[j]) * z[j] * (1.0 - z[j])
            dr = dn * hn[j] * r[j] * (1.0 - r[j])
            gi_r[j], gi_z[j], gi_n[j] = dr, dz, dn
            gh_r[j], gh_z[j], gh_nb[j] = dr, dz, dn * r[j]
            dirb[j] = d * z[j]


@_KERNELS.jit("221b")
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


@_KERNELS.jit("222b2")
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


@_KERNELS.jit("31222b3333")
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


@_KERNELS.jit("32222b333322")
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


@_KERNELS.jit("3122bb3")
def rnn_forward(gi, bias, w_hh, h0, reverse, relu, hs):
    """A whole Elman pass in one call (small steps): ``rnn_step`` after h @ W_hh^T."""
    n = gi.shape[0]
    h = h0
    for s in range(n):
        t = n - 1 - s if reverse else s
        _matmul_rows(h, w_hh, hs[t])
        rnn_step(hs[t], gi[t], bias, relu)
        h = hs[t]


@_KERNELS.jit("322bb332")
def rnn_backward(dy, dhn, w_hh_t, reverse, relu, hs, da, dh0):
    """BPTT through ``rnn_forward`` in one call: ``rnn_step_back`` then dh = da @ W_hh."""
    n = hs.shape[0]
    dh = dhn.copy()
    for s in range(n):
        t = s if reverse else n - 1 - s
        rnn_step_back(hs[t], dh, dy[t], relu, da[t])
        _matmul_rows(da[t], w_hh_t, dh)
    dh0[:] = dh


_KERNELS.seal()
__getattr__ = _KERNELS.build


def compile_all() -> None:
    """Build (or load from the on-disk cache) every recurrent kernel now."""
    _KERNELS.compile_all()
