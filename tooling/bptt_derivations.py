"""Backpropagation through time written out by hand for the built-in cells, one step at a time.

This is the reference the ``explain`` ledger prints and checks against autograd and central
differences: the derivation a from-scratch tutorial would write, in NumPy, float64, gates in
PyTorch's order. The equations, and why each line is what it is, are in
docs/bptt_equations.md. Each cell has a forward that keeps what the backward needs, and a
backward that walks t = T-1 down to 0 and returns one ``HandStep`` per step.

Notation, for one layer over x (T, N, I): ``dloss[t]`` (N, H) is the gradient the loss puts
directly on the output h_t (zero at steps the loss does not read); ``dh_next`` is what step
t+1 sends back to h_t. A step's contribution to a weight is the outer product of the
gradient at its pre-activations with what that weight multiplied: ``dz^T x_t`` for W_ih,
``dz^T h_{t-1}`` for W_hh, ``sum_n dz`` for the biases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DERIVATIONS",
    "HandStep",
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_dc_from_h",
    "lstm_forward",
    "rnn_backward",
    "rnn_forward",
]


@dataclass
class HandStep:
    """One step of a hand-written backward: what arrives at the state, the local gradients at
    the gates' pre-activations, the factor along the path back to the last step, and this
    step's contribution to each weight."""

    t: int
    arriving: dict[str, np.ndarray]
    local: dict[str, np.ndarray]
    path: float | None
    contributions: dict[str, np.ndarray]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), without overflow


def _contributions(
    dz_x: np.ndarray, dz_h: np.ndarray, x_t: np.ndarray, h_prev: np.ndarray
) -> dict[str, np.ndarray]:
    """What one step adds to each weight, given the gradient at the pre-activations fed by
    x_t (``dz_x``) and by h_{t-1} (``dz_h``; the same array except in a GRU)."""
    return {
        "weight_ih": dz_x.T @ x_t,
        "weight_hh": dz_h.T @ h_prev,
        "bias_ih": dz_x.sum(axis=0),
        "bias_hh": dz_h.sum(axis=0),
    }


# ---- LSTM --------------------------------------------------------------------------------
def lstm_forward(p: dict, x: np.ndarray) -> list[dict]:
    """z = x_t W_ih^T + b_ih + h W_hh^T + b_hh;  i, f, o = sigmoid(z_i, z_f, z_o),
    g = tanh(z_g);  c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)."""
    hidden = p["weight_hh"].shape[1]
    h = c = np.zeros((x.shape[1], hidden))
    steps = []
    for x_t in x:
        z = x_t @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        z_i, z_f, z_g, z_o = np.split(z, 4, axis=1)
        i, f, g, o = _sigmoid(z_i), _sigmoid(z_f), np.tanh(z_g), _sigmoid(z_o)
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        steps.append(
            {"h_prev": h, "c_prev": c, "i": i, "f": f, "g": g, "o": o, "c": c_new, "h": h_new}
        )
        h, c = h_new, c_new
    return steps


