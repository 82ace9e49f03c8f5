"""Benchmark: one LSTM training step (forward over T steps, L = sum(y * w), backward).

    python benchmarks/lstm_step.py [--configs tiny,long] [--repeats 30] [--check-only]

Compares torch.nn.LSTM, the same LSTM composed of torch ops, the hand-written NumPy BPTT
below, and tinygrad_lstm's LSTM composed of ops and with ``fused=True``; see harness.py.
"""

import harness
import numpy as np


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def numpy_bptt(p: harness.Problem):
    """LSTM forward and BPTT by hand in NumPy: input projection of all steps in one
    matmul, then per step one matmul and the gate arithmetic on (B, 4H) blocks."""
    w_ih, w_hh = p.weights["weight_ih"], p.weights["weight_hh"]
    bias = p.weights["bias_ih"] + p.weights["bias_hh"]
    steps, batch, hid = p.steps, p.batch, p.hidden
    x2 = p.x.reshape(steps * batch, p.inputs)

    def step():
        gi = (x2 @ w_ih.T + bias).reshape(steps, batch, 4 * hid)
        hs = np.zeros((steps + 1, batch, hid), p.dtype)  # hs[t + 1] = h after step t
        cs = np.zeros((steps + 1, batch, hid), p.dtype)
        acts = np.empty((steps, batch, 4 * hid), p.dtype)
        tcs = np.empty((steps, batch, hid), p.dtype)
        for t in range(steps):
            a = gi[t] + hs[t] @ w_hh.T
            act = acts[t]
            act[:] = _sigmoid(a)
            act[:, 2 * hid : 3 * hid] = np.tanh(a[:, 2 * hid : 3 * hid])
            i, f, g, o = np.split(act, 4, axis=1)
            cs[t + 1] = f * cs[t] + i * g
            tcs[t] = np.tanh(cs[t + 1])
            hs[t + 1] = o * tcs[t]
        loss = float(np.sum(hs[1:] * p.w, dtype=np.float64))
        da = np.empty_like(acts)
        dh = np.zeros((batch, hid), p.dtype)
        dc = np.zeros((batch, hid), p.dtype)
        for t in range(steps - 1, -1, -1):
            i, f, g, o = np.split(acts[t], 4, axis=1)
            dh = dh + p.w[t]
            dc = dc + dh * o * (1 - tcs[t] ** 2)
            d = da[t]
            d[:, :hid] = dc * g * i * (1 - i)
            d[:, hid : 2 * hid] = dc * cs[t] * f * (1 - f)
            d[:, 2 * hid : 3 * hid] = dc * i * (1 - g * g)
            d[:, 3 * hid :] = dh * tcs[t] * o * (1 - o)
            dc = dc * f
            dh = d @ w_hh
        da2 = da.reshape(steps * batch, 4 * hid)
        db = da2.sum(axis=0)
        return loss, {
            "weight_ih": da2.T @ x2,
            "weight_hh": da2.T @ hs[:-1].reshape(steps * batch, hid),
            "bias_ih": db,
            "bias_hh": db,
        }

    return step


def torch_cell(x_t, state, w_ih, w_hh, b_ih, b_hh):
    """The LSTM step in torch ops, as a reader would write it."""
    import torch

    h, c = state
    i, f, g, o = (x_t @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh).chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, (h, c)


if __name__ == "__main__":
    raise SystemExit(
        harness.run("lstm", 4, harness.implementations("LSTM", numpy_bptt, torch_cell), __doc__)
    )
