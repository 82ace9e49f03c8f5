"""Benchmark: one Elman RNN (tanh) training step (forward over T steps, L = sum(y * w),
backward).

    python benchmarks/rnn_step.py [--configs tiny,long] [--repeats 30] [--check-only]

Compares torch.nn.RNN, the same RNN composed of torch ops, the hand-written NumPy BPTT
below, and tinygrad_lstm's RNN composed of ops and with ``fused=True``; see harness.py.
"""

import harness
import numpy as np


def numpy_bptt(p: harness.Problem):
    """RNN forward and BPTT by hand in NumPy: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    w_ih, w_hh = p.weights["weight_ih"], p.weights["weight_hh"]
    bias = p.weights["bias_ih"] + p.weights["bias_hh"]
    steps, batch, hid = p.steps, p.batch, p.hidden
    x2 = p.x.reshape(steps * batch, p.inputs)

    def step():
        gi = (x2 @ w_ih.T + bias).reshape(steps, batch, hid)
        hs = np.zeros((steps + 1, batch, hid), p.dtype)  # hs[t + 1] = h after step t
        for t in range(steps):
            hs[t + 1] = np.tanh(gi[t] + hs[t] @ w_hh.T)
        loss = float(np.sum(hs[1:] * p.w, dtype=np.float64))
        da = np.empty((steps, batch, hid), p.dtype)
        dh = np.zeros((batch, hid), p.dtype)
        for t in range(steps - 1, -1, -1):
            da[t] = (dh + p.w[t]) * (1 - hs[t + 1] ** 2)
            dh = da[t] @ w_hh
        da2 = da.reshape(steps * batch, hid)
        db = da2.sum(axis=0)
        return loss, {
            "weight_ih": da2.T @ x2,
            "weight_hh": da2.T @ hs[:-1].reshape(steps * batch, hid),
            "bias_ih": db,
            "bias_hh": db,
        }

    return step


def torch_cell(x_t, state, w_ih, w_hh, b_ih, b_hh):
    """The RNN step in torch ops, as a reader would write it."""
    import torch

    h = torch.tanh(x_t @ w_ih.t() + b_ih + state[0] @ w_hh.t() + b_hh)
    return h, (h,)


if __name__ == "__main__":
    raise SystemExit(
        harness.run("rnn", 1, harness.implementations("RNN", numpy_bptt, torch_cell), __doc__)
    )
