"""Benchmark: one GRU training step (forward over T steps, L = sum(y * w), backward).

    python benchmarks/gru_step.py [--configs tiny,long] [--repeats 30] [--check-only]

Compares torch.nn.GRU, the same GRU composed of torch ops, the hand-written NumPy BPTT
below, and tinygrad_lstm's GRU composed of ops and with ``fused=True``; see harness.py.
"""

import harness
import numpy as np


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def numpy_bptt(p: harness.Problem):
    """GRU forward and BPTT by hand in NumPy (gates r, z, n; PyTorch's reset placement)."""
    w_ih, w_hh = p.weights["weight_ih"], p.weights["weight_hh"]
    b_ih, b_hh = p.weights["bias_ih"], p.weights["bias_hh"]
    steps, batch, hid = p.steps, p.batch, p.hidden
    x2 = p.x.reshape(steps * batch, p.inputs)

    def step():
        gi = (x2 @ w_ih.T + b_ih).reshape(steps, batch, 3 * hid)
        hs = np.zeros((steps + 1, batch, hid), p.dtype)  # hs[t + 1] = h after step t
        rz = np.empty((steps, batch, 2 * hid), p.dtype)
        ns = np.empty((steps, batch, hid), p.dtype)
        ghn = np.empty((steps, batch, hid), p.dtype)
        for t in range(steps):
            gh = hs[t] @ w_hh.T + b_hh
            rz[t] = _sigmoid(gi[t, :, : 2 * hid] + gh[:, : 2 * hid])
            ghn[t] = gh[:, 2 * hid :]
            ns[t] = np.tanh(gi[t, :, 2 * hid :] + rz[t, :, :hid] * ghn[t])
            z = rz[t, :, hid:]
            hs[t + 1] = (1 - z) * ns[t] + z * hs[t]
        loss = float(np.sum(hs[1:] * p.w, dtype=np.float64))
        dgi = np.empty((steps, batch, 3 * hid), p.dtype)
        dgh = np.empty((steps, batch, 3 * hid), p.dtype)
        dh = np.zeros((batch, hid), p.dtype)
        for t in range(steps - 1, -1, -1):
            r, z, n = rz[t, :, :hid], rz[t, :, hid:], ns[t]
            dh = dh + p.w[t]
            dn = dh * (1 - z) * (1 - n * n)
            dz = dh * (hs[t] - n) * z * (1 - z)
            dr = dn * ghn[t] * r * (1 - r)
            dgi[t, :, :hid], dgi[t, :, hid : 2 * hid], dgi[t, :, 2 * hid :] = dr, dz, dn
            dgh[t, :, : 2 * hid] = dgi[t, :, : 2 * hid]
            dgh[t, :, 2 * hid :] = dn * r
            dh = dh * z + dgh[t] @ w_hh
        dgi2 = dgi.reshape(steps * batch, 3 * hid)
        dgh2 = dgh.reshape(steps * batch, 3 * hid)
        return loss, {
            "weight_ih": dgi2.T @ x2,
            "weight_hh": dgh2.T @ hs[:-1].reshape(steps * batch, hid),
            "bias_ih": dgi2.sum(axis=0),
            "bias_hh": dgh2.sum(axis=0),
        }

    return step


def torch_cell(x_t, state, w_ih, w_hh, b_ih, b_hh):
    """The GRU step in torch ops, as a reader would write it."""
    import torch

    h = state[0]
    gi_r, gi_z, gi_n = (x_t @ w_ih.t() + b_ih).chunk(3, 1)
    gh_r, gh_z, gh_n = (h @ w_hh.t() + b_hh).chunk(3, 1)
    r = torch.sigmoid(gi_r + gh_r)
    z = torch.sigmoid(gi_z + gh_z)
    n = torch.tanh(gi_n + r * gh_n)
    h = (1 - z) * n + z * h
    return h, (h,)


if __name__ == "__main__":
    raise SystemExit(
        harness.run("gru", 3, harness.implementations("GRU", numpy_bptt, torch_cell), __doc__)
    )
