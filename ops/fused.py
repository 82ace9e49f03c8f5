"""Fused recurrent ops: one whole LSTM, GRU or RNN pass over a sequence as a single op.

The composed layers record ~10 ops per time step; these record one node per layer and
direction and backpropagate through time by hand (docs/recurrent_equations.md §2, §5, §6).
Each step is one matmul (``h @ W_hh^T`` forward, ``da @ W_hh`` backward, NumPy's BLAS,
written in place) and one Numba kernel for all its elementwise work
(``recurrent_kernels.lstm_step``, ``recurrent_kernels.lstm_step_back`` ...); small LSTM and RNN
steps run the whole loop in one kernel call instead (``SMALL_STEP``). The input projection of
all steps is one matmul before the loop, and the weight gradients are one matmul each after it:

    dW_ih = sum_t da_t^T x_t,   dW_hh = sum_t da_t^T h_{t-1},   db = sum_t,b da_t.

Inputs are ``x (T, B, I)``, the initial state ``h0 (B, H)`` (and ``c0`` for LSTM), and the
weights with PyTorch's shapes and gate order; a layer without bias passes zero biases.
``reverse=True`` runs the pass from t = T-1 down to 0 (the backward direction of a
bidirectional layer); ``y[t]`` is then the state after consuming ``x[T-1] .. x[t]``.
The composed cells are the oracle these are tested against (tests/ops/test_fused.py).
"""

from __future__ import annotations

import numpy as np

from tinygrad_lstm import Function, ShapeError, register_op

from . import recurrent_kernels

_GATES = {"lstm_sequence": 4, "gru_sequence": 3, "rnn_sequence": 1}
# Up to this many multiply-adds per step's h @ W_hh^T, a whole LSTM or RNN pass runs in one
# kernel call (its own blocked matmul); past it, per step, NumPy's BLAS and a step kernel
# (GRU always: its fused pass already beats the others everywhere). The threshold sits
# between the sizes where the kernel's matmul matches BLAS and those where BLAS is faster
# (benchmarks/README.md, "Figures behind design choices").
SMALL_STEP = 2**18


def _check(name: str, x, states, w_ih, w_hh, b_ih, b_hh) -> tuple[int, int, int, int]:
    """(T, B, I, H) of a fused call; a ShapeError naming the op and the shapes otherwise."""
    arrays = (x, *states, w_ih, w_hh, b_ih, b_hh)
    if len({a.dtype for a in arrays}) != 1:
        dtypes = ", ".join(str(a.dtype) for a in arrays)
        raise TypeError(f"{name}: all inputs must have one dtype, got {dtypes}")
    if x.ndim != 3 or x.shape[0] == 0:
        raise ShapeError(f"{name}: expected x of shape (T, B, I) with T > 0, got {x.shape}")
    n, batch, isize = x.shape
    gates = _GATES[name]
    if w_hh.ndim != 2 or w_hh.shape[0] % gates or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ShapeError(f"{name}: expected weight_hh of shape ({gates}H, H), got {w_hh.shape}")
    hidden = w_hh.shape[1]
    expected = {
        "weight_ih": (w_ih, (gates * hidden, isize)),
        "bias_ih": (b_ih, (gates * hidden,)),
        "bias_hh": (b_hh, (gates * hidden,)),
    }
    expected.update({f"state {k}": (s, (batch, hidden)) for k, s in enumerate(states)})
    for label, (array, shape) in expected.items():
        if array.shape != shape:
            raise ShapeError(
                f"{name}: expected {label} of shape {shape} for x {x.shape} and "
                f"weight_hh {w_hh.shape}, got {array.shape}"
            )
    return n, batch, isize, hidden


def _project(x, w_ih) -> np.ndarray:
    """gi = x @ W_ih^T for all steps at once, as a contiguous (T, B, G) array (the step
    kernels add the biases as they read it)."""
    n, batch, isize = x.shape
    return (x.reshape(n * batch, isize) @ w_ih.T).reshape(n, batch, w_ih.shape[0])