def lstm_dc_from_h(dh: np.ndarray, o: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The gradient h_t = o * tanh(c_t) sends to c_t: dh * o * (1 - tanh(c_t)^2).

    The line the classic numpy tutorial got wrong: dropping the tanh' factor (``dh * o``)
    is the derivative of h = o * c, a different cell."""
    return dh * o * (1.0 - np.tanh(c) ** 2)


def lstm_backward(p: dict, x: np.ndarray, fwd: list[dict], dloss: np.ndarray) -> list[HandStep]:
    """For t = T-1 .. 0, with dh_T = dc_T = 0 and f_T = 0 (nothing after the last step):

        dh_t = dloss_t + dz_{t+1} W_hh                   from the loss, from step t+1
        dc_t = dc_{t+1} * f_{t+1} + lstm_dc_from_h(dh_t)  through the forget gate, from h_t
        δo = dh_t * tanh(c_t) * o(1-o)      δi = dc_t * g * i(1-i)
        δf = dc_t * c_{t-1} * f(1-f)        δg = dc_t * i * (1-g^2)
        dz_t = [δi δf δg δo]

    The cell-state path multiplies the gradient by f at every step: ``path`` is the mean over
    units of f_{t+1} ... f_{T-1} (sequence 0), the factor left of a gradient that travels
    along c from the last step back to c_t."""
    hidden = p["weight_hh"].shape[1]
    dh_next = dc_next = f_next = np.zeros((x.shape[1], hidden))
    keep = np.ones(hidden)
    steps = []
    for t in range(len(fwd) - 1, -1, -1):
        s = fwd[t]
        dh = dloss[t] + dh_next
        dc_f, dc_h = dc_next * f_next, lstm_dc_from_h(dh, s["o"], s["c"])
        dc = dc_f + dc_h
        local = {
            "δi": dc * s["g"] * s["i"] * (1 - s["i"]),
            "δf": dc * s["c_prev"] * s["f"] * (1 - s["f"]),
            "δg": dc * s["i"] * (1 - s["g"] ** 2),
            "δo": dh * np.tanh(s["c"]) * s["o"] * (1 - s["o"]),
        }
        dz = np.concatenate(list(local.values()), axis=1)
        arriving = {
            "dh←loss": dloss[t],
            "dh←t+1": dh_next,
            "dh": dh,
            "dc←f·dc(t+1)": dc_f,
            "dc←h": dc_h,
            "dc": dc,
        }
        steps.append(
            HandStep(
                t, arriving, local, float(keep.mean()), _contributions(dz, dz, x[t], s["h_prev"])
            )
        )
        dh_next, dc_next, f_next = dz @ p["weight_hh"], dc, s["f"]
        keep = keep * s["f"][0]
    return steps


# ---- GRU ---------------------------------------------------------------------------------
def gru_forward(p: dict, x: np.ndarray) -> list[dict]:
    """a = x_t W_ih^T + b_ih, b = h W_hh^T + b_hh (each split r, z, n);
    r = sigmoid(a_r + b_r), z = sigmoid(a_z + b_z), n = tanh(a_n + r * b_n),
    h_t = (1 - z) * n + z * h_{t-1}."""
    h = np.zeros((x.shape[1], p["weight_hh"].shape[1]))
    steps = []
    for x_t in x:
        a_r, a_z, a_n = np.split(x_t @ p["weight_ih"].T + p["bias_ih"], 3, axis=1)
        b_r, b_z, b_n = np.split(h @ p["weight_hh"].T + p["bias_hh"], 3, axis=1)
        r, z = _sigmoid(a_r + b_r), _sigmoid(a_z + b_z)
        n = np.tanh(a_n + r * b_n)
        h_new = (1 - z) * n + z * h
        steps.append({"h_prev": h, "r": r, "z": z, "n": n, "b_n": b_n, "h": h_new})
        h = h_new
    return steps


def gru_backward(p: dict, x: np.ndarray, fwd: list[dict], dloss: np.ndarray) -> list[HandStep]:
    """For t = T-1 .. 0:

        dh_t = dloss_t + dh_{t+1} * z_{t+1} + [δr δz δn*r]_{t+1} W_hh
                          (straight through z)   (through the gates)
        δn = dh_t * (1-z) * (1-n^2)       δz = dh_t * (h_{t-1} - n) * z(1-z)
        δr = δn * b_n * r(1-r)            (b_n = h_{t-1} W_hn^T + b_hn)

    W_ih and b_ih get [δr δz δn]; W_hh and b_hh get [δr δz δn*r], since the reset gate
    scales b_n. ``path``: the mean over units of z_{t+1} ... z_{T-1} (sequence 0), the factor
    left along the direct path h_{t-1} -> h_t."""
    hidden = p["weight_hh"].shape[1]
    dh_direct = dh_gates = np.zeros((x.shape[1], hidden))
    keep = np.ones(hidden)
    steps = []
    for t in range(len(fwd) - 1, -1, -1):
        s = fwd[t]
        dh = dloss[t] + dh_direct + dh_gates
        d_n = dh * (1 - s["z"]) * (1 - s["n"] ** 2)
        d_z = dh * (s["h_prev"] - s["n"]) * s["z"] * (1 - s["z"])
        d_r = d_n * s["b_n"] * s["r"] * (1 - s["r"])
        dz_h = np.concatenate([d_r, d_z, d_n * s["r"]], axis=1)
        arriving = {
            "dh←loss": dloss[t],
            "dh←t+1 via z": dh_direct,
            "dh←t+1 via gates": dh_gates,
            "dh": dh,
        }
        steps.append(
            HandStep(
                t,
                arriving,
                {"δr": d_r, "δz": d_z, "δn": d_n},
                float(keep.mean()),
                _contributions(np.concatenate([d_r, d_z, d_n], axis=1), dz_h, x[t], s["h_prev"]),
            )
        )
        dh_direct, dh_gates = dh * s["z"], dz_h @ p["weight_hh"]
        keep = keep * s["z"][0]
    return steps


# ---- RNN ---------------------------------------------------------------------------------
def rnn_forward(p: dict, x: np.ndarray, nonlinearity: str = "tanh") -> list[dict]:
    """a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh;  h_t = tanh(a_t) (or relu(a_t))."""
    h = np.zeros((x.shape[1], p["weight_hh"].shape[1]))
    steps = []
    for x_t in x:
        a = x_t @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        h_new = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)
        slope = 1 - h_new**2 if nonlinearity == "tanh" else (a > 0).astype(a.dtype)
        steps.append({"h_prev": h, "slope": slope, "h": h_new})
        h = h_new
    return steps


def rnn_backward(p: dict, x: np.ndarray, fwd: list[dict], dloss: np.ndarray) -> list[HandStep]:
    """For t = T-1 .. 0:  dh_t = dloss_t + δa_{t+1} W_hh;  δa_t = dh_t * act'(a_t).

    ``path``: the spectral norm of dh_{T-1}/dh_t = prod_{k=t+1}^{T-1} diag(act'(a_k)) W_hh
    (sequence 0): the most a gradient can grow on its way from the last step back to h_t.
    Below 1 per step it must vanish; above 1 it can grow, but need not: the norm bounds the
    growth, it does not force it."""
    hidden = p["weight_hh"].shape[1]
    dh_next = np.zeros((x.shape[1], hidden))
    jacobian = np.eye(hidden)
    steps = []
    for t in range(len(fwd) - 1, -1, -1):
        s = fwd[t]
        dh = dloss[t] + dh_next
        d_a = dh * s["slope"]
        steps.append(
            HandStep(
                t,
                {"dh←loss": dloss[t], "dh←t+1": dh_next, "dh": dh},
                {"δa": d_a},
                float(np.linalg.norm(jacobian, 2)),
                _contributions(d_a, d_a, x[t], s["h_prev"]),
            )
        )
        dh_next = d_a @ p["weight_hh"]
        jacobian = jacobian @ (s["slope"][0][:, None] * p["weight_hh"])
    return steps


# cell class name -> (forward, backward, the path factor's column header, what it is)
DERIVATIONS = {
    "LSTMCell": (
        lstm_forward,
        lstm_backward,
        "∏f",
        (
            "mean over units of f(t+1)···f(T-1), what the cell-state path keeps of a "
            "gradient from the last step"
        ),
    ),
    "GRUCell": (
        gru_forward,
        gru_backward,
        "∏z",
        (
            "mean over units of z(t+1)···z(T-1), what the direct path h(t-1) -> h(t) "
            "keeps of a gradient from the last step"
        ),
    ),
    "RNNCell": (
        rnn_forward,
        rnn_backward,
        "‖J‖₂",
        (
            "spectral norm of dh(T-1)/dh(t) = ∏ diag(act') W_hh, the most a gradient can "
            "grow on the way back: below 1 per step it must vanish, above 1 it can explode"
        ),
    ),
}