def _small_step(batch: int, w_hh: np.ndarray) -> bool:
    """True when one step's h @ W_hh^T is small enough for the one-call LSTM kernels."""
    return batch * w_hh.size <= SMALL_STEP


def _times(n: int, reverse: bool) -> range:
    """The time indices of a pass, in the order it runs."""
    return range(n - 1, -1, -1) if reverse else range(n)


def _grad_or_zeros(g, like: np.ndarray) -> np.ndarray:
    """g as a C-contiguous, writeable array of ``like``'s dtype (zeros for None). The kernels'
    signatures take writeable arrays, and an upstream gradient can be a read-only broadcast
    view that is contiguous all the same: one with no elements, or of shape (1, 1, 1)."""
    if g is None:
        return np.zeros_like(like)
    return np.require(g, like.dtype, ("C_CONTIGUOUS", "WRITEABLE"))


def _previous_states(hs: np.ndarray, h0: np.ndarray, reverse: bool) -> np.ndarray:
    """The state each step started from, aligned with ``hs``: (T, B, H)."""
    if reverse:
        return np.concatenate([hs[1:], h0[None]])
    return np.concatenate([h0[None], hs[:-1]])


def _weight_grads(ctx, da, x, w_ih, hs, h0, dgh=None) -> tuple:
    """(dx, dW_ih, dW_hh, db_ih, db_hh) from the pre-activation gradients ``da`` (T, B, G)
    of the input projection and ``dgh`` of the recurrent one (the same unless given).

    dW_hh = sum_t dgh_t^T h_prev(t) is one matmul over the steps that start from an output
    in ``hs`` plus one for the step that starts from ``h0``: no shifted copy of ``hs``."""
    n, batch, width = da.shape
    da2 = da.reshape(n * batch, width)
    need = ctx.needs_input_grad
    dx = (da2 @ w_ih).reshape(x.shape) if need[0] else None
    dw_ih = da2.T @ x.reshape(n * batch, x.shape[2]) if need[-4] else None
    dgh = da if dgh is None else dgh
    dw_hh = None
    if need[-3]:
        first, rest, prev = (n - 1, dgh[:-1], hs[1:]) if ctx.reverse else (0, dgh[1:], hs[:-1])
        # Sizes spelled out: reshape cannot infer -1 for arrays with no elements (B = 0).
        rows, hidden = (n - 1) * batch, h0.shape[1]
        dw_hh = rest.reshape(rows, width).T @ prev.reshape(rows, hidden) + dgh[first].T @ h0
    db_ih = da2.sum(axis=0) if need[-2] else None
    db_hh = None
    if need[-1]:
        db_hh = (
            db_ih.copy()
            if dgh is da and db_ih is not None
            else dgh.reshape(n * batch, width).sum(axis=0)
        )
    return dx, dw_ih, dw_hh, db_ih, db_hh


def _lstm_shapes(dims, attrs):
    n, batch, isize, hidden = dims[:4]
    return [
        (n, batch, isize),
        (batch, hidden),
        (batch, hidden),
        (4 * hidden, isize),
        (4 * hidden, hidden),
        (4 * hidden,),
        (4 * hidden,),
    ]


def _gru_rnn_shapes(gates):
    def shapes(dims, attrs):
        n, batch, isize, hidden = dims[:4]
        return [
            (n, batch, isize),
            (batch, hidden),
            (gates * hidden, isize),
            (gates * hidden, hidden),
            (gates * hidden,),
            (gates * hidden,),
        ]

    return shapes


@register_op(
    "lstm_sequence", arity=7, kind="fused", shapes=_lstm_shapes, attrs={"reverse": [False, True]}
)
class LSTMSequence(Function):
    """(y, h_n, c_n) = one LSTM pass: inputs x, h0, c0, W_ih, W_hh, b_ih, b_hh.

    a_t = x_t W_ih^T + b_ih + h W_hh^T + b_hh = [a_i|a_f|a_g|a_o];
    c' = sigmoid(a_f) c + sigmoid(a_i) tanh(a_g);  h' = sigmoid(a_o) tanh(c');  y_t = h'.
    Backward: docs/recurrent_equations.md §5 per step, then §6: one matmul per weight gradient.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False):
        n, batch, _, hidden = _check("lstm_sequence", x, (h0, c0), w_ih, w_hh, b_ih, b_hh)
        gi, bias = _project(x, w_ih), np.ascontiguousarray(b_ih + b_hh)
        hs, cs, tcs = (np.empty((n, batch, hidden), x.dtype) for _ in range(3))
        acts = np.empty_like(gi)
        h0, c0 = np.ascontiguousarray(h0), np.ascontiguousarray(c0)
        w_hh = np.ascontiguousarray(w_hh)
        if _small_step(batch, w_hh):
            recurrent_kernels.lstm_forward(gi, bias, w_hh, h0, c0, reverse, hs, cs, tcs, acts)
        else:
            w_hh_t, step = np.ascontiguousarray(w_hh.T), recurrent_kernels.lstm_step
            # Per-step views made once, in C: the loop runs T times and is short.
            a_t, gi_t, hs_t, cs_t, tcs_t = list(acts), list(gi), list(hs), list(cs), list(tcs)
            h, c = h0, c0
            for t in _times(n, reverse):
                np.dot(h, w_hh_t, out=a_t[t])
                step(a_t[t], gi_t[t], bias, c, cs_t[t], tcs_t[t], hs_t[t])
                h, c = hs_t[t], cs_t[t]
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, hs, cs, tcs, acts)
        ctx.reverse = reverse
        last = 0 if reverse else n - 1
        return hs, hs[last].copy(), cs[last].copy()

    @staticmethod
    def backward(ctx, dy, dhn, dcn):
        x, h0, c0, w_ih, w_hh, hs, cs, tcs, acts = ctx.saved
        da = np.empty_like(acts)
        dy = _grad_or_zeros(dy, hs)
        dh, dc = _grad_or_zeros(dhn, h0), _grad_or_zeros(dcn, c0)
        if _small_step(len(h0), w_hh):
            dh0, dc0 = np.empty_like(dh), np.empty_like(dc)
            recurrent_kernels.lstm_backward(
                dy,
                dh,
                dc,
                np.ascontiguousarray(w_hh.T),
                c0,
                ctx.reverse,
                cs,
                tcs,
                acts,
                da,
                dh0,
                dc0,
            )
            dh, dc = dh0, dc0
        else:
            dh, dc = dh.copy(), dc.copy()
            step = recurrent_kernels.lstm_step_back
            a_t, tcs_t, dy_t, da_t = list(acts), list(tcs), list(dy), list(da)
            cprev = list(cs[1:]) + [c0] if ctx.reverse else [c0] + list(cs[:-1])
            for t in reversed(_times(len(hs), ctx.reverse)):
                step(a_t[t], tcs_t[t], cprev[t], dh, dc, dy_t[t], da_t[t])
                np.dot(da_t[t], w_hh, out=dh)
        dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(ctx, da, x, w_ih, hs, h0)
        return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh


@register_op(
    "gru_sequence",
    arity=6,
    kind="fused",
    shapes=_gru_rnn_shapes(3),
    attrs={"reverse": [False, True]},
)
class GRUSequence(Function):
    """(y, h_n) = one GRU pass: inputs x, h0, W_ih, W_hh, b_ih, b_hh.

    gi = x_t W_ih^T + b_ih, gh = h W_hh^T + b_hh; r = sigmoid(gi_r + gh_r),
    z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r gh_n);  h' = (1 - z) n + z h;  y_t = h'.
    Backward: docs/recurrent_equations.md §5-§6 (dgh differs from dgi in the n block: dn * r).
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False):
        n, batch, _, hidden = _check("gru_sequence", x, (h0,), w_ih, w_hh, b_ih, b_hh)
        gi = _project(x, w_ih)
        hs, ghn = (np.empty((n, batch, hidden), x.dtype) for _ in range(2))
        acts = np.empty_like(gi)
        h0, b_ih, b_hh = (np.ascontiguousarray(a) for a in (h0, b_ih, b_hh))
        w_hh_t, step = np.ascontiguousarray(w_hh.T), recurrent_kernels.gru_step
        h = h0
        for t in _times(n, reverse):
            np.dot(h, w_hh_t, out=acts[t])
            step(acts[t], gi[t], b_ih, b_hh, h, ghn[t], hs[t])
            h = hs[t]
        ctx.save_for_backward(x, h0, w_ih, w_hh, hs, acts, ghn)
        ctx.reverse = reverse
        return hs, hs[0 if reverse else n - 1].copy()

    @staticmethod
    def backward(ctx, dy, dhn):
        x, h0, w_ih, w_hh, hs, acts, ghn = ctx.saved
        dgi, dgh = np.empty_like(acts), np.empty_like(acts)
        dy = _grad_or_zeros(dy, hs)
        dh = _grad_or_zeros(dhn, h0).copy()
        direct = np.empty_like(dh)
        hprev = _previous_states(hs, h0, ctx.reverse)
        step = recurrent_kernels.gru_step_back
        for t in reversed(_times(len(hs), ctx.reverse)):
            step(acts[t], ghn[t], hprev[t], dh, dy[t], dgi[t], dgh[t], direct)
            np.dot(dgh[t], w_hh, out=dh)
            dh += direct
        dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(ctx, dgi, x, w_ih, hs, h0, dgh=dgh)
        return dx, dh, dw_ih, dw_hh, db_ih, db_hh


@register_op(
    "rnn_sequence",
    arity=6,
    kind="fused",
    shapes=_gru_rnn_shapes(1),
    attrs={"reverse": [False, True], "nonlinearity": ["tanh", "relu"]},
)
class RNNSequence(Function):
    """(y, h_n) = one Elman RNN pass: inputs x, h0, W_ih, W_hh, b_ih, b_hh.

    h' = act(x_t W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu;  y_t = h'.
    Backward: da = dh (1 - h'^2) or dh [h' > 0]; the previous step gets da W_hh.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False, nonlinearity="tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"rnn_sequence: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        n, batch, _, hidden = _check("rnn_sequence", x, (h0,), w_ih, w_hh, b_ih, b_hh)
        gi, bias = _project(x, w_ih), np.ascontiguousarray(b_ih + b_hh)
        hs = np.empty((n, batch, hidden), x.dtype)
        h0 = np.ascontiguousarray(h0)
        relu = nonlinearity == "relu"
        w_hh = np.ascontiguousarray(w_hh)
        if _small_step(batch, w_hh):
            recurrent_kernels.rnn_forward(gi, bias, w_hh, h0, reverse, relu, hs)
        else:
            w_hh_t, step = np.ascontiguousarray(w_hh.T), recurrent_kernels.rnn_step
            h = h0
            for t in _times(n, reverse):
                np.dot(h, w_hh_t, out=hs[t])
                step(hs[t], gi[t], bias, relu)
                h = hs[t]
        ctx.save_for_backward(x, h0, w_ih, w_hh, hs)
        ctx.reverse, ctx.relu = reverse, relu
        return hs, hs[0 if reverse else n - 1].copy()

    @staticmethod
    def backward(ctx, dy, dhn):
        x, h0, w_ih, w_hh, hs = ctx.saved
        da = np.empty_like(hs)
        dy = _grad_or_zeros(dy, hs)
        dh, relu = _grad_or_zeros(dhn, h0), ctx.relu
        if _small_step(len(h0), w_hh):
            dh0 = np.empty_like(dh)
            recurrent_kernels.rnn_backward(
                dy, dh, np.ascontiguousarray(w_hh.T), ctx.reverse, relu, hs, da, dh0
            )
            dh = dh0
        else:
            dh, step = dh.copy(), recurrent_kernels.rnn_step_back
            for t in reversed(_times(len(hs), ctx.reverse)):
                step(hs[t], dh, dy[t], relu, da[t])
                np.dot(da[t], w_hh, out=dh)
        dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(ctx, da, x, w_ih, hs, h0)
        return dx, dh, dw_ih, dw_hh, db_ih, db_hh
